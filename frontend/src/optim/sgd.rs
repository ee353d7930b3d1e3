//! Stochastic gradient descent with optional momentum (BrainPy's `SGD` / `Momentum`).

use super::{LrSchedule, Optimizer, Slots, check_counts, hyper_as};
use crate::trace::{Tensor, Tracer};
use crate::vars::{VarOwner, Variable};
use crate::{Result, TraceError};

/// SGD: `p <- p - lr * g`; with `momentum > 0`, BrainPy's momentum form
/// `v <- momentum * v + lr * g; p <- p - v` (velocities start at zero).
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning-rate schedule.
    pub lr: LrSchedule,
    /// Momentum coefficient (0 = plain SGD, no velocity variables).
    pub momentum: f64,
    /// Optional clipping of the gradients' global norm.
    pub clip_norm: Option<f64>,
    updates: u64,
    slots: Slots,
}

impl Sgd {
    /// Plain SGD with learning rate (or schedule) `lr`.
    pub fn new(lr: impl Into<LrSchedule>) -> Sgd {
        Sgd::with_momentum(lr, 0.0)
    }

    /// SGD with momentum.
    pub fn with_momentum(lr: impl Into<LrSchedule>, momentum: f64) -> Sgd {
        Sgd {
            lr: lr.into(),
            momentum,
            clip_norm: None,
            updates: 0,
            slots: Slots::new(&["velocity"]),
        }
    }

    /// Clips gradients to global norm `max_norm` before the update (builder style).
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Sgd {
        self.clip_norm = Some(max_norm);
        self
    }
}

impl VarOwner for Sgd {
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable)) {
        self.slots.visit(f);
    }
    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        self.slots.visit_mut(f);
    }
}

impl Optimizer for Sgd {
    fn register(&mut self, params: &[(String, Variable)]) -> Result<()> {
        self.lr.validate()?;
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return Err(crate::Error::invalid(
                "Sgd",
                format!("momentum must be finite and >= 0, got {}", self.momentum),
            ));
        }
        if self.momentum > 0.0 {
            self.slots.register(params);
        }
        Ok(())
    }

    fn hyper_names(&self) -> Vec<String> {
        vec!["lr".into()]
    }

    fn next_hyper(&mut self) -> Vec<f64> {
        let lr = self.lr.lr_at(self.updates);
        self.updates += 1;
        vec![lr]
    }

    fn step_epoch(&mut self) {}

    fn num_updates(&self) -> u64 {
        self.updates
    }

    fn rewind_update(&mut self) {
        self.updates = self.updates.saturating_sub(1);
    }

    fn clip_norm(&self) -> Option<f64> {
        self.clip_norm
    }

    fn trace_update(
        &self,
        tr: &Tracer,
        params: &[(Variable, Tensor)],
        grads: &[Tensor],
        hyper: &[Tensor],
    ) -> Result<Vec<Tensor>, TraceError> {
        check_counts(params.len(), grads.len(), hyper.len(), 1)?;
        let mut out = Vec::with_capacity(params.len());
        for ((var, p), g) in params.iter().zip(grads) {
            let lr = hyper_as(&hyper[0], p);
            if self.momentum > 0.0 {
                let vel = &self.slots.get(var)?[0];
                let v = tr.read_var(vel);
                let v_new = &v * self.momentum + g * &lr;
                tr.write_var(vel, &v_new);
                out.push(p - &v_new);
            } else {
                out.push(p - &(g * &lr));
            }
        }
        Ok(out)
    }
}
