//! Helpers shared by the gradient tests.
#![allow(dead_code)]

use brainlift_ir::{Constant, DType, Function, FunctionBuilder, Op, ReduceOp, TensorType, ValueId};
use brainlift_runtime::Tensor;
use brainlift_runtime::gradcheck::check_grad;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// `n` seeded uniform values in `[lo, hi)`, each at least `gap` away from every kink in `kinks`.
pub fn vals(seed: u64, n: usize, lo: f64, hi: f64, kinks: &[f64], gap: f64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            loop {
                let x: f64 = rng.random_range(lo..hi);
                if kinks.iter().all(|k| (x - k).abs() >= gap) {
                    break x;
                }
            }
        })
        .collect()
}

/// An f64 tensor of `shape` with seeded values in `[lo, hi)`.
pub fn tensor(seed: u64, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f64(shape.to_vec(), vals(seed, n, lo, hi, &[], 0.0)).unwrap()
}

/// An f64 tensor with values in `[-1, 1)` at least 0.1 away from 0.
pub fn tensor_nz(seed: u64, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f64(shape.to_vec(), vals(seed, n, -1.0, 1.0, &[0.0], 0.1)).unwrap()
}

pub fn f64t(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F64, shape.to_vec())
}

/// `sum(v * w)` over all axes with a fixed dense weight `w` (so every cotangent entry differs).
pub fn weighted_sum(b: &mut FunctionBuilder, v: ValueId) -> ValueId {
    let ty = b.ty(v).clone();
    let w = vals(99, ty.numel(), 0.5, 1.5, &[], 0.0);
    let c = b
        .push1(Op::Constant(Constant::from_values(ty.clone(), w)), &[])
        .unwrap();
    let m = b.mul(v, c).unwrap();
    let axes: Vec<usize> = (0..ty.rank()).collect();
    if axes.is_empty() {
        m
    } else {
        b.reduce(ReduceOp::Sum, m, axes).unwrap()
    }
}

/// Finishes `b` with the single output `loss`.
pub fn finish(b: FunctionBuilder, loss: ValueId) -> Function {
    let f = b.finish([("loss".to_string(), loss)]);
    brainlift_ir::verify(&f).unwrap();
    f
}

/// Asserts that the reverse-mode gradient matches finite differences to `tol`.
pub fn assert_grad(f: &Function, wrt: &[usize], inputs: &[Tensor], tol: f64) {
    let r = check_grad(f, wrt, inputs).unwrap_or_else(|e| panic!("@{}: {e}", f.name));
    assert!(
        r.max_err <= tol,
        "@{}: gradient check failed: {:#?}",
        f.name,
        r
    );
}
