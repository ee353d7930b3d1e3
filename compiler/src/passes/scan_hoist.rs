//! Scan accumulator hoisting: per-step sums carried through a `scan` become one reduction
//! (or one matmul over the merged time-and-batch axis) after the loop.
//!
//! Pattern: a carry `acc` whose only use in the body is `acc_out = add(acc, v)` (either operand
//! order), where `acc_out` is the carry's output and has no other use, `v` has `acc`'s type
//! and depends on some carry or `xs` (varies per step). The reverse scan that reverse-mode AD
//! emits has one such carry per differentiated loop-invariant operand (`acc += h^T dz`).
//!
//! Rewrite: the carry is removed; `v` (or its matmul operands) is stacked as extra `ys`, and
//! after the loop:
//! - `v = matmul[transpose_lhs](A, B)` with rank-2 operands that both vary per step:
//!   `acc_final = acc_init + matmul[transpose_lhs](reshape(As, [T*n, m]), reshape(Bs, [T*n, k]))`
//!   (one GEMM with a long contracted axis instead of `T` small ones and `T` adds); an
//!   operand that is a body `xs` input is read from the scan's operand, not stacked again;
//! - otherwise `acc_final = acc_init + reduce_sum(vs, axes=[0])`.
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs, equal to the input up to floating-point summation order (the sum over steps is
//! reassociated). Only top-level scans are rewritten (nested bodies are left as they are).
//! Cost: linear in the instructions; the result stores `T` copies of each stacked value (the
//! memory of the stacked `ys`).

use crate::passes::dce::dce;
use crate::rewrite::{inline, rebuild, unique_name};
use brainlift_ir::{
    BinaryOp, Function, FunctionBuilder, IrError, Op, Output, ReduceOp, Scan, Shape, ValueId,
};

/// How one accumulator carry is computed after the loop.
enum Hoist {
    /// `init + reduce_sum(stacked v)`: `v` is an outer xs operand (`Err`) or a new ys (`Ok`).
    Sum(Result<usize, usize>),
    /// `init + As^T Bs` over the merged axis: each operand is an outer xs operand (`Err`) or
    /// a new ys (`Ok`).
    MatmulTn(Result<usize, usize>, Result<usize, usize>),
}

/// Hoists per-step accumulations out of every top-level `scan` of `f`.
pub fn scan_hoist(f: &Function) -> Result<Function, IrError> {
    if !f.insts.iter().any(|i| matches!(i.op, Op::Scan(_))) {
        return Ok(f.clone());
    }
    rebuild(f, |b, op, args, _| match op {
        Op::Scan(s) => hoist_scan(b, s, args),
        _ => Ok(b.push(op.clone(), args)?.to_vec()),
    })
}

/// Uses of every value of `body` as an instruction operand.
fn use_counts(body: &Function) -> Vec<usize> {
    let mut n = vec![0; body.types.len()];
    for inst in &body.insts {
        for a in &inst.args {
            n[a.index()] += 1;
        }
    }
    n
}

/// Producer instruction index of every value (None for params).
fn producers(body: &Function) -> Vec<Option<usize>> {
    let mut p = vec![None; body.types.len()];
    for (k, inst) in body.insts.iter().enumerate() {
        for r in &inst.results {
            p[r.index()] = Some(k);
        }
    }
    p
}

fn hoist_scan(
    b: &mut FunctionBuilder,
    s: &Scan,
    args: &[ValueId],
) -> Result<Vec<ValueId>, IrError> {
    let body = &s.body;
    let (nc, nx) = (s.num_carry, s.num_xs);
    let uses = use_counts(body);
    let prod = producers(body);
    // Values that vary per step: reachable from a carry or an xs param.
    let mut varying = vec![false; body.types.len()];
    varying[..nc + nx].iter_mut().for_each(|v| *v = true);
    for inst in &body.insts {
        if inst.args.iter().any(|a| varying[a.index()]) {
            inst.results.iter().for_each(|r| varying[r.index()] = true);
        }
    }
    let out_uses = |v: ValueId| body.outputs.iter().filter(|o| o.value == v).count();

    let mut new_ys: Vec<ValueId> = Vec::new();
    let ys_slot = |v: ValueId, new_ys: &mut Vec<ValueId>| -> Result<usize, usize> {
        if v.index() >= nc && v.index() < nc + nx {
            return Err(v.index() - nc);
        }
        Ok(match new_ys.iter().position(|&y| y == v) {
            Some(p) => p,
            None => {
                new_ys.push(v);
                new_ys.len() - 1
            }
        })
    };
    let mut hoisted: Vec<Option<Hoist>> = (0..nc).map(|_| None).collect();
    for (i, slot) in hoisted.iter_mut().enumerate() {
        let p = ValueId(i as u32);
        let out = body.outputs[i].value;
        if uses[p.index()] != 1 || out_uses(p) != 0 || uses[out.index()] != 0 || out_uses(out) != 1
        {
            continue;
        }
        let Some(k) = prod[out.index()] else { continue };
        let inst = &body.insts[k];
        if inst.op != Op::Binary(BinaryOp::Add) {
            continue;
        }
        let v = if inst.args[0] == p {
            inst.args[1]
        } else if inst.args[1] == p {
            inst.args[0]
        } else {
            continue;
        };
        if v == p || body.ty(v) != body.ty(p) || !varying[v.index()] {
            continue;
        }
        let mm = prod[v.index()].and_then(|kv| {
            let iv = &body.insts[kv];
            match iv.op {
                Op::Matmul {
                    transpose_lhs: true,
                    transpose_rhs: false,
                } if body.ty(v).rank() == 2
                    && varying[iv.args[0].index()]
                    && varying[iv.args[1].index()] =>
                {
                    Some((iv.args[0], iv.args[1]))
                }
                _ => None,
            }
        });
        *slot = Some(match mm {
            Some((a, bb)) => Hoist::MatmulTn(ys_slot(a, &mut new_ys), ys_slot(bb, &mut new_ys)),
            None => Hoist::Sum(ys_slot(v, &mut new_ys)),
        });
    }
    if hoisted.iter().all(Option::is_none) {
        return Ok(b.push(Op::Scan(Box::new(s.clone())), args)?.to_vec());
    }

    // The new body: kept carries, the old ys, then the stacked values.
    let keep: Vec<usize> = (0..nc).filter(|&i| hoisted[i].is_none()).collect();
    let mut mid = body.clone();
    let mut names: Vec<String> = body.outputs.iter().map(|o| o.name.clone()).collect();
    let mut outputs: Vec<Output> = keep.iter().map(|&i| body.outputs[i].clone()).collect();
    outputs.extend(body.outputs[nc..].iter().cloned());
    for (n, &v) in new_ys.iter().enumerate() {
        outputs.push(Output {
            name: unique_name(&format!("hoist{n}"), &mut names),
            value: v,
        });
    }
    mid.outputs = outputs;
    let mid = dce(&mid)?;
    let mut nb = FunctionBuilder::new(body.name.clone());
    let mut bind: Vec<Option<ValueId>> = vec![None; body.params.len()];
    for (i, p) in body.params.iter().enumerate() {
        if i >= nc || hoisted[i].is_none() {
            bind[i] = Some(nb.param(p.name.clone(), p.ty.clone()));
        }
    }
    let outs = inline(&mut nb, &mid, &bind)?;
    let new_body = nb.finish(
        mid.outputs
            .iter()
            .zip(outs)
            .map(|(o, v)| (o.name.clone(), v)),
    );
    let mut operands: Vec<ValueId> = keep.iter().map(|&i| args[i]).collect();
    operands.extend_from_slice(&args[nc..]);
    let scan = Scan {
        length: s.length,
        num_carry: keep.len(),
        num_xs: nx,
        reverse: s.reverse,
        body: new_body,
    };
    let res = b.push(Op::Scan(Box::new(scan)), &operands)?;
    let nk = keep.len();
    let ny = body.outputs.len() - nc;
    let stacked = |slot: Result<usize, usize>| match slot {
        Ok(n) => res[nk + ny + n],
        Err(j) => args[nc + j],
    };

    let mut out = Vec::with_capacity(body.outputs.len());
    let mut kept = 0;
    for (i, h) in hoisted.iter().enumerate() {
        let v = match h {
            None => {
                kept += 1;
                res[kept - 1]
            }
            Some(Hoist::Sum(n)) => {
                let total = b.reduce(ReduceOp::Sum, stacked(*n), vec![0])?;
                b.add(args[i], total)?
            }
            Some(Hoist::MatmulTn(sa, sb)) => {
                let (a, bb) = (stacked(*sa), stacked(*sb));
                let merge = |b: &mut FunctionBuilder, x: ValueId| -> Result<ValueId, IrError> {
                    let d = b.ty(x).dims().to_vec();
                    b.reshape(x, Shape::new(&[d[0] * d[1], d[2]]))
                };
                let (a2, b2) = (merge(b, a)?, merge(b, bb)?);
                let prod = b.matmul(a2, b2, true, false)?;
                b.add(args[i], prod)?
            }
        };
        out.push(v);
    }
    out.extend_from_slice(&res[nk..nk + ny]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::{parse_function, verify};

    const ACC: &str = "func @f(%a: f64[2,3], %xs: f64[4,5,2], %ys: f64[4,5,3]) -> (acc: f64[2,3], s: f64[3], out: f64[4,3]) {
  %0: f64[3] = constant[value=0.0]
  %1: f64[2,3], %2: f64[3], %3: f64[4,3] = scan[length=4, num_carry=2, num_xs=2, reverse=true] %a, %0, %xs, %ys {
    func @body(%acc: f64[2,3], %s: f64[3], %x: f64[5,2], %y: f64[5,3]) -> (acc: f64[2,3], s: f64[3], r: f64[3]) {
      %0: f64[2,3] = matmul[transpose_lhs=true] %x, %y
      %1: f64[2,3] = add %acc, %0
      %2: f64[3] = reduce_sum[axes=[0]] %y
      %3: f64[3] = add %2, %s
      return %1, %3, %2
    }
  }
  return %1, %2, %3
}";

    #[test]
    fn hoists_matmul_and_sum_accumulators() {
        let f = parse_function(ACC).unwrap();
        verify(&f).unwrap();
        let g = scan_hoist(&f).unwrap();
        verify(&g).unwrap();
        let text = g.to_string();
        // Both carries are gone; the matmul runs once over the merged [20, .] axis.
        assert!(text.contains("num_carry=0"), "{text}");
        assert!(text.contains("f64[20,2] = reshape"), "{text}");
        assert!(
            text.contains("f64[2,3] = matmul[transpose_lhs=true]"),
            "{text}"
        );
        assert!(text.contains("reduce_sum[axes=[0]]"), "{text}");
    }

    #[test]
    fn hoists_a_bool_lhs_accumulator_reading_the_stacked_xs() {
        // `acc += x_t^T g_t` with bool spikes x_t (a bool-lhs product): the hoisted product
        // reads the scan's own bool xs (reshaped), nothing is cast or stacked for it.
        let src = "func @f(%a: f64[2,3], %xs: bool[4,5,2], %gs: f64[4,5,3]) -> (acc: f64[2,3]) {
  %0: f64[2,3] = scan[length=4, num_carry=1, num_xs=2, reverse=true] %a, %xs, %gs {
    func @body(%acc: f64[2,3], %x: bool[5,2], %g: f64[5,3]) -> (acc: f64[2,3]) {
      %0: f64[2,3] = matmul[transpose_lhs=true] %x, %g
      %1: f64[2,3] = add %acc, %0
      return %1
    }
  }
  return %0
}";
        let f = parse_function(src).unwrap();
        let g = scan_hoist(&f).unwrap();
        verify(&g).unwrap();
        let text = g.to_string();
        assert!(text.contains("bool[20,2] = reshape %xs"), "{text}");
        assert!(text.contains("f64[20,3] = reshape %gs"), "{text}");
        assert!(
            text.contains("f64[2,3] = matmul[transpose_lhs=true]"),
            "{text}"
        );
        assert!(
            !text.contains("cast") && !text.contains("f64[20,2]"),
            "{text}"
        );
    }

    #[test]
    fn leaves_carries_read_elsewhere() {
        // The carry feeds the step's ys too: not an accumulator.
        let src = "func @f(%a: f64[3], %xs: f64[4,3]) -> (acc: f64[3], out: f64[4,3]) {
  %0: f64[3], %1: f64[4,3] = scan[length=4, num_carry=1, num_xs=1] %a, %xs {
    func @body(%acc: f64[3], %x: f64[3]) -> (acc: f64[3], r: f64[3]) {
      %0: f64[3] = add %acc, %x
      %1: f64[3] = mul %acc, %x
      return %0, %1
    }
  }
  return %0, %1
}";
        let f = parse_function(src).unwrap();
        assert_eq!(scan_hoist(&f).unwrap().to_string(), f.to_string());
    }
}
