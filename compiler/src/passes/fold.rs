//! Constant folding of elementwise ops.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same signature where every unary, binary, compare, select or cast instruction whose
//! operands are all constants (splats, or dense constants of at most [`MAX_DENSE`] elements)
//! is replaced by a constant computed with the op table's `eval` functions. A splat result
//! stays a splat. Only folds that reproduce the runtime bit for bit are done:
//! - `f64`: every op;
//! - `f32`: only correctly rounded ops (neg, abs, sign, sqrt, add, sub, mul, div, max, min),
//!   comparisons, select and casts (transcendentals are left to the runtime);
//! - `i32`: neg, abs, sign, add, sub, mul, max, min (when the result fits in `i32`),
//!   comparisons, select and casts (`div` is left alone).
//!
//! Nested bodies are folded recursively. Cost: linear in instructions plus folded elements.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{
    BinaryOp, Constant, DType, Function, IrError, Op, TensorType, UnaryOp, ValueId,
};
use std::collections::HashMap;

/// Dense constants up to this many elements are folded.
pub const MAX_DENSE: usize = 4096;

/// Folds elementwise ops on constant operands, recursively in nested bodies.
pub fn fold(f: &Function) -> Result<Function, IrError> {
    let mut consts: HashMap<ValueId, Constant> = HashMap::new();
    rebuild(f, |b, op, args, _| {
        if !op.bodies().is_empty() {
            return Ok(b.push(map_bodies(op, &mut |g| fold(g))?, args)?.to_vec());
        }
        let cs: Option<Vec<&Constant>> = args.iter().map(|a| consts.get(a)).collect();
        if let (Some(cs), false) = (cs, args.is_empty()) {
            let tys: Vec<TensorType> = cs.iter().map(|c| c.ty.clone()).collect();
            if let Some(c) = fold_op(op, &cs, &tys) {
                let v = b.push1(Op::Constant(c.clone()), &[])?;
                consts.insert(v, c);
                return Ok(vec![v]);
            }
        }
        let res = b.push(op.clone(), args)?.to_vec();
        if let Op::Constant(c) = op {
            consts.insert(res[0], c.clone());
        }
        Ok(res)
    })
}

fn fold_op(op: &Op, cs: &[&Constant], tys: &[TensorType]) -> Option<Constant> {
    let in_dt = tys[0].dtype;
    let ok = match op {
        Op::Unary(u) => match in_dt {
            DType::F64 => true,
            DType::F32 => matches!(
                u,
                UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Sqrt
            ),
            DType::I32 => u.allows_int(),
            DType::Bool => false,
        },
        Op::Binary(o) => match in_dt {
            DType::F64 => true,
            DType::F32 => *o != BinaryOp::Pow,
            DType::I32 => !matches!(o, BinaryOp::Div | BinaryOp::Pow),
            DType::Bool => false,
        },
        Op::Compare(_) | Op::Select | Op::Cast(_) => true,
        _ => false,
    };
    if !ok {
        return None;
    }
    let out_ty = op.infer(tys).ok()?.pop()?;
    let all_splat = cs.iter().all(|c| c.data.len() == 1);
    let n = if all_splat { 1 } else { out_ty.numel() };
    if n > MAX_DENSE {
        return None;
    }
    let mut vals = Vec::with_capacity(n);
    for i in 0..n {
        let v = match op {
            Op::Unary(u) => u.eval(cs[0].get(i)),
            Op::Binary(o) => o.eval(cs[0].get(i), cs[1].get(i)),
            Op::Compare(c) => c.eval(cs[0].get(i), cs[1].get(i)) as u8 as f64,
            Op::Select => {
                if cs[0].get(i) != 0.0 {
                    cs[1].get(i)
                } else {
                    cs[2].get(i)
                }
            }
            Op::Cast(_) => cs[0].get(i),
            _ => return None,
        };
        if out_ty.dtype == DType::I32
            && !matches!(op, Op::Cast(_))
            && (v.is_nan() || v.abs() > i32::MAX as f64)
        {
            return None;
        }
        vals.push(v);
    }
    Some(if all_splat {
        Constant::splat(out_ty, vals[0])
    } else {
        Constant::from_values(out_ty, vals)
    })
}
