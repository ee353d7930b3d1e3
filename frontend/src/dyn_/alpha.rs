//! `AlphaSyn`: a dual-exponential synapse, the alpha synapse when both time constants are
//! equal. Not part of the tutorial; the equations are the conventional ones:
//!
//! ```text
//! dh/dt = −h/τ_rise            (+ input spikes x, added instantaneously)
//! dg/dt = −g/τ_decay + h
//! ```
//!
//! One step with input `x` (`(B, N)`), in this order:
//! 1. `h ← h·e^{−dt/τ_rise} + x` (decay then add, like [`super::Expon`]);
//! 2. `g ← g + (dt·φ_d)·(−g/τ_decay + h)` — exponential Euler on `g` with the new `h` held
//!    constant over the step, `dt·φ_d = τ_decay·(1 − e^{−dt/τ_decay})`;
//! 3. returns `g`.
//!
//! A single unit pulse at step 0 gives `g` rising then decaying with the peak near
//! `t = τ` for the alpha case (`τ_rise = τ_decay = τ`). States `g` and `h`, zeros at reset.

use super::{check_dt, check_input, check_size_tau, display_name, exp_euler_dt_phi, zero_state};
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{DType, Result, get_dt};

/// A dual-exponential (alpha) synapse per unit.
#[derive(Clone, Debug)]
pub struct AlphaSyn {
    /// Number of units.
    pub size: usize,
    /// Rise time constant.
    pub tau_rise: f64,
    /// Decay time constant.
    pub tau_decay: f64,
    /// Explicit time step; `None` reads [`get_dt`] at trace time.
    pub dt: Option<f64>,
    /// Name used in error messages (default `alpha`).
    pub name: String,
    /// The conductance `g`, `(B, size)` (the output).
    pub g: Variable,
    /// The rise variable `h`, `(B, size)`.
    pub h: Variable,
}

impl AlphaSyn {
    /// An alpha synapse: `τ_rise = τ_decay = tau`, f64.
    pub fn alpha(size: usize, tau: f64) -> Result<AlphaSyn> {
        AlphaSyn::dual(size, tau, tau, DType::F64)
    }

    /// A dual-exponential synapse with distinct time constants and a float dtype.
    pub fn dual(size: usize, tau_rise: f64, tau_decay: f64, dtype: DType) -> Result<AlphaSyn> {
        check_size_tau(
            "AlphaSyn",
            size,
            &[("tau_rise", tau_rise), ("tau_decay", tau_decay)],
        )?;
        if !dtype.is_float() {
            return Err(crate::Error::invalid(
                "AlphaSyn",
                format!("dtype must be f32 or f64, got {dtype}"),
            ));
        }
        Ok(AlphaSyn {
            size,
            tau_rise,
            tau_decay,
            dt: None,
            name: "alpha".into(),
            g: zero_state(dtype, size),
            h: zero_state(dtype, size),
        })
    }

    /// Sets the name used in error messages.
    pub fn named(mut self, name: impl Into<String>) -> AlphaSyn {
        self.name = name.into();
        self
    }

    /// Fixes the time step instead of reading the global one.
    pub fn with_dt(mut self, dt: f64) -> Result<AlphaSyn> {
        check_dt("AlphaSyn", dt)?;
        self.dt = Some(dt);
        Ok(self)
    }
}

impl Module for AlphaSyn {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        if !check_input(&display_name("AlphaSyn", &self.name), x, &self.g) {
            return tr.read_var(&self.g);
        }
        let dt = self.dt.unwrap_or_else(get_dt);
        let h = tr.read_var(&self.h);
        let g = tr.read_var(&self.g);
        let phi_r = exp_euler_dt_phi(dt, self.tau_rise);
        let h_new = &h + &((-&h / self.tau_rise) * phi_r) + x;
        let phi_d = exp_euler_dt_phi(dt, self.tau_decay);
        let g_new = &g + &((-&g / self.tau_decay + &h_new) * phi_d);
        tr.write_var(&self.h, &h_new);
        tr.write_var(&self.g, &g_new);
        g_new
    }
}

crate::var_owner!(AlphaSyn { "g" => g, "h" => h });
