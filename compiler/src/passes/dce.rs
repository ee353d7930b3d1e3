//! Dead-code elimination.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same inputs and outputs, keeping only the instructions some output depends on (all ops
//! are pure, so nothing else is observable). Nested bodies (scan, custom_vjp) are cleaned
//! recursively. A `scan` whose stacked `ys` results are unused loses those `ys` (its body
//! stops computing them); carries and every other nested signature are kept. Cost: linear
//! in the number of instructions.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{Function, IrError, Op, Scan};

/// Removes instructions whose results no output uses, recursively in nested bodies.
pub fn dce(f: &Function) -> Result<Function, IrError> {
    let mut live = vec![false; f.types.len()];
    for o in &f.outputs {
        live[o.value.index()] = true;
    }
    let mut keep = vec![false; f.insts.len()];
    for (k, inst) in f.insts.iter().enumerate().rev() {
        if inst.results.iter().any(|r| live[r.index()]) {
            keep[k] = true;
            for a in &inst.args {
                live[a.index()] = true;
            }
        }
    }
    let dead = brainlift_ir::ValueId(u32::MAX);
    rebuild(f, |b, op, args, k| {
        if !keep[k] {
            return Ok(vec![dead; f.insts[k].results.len()]);
        }
        let results = &f.insts[k].results;
        if let Op::Scan(sc) = op {
            let nc = sc.num_carry;
            let keep_out: Vec<bool> = (0..results.len())
                .map(|i| i < nc || live[results[i].index()])
                .collect();
            if keep_out.iter().any(|k| !k) {
                let mut body = sc.body.clone();
                body.outputs = body
                    .outputs
                    .iter()
                    .zip(&keep_out)
                    .filter(|(_, k)| **k)
                    .map(|(o, _)| o.clone())
                    .collect();
                let new = Scan {
                    body: dce(&body)?,
                    ..(**sc).clone()
                };
                let res = b.push(Op::Scan(Box::new(new)), args)?;
                let mut it = res.into_iter();
                return Ok(keep_out
                    .iter()
                    .map(|k| if *k { it.next().unwrap_or(dead) } else { dead })
                    .collect());
            }
        }
        let op = if op.bodies().is_empty() {
            op.clone()
        } else {
            map_bodies(op, &mut |g| dce(g))?
        };
        Ok(b.push(op, args)?.to_vec())
    })
}
