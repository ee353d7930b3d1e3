//! 0/1 values stay `bool` until a product needs them: spike trains computed inside a scan
//! (`cast(v >= threshold)`) and stacked as residuals for the weight gradient are stacked as
//! `bool` (1 byte instead of 8) and cast after the loop, and a matmul whose lhs is such a cast
//! reads the `bool` directly (matmul accepts a `bool` lhs, read as 0/1).
//!
//! Rewrites, each exact (the same 0.0/1.0 values reach the same ops):
//! - a scan `ys` output that is `cast(x)` of a `bool` body value `x` to a float type becomes
//!   the stacked `x`, and `cast` of the stacked result replaces the old result outside;
//! - `reshape(cast(x))` with `x: bool` becomes `cast(reshape(x))`;
//! - `matmul(cast(x), w)` with `x: bool` and `w` of the cast's float type becomes
//!   `matmul(x, w)`.
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs. Nested bodies are rewritten recursively. DCE removes the casts nothing reads
//! any more. Cost: linear.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{DType, Function, FunctionBuilder, IrError, Op, Scan, ValueId};
use std::collections::HashMap;

/// Applies the rewrites above.
pub fn bool_casts(f: &Function) -> Result<Function, IrError> {
    // Values of the new function defined as `cast(x)` with `x: bool`: value -> x.
    let mut bool_cast: HashMap<ValueId, ValueId> = HashMap::new();
    rebuild(f, |b, op, args, _| {
        match op {
            Op::Scan(sc) => return scan(b, sc, args, &mut bool_cast),
            Op::Cast(dt) if dt.is_float() && b.ty(args[0]).dtype == DType::Bool => {
                let r = b.push1(op.clone(), args)?;
                bool_cast.insert(r, args[0]);
                return Ok(vec![r]);
            }
            Op::Reshape(shape) => {
                if let Some(&x) = bool_cast.get(&args[0]) {
                    let dt = b.ty(args[0]).dtype;
                    let rx = b.push1(Op::Reshape(shape.clone()), &[x])?;
                    let r = b.push1(Op::Cast(dt), &[rx])?;
                    bool_cast.insert(r, rx);
                    return Ok(vec![r]);
                }
            }
            Op::Matmul { .. } => {
                if let Some(&x) = bool_cast.get(&args[0])
                    && b.ty(args[0]).dtype == b.ty(args[1]).dtype
                {
                    return Ok(vec![b.push1(op.clone(), &[x, args[1]])?]);
                }
            }
            _ => {}
        }
        let op = if op.bodies().is_empty() {
            op.clone()
        } else {
            map_bodies(op, &mut bool_casts)?
        };
        Ok(b.push(op, args)?.to_vec())
    })
}

/// A scan with its bool-cast `ys` stacked as bool and cast after the loop.
fn scan(
    b: &mut FunctionBuilder,
    sc: &Scan,
    args: &[ValueId],
    bool_cast: &mut HashMap<ValueId, ValueId>,
) -> Result<Vec<ValueId>, IrError> {
    let body = bool_casts(&sc.body)?;
    let nc = sc.num_carry;
    // Body outputs (ys only) that are casts of bool body values: output index -> (x, dtype).
    let defs: HashMap<ValueId, (ValueId, DType)> = body
        .insts
        .iter()
        .filter_map(|inst| match inst.op {
            Op::Cast(dt) if dt.is_float() && body.ty(inst.args[0]).dtype == DType::Bool => {
                Some((inst.results[0], (inst.args[0], dt)))
            }
            _ => None,
        })
        .collect();
    let narrowed: Vec<Option<DType>> = body
        .outputs
        .iter()
        .enumerate()
        .map(|(j, o)| (j >= nc).then(|| defs.get(&o.value).map(|d| d.1)).flatten())
        .collect();
    if narrowed.iter().all(Option::is_none) {
        let new = Scan { body, ..sc.clone() };
        return Ok(b.push(Op::Scan(Box::new(new)), args)?.to_vec());
    }
    let mut body = body;
    for (o, n) in body.outputs.iter_mut().zip(&narrowed) {
        if n.is_some() {
            o.value = defs[&o.value].0;
        }
    }
    let new = Scan { body, ..sc.clone() };
    let res = b.push(Op::Scan(Box::new(new)), args)?.to_vec();
    res.into_iter()
        .zip(&narrowed)
        .map(|(r, n)| match n {
            Some(dt) => {
                let c = b.push1(Op::Cast(*dt), &[r])?;
                bool_cast.insert(c, r);
                Ok(c)
            }
            None => Ok(r),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::parse_function;

    #[test]
    fn stacked_spikes_stay_bool_into_the_weight_gradient() {
        let f = parse_function(
            "func @f(%v0: f64[4,3], %g: f64[5,4,2]) -> (v: f64[4,3], dw: f64[3,2]) {
  %0: f64[4,3], %1: f64[5,4,3] = scan[length=5, num_carry=1, num_xs=0] %v0 {
    func @body(%v: f64[4,3]) -> (v: f64[4,3], s: f64[4,3]) {
      %0: f64[4,3] = constant[value=1.0]
      %1: bool[4,3] = ge %v, %0
      %2: f64[4,3] = cast %1
      %3: f64[4,3] = sub %v, %2
      return %3, %2
    }
  }
  %2: f64[20,3] = reshape %1
  %3: f64[20,2] = reshape %g
  %4: f64[3,2] = matmul[transpose_lhs=true] %2, %3
  return %0, %4
}",
        )
        .unwrap();
        let g = crate::passes::dce::dce(&bool_casts(&f).unwrap()).unwrap();
        brainlift_ir::verify(&g).unwrap();
        let text = g.to_string();
        assert!(text.contains("bool[5,4,3] = scan"), "{text}");
        assert!(text.contains("bool[20,3] = reshape"), "{text}");
        assert!(!text.contains("f64[20,3]"), "{text}");
    }
}
