//! Broadcast loop invariants enter scans unbroadcast: a scan operand that is a loop invariant
//! defined as `broadcast x` (a bias spread over the batch before the time loop) is replaced by
//! `x`, and the body broadcasts it again. The fused kernel inside the body then reads `x`
//! through broadcast strides (a row of the bias) instead of the whole `[batch, n]` copy at every
//! step.
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs, computing the same values bit for bit. Applies to scans at every level. The
//! outer broadcast stays when something else reads it (DCE removes it otherwise). Cost: linear.

use crate::rewrite::{map_bodies, rebuild, rebuild_with_params};
use brainlift_ir::{Function, IrError, Op, Scan, ValueId};
use std::collections::HashMap;

/// Sinks broadcast loop invariants into every scan body (see the module doc).
pub fn sink_broadcast(f: &Function) -> Result<Function, IrError> {
    // Defining broadcast (op, operand) of values in the function being rebuilt.
    let mut bcast: HashMap<ValueId, (Op, ValueId)> = HashMap::new();
    rebuild(f, |b, op, args, _| {
        let Op::Scan(sc) = op else {
            let new = if op.bodies().is_empty() {
                op.clone()
            } else {
                map_bodies(op, &mut sink_broadcast)?
            };
            let res = b.push(new, args)?.to_vec();
            if let Op::Broadcast { .. } = op {
                bcast.insert(res[0], (op.clone(), args[0]));
            }
            return Ok(res);
        };
        let body = sink_broadcast(&sc.body)?;
        let first_inv = sc.num_carry + sc.num_xs;
        let sunk: Vec<Option<(Op, ValueId)>> = (0..args.len())
            .map(|i| {
                if i >= first_inv {
                    bcast.get(&args[i]).cloned()
                } else {
                    None
                }
            })
            .collect();
        if sunk.iter().all(Option::is_none) {
            let new = Scan {
                body,
                ..(**sc).clone()
            };
            return Ok(b.push(Op::Scan(Box::new(new)), args)?.to_vec());
        }
        let mut new_args = Vec::with_capacity(args.len());
        let mut params = Vec::with_capacity(body.params.len());
        for (i, p) in body.params.iter().enumerate() {
            match &sunk[i] {
                Some((_, x)) => {
                    params.push((p.name.clone(), b.ty(*x).clone()));
                    new_args.push(*x);
                }
                None => {
                    params.push((p.name.clone(), p.ty.clone()));
                    new_args.push(args[i]);
                }
            }
        }
        let new_body = rebuild_with_params(
            &body,
            &params,
            |nb, ps| {
                // A sunk param is broadcast again at the top of the body.
                ps.iter()
                    .zip(&sunk)
                    .map(|(&p, s)| match s {
                        Some((op, _)) => nb.push1(op.clone(), &[p]),
                        None => Ok(p),
                    })
                    .collect()
            },
            |_, _, _| Ok(None),
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
    fn a_broadcast_bias_enters_the_loop_as_a_row() {
        let f = parse_function(
            "func @f(%h0: f64[4,3], %b: f64[3]) -> (h: f64[4,3]) {
  %0: f64[4,3] = broadcast[dims=[1]] %b
  %1: f64[4,3] = scan[length=5, num_carry=1, num_xs=0] %h0, %0 {
    func @body(%h: f64[4,3], %bb: f64[4,3]) -> (h: f64[4,3]) {
      %0: f64[4,3] = add %h, %bb
      return %0
    }
  }
  return %1
}",
        )
        .unwrap();
        let g = crate::passes::dce::dce(&sink_broadcast(&f).unwrap()).unwrap();
        brainlift_ir::verify(&g).unwrap();
        let text = g.to_string();
        assert!(text.contains("%bb: f64[3]"), "{text}");
        assert_eq!(text.matches("broadcast").count(), 1, "{text}");
    }
}
