//! Dead-code elimination.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same inputs and outputs, keeping only the instructions some output depends on (all ops
//! are pure, so nothing else is observable). Nested bodies (scan, custom_vjp) are cleaned
//! recursively; a nested body keeps its signature. Cost: linear in the number of
//! instructions.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{Function, IrError};

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
        let op = if op.bodies().is_empty() {
            op.clone()
        } else {
            map_bodies(op, &mut |g| dce(g))?
        };
        Ok(b.push(op, args)?.to_vec())
    })
}
