//! Adam and AdamW.
//!
//! Update for a parameter `p` with gradient `g` (moments `m`, `v` start at zero):
//!
//! ```text
//! m <- beta1 * m + (1 - beta1) * g
//! v <- beta2 * v + (1 - beta2) * g^2
//! p <- p - eta_t * m / (sqrt(v) + eps),     eta_t = lr_i * sqrt(1 - beta2^t) / (1 - beta1^t)
//! ```
//!
//! This is the "efficient form" of Adam (bias correction folded into the step size), BrainPy's
//! formula. `lr_i` is the schedule at update `i`. The bias-correction step `t` depends on
//! [`BiasCorrection`]:
//! * [`BiasCorrection::PerUpdate`] (default): `t` = number of updates including this one —
//!   textbook Adam;
//! * [`BiasCorrection::PerEpoch`]: `t` = number of completed epochs + 1 — what BrainPy does,
//!   because its Adam reads the scheduler's *epoch* counter (spec §10). Within an epoch the
//!   correction stays constant; with `eps = 0.1` (the tutorial) this changes the trajectory
//!   visibly (the golden `adam/brainpy_traj` vs `efficient_form_traj`).
//!
//! The efficient form differs from the textbook `m̂ / (sqrt(v̂) + eps)` only in how `eps` is
//! scaled (`eps` here multiplies `sqrt(1 - beta2^t)` in effect); golden `adam/textbook_traj`.

use super::{LrSchedule, Optimizer, Slots, check_counts, hyper_as};
use crate::trace::{Tensor, Tracer};
use crate::vars::{VarOwner, Variable};
use crate::{Error, Result, TraceError};

/// How Adam counts the bias-correction step `t` (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BiasCorrection {
    /// `t` = updates so far including this one (textbook Adam).
    #[default]
    PerUpdate,
    /// `t` = completed epochs + 1 (BrainPy's epoch-counter behaviour).
    PerEpoch,
}

/// Adam (see the module doc), BrainPy defaults `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning-rate schedule.
    pub lr: LrSchedule,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// How the bias-correction step is counted.
    pub bias_correction: BiasCorrection,
    /// Optional clipping of the gradients' global norm.
    pub clip_norm: Option<f64>,
    /// Decoupled weight decay (AdamW): `p <- p * (1 - lr_i * wd) - step`; 0 = none.
    pub(crate) weight_decay: f64,
    updates: u64,
    epochs: u64,
    slots: Slots,
}

impl Adam {
    /// Adam with learning rate (or schedule) `lr` and BrainPy's defaults.
    pub fn new(lr: impl Into<LrSchedule>) -> Adam {
        Adam {
            lr: lr.into(),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            bias_correction: BiasCorrection::PerUpdate,
            clip_norm: None,
            weight_decay: 0.0,
            updates: 0,
            epochs: 0,
            slots: Slots::new(&["m", "v"]),
        }
    }

    /// Sets `eps` (builder style; the tutorial uses 0.1).
    pub fn eps(mut self, eps: f64) -> Adam {
        self.eps = eps;
        self
    }

    /// Sets `beta1` and `beta2` (builder style).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Adam {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets the bias-correction counting (builder style).
    pub fn bias_correction(mut self, bc: BiasCorrection) -> Adam {
        self.bias_correction = bc;
        self
    }

    /// Clips gradients to global norm `max_norm` before the update (builder style).
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Adam {
        self.clip_norm = Some(max_norm);
        self
    }

    /// The bias-correction step `t` the next update uses.
    pub fn next_t(&self) -> u64 {
        match self.bias_correction {
            BiasCorrection::PerUpdate => self.updates + 1,
            BiasCorrection::PerEpoch => self.epochs + 1,
        }
    }
}

impl VarOwner for Adam {
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable)) {
        self.slots.visit(f);
    }
    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        self.slots.visit_mut(f);
    }
}

impl Optimizer for Adam {
    fn register(&mut self, params: &[(String, Variable)]) -> Result<()> {
        self.lr.validate()?;
        let ok = (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps.is_finite()
            && self.eps >= 0.0
            && self.weight_decay.is_finite()
            && self.weight_decay >= 0.0;
        if !ok {
            return Err(Error::invalid(
                "Adam",
                format!(
                    "need 0 <= beta1, beta2 < 1, eps >= 0 and weight_decay >= 0; got beta1 {}, beta2 {}, eps {}, weight_decay {}",
                    self.beta1, self.beta2, self.eps, self.weight_decay
                ),
            ));
        }
        self.slots.register(params);
        Ok(())
    }

    fn hyper_names(&self) -> Vec<String> {
        vec!["lr_step".into(), "lr".into()]
    }

    fn next_hyper(&mut self) -> Vec<f64> {
        let t = self.next_t() as i32;
        let lr = self.lr.lr_at(self.updates);
        // BrainPy's order: lr / (1 - beta1^t) * sqrt(1 - beta2^t).
        let step = lr / (1.0 - self.beta1.powi(t)) * (1.0 - self.beta2.powi(t)).sqrt();
        self.updates += 1;
        vec![step, lr]
    }

    fn step_epoch(&mut self) {
        self.epochs += 1;
    }

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
        check_counts(params.len(), grads.len(), hyper.len(), 2)?;
        let mut out = Vec::with_capacity(params.len());
        for ((var, p), g) in params.iter().zip(grads) {
            let slots = self.slots.get(var)?;
            let (mv, vv) = (&slots[0], &slots[1]);
            let m = tr.read_var(mv);
            let v = tr.read_var(vv);
            let m_new = &m * self.beta1 + g * (1.0 - self.beta1);
            let v_new = &v * self.beta2 + g.square() * (1.0 - self.beta2);
            tr.write_var(mv, &m_new);
            tr.write_var(vv, &v_new);
            let step = hyper_as(&hyper[0], p);
            let upd = &m_new * &step / (v_new.sqrt() + self.eps);
            let p_new = if self.weight_decay > 0.0 {
                let lr = hyper_as(&hyper[1], p);
                let keep = 1.0 - lr * self.weight_decay;
                p * &keep - upd
            } else {
                p - &upd
            };
            out.push(p_new);
        }
        Ok(out)
    }
}

/// AdamW: Adam with decoupled weight decay, `p <- p * (1 - lr_i * weight_decay) - step`
/// (Loshchilov & Hutter; PyTorch's form, the decay scaled by the scheduled rate but not by
/// the bias correction). BrainPy's `Adam(weight_decay=wd)` instead uses `(1 - wd) * p`.
pub struct AdamW;

impl AdamW {
    /// An [`Adam`] with decoupled weight decay `weight_decay` (default PyTorch value 0.01).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(lr: impl Into<LrSchedule>, weight_decay: f64) -> Adam {
        let mut a = Adam::new(lr);
        a.weight_decay = weight_decay;
        a
    }
}

impl Adam {
    /// The decoupled weight decay (0 for plain Adam).
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
}
