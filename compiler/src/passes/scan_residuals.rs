//! Scan residual forwarding: a later scan that recomputes values of an earlier scan's body
//! (the reverse scan of reverse-mode AD replays the forward body from the saved carries)
//! reads them as stacked `ys` of the earlier scan instead.
//!
//! Pattern: scans `F` then `B` (same `length`, `B` after `F`) where `B`'s body params map to
//! `F`'s body params step by step: a `B` xs operand that is a stacked `ys` of `F` whose body
//! output is an `F` carry or xs param (the saved carry / input at step `t`), a `B` xs operand
//! that is also an `F` xs operand, a `B` const operand that is also an `F` const operand. `B`
//! body values computed by the same op from mapped operands (value numbering across the two
//! bodies) equal `F` body values at the same step. Each such value that is not a param or an
//! argument-free op, and that an unmapped instruction or an output of `B`'s body reads, is
//! imported: `F` stacks it as an extra `ys`, `B` reads it as an extra `xs`, and the
//! recomputation in `B` is removed (dead-code elimination).
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs, computing the same values bit for bit (the imported values are the ones the
//! body computed, with identical ops on identical operands). Only top-level scans are paired,
//! each `F` with at most one `B`. Cost: linear in instructions; memory: one stacked
//! `[length, ..]` buffer per imported value.

use crate::passes::dce::dce;
use crate::rewrite::{rebuild, unique_name};
use brainlift_ir::{Function, FunctionBuilder, IrError, Op, Output, Scan, ValueId};
use std::collections::HashMap;

/// One forward/backward pair and the values to import.
struct Pair {
    /// Instruction index of the backward scan.
    b: usize,
    /// `F` body values to stack, in order.
    exports: Vec<ValueId>,
    /// `B` body value -> import index.
    imports: HashMap<ValueId, usize>,
}

/// Forwards recomputed values from earlier scans into later scans of `f`.
pub fn scan_residuals(f: &Function) -> Result<Function, IrError> {
    let scans: Vec<usize> = (0..f.insts.len())
        .filter(|&k| matches!(f.insts[k].op, Op::Scan(_)))
        .collect();
    if scans.len() < 2 {
        return Ok(f.clone());
    }
    // Instruction index -> pair (keyed by F).
    let mut pairs: HashMap<usize, Pair> = HashMap::new();
    let mut taken_b: Vec<usize> = Vec::new();
    for (n, &kf) in scans.iter().enumerate() {
        for &kb in &scans[n + 1..] {
            if taken_b.contains(&kb) || pairs.contains_key(&kb) {
                continue;
            }
            if let Some(p) = analyse(f, kf, kb)
                && !p.exports.is_empty()
            {
                taken_b.push(kb);
                pairs.insert(kf, p);
                break;
            }
        }
    }
    if pairs.is_empty() {
        return Ok(f.clone());
    }
    // F instruction -> new result values of its exports, filled during the rebuild.
    let mut exported: HashMap<usize, Vec<ValueId>> = HashMap::new();
    let b_of: HashMap<usize, usize> = pairs.iter().map(|(&kf, p)| (p.b, kf)).collect();
    rebuild(f, |b, op, args, k| {
        let Op::Scan(s) = op else {
            return Ok(b.push(op.clone(), args)?.to_vec());
        };
        if let Some(p) = pairs.get(&k) {
            let mut body = s.body.clone();
            let mut names: Vec<String> = body.outputs.iter().map(|o| o.name.clone()).collect();
            for &v in &p.exports {
                body.outputs.push(Output {
                    name: unique_name("fwd_res", &mut names),
                    value: v,
                });
            }
            let n_orig = s.body.outputs.len();
            let res = b.push(
                Op::Scan(Box::new(Scan {
                    body,
                    ..(**s).clone()
                })),
                args,
            )?;
            exported.insert(k, res[n_orig..].to_vec());
            return Ok(res[..n_orig].to_vec());
        }
        if let Some(&kf) = b_of.get(&k) {
            let p = &pairs[&kf];
            let extra = exported.get(&kf).cloned().unwrap_or_default();
            return rewrite_backward(b, s, args, p, &extra);
        }
        Ok(b.push(op.clone(), args)?.to_vec())
    })
}

/// Value-numbers `B`'s body against `F`'s body; `None` when no param maps.
fn analyse(f: &Function, kf: usize, kb: usize) -> Option<Pair> {
    let (Op::Scan(sf), Op::Scan(sb)) = (&f.insts[kf].op, &f.insts[kb].op) else {
        return None;
    };
    if sf.length != sb.length {
        return None;
    }
    let (fi, bi) = (&f.insts[kf], &f.insts[kb]);
    let (fb, bb) = (&sf.body, &sb.body);
    let (fnc, fnx) = (sf.num_carry, sf.num_xs);
    let (bnc, bnx) = (sb.num_carry, sb.num_xs);
    let mut map: Vec<Option<ValueId>> = vec![None; bb.types.len()];
    for (j, m) in map.iter_mut().enumerate().take(bb.params.len()).skip(bnc) {
        let o = bi.args[j];
        if j < bnc + bnx {
            // A stacked ys of F that is a carry/xs param of F's body.
            if let Some(r) = fi.results.iter().position(|&r| r == o)
                && r >= fnc
            {
                let v = fb.outputs[r].value;
                if v.index() < fnc + fnx {
                    *m = Some(v);
                }
            } else if let Some(a) = fi.args[fnc..fnc + fnx].iter().position(|&a| a == o) {
                *m = Some(ValueId((fnc + a) as u32));
            }
        } else if let Some(a) = fi.args[fnc + fnx..].iter().position(|&a| a == o) {
            *m = Some(ValueId((fnc + fnx + a) as u32));
        }
    }
    if map.iter().all(Option::is_none) {
        return None;
    }
    // F's body: (op, args) -> value, for single-result instructions.
    let mut table: HashMap<(String, Vec<ValueId>), ValueId> = HashMap::new();
    for inst in &fb.insts {
        if inst.results.len() == 1 && !matches!(inst.op, Op::Scan(_) | Op::CustomVjp(_)) {
            table
                .entry((format!("{:?}", inst.op), inst.args.to_vec()))
                .or_insert(inst.results[0]);
        }
    }
    let mut argless = vec![false; bb.types.len()];
    for inst in &bb.insts {
        if inst.results.len() != 1 || matches!(inst.op, Op::Scan(_) | Op::CustomVjp(_)) {
            continue;
        }
        if inst.args.is_empty() {
            argless[inst.results[0].index()] = true;
        }
        let Some(args) = inst
            .args
            .iter()
            .map(|a| map[a.index()])
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        if let Some(&v) = table.get(&(format!("{:?}", inst.op), args))
            && fb.ty(v) == bb.ty(inst.results[0])
        {
            map[inst.results[0].index()] = Some(v);
        }
    }
    // Imports: mapped non-param, non-argless values read by an unmapped use.
    let nparams = bb.params.len();
    let importable =
        |v: ValueId| v.index() >= nparams && map[v.index()].is_some() && !argless[v.index()];
    let mut want: Vec<ValueId> = Vec::new();
    let need = |v: ValueId, want: &mut Vec<ValueId>| {
        if importable(v) && !want.contains(&v) {
            want.push(v);
        }
    };
    for inst in &bb.insts {
        let mapped = inst.results.iter().all(|r| map[r.index()].is_some());
        if !mapped {
            for &a in &inst.args {
                need(a, &mut want);
            }
        }
    }
    for o in &bb.outputs {
        need(o.value, &mut want);
    }
    want.sort();
    let mut exports = Vec::new();
    let mut imports = HashMap::new();
    for v in want {
        let fv = map[v.index()]?;
        let n = match exports.iter().position(|&e| e == fv) {
            Some(n) => n,
            None => {
                exports.push(fv);
                exports.len() - 1
            }
        };
        imports.insert(v, n);
    }
    Some(Pair {
        b: kb,
        exports,
        imports,
    })
}

/// Rebuilds the backward scan with the imports as extra xs (after the existing xs).
fn rewrite_backward(
    b: &mut FunctionBuilder,
    s: &Scan,
    args: &[ValueId],
    p: &Pair,
    extra: &[ValueId],
) -> Result<Vec<ValueId>, IrError> {
    let body = &s.body;
    let (nc, nx) = (s.num_carry, s.num_xs);
    let mut nb = FunctionBuilder::new(body.name.clone());
    let mut map: Vec<ValueId> = vec![ValueId(u32::MAX); body.types.len()];
    let mut names: Vec<String> = body.params.iter().map(|q| q.name.clone()).collect();
    for (i, q) in body.params.iter().enumerate().take(nc + nx) {
        map[i] = nb.param(q.name.clone(), q.ty.clone());
    }
    let import_params: Vec<ValueId> = p
        .exports
        .iter()
        .enumerate()
        .map(|(n, _)| {
            // Type of any B value importing n.
            let v = p
                .imports
                .iter()
                .find(|&(_, &m)| m == n)
                .map(|(&v, _)| v)
                .expect("every export has an import");
            nb.param(unique_name("fwd_res", &mut names), body.ty(v).clone())
        })
        .collect();
    for (i, q) in body.params.iter().enumerate().skip(nc + nx) {
        map[i] = nb.param(q.name.clone(), q.ty.clone());
    }
    for inst in &body.insts {
        if inst.results.len() == 1
            && let Some(&n) = p.imports.get(&inst.results[0])
        {
            map[inst.results[0].index()] = import_params[n];
            continue;
        }
        let a: Vec<ValueId> = inst.args.iter().map(|a| map[a.index()]).collect();
        if a.iter().any(|v| v.0 == u32::MAX) {
            return Err(IrError::Verify {
                func: body.name.clone(),
                msg: "scan_residuals: operand not mapped".into(),
            });
        }
        let res = nb.push(inst.op.clone(), &a)?;
        for (old, new) in inst.results.iter().zip(res) {
            map[old.index()] = new;
        }
    }
    let new_body = dce(&nb.finish(
        body.outputs
            .iter()
            .map(|o| (o.name.clone(), map[o.value.index()])),
    ))?;
    let mut operands: Vec<ValueId> = args[..nc + nx].to_vec();
    operands.extend_from_slice(extra);
    operands.extend_from_slice(&args[nc + nx..]);
    let res = b.push(
        Op::Scan(Box::new(Scan {
            length: s.length,
            num_carry: nc,
            num_xs: nx + extra.len(),
            reverse: s.reverse,
            body: new_body,
        })),
        &operands,
    )?;
    Ok(res.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::{parse_function, verify};

    const PAIR: &str =
        "func @f(%h0: f64[2,3], %xs: f64[4,2,3], %w: f64[3,3]) -> (h: f64[2,3], g: f64[2,3]) {
  %0: f64[2,3], %1: f64[4,2,3] = scan[length=4, num_carry=1, num_xs=1] %h0, %xs, %w {
    func @fwd(%h: f64[2,3], %x: f64[2,3], %w: f64[3,3]) -> (h: f64[2,3], res: f64[2,3]) {
      %0: f64[2,3] = matmul %h, %w
      %1: f64[2,3] = add %0, %x
      %2: f64[2,3] = tanh %1
      return %2, %h
    }
  }
  %2: f64[2,3] = scan[length=4, num_carry=1, num_xs=2, reverse=true] %h0, %1, %xs, %w {
    func @bwd(%g: f64[2,3], %r: f64[2,3], %x: f64[2,3], %w: f64[3,3]) -> (g: f64[2,3]) {
      %0: f64[2,3] = matmul %r, %w
      %1: f64[2,3] = add %0, %x
      %2: f64[2,3] = mul %g, %1
      return %2
    }
  }
  return %0, %2
}";

    #[test]
    fn backward_reads_forward_value_instead_of_recomputing() {
        let f = parse_function(PAIR).unwrap();
        verify(&f).unwrap();
        let g = scan_residuals(&f).unwrap();
        verify(&g).unwrap();
        let text = g.to_string();
        // The forward scan stacks `%1` (matmul + add); the backward body has no matmul left.
        assert!(text.contains("fwd_res: f64[2,3]"), "{text}");
        assert!(text.contains("num_xs=3, reverse=true"), "{text}");
        assert_eq!(text.matches("matmul").count(), 1, "{text}");
    }

    #[test]
    fn unrelated_scans_are_unchanged() {
        let src = PAIR.replace(
            "%2: f64[2,3] = scan[length=4, num_carry=1, num_xs=2, reverse=true] %h0, %1, %xs, %w",
            "%2: f64[2,3] = scan[length=4, num_carry=1, num_xs=2, reverse=true] %h0, %xs, %xs, %w",
        );
        let f = parse_function(&src).unwrap();
        // `%xs` as the first xs of B maps to F's x param, not its carry: the matmul of B
        // reads a different value than F's, nothing is imported.
        let g = scan_residuals(&f).unwrap();
        assert_eq!(g.to_string(), f.to_string());
    }
}
