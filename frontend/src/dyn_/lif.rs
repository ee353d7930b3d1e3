//! `Lif`: BrainPy's gradient-capable leaky integrate-and-fire neuron in training mode
//! (spec §6).
//!
//! One step with input current `I` (`(B, N)`):
//! 1. `V' = V + (dt·φ)·(−V + V_rest + R·I)/τ` (exponential Euler, exactly
//!    `V + (1 − e^{−dt/τ})(V_rest + R·I − V)`);
//! 2. `s = H(V' − V_th)` through the surrogate-gradient spike function (`spike_fn`);
//! 3. soft reset `V' ← V' − (V_th − V_reset)·s`, or hard reset `V' ← V' + (V_reset − V')·s`;
//!    `s` is wrapped in `stop_gradient` in the reset only with `detach_spk`;
//! 4. `V ← V'`, `spike ← s`; returns `s`.
//!
//! No refractory period (BrainPy's `Lif` has none).

use super::{
    SpikeForward, Surrogate, check_dt, check_input, check_size_tau, display_name, exp_euler_dt_phi,
    spike_fn_with, zero_state,
};
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{DType, Result, get_dt};

/// How the membrane is reset after a spike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpikeReset {
    /// `V ← V − (V_th − V_reset)·s` (BrainPy default).
    #[default]
    Soft,
    /// `V ← V + (V_reset − V)·s`, i.e. `V_reset` where a spike occurred.
    Hard,
}

/// Parameters of [`Lif`]; `Default` gives BrainPy's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct LifParams {
    /// Membrane time constant τ (10).
    pub tau: f64,
    /// Resting potential (0).
    pub v_rest: f64,
    /// Reset potential (−5).
    pub v_reset: f64,
    /// Spike threshold (20).
    pub v_th: f64,
    /// Membrane resistance R (1).
    pub r: f64,
    /// Surrogate derivative of the spike function (`InvSquare { alpha: 100 }`).
    pub surrogate: Surrogate,
    /// Reset rule (soft).
    pub spk_reset: SpikeReset,
    /// Forward of the spike function (Heaviside; a smooth stand-in for gradient checks).
    pub spike_forward: SpikeForward,
    /// Stop gradients through the spike in the reset (false).
    pub detach_spk: bool,
    /// Element type of states and spikes (f64).
    pub dtype: DType,
    /// Explicit time step; `None` reads [`get_dt`] at trace time.
    pub dt: Option<f64>,
}

impl Default for LifParams {
    fn default() -> LifParams {
        LifParams {
            tau: 10.0,
            v_rest: 0.0,
            v_reset: -5.0,
            v_th: 20.0,
            r: 1.0,
            surrogate: Surrogate::default(),
            spk_reset: SpikeReset::Soft,
            detach_spk: false,
            spike_forward: SpikeForward::Heaviside,
            dtype: DType::F64,
            dt: None,
        }
    }
}

/// A population of `size` LIF neurons with states `V` and `spike`, both `(B, size)`.
#[derive(Clone, Debug)]
pub struct Lif {
    /// Number of neurons.
    pub size: usize,
    /// Parameters.
    pub params: LifParams,
    /// Name used in error messages (default `lif`).
    pub name: String,
    /// Membrane potential.
    pub v: Variable,
    /// Spikes of the last step (0.0 / 1.0).
    pub spike: Variable,
}

impl Lif {
    /// `size` neurons with `params`; rejects a zero size, non-positive τ/dt, non-finite
    /// potentials or a float-less dtype.
    pub fn new(size: usize, params: LifParams) -> Result<Lif> {
        check_size_tau("Lif", size, &[("tau", params.tau)])?;
        if let Some(dt) = params.dt {
            check_dt("Lif", dt)?;
        }
        for (n, x) in [
            ("v_rest", params.v_rest),
            ("v_reset", params.v_reset),
            ("v_th", params.v_th),
            ("r", params.r),
        ] {
            if !x.is_finite() {
                return Err(crate::Error::invalid(
                    "Lif",
                    format!("{n} must be finite, got {x}"),
                ));
            }
        }
        if !params.dtype.is_float() {
            return Err(crate::Error::invalid(
                "Lif",
                format!("dtype must be f32 or f64, got {}", params.dtype),
            ));
        }
        Ok(Lif {
            size,
            v: zero_state(params.dtype, size),
            spike: zero_state(params.dtype, size),
            params,
            name: "lif".into(),
        })
    }

    /// BrainPy's defaults.
    pub fn with_defaults(size: usize) -> Result<Lif> {
        Lif::new(size, LifParams::default())
    }

    /// Sets the name used in error messages.
    pub fn named(mut self, name: impl Into<String>) -> Lif {
        self.name = name.into();
        self
    }

    /// The time step used when tracing now.
    pub fn dt(&self) -> f64 {
        self.params.dt.unwrap_or_else(get_dt)
    }
}

impl Module for Lif {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        if !check_input(&display_name("Lif", &self.name), x, &self.v) {
            return tr.read_var(&self.spike);
        }
        let p = &self.params;
        let v = tr.read_var(&self.v);
        let dt_phi = exp_euler_dt_phi(self.dt(), p.tau);
        // f(V) = (-V + V_rest + R I) / tau, as BrainPy writes it.
        let f = (-&v + p.v_rest + x * p.r) / p.tau;
        let v_new = &v + &(f * dt_phi);
        let s = spike_fn_with(&(&v_new - p.v_th), &p.surrogate, p.spike_forward);
        let s_r = if p.detach_spk {
            s.stop_gradient()
        } else {
            s.clone()
        };
        let v_out = match p.spk_reset {
            SpikeReset::Soft => &v_new - &(s_r * (p.v_th - p.v_reset)),
            SpikeReset::Hard => &v_new + &((-&v_new + p.v_reset) * &s_r),
        };
        tr.write_var(&self.v, &v_out);
        tr.write_var(&self.spike, &s);
        s
    }
}

crate::var_owner!(Lif { "V" => v, "spike" => spike });
