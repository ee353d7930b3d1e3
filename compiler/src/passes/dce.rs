//! Dead-code elimination.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same inputs and outputs, keeping only the instructions some output depends on (all ops
//! are pure, so nothing else is observable). Nested bodies (scan, custom_vjp) are cleaned
//! recursively. A `scan` whose stacked `ys` results are unused loses those `ys` (its body
//! stops computing them), and a `scan` whose cleaned body ignores some `xs` or
//! loop-invariant operands loses those operands, so the values feeding only them die too.
//! Carries and every other nested signature are kept. Cost: linear in the number of
//! instructions.

use crate::rewrite::{inline, map_bodies, rebuild};
use brainlift_ir::{Function, FunctionBuilder, IrError, Op, Scan, ValueId};

/// A scan after pruning: the new op, which results survive, which operands are kept.
struct PrunedScan {
    scan: Scan,
    keep_results: Vec<bool>,
    keep_args: Vec<bool>,
}

/// Removes instructions whose results no output uses, recursively in nested bodies.
pub fn dce(f: &Function) -> Result<Function, IrError> {
    let mut live = vec![false; f.types.len()];
    for o in &f.outputs {
        live[o.value.index()] = true;
    }
    let mut keep = vec![false; f.insts.len()];
    let mut pruned: Vec<Option<PrunedScan>> = (0..f.insts.len()).map(|_| None).collect();
    for (k, inst) in f.insts.iter().enumerate().rev() {
        if !inst.results.iter().any(|r| live[r.index()]) {
            continue;
        }
        keep[k] = true;
        let mut keep_args = vec![true; inst.args.len()];
        if let Op::Scan(sc) = &inst.op {
            let p = prune_scan(sc, &inst.results, &live)?;
            keep_args.clone_from(&p.keep_args);
            pruned[k] = Some(p);
        }
        for (a, kept) in inst.args.iter().zip(&keep_args) {
            if *kept {
                live[a.index()] = true;
            }
        }
    }
    let dead = ValueId(u32::MAX);
    rebuild(f, |b, op, args, k| {
        if !keep[k] {
            return Ok(vec![dead; f.insts[k].results.len()]);
        }
        if let Some(p) = &pruned[k] {
            let kept: Vec<ValueId> = args
                .iter()
                .zip(&p.keep_args)
                .filter(|(_, k)| **k)
                .map(|(a, _)| *a)
                .collect();
            let res = b.push(Op::Scan(Box::new(p.scan.clone())), &kept)?;
            let mut it = res.into_iter();
            return Ok(p
                .keep_results
                .iter()
                .map(|k| if *k { it.next().unwrap_or(dead) } else { dead })
                .collect());
        }
        let op = if op.bodies().is_empty() {
            op.clone()
        } else {
            map_bodies(op, &mut |g| dce(g))?
        };
        Ok(b.push(op, args)?.to_vec())
    })
}

/// Drops the unused `ys` of a scan, cleans its body, then drops the `xs` and loop-invariant
/// operands the cleaned body never reads.
fn prune_scan(sc: &Scan, results: &[ValueId], live: &[bool]) -> Result<PrunedScan, IrError> {
    let nc = sc.num_carry;
    let keep_results: Vec<bool> = (0..results.len())
        .map(|i| i < nc || live[results[i].index()])
        .collect();
    let mut body = sc.body.clone();
    body.outputs = body
        .outputs
        .iter()
        .zip(&keep_results)
        .filter(|(_, k)| **k)
        .map(|(o, _)| o.clone())
        .collect();
    let body = dce(&body)?;
    let mut read = vec![false; body.params.len()];
    for inst in &body.insts {
        for a in &inst.args {
            if a.index() < read.len() {
                read[a.index()] = true;
            }
        }
    }
    for o in &body.outputs {
        if o.value.index() < read.len() {
            read[o.value.index()] = true;
        }
    }
    let keep_args: Vec<bool> = (0..body.params.len()).map(|i| i < nc || read[i]).collect();
    let body = if keep_args.iter().all(|k| *k) {
        body
    } else {
        let mut b = FunctionBuilder::new(body.name.clone());
        let args: Vec<Option<ValueId>> = body
            .params
            .iter()
            .zip(&keep_args)
            .map(|(p, k)| k.then(|| b.param(p.name.clone(), p.ty.clone())))
            .collect();
        let outs = inline(&mut b, &body, &args)?;
        let names: Vec<String> = body.outputs.iter().map(|o| o.name.clone()).collect();
        b.finish(names.into_iter().zip(outs))
    };
    let num_xs = (nc..nc + sc.num_xs).filter(|&i| keep_args[i]).count();
    Ok(PrunedScan {
        scan: Scan {
            num_xs,
            body,
            ..sc.clone()
        },
        keep_results,
        keep_args,
    })
}
