//! Outer products as elementwise code: a float `matmul` whose contraction has length 1
//! (`[m,1] x [1,n]`, e.g. a one-feature input times its weight row, or the readout's
//! cotangent times the readout weight in BPTT) becomes
//! `mul(broadcast(reshape a), broadcast(reshape b))`, which fusion merges into the
//! elementwise kernel around it instead of running a separate matrix product.
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs. Exact: the reference matmul computes `0 + a·b`, the rewrite `a·b`; they
//! differ only in the sign of a zero product (`-0.0` against `+0.0`). Batched products keep
//! their batch axes. Nested bodies are rewritten recursively. Cost: linear.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{BinaryOp, Function, IrError, Op, Shape};

/// Rewrites every float `matmul` with contraction length 1 (see the module doc).
pub fn outer_product(f: &Function) -> Result<Function, IrError> {
    rebuild(f, |b, op, args, _| {
        if !op.bodies().is_empty() {
            return Ok(b.push(map_bodies(op, &mut outer_product)?, args)?.to_vec());
        }
        let Op::Matmul { transpose_lhs, .. } = op else {
            return Ok(b.push(op.clone(), args)?.to_vec());
        };
        let (at, bt) = (b.ty(args[0]).clone(), b.ty(args[1]).clone());
        let r = at.rank();
        let k = if *transpose_lhs {
            at.dims()[r - 2]
        } else {
            at.dims()[r - 1]
        };
        if k != 1 || !at.dtype.is_float() || r < 2 {
            return Ok(b.push(op.clone(), args)?.to_vec());
        }
        // With k = 1 the lhs holds the m values of the column in order, the rhs the n
        // values of the row, whatever the transpose flags say.
        let batch = &at.dims()[..r - 2];
        let m = at.numel() / batch.iter().product::<usize>().max(1);
        let n = bt.numel() / batch.iter().product::<usize>().max(1);
        let vec_shape = |len: usize| {
            let mut d = batch.to_vec();
            d.push(len);
            Shape::new(&d)
        };
        let mut out = batch.to_vec();
        out.extend([m, n]);
        let out = Shape::new(&out);
        let batch_axes: Vec<usize> = (0..r - 2).collect();
        let lhs = b.reshape(args[0], vec_shape(m))?;
        let rhs = b.reshape(args[1], vec_shape(n))?;
        let mut dims_l = batch_axes.clone();
        dims_l.push(r - 2);
        let mut dims_r = batch_axes;
        dims_r.push(r - 1);
        let lhs = b.broadcast(lhs, out.clone(), dims_l)?;
        let rhs = b.broadcast(rhs, out, dims_r)?;
        Ok(vec![b.binary(BinaryOp::Mul, lhs, rhs)?])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::parse_function as parse;

    #[test]
    fn k1_matmul_becomes_broadcast_mul_and_others_stay() {
        let f = parse(
            "func @f(%x: f64[4,1], %w: f64[1,3], %v: f64[3,1], %a: f64[4,2], %b: f64[2,3]) -> (o: f64[4,3], p: f64[4,3], q: f64[4,3]) {
  %0: f64[4,3] = matmul %x, %w
  %1: f64[4,3] = matmul[transpose_rhs=true] %x, %v
  %2: f64[4,3] = matmul %a, %b
  return %0, %1, %2
}",
        )
        .unwrap();
        let g = outer_product(&f).unwrap();
        let text = g.to_string();
        assert_eq!(text.matches("matmul").count(), 1, "{text}");
        assert_eq!(text.matches("= mul ").count(), 2, "{text}");
        brainlift_ir::verify(&g).unwrap();
    }

    #[test]
    fn batched_and_transposed_lhs() {
        let f = parse(
            "func @f(%x: f64[2,1,4], %w: f64[2,1,3]) -> (o: f64[2,4,3]) {
  %0: f64[2,4,3] = matmul[transpose_lhs=true] %x, %w
  return %0
}",
        )
        .unwrap();
        let g = outer_product(&f).unwrap();
        assert!(!g.to_string().contains("matmul"), "{g}");
        brainlift_ir::verify(&g).unwrap();
    }
}
