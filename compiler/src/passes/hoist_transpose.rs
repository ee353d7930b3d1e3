//! Loop-invariant transposes leave scans: a scan body's `matmul[transpose_rhs=true] x, w`
//! with `w` a loop invariant (the backward pass of `h · W` uses `W^T` at every step) becomes
//! `matmul x, wt` where `wt = transpose(w)` is computed once before the scan and passed as an
//! extra invariant. The JIT's per-step products then read a row-contiguous right-hand side.
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs, computing the same values bit for bit (a product reads the same elements).
//! Nested scans are handled recursively. The old invariant stays an operand (DCE drops it
//! when nothing else reads it). Cost: linear.

use crate::rewrite::{map_bodies, rebuild, rebuild_with_params};
use brainlift_ir::{Function, IrError, Op, Scan, TensorType, ValueId};

/// Hoists the transposes of loop-invariant right-hand sides out of every scan.
pub fn hoist_transpose(f: &Function) -> Result<Function, IrError> {
    rebuild(f, |b, op, args, _| {
        let Op::Scan(sc) = op else {
            let op = if op.bodies().is_empty() {
                op.clone()
            } else {
                map_bodies(op, &mut hoist_transpose)?
            };
            return Ok(b.push(op, args)?.to_vec());
        };
        let body = hoist_transpose(&sc.body)?;
        let first_inv = sc.num_carry + sc.num_xs;
        // Invariant params read as a transposed rhs, in first-use order.
        let mut hoisted: Vec<usize> = vec![];
        for inst in &body.insts {
            if let Op::Matmul {
                transpose_rhs: true,
                ..
            } = inst.op
            {
                let p = inst.args[1].index();
                if (first_inv..body.params.len()).contains(&p)
                    && body.ty(inst.args[1]).rank() >= 2
                    && !hoisted.contains(&p)
                {
                    hoisted.push(p);
                }
            }
        }
        if hoisted.is_empty() {
            let new = Scan {
                body,
                ..(**sc).clone()
            };
            return Ok(b.push(Op::Scan(Box::new(new)), args)?.to_vec());
        }
        // Outside: one transpose per hoisted invariant.
        let mut new_args = args.to_vec();
        for &p in &hoisted {
            let r = body.ty(ValueId(p as u32)).rank();
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 2, r - 1);
            new_args.push(b.push1(Op::Transpose(perm), &[args[p]])?);
        }
        // Inside: the same body with the transposed invariants as extra params.
        let mut params: Vec<(String, TensorType)> = body
            .params
            .iter()
            .map(|p| (p.name.clone(), p.ty.clone()))
            .collect();
        for &p in &hoisted {
            let t = body.ty(ValueId(p as u32));
            let mut d = t.dims().to_vec();
            let r = d.len();
            d.swap(r - 2, r - 1);
            params.push((
                format!("{}_t", body.params[p].name),
                TensorType::new(t.dtype, d),
            ));
        }
        let np = body.params.len();
        let new_body = rebuild_with_params(
            &body,
            &params,
            |_, ps| Ok(ps[..np].to_vec()),
            |nb, inst, a| match &inst.op {
                Op::Matmul {
                    transpose_lhs,
                    transpose_rhs: true,
                } if hoisted.contains(&inst.args[1].index()) => {
                    let k = hoisted
                        .iter()
                        .position(|&p| p == inst.args[1].index())
                        .expect("hoisted above");
                    let op = Op::Matmul {
                        transpose_lhs: *transpose_lhs,
                        transpose_rhs: false,
                    };
                    // The extra params follow the old ones.
                    Ok(Some(
                        nb.push(op, &[a[0], ValueId((np + k) as u32)])?.to_vec(),
                    ))
                }
                _ => Ok(None),
            },
        )?;
        let new = Scan {
            body: new_body,
            ..(**sc).clone()
        };
        Ok(b.push(Op::Scan(Box::new(new)), &new_args)?.to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::parse_function;

    #[test]
    fn transposed_invariant_rhs_is_transposed_once_outside() {
        let f = parse_function(
            "func @f(%h0: f64[4,3], %w: f64[3,3]) -> (h: f64[4,3]) {
  %0: f64[4,3] = scan[length=5, num_carry=1, num_xs=0] %h0, %w {
    func @body(%h: f64[4,3], %w: f64[3,3]) -> (h: f64[4,3]) {
      %0: f64[4,3] = matmul[transpose_rhs=true] %h, %w
      %1: f64[4,3] = tanh %0
      return %1
    }
  }
  return %0
}",
        )
        .unwrap();
        let g = hoist_transpose(&f).unwrap();
        brainlift_ir::verify(&g).unwrap();
        let text = g.to_string();
        assert!(text.contains("transpose[perm=[1,0]] %w"), "{text}");
        assert!(!text.contains("transpose_rhs"), "{text}");
        assert!(text.contains("%w_t: f64[3,3]"), "{text}");
    }
}
