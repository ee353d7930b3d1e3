//! Parameter initialisers, BrainPy's definitions (spec §9), drawing from [`crate::random`].

use crate::random;
use crate::{Array, Error, Result};
use brainlift_ir::{DType, TensorType};

/// How the variance of [`Init::VarianceScaling`] is normalised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FanMode {
    /// By the input fan.
    FanIn,
    /// By the output fan.
    FanOut,
    /// By the mean of both fans.
    FanAvg,
}

/// The distribution of [`Init::VarianceScaling`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// N(0,1) truncated to (-2, 2), rescaled to unit variance (divided by 0.8796256610342398).
    TruncatedNormal,
    /// N(0,1).
    Normal,
    /// U(-1, 1) scaled by sqrt(3).
    Uniform,
}

/// A parameter initialiser.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// A constant.
    Constant(f64),
    /// N(mean, std).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// U[low, high).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Variance scaling: `var = scale / fan`, sampled from `distribution`.
    VarianceScaling {
        /// Scale of the variance.
        scale: f64,
        /// Which fan normalises.
        mode: FanMode,
        /// Sampling distribution.
        distribution: Distribution,
    },
}

impl Init {
    /// BrainPy's `KaimingNormal(scale)` (fan_in, truncated normal; default scale 2).
    #[allow(non_snake_case)]
    pub fn KaimingNormal(scale: f64) -> Init {
        Init::VarianceScaling {
            scale,
            mode: FanMode::FanIn,
            distribution: Distribution::TruncatedNormal,
        }
    }
    /// `KaimingUniform` (scale 2, fan_in, uniform).
    #[allow(non_snake_case)]
    pub fn KaimingUniform() -> Init {
        Init::VarianceScaling {
            scale: 2.0,
            mode: FanMode::FanIn,
            distribution: Distribution::Uniform,
        }
    }
    /// `XavierNormal` (scale 1, fan_avg, truncated normal): BrainPy's Dense default.
    #[allow(non_snake_case)]
    pub fn XavierNormal() -> Init {
        Init::VarianceScaling {
            scale: 1.0,
            mode: FanMode::FanAvg,
            distribution: Distribution::TruncatedNormal,
        }
    }
    /// `XavierUniform` (scale 1, fan_avg, uniform).
    #[allow(non_snake_case)]
    pub fn XavierUniform() -> Init {
        Init::VarianceScaling {
            scale: 1.0,
            mode: FanMode::FanAvg,
            distribution: Distribution::Uniform,
        }
    }
    /// `LecunNormal` (scale 1, fan_in, truncated normal).
    #[allow(non_snake_case)]
    pub fn LecunNormal() -> Init {
        Init::VarianceScaling {
            scale: 1.0,
            mode: FanMode::FanIn,
            distribution: Distribution::TruncatedNormal,
        }
    }

    /// Draws values for `shape` (f64), row-major, from the default generator.
    pub fn sample(&self, shape: &[usize]) -> Result<Vec<f64>> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n.saturating_mul(8) <= brainlift_runtime::MAX_TENSOR_BYTES)
            .ok_or_else(|| {
                Error::invalid(
                    "init",
                    format!("a parameter of shape {shape:?} is too large"),
                )
            })?;
        Ok(match *self {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Constant(c) => vec![c; n],
            Init::Normal { mean, std } => random::normal(n)
                .into_iter()
                .map(|z| mean + std * z)
                .collect(),
            Init::Uniform { low, high } => random::uniform(n)
                .into_iter()
                .map(|u| low + (high - low) * u)
                .collect(),
            Init::VarianceScaling {
                scale,
                mode,
                distribution,
            } => {
                if shape.len() < 2 {
                    return Err(Error::invalid(
                        "init",
                        format!("variance scaling needs a shape of rank >= 2, got {shape:?}"),
                    ));
                }
                let r = shape.len();
                let receptive: usize = shape[..r - 2].iter().product();
                let fan_in = (shape[r - 2] * receptive) as f64;
                let fan_out = (shape[r - 1] * receptive) as f64;
                let denom = match mode {
                    FanMode::FanIn => fan_in,
                    FanMode::FanOut => fan_out,
                    FanMode::FanAvg => (fan_in + fan_out) / 2.0,
                };
                let var = scale / denom.max(1.0);
                match distribution {
                    Distribution::TruncatedNormal => {
                        let s = var.sqrt() / 0.879_625_661_034_239_8;
                        random::truncated_normal(n)
                            .into_iter()
                            .map(|z| z * s)
                            .collect()
                    }
                    Distribution::Normal => random::normal(n)
                        .into_iter()
                        .map(|z| z * var.sqrt())
                        .collect(),
                    Distribution::Uniform => {
                        let lim = (3.0 * var).sqrt();
                        random::uniform(n)
                            .into_iter()
                            .map(|u| lim * (2.0 * u - 1.0))
                            .collect()
                    }
                }
            }
        })
    }

    /// An array of type `dtype[shape]` drawn from this initialiser.
    pub fn array(&self, dtype: DType, shape: &[usize]) -> Result<Array> {
        let v = self.sample(shape)?;
        Ok(Array::from_f64_values(TensorType::new(dtype, shape), &v)?)
    }
}
