//! `Alif`: an adaptive-threshold LIF neuron (conventional LSNN-style equations, Bellec et
//! al. 2018), in training mode. Not part of the tutorial.
//!
//! ```text
//! τ   dV/dt = −(V − V_rest) + R·I
//! τ_a da/dt = −a                 (+ 1 per spike)
//! threshold θ = V_th + β·a
//! ```
//!
//! One step with input current `I` (`(B, N)`), in this order:
//! 1. `V' = V + (1 − e^{−dt/τ})(V_rest + R·I − V)` (exponential Euler, as [`super::Lif`]);
//! 2. `θ = V_th + β·a` with the adaptation `a` of the previous step;
//! 3. `s = H(V' − θ)` through the surrogate spike function;
//! 4. soft reset `V' ← V' − (θ − V_reset)·s` (hard: `V' ← V' + (V_reset − V')·s`), with `s`
//!    detached in the reset only if `detach_spk`;
//! 5. `a ← a·e^{−dt/τ_a} + s` (decay then add, like [`super::Expon`]);
//! 6. stores `V`, `a`, `spike = s` and returns `s`.
//!
//! With `β = 0` it is exactly [`super::Lif`]. States `V`, `a`, `spike`, zeros at reset.

use super::{
    SpikeForward, SpikeReset, Surrogate, check_dt, check_input, check_size_tau, display_name,
    exp_euler_dt_phi, spike_fn_with, zero_state,
};
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{DType, Result, get_dt};

/// Parameters of [`Alif`]. Defaults: [`super::LifParams`]'s (τ 10, V_rest 0, V_reset −5,
/// V_th 20, R 1, InvSquare(100), soft reset) plus `tau_a = 100`, `beta = 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlifParams {
    /// Membrane time constant τ.
    pub tau: f64,
    /// Adaptation time constant τ_a.
    pub tau_a: f64,
    /// Threshold increase per unit of adaptation β.
    pub beta: f64,
    /// Resting potential.
    pub v_rest: f64,
    /// Reset potential.
    pub v_reset: f64,
    /// Baseline threshold.
    pub v_th: f64,
    /// Membrane resistance.
    pub r: f64,
    /// Surrogate derivative of the spike function.
    pub surrogate: Surrogate,
    /// Reset rule.
    pub spk_reset: SpikeReset,
    /// Forward of the spike function (Heaviside; a smooth stand-in for gradient checks).
    pub spike_forward: SpikeForward,
    /// Stop gradients through the spike in the reset.
    pub detach_spk: bool,
    /// Element type of the states.
    pub dtype: DType,
    /// Explicit time step; `None` reads [`get_dt`] at trace time.
    pub dt: Option<f64>,
}

impl Default for AlifParams {
    fn default() -> AlifParams {
        let l = super::LifParams::default();
        AlifParams {
            tau: l.tau,
            tau_a: 100.0,
            beta: 1.0,
            v_rest: l.v_rest,
            v_reset: l.v_reset,
            v_th: l.v_th,
            r: l.r,
            surrogate: l.surrogate,
            spk_reset: l.spk_reset,
            detach_spk: l.detach_spk,
            spike_forward: l.spike_forward,
            dtype: l.dtype,
            dt: None,
        }
    }
}

/// A population of adaptive LIF neurons with states `V`, `a` and `spike`, all `(B, size)`.
#[derive(Clone, Debug)]
pub struct Alif {
    /// Number of neurons.
    pub size: usize,
    /// Parameters.
    pub params: AlifParams,
    /// Name used in error messages (default `alif`).
    pub name: String,
    /// Membrane potential.
    pub v: Variable,
    /// Adaptation variable.
    pub a: Variable,
    /// Spikes of the last step.
    pub spike: Variable,
}

impl Alif {
    /// `size` neurons with `params`; rejects a zero size, non-positive τ/τ_a/dt and
    /// non-finite potentials.
    pub fn new(size: usize, params: AlifParams) -> Result<Alif> {
        check_size_tau(
            "Alif",
            size,
            &[("tau", params.tau), ("tau_a", params.tau_a)],
        )?;
        if let Some(dt) = params.dt {
            check_dt("Alif", dt)?;
        }
        for (n, x) in [
            ("v_rest", params.v_rest),
            ("v_reset", params.v_reset),
            ("v_th", params.v_th),
            ("r", params.r),
            ("beta", params.beta),
        ] {
            if !x.is_finite() {
                return Err(crate::Error::invalid(
                    "Alif",
                    format!("{n} must be finite, got {x}"),
                ));
            }
        }
        if !params.dtype.is_float() {
            return Err(crate::Error::invalid(
                "Alif",
                format!("dtype must be f32 or f64, got {}", params.dtype),
            ));
        }
        Ok(Alif {
            size,
            v: zero_state(params.dtype, size),
            a: zero_state(params.dtype, size),
            spike: zero_state(params.dtype, size),
            params,
            name: "alif".into(),
        })
    }

    /// Sets the name used in error messages.
    pub fn named(mut self, name: impl Into<String>) -> Alif {
        self.name = name.into();
        self
    }
}

impl Module for Alif {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        if !check_input(&display_name("Alif", &self.name), x, &self.v) {
            return tr.read_var(&self.spike);
        }
        let p = &self.params;
        let dt = p.dt.unwrap_or_else(get_dt);
        let v = tr.read_var(&self.v);
        let a = tr.read_var(&self.a);
        let f = (-&v + p.v_rest + x * p.r) / p.tau;
        let v_new = &v + &(f * exp_euler_dt_phi(dt, p.tau));
        let theta = &a * p.beta + p.v_th;
        let s = spike_fn_with(&(&v_new - &theta), &p.surrogate, p.spike_forward);
        let s_r = if p.detach_spk {
            s.stop_gradient()
        } else {
            s.clone()
        };
        let v_out = match p.spk_reset {
            SpikeReset::Soft => &v_new - &((theta - p.v_reset) * &s_r),
            SpikeReset::Hard => &v_new + &((-&v_new + p.v_reset) * &s_r),
        };
        let a_new = &a + &((-&a / p.tau_a) * exp_euler_dt_phi(dt, p.tau_a)) + &s;
        tr.write_var(&self.v, &v_out);
        tr.write_var(&self.a, &a_new);
        tr.write_var(&self.spike, &s);
        s
    }
}

crate::var_owner!(Alif { "V" => v, "a" => a, "spike" => spike });
