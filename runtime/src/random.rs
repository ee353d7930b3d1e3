//! Seeded random inputs for a function: test and benchmark data for any IR function.
//!
//! One `StdRng::seed_from_u64(seed)` stream fills the inputs in order, element by element in
//! row-major order, so the same function and seed always give the same tensors. Per dtype:
//!
//! - floats: uniform in `[-1, 1)`; for an input whose name starts with `pos_` (a quantity that
//!   must stay positive: a time constant, a variance, the argument of `log`/`sqrt`) uniform in
//!   `[0.1, 2)` instead. Values are drawn in `f64`; `f32` inputs are the `f32` rounding of them
//!   (so they stay within the closed range).
//! - `i32`: uniform in `{0, 1, 2, 3}` (valid small indices / labels).
//! - `bool`: `true` or `false` with probability 1/2 each.
//!
//! [`train_step_inputs`] adapts them to a traced train step (optimiser state, hyper-parameters).

use crate::Tensor;
use brainlift_ir::{DType, Function};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Random inputs matching `f`'s input types, reproducible from `seed` (see the module doc).
pub fn random_inputs(f: &Function, seed: u64) -> Vec<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    f.params
        .iter()
        .map(|p| {
            let n = p.ty.numel();
            let positive = p.name.starts_with("pos_");
            let values: Vec<f64> = (0..n)
                .map(|_| match p.ty.dtype {
                    DType::F32 | DType::F64 => {
                        if positive {
                            rng.random_range(0.1..2.0)
                        } else {
                            rng.random_range(-1.0..1.0)
                        }
                    }
                    DType::I32 => rng.random_range(0..4i32) as f64,
                    DType::Bool => {
                        if rng.random_bool(0.5) {
                            1.0
                        } else {
                            0.0
                        }
                    }
                })
                .collect();
            Tensor::from_f64_values(p.ty.clone(), &values)
                .expect("random_inputs: one value per element by construction")
        })
        .collect()
}

/// [`random_inputs`] for a traced train step: the optimiser's state (inputs named `opt.*`)
/// and the hyper-parameters (`hyper.*`) become `|x| / 100`, so moments are non-negative (Adam
/// takes the square root of its second moment) and learning rates small, as in training.
pub fn train_step_inputs(f: &Function, seed: u64) -> Vec<Tensor> {
    let mut inputs = random_inputs(f, seed);
    for (p, t) in f.params.iter().zip(inputs.iter_mut()) {
        if p.name.starts_with("opt.") || p.name.starts_with("hyper.") {
            let v: Vec<f64> = t.to_f64_vec().iter().map(|x| x.abs() * 1e-2).collect();
            *t = Tensor::from_f64_values(t.ty().clone(), &v)
                .expect("train_step_inputs: same type, one value per element");
        }
    }
    inputs
}
