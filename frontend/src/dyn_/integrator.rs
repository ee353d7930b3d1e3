//! `Integrator`: BrainPy's leaky integrator readout (spec §7).
//!
//! `τ dx/dt = −x + I`. One step with input `I` (`(B, N)`):
//! `x ← x + (dt·φ)·(−x + I)/τ`, i.e. `x + (1 − e^{−dt/τ})(I − x)`; returns `x`.
//! State `x`, zeros at reset. Default τ = 10.

use super::{check_dt, check_input, check_size_tau, display_name, exp_euler_dt_phi, zero_state};
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{DType, Result, get_dt};

/// A leaky integrator per unit.
#[derive(Clone, Debug)]
pub struct Integrator {
    /// Number of units.
    pub size: usize,
    /// Time constant τ.
    pub tau: f64,
    /// Explicit time step; `None` reads [`get_dt`] at trace time.
    pub dt: Option<f64>,
    /// Name used in error messages (default `integrator`).
    pub name: String,
    /// The integrated value `x`, `(B, size)`.
    pub x: Variable,
}

impl Integrator {
    /// `size` units with time constant `tau` (BrainPy default 10.0), f64.
    pub fn new(size: usize, tau: f64) -> Result<Integrator> {
        Integrator::with_dtype(size, tau, DType::F64)
    }

    /// Like [`Integrator::new`] with an explicit float dtype.
    pub fn with_dtype(size: usize, tau: f64, dtype: DType) -> Result<Integrator> {
        check_size_tau("Integrator", size, &[("tau", tau)])?;
        if !dtype.is_float() {
            return Err(crate::Error::invalid(
                "Integrator",
                format!("dtype must be f32 or f64, got {dtype}"),
            ));
        }
        Ok(Integrator {
            size,
            tau,
            dt: None,
            name: "integrator".into(),
            x: zero_state(dtype, size),
        })
    }

    /// Sets the name used in error messages.
    pub fn named(mut self, name: impl Into<String>) -> Integrator {
        self.name = name.into();
        self
    }

    /// Fixes the time step instead of reading the global one.
    pub fn with_dt(mut self, dt: f64) -> Result<Integrator> {
        check_dt("Integrator", dt)?;
        self.dt = Some(dt);
        Ok(self)
    }
}

impl Module for Integrator {
    fn update(&self, inp: &Tensor) -> Tensor {
        let tr = inp.tracer();
        if !check_input(&display_name("Integrator", &self.name), inp, &self.x) {
            return tr.read_var(&self.x);
        }
        let x = tr.read_var(&self.x);
        let dt_phi = exp_euler_dt_phi(self.dt.unwrap_or_else(get_dt), self.tau);
        let f = (-&x + inp) / self.tau;
        let x_new = &x + &(f * dt_phi);
        tr.write_var(&self.x, &x_new);
        x_new
    }
}

crate::var_owner!(Integrator { "x" => x });
