//! Algebraic simplification: the identities AD leaves behind.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same signature. Rewrites (each exact in IEEE arithmetic unless noted):
//! - `x + 0`, `0 + x`, `x - 0` -> `x` (`0` a splat constant of either sign; the only
//!   difference is `-0.0 + +0.0 = +0.0`, a sign-of-zero change we accept);
//!   `0 - x` -> `neg x`;
//! - `x * 1`, `1 * x`, `x / 1` -> `x`;
//! - `x * 0` is **not** rewritten (wrong for NaN and infinities);
//! - `neg (neg x)` -> `x`; `select p, x, x` -> `x`; `cast` to the same dtype -> `x`;
//! - `reduce_sum[axes] (broadcast[dims] x)` where `axes` are exactly the axes the broadcast
//!   added (no size-1 stretching) -> `x * count` (`count` = product of those sizes; `x` if 1);
//! - `reshape (reshape x)` -> one `reshape`; reshape to the same shape -> `x`;
//! - `transpose (transpose x)` -> one composed `transpose`, or `x` if the identity;
//! - `broadcast` or `reshape` of a splat constant -> a splat constant of the result type;
//!   an identity `broadcast` -> `x`;
//! - optionally (`remove_stop_gradient`, only valid after AD) `stop_gradient x` -> `x`.
//!
//! Nested bodies are simplified recursively. Unused instructions are left for DCE.
//! Cost: linear.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{
    BinaryOp, Constant, Function, IrError, Op, ReduceOp, TensorType, UnaryOp, ValueId,
};
use std::collections::HashMap;

/// Applies the identities above, recursively in nested bodies.
pub fn algebra(f: &Function, remove_stop_gradient: bool) -> Result<Function, IrError> {
    // Defining op and operands of every single-result, body-free value of the new function.
    let mut defs: HashMap<ValueId, (Op, Vec<ValueId>)> = HashMap::new();
    rebuild(f, |b, op, args, _| {
        if !op.bodies().is_empty() {
            return Ok(b
                .push(
                    map_bodies(op, &mut |g| algebra(g, remove_stop_gradient))?,
                    args,
                )?
                .to_vec());
        }
        let splat = |v: ValueId| match defs.get(&v) {
            Some((Op::Constant(c), _)) => c.splat_value(),
            _ => None,
        };
        let is = |v: ValueId, x: f64| splat(v) == Some(x);
        let def = |v: ValueId| defs.get(&v).cloned();
        let same = |r: Option<ValueId>| Ok(r.map(|v| vec![v]));
        // Type of the first operand (ops without operands never use it).
        let in_ty = match args.first() {
            Some(&a) => b.ty(a).clone(),
            None => TensorType::scalar(brainlift_ir::DType::F64),
        };
        let rewritten: Result<Option<Vec<ValueId>>, IrError> = match op {
            Op::Binary(BinaryOp::Add) if is(args[1], 0.0) => same(Some(args[0])),
            Op::Binary(BinaryOp::Add) if is(args[0], 0.0) => same(Some(args[1])),
            Op::Binary(BinaryOp::Sub) if is(args[1], 0.0) => same(Some(args[0])),
            Op::Binary(BinaryOp::Sub) if is(args[0], 0.0) => {
                same(Some(b.unary(UnaryOp::Neg, args[1])?))
            }
            Op::Binary(BinaryOp::Mul) if is(args[1], 1.0) => same(Some(args[0])),
            Op::Binary(BinaryOp::Mul) if is(args[0], 1.0) => same(Some(args[1])),
            Op::Binary(BinaryOp::Div) if is(args[1], 1.0) => same(Some(args[0])),
            Op::Unary(UnaryOp::Neg) => match def(args[0]) {
                Some((Op::Unary(UnaryOp::Neg), inner)) => same(Some(inner[0])),
                _ => same(None),
            },
            Op::Select if args[1] == args[2] => same(Some(args[1])),
            Op::Cast(d) if *d == in_ty.dtype => same(Some(args[0])),
            Op::StopGradient if remove_stop_gradient => same(Some(args[0])),
            Op::Reduce {
                op: ReduceOp::Sum,
                axes,
            } => match def(args[0]) {
                Some((Op::Broadcast { shape, dims }, inner)) => {
                    let x = inner[0];
                    let xd = b.ty(x).dims().to_vec();
                    let added: Vec<usize> =
                        (0..shape.rank()).filter(|a| !dims.contains(a)).collect();
                    let exact = dims
                        .iter()
                        .enumerate()
                        .all(|(i, &d)| xd[i] == shape.dims()[d]);
                    if exact && added == *axes && b.ty(x).dtype.is_float() {
                        let count: usize = axes.iter().map(|&a| shape.dims()[a]).product();
                        if count == 1 {
                            same(Some(x))
                        } else {
                            let t = b.ty(x).clone();
                            let c = b.splat(t, count as f64);
                            defs.insert(
                                c,
                                (
                                    Op::Constant(Constant::splat(b.ty(x).clone(), count as f64)),
                                    vec![],
                                ),
                            );
                            same(Some(b.mul(x, c)?))
                        }
                    } else {
                        same(None)
                    }
                }
                _ => same(None),
            },
            Op::Reshape(shape) => {
                if *shape == in_ty.shape {
                    same(Some(args[0]))
                } else if let Some(v) = splat(args[0]) {
                    same(Some(
                        b.splat(TensorType::new(in_ty.dtype, shape.clone()), v),
                    ))
                } else if let Some((Op::Reshape(_), inner)) = def(args[0]) {
                    let r = if b.ty(inner[0]).shape == *shape {
                        inner[0]
                    } else {
                        let r = b.reshape(inner[0], shape.clone())?;
                        defs.insert(r, (Op::Reshape(shape.clone()), vec![inner[0]]));
                        r
                    };
                    same(Some(r))
                } else {
                    same(None)
                }
            }
            Op::Broadcast { shape, dims } => {
                if let Some(v) = splat(args[0]) {
                    same(Some(
                        b.splat(TensorType::new(in_ty.dtype, shape.clone()), v),
                    ))
                } else if *shape == in_ty.shape && dims.iter().enumerate().all(|(i, &d)| i == d) {
                    same(Some(args[0]))
                } else {
                    same(None)
                }
            }
            Op::Transpose(p2) => {
                let id = |p: &[usize]| p.iter().enumerate().all(|(i, &a)| i == a);
                if id(p2) {
                    same(Some(args[0]))
                } else if let Some((Op::Transpose(p1), inner)) = def(args[0]) {
                    let p: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
                    if id(&p) {
                        same(Some(inner[0]))
                    } else {
                        let t = b.push1(Op::Transpose(p.clone()), &[inner[0]])?;
                        defs.insert(t, (Op::Transpose(p), vec![inner[0]]));
                        same(Some(t))
                    }
                } else {
                    same(None)
                }
            }
            _ => same(None),
        };
        if let Some(r) = rewritten? {
            return Ok(r);
        }
        let res = b.push(op.clone(), args)?.to_vec();
        if res.len() == 1 {
            defs.insert(res[0], (op.clone(), args.to_vec()));
        }
        Ok(res)
    })
}
