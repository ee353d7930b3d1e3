//! `Expon`: BrainPy's exponential synapse (spec §7).
//!
//! `dg/dt = −g/τ` plus instantaneous increments. One step with input `x` (`(B, N)`):
//! `g ← g + (dt·φ)·(−g/τ)` (exponential Euler, equal to `g·e^{−dt/τ}`), **then** `g ← g + x`;
//! returns `g`. State `g`, zeros at reset. Default τ = 8.

use super::{check_dt, check_input, check_size_tau, display_name, exp_euler_dt_phi, zero_state};
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{DType, Result, get_dt};

/// An exponentially decaying synaptic conductance per unit.
#[derive(Clone, Debug)]
pub struct Expon {
    /// Number of units.
    pub size: usize,
    /// Decay time constant τ.
    pub tau: f64,
    /// Explicit time step; `None` reads [`get_dt`] at trace time.
    pub dt: Option<f64>,
    /// Name used in error messages (default `expon`).
    pub name: String,
    /// The conductance `g`, `(B, size)`.
    pub g: Variable,
}

impl Expon {
    /// `size` units with time constant `tau` (BrainPy default 8.0), f64.
    pub fn new(size: usize, tau: f64) -> Result<Expon> {
        Expon::with_dtype(size, tau, DType::F64)
    }

    /// Like [`Expon::new`] with an explicit float dtype.
    pub fn with_dtype(size: usize, tau: f64, dtype: DType) -> Result<Expon> {
        check_size_tau("Expon", size, &[("tau", tau)])?;
        if !dtype.is_float() {
            return Err(crate::Error::invalid(
                "Expon",
                format!("dtype must be f32 or f64, got {dtype}"),
            ));
        }
        Ok(Expon {
            size,
            tau,
            dt: None,
            name: "expon".into(),
            g: zero_state(dtype, size),
        })
    }

    /// Sets the name used in error messages.
    pub fn named(mut self, name: impl Into<String>) -> Expon {
        self.name = name.into();
        self
    }

    /// Fixes the time step instead of reading the global one.
    pub fn with_dt(mut self, dt: f64) -> Result<Expon> {
        check_dt("Expon", dt)?;
        self.dt = Some(dt);
        Ok(self)
    }
}

impl Module for Expon {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        if !check_input(&display_name("Expon", &self.name), x, &self.g) {
            return tr.read_var(&self.g);
        }
        let g = tr.read_var(&self.g);
        let dt_phi = exp_euler_dt_phi(self.dt.unwrap_or_else(get_dt), self.tau);
        let decayed = &g + &((-&g / self.tau) * dt_phi);
        let g_new = decayed + x;
        tr.write_var(&self.g, &g_new);
        g_new
    }
}

crate::var_owner!(Expon { "g" => g });
