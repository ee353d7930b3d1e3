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
