//! `Reservoir`: an echo-state network layer (traditional reservoir computing, BrainPy's
//! `bp.layers.Reservoir`), traced like the other layers, and [`Esn`], a reservoir with a
//! linear readout that [`crate::RidgeTrainer`] fits.
//!
//! Contract. One step maps an input `x: (B, num_in)` and the state `h: (B, units)` to
//!
//! ```text
//! h ← (1 − a)·h + a·f(x·W_in + h·W + b)
//! ```
//!
//! with leak rate `a ∈ (0, 1]` and activation `f` (tanh by default), and returns the new `h`.
//! The weights are fixed (non-trainable [`Variable::constant`]s), drawn once from the
//! configuration's seed with its own generator (the process-wide generator of
//! [`crate::random`] is not touched, so a reservoir is the same whatever was drawn before):
//!
//! - `W_in: (num_in, units)` uniform in `[-input_scaling, input_scaling]` (dense);
//! - `W: (units, units)`: each entry is kept with probability `1 − sparsity`, kept entries
//!   are uniform in `[-1, 1]`, then the matrix is scaled so that its spectral radius (largest
//!   |eigenvalue|, the matrix is not symmetric) equals `spectral_radius`. Eigenvalues come
//!   from faer's dense non-symmetric eigenvalue routine (Hessenberg + QR iterations),
//!   `O(units³)` once at construction;
//! - `b: (units,)` uniform in `[-bias_scaling, bias_scaling]` (zero when `bias_scaling` is 0).
//!
//! The state `h` is reset to zeros. Cost per step: `O(B·units·(num_in + units))` (the
//! recurrent product is dense even when `W` is sparse).

use crate::nn::Dense;
use crate::offline::Readout;
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{Array, DType, Error, Result, TensorType, concat};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The reservoir's nonlinearity `f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReservoirActivation {
    /// `tanh` (the usual echo-state choice).
    #[default]
    Tanh,
    /// No nonlinearity (a linear reservoir).
    Identity,
}

/// Settings of a [`Reservoir`]. [`Default`] gives the values below.
#[derive(Clone, Debug, PartialEq)]
pub struct ReservoirConfig {
    /// Spectral radius the recurrent matrix is scaled to (> 0; default 0.9).
    pub spectral_radius: f64,
    /// Leak rate `a` in `(0, 1]` (1: no leak; default 0.3, BrainPy's `leaky_rate`).
    pub leak_rate: f64,
    /// Input weights are uniform in `[-input_scaling, input_scaling]` (≥ 0; default 0.1).
    pub input_scaling: f64,
    /// Fraction of recurrent weights set to zero, in `[0, 1)` (default 0.9: 10 % connected).
    pub sparsity: f64,
    /// Biases are uniform in `[-bias_scaling, bias_scaling]` (≥ 0; default 0.1).
    pub bias_scaling: f64,
    /// The nonlinearity (default tanh).
    pub activation: ReservoirActivation,
    /// Seed of the weights.
    pub seed: u64,
    /// Element type of the weights and the state (default f64).
    pub dtype: DType,
}

impl Default for ReservoirConfig {
    fn default() -> Self {
        ReservoirConfig {
            spectral_radius: 0.9,
            leak_rate: 0.3,
            input_scaling: 0.1,
            sparsity: 0.9,
            bias_scaling: 0.1,
            activation: ReservoirActivation::Tanh,
            seed: 0,
            dtype: DType::F64,
        }
    }
}

impl ReservoirConfig {
    /// Checks every field; the error names the field, its value and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::invalid("Reservoir", msg));
        if !(self.spectral_radius.is_finite() && self.spectral_radius > 0.0) {
            return bad(format!(
                "spectral_radius must be finite and > 0, got {}",
                self.spectral_radius
            ));
        }
        if !(self.leak_rate > 0.0 && self.leak_rate <= 1.0) {
            return bad(format!(
                "leak_rate must be in (0, 1], got {}",
                self.leak_rate
            ));
        }
        if !(self.sparsity >= 0.0 && self.sparsity < 1.0) {
            return bad(format!("sparsity must be in [0, 1), got {}", self.sparsity));
        }
        if !(self.input_scaling.is_finite() && self.input_scaling >= 0.0) {
            return bad(format!(
                "input_scaling must be finite and >= 0, got {}",
                self.input_scaling
            ));
        }
        if !(self.bias_scaling.is_finite() && self.bias_scaling >= 0.0) {
            return bad(format!(
                "bias_scaling must be finite and >= 0, got {}",
                self.bias_scaling
            ));
        }
        if !self.dtype.is_float() {
            return bad(format!("dtype must be f32 or f64, got {:?}", self.dtype));
        }
        Ok(())
    }
}

/// The spectral radius (largest |eigenvalue|) of a square row-major `n × n` matrix, from
/// faer's non-symmetric eigenvalue decomposition. Errors if `w` is not `n × n` or the
/// eigenvalue iteration does not converge.
pub fn spectral_radius(w: &[f64], n: usize) -> Result<f64> {
    if w.len() != n * n {
        return Err(Error::invalid(
            "spectral_radius",
            format!("expected {n}x{n} = {} values, got {}", n * n, w.len()),
        ));
    }
    if n == 0 {
        return Ok(0.0);
    }
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| w[i * n + j]);
    let ev = m.eigenvalues().map_err(|e| {
        Error::invalid(
            "spectral_radius",
            format!("eigenvalues of the {n}x{n} matrix did not converge: {e:?}"),
        )
    })?;
    Ok(ev.iter().map(|z| z.re.hypot(z.im)).fold(0.0, f64::max))
}

/// An echo-state reservoir: fixed random recurrent weights, leaky tanh units.
#[derive(Clone, Debug)]
pub struct Reservoir {
    /// Input features.
    pub num_in: usize,
    /// Reservoir units (output features).
    pub num_units: usize,
    /// The configuration it was built from.
    pub config: ReservoirConfig,
    /// Input weights `(num_in, units)`, constant.
    pub w_in: Variable,
    /// Recurrent weights `(units, units)`, constant, scaled to the spectral radius.
    pub w_rec: Variable,
    /// Bias `(units,)`, constant.
    pub bias: Variable,
    /// State `h: (B, units)`, zeros after a reset.
    pub state: Variable,
}

impl Reservoir {
    /// Draws a reservoir from `config` (see the module doc); errors on a bad configuration,
    /// zero inputs or units, or a recurrent matrix whose spectral radius is zero (too sparse
    /// to be scaled: lower `sparsity` or add units).
    pub fn new(num_in: usize, num_units: usize, config: ReservoirConfig) -> Result<Reservoir> {
        config.validate()?;
        if num_in == 0 || num_units == 0 {
            return Err(Error::invalid(
                "Reservoir",
                format!("num_in and num_units must be positive, got {num_in} and {num_units}"),
            ));
        }
        let n = num_units;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut uniform = |scale: f64, count: usize| -> Vec<f64> {
            (0..count)
                .map(|_| scale * (2.0 * rng.random::<f64>() - 1.0))
                .collect()
        };
        let w_in = uniform(config.input_scaling, num_in * n);
        let bias = uniform(config.bias_scaling, n);
        let mut w = uniform(1.0, n * n);
        let mut rng = StdRng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15);
        for v in w.iter_mut() {
            if rng.random::<f64>() < config.sparsity {
                *v = 0.0;
            }
        }
        let rho = spectral_radius(&w, n)?;
        if rho.is_nan() || rho <= 1e-12 {
            return Err(Error::invalid(
                "Reservoir",
                format!(
                    "the random {n}x{n} recurrent matrix with sparsity {} has spectral radius \
                     {rho:e} and cannot be scaled to {}; lower the sparsity or add units",
                    config.sparsity, config.spectral_radius
                ),
            ));
        }
        let k = config.spectral_radius / rho;
        w.iter_mut().for_each(|v| *v *= k);
        let dt = config.dtype;
        Ok(Reservoir {
            num_in,
            num_units,
            w_in: Variable::constant(Array::from_f64_values(
                TensorType::new(dt, [num_in, n]),
                &w_in,
            )?),
            w_rec: Variable::constant(Array::from_f64_values(TensorType::new(dt, [n, n]), &w)?),
            bias: Variable::constant(Array::from_f64_values(TensorType::new(dt, [n]), &bias)?),
            state: Variable::state(Array::zeros(TensorType::new(dt, [1, n]))),
            config,
        })
    }
}

impl Module for Reservoir {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        let h = tr.read_var(&self.state);
        let b = h.shape()[0];
        if x.shape() != [b, self.num_in] {
            tr.fail(crate::TraceError::Op {
                op: "Reservoir".into(),
                msg: format!(
                    "expected input of shape [{b},{}] (batch, num_in), got {}",
                    self.num_in,
                    x.ty()
                ),
            });
            return h;
        }
        let x = x.cast(h.dtype());
        let pre = x.matmul(&tr.read_var(&self.w_in))
            + h.matmul(&tr.read_var(&self.w_rec))
            + tr.read_var(&self.bias);
        let act = match self.config.activation {
            ReservoirActivation::Tanh => pre.tanh(),
            ReservoirActivation::Identity => pre,
        };
        let a = self.config.leak_rate;
        let new = if a == 1.0 {
            act
        } else {
            &h * (1.0 - a) + &act * a
        };
        tr.write_var(&self.state, &new);
        new
    }

    fn reset_state(&mut self, batch: usize) {
        let ty = TensorType::new(self.state.ty().dtype, [batch, self.num_units]);
        let _ = self.state.set_value(Array::zeros(ty));
    }
}

crate::var_owner!(Reservoir { "Win" => w_in, "Wrec" => w_rec, "b" => bias, "state" => state });

/// An echo-state network: a [`Reservoir`] and a linear [`Dense`] readout, fitted by
/// [`crate::RidgeTrainer`].
///
/// The readout reads the reservoir state `h`, or `[x, h]` (the input concatenated in front of
/// the state) when built with `readout_on_input = true`. The input skip connection is the
/// default of [`Esn::new`] because it forecasts better: on the one-step-ahead Lorenz `x`
/// forecast of `examples/esn_lorenz.rs` (500 units, default config, α = 1e-6) the test NRMSE
/// is 1.5e-7 on `[x, h]` against 3.8e-6 on `h` alone (100 units: 4.9e-6 against 9.5e-5); the
/// readout gets the current sample exactly instead of decoding it from the tanh units. For
/// scale: a ridge readout on `x` alone (no reservoir) gives 2.9e-3 and persistence 5.8e-2.
///
/// ```
/// use brainlift::nn::{Esn, ReservoirConfig};
/// use brainlift::{Array, Backend, RidgeTrainer};
/// // Forecast a sine wave one step ahead.
/// let s: Vec<f64> = (0..300).map(|i| (i as f64 * 0.1).sin()).collect();
/// let x = Array::from_f64([1, 299, 1], s[..299].to_vec())?;
/// let y = Array::from_f64([1, 299, 1], s[1..].to_vec())?;
/// let esn = Esn::new(1, 30, 1, ReservoirConfig { seed: 1, ..ReservoirConfig::default() })?;
/// let mut trainer = RidgeTrainer::new(esn, 1e-8)?.with_backend(Backend::Interp);
/// trainer.fit(&x, &y)?;
/// let next = trainer.predict(&Array::from_f64([1, 1, 1], vec![s[299]])?)?;
/// assert!((next.to_f64_vec()[0] - (30.0f64).sin()).abs() < 1e-3);
/// # Ok::<(), brainlift::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Esn {
    /// The reservoir.
    pub r: Reservoir,
    /// The readout: `(units, out)`, or `(num_in + units, out)` when it reads `[x, h]`.
    pub o: Dense,
    /// Whether the readout reads `[x, h]` rather than `h`.
    pub readout_on_input: bool,
}

impl Esn {
    /// A reservoir of `num_units` on `num_in` inputs and a readout to `num_out` outputs on
    /// `[x, h]`. The readout's initial weights come from [`crate::random`] (a fit overwrites
    /// them).
    pub fn new(
        num_in: usize,
        num_units: usize,
        num_out: usize,
        config: ReservoirConfig,
    ) -> Result<Esn> {
        Esn::with_readout(Reservoir::new(num_in, num_units, config)?, num_out, true)
    }

    /// An ESN on an existing reservoir; `readout_on_input` chooses `[x, h]` over `h`.
    pub fn with_readout(r: Reservoir, num_out: usize, readout_on_input: bool) -> Result<Esn> {
        let features = r.num_units + if readout_on_input { r.num_in } else { 0 };
        let o = Dense::with_init(
            features,
            num_out,
            crate::init::Init::XavierNormal(),
            Some(crate::init::Init::Zeros),
            r.config.dtype,
        )?;
        Ok(Esn {
            r,
            o,
            readout_on_input,
        })
    }
}

impl Module for Esn {
    fn update(&self, x: &Tensor) -> Tensor {
        let h = self.r.update(x);
        if !self.readout_on_input {
            return self.o.update(&h);
        }
        match concat(&[x.cast(h.dtype()), h.clone()], 1) {
            Ok(feats) => self.o.update(&feats),
            Err(e) => {
                x.tracer().fail(e);
                h
            }
        }
    }

    fn reset_state(&mut self, batch: usize) {
        self.r.reset_state(batch);
    }
}

crate::var_owner!(Esn { "r" => child r, "o" => child o });

impl Readout for Esn {
    fn readout(&self) -> &Dense {
        &self.o
    }

    fn readout_mut(&mut self) -> &mut Dense {
        &mut self.o
    }
}
