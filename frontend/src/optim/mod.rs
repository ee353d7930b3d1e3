//! Optimisers and learning-rate schedules (BrainPy spec §10).
//!
//! An [`Optimizer`] owns its per-parameter state (momenta, Adam moments) as [`Variable`]s, so
//! it is a [`VarOwner`] and a compiled training step reads those moments as inputs and writes
//! them back as outputs, like the model's parameters. The update itself is *traced*
//! ([`Optimizer::trace_update`]): it becomes part of one compiled function (see
//! [`crate::autograd::TrainStep`] and [`crate::autograd::ApplyGradients`]).
//!
//! Everything that changes from step to step on the host (the scheduled learning rate, Adam's
//! bias-correction factor) is passed as scalar data inputs ("hyper" values) produced by
//! [`Optimizer::next_hyper`], so the compiled function is reused across steps.
//!
//! Counters, as in BrainPy: the schedule's *call* counter advances once per update
//! (`next_hyper`), its *epoch* counter once per [`Optimizer::step_epoch`] (the BPTT trainer calls
//! it after every epoch).

mod adam;
mod sgd;

pub use adam::{Adam, AdamW, BiasCorrection};
pub use sgd::Sgd;

use crate::trace::{Tensor, Tracer};
use crate::vars::{VarOwner, Variable};
use crate::{Array, Result, TraceError};
use brainlift_ir::{DType, TensorType};

/// A learning-rate schedule, evaluated on the host once per update.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// A fixed learning rate.
    Constant(f64),
    /// `lr * decay_rate^(i / decay_steps)` with `i` the number of previous updates: continuous
    /// (true division, not a staircase), as BrainPy's `ExponentialDecay` (spec §10).
    ExponentialDecay {
        /// Initial learning rate.
        lr: f64,
        /// Updates per factor of `decay_rate`.
        decay_steps: f64,
        /// Decay factor per `decay_steps` updates.
        decay_rate: f64,
    },
}

impl LrSchedule {
    /// The learning rate of update number `i` (0-based).
    pub fn lr_at(&self, i: u64) -> f64 {
        match *self {
            LrSchedule::Constant(lr) => lr,
            LrSchedule::ExponentialDecay {
                lr,
                decay_steps,
                decay_rate,
            } => lr * decay_rate.powf(i as f64 / decay_steps),
        }
    }

    /// Checks the schedule's numbers (positive, finite).
    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            LrSchedule::Constant(lr) => lr.is_finite() && lr >= 0.0,
            LrSchedule::ExponentialDecay {
                lr,
                decay_steps,
                decay_rate,
            } => {
                lr.is_finite()
                    && lr >= 0.0
                    && decay_steps > 0.0
                    && decay_rate > 0.0
                    && decay_rate.is_finite()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(crate::Error::invalid(
                "LrSchedule",
                format!(
                    "{self:?}: the rate must be finite and >= 0, decay_steps and decay_rate > 0"
                ),
            ))
        }
    }
}

impl From<f64> for LrSchedule {
    fn from(lr: f64) -> LrSchedule {
        LrSchedule::Constant(lr)
    }
}

/// A gradient-based optimiser whose update is traced into IR.
pub trait Optimizer: VarOwner {
    /// Creates the per-parameter state for `params` (`(path, variable)`, e.g. from
    /// [`crate::train_vars`]); parameters registered before are kept as they are.
    fn register(&mut self, params: &[(String, Variable)]) -> Result<()>;

    /// Names of the host scalars [`Optimizer::next_hyper`] produces (input names).
    fn hyper_names(&self) -> Vec<String>;

    /// The host scalars for the next update, advancing the per-update counters. Call exactly
    /// once per update.
    fn next_hyper(&mut self) -> Vec<f64>;

    /// Marks the end of an epoch (BrainPy's `lr.step_epoch()`).
    fn step_epoch(&mut self);

    /// Number of updates done so far.
    fn num_updates(&self) -> u64;

    /// Takes back the last [`Optimizer::next_hyper`] (its update was not applied, e.g. the
    /// loss was not finite), so the counters match the updates actually made.
    fn rewind_update(&mut self);

    /// Maximum global gradient norm, if gradients are clipped before the update.
    fn clip_norm(&self) -> Option<f64>;

    /// Appends the update to `tr`: `params[k]` is the registered variable with its traced value,
    /// `grads[k]` its gradient, `hyper` the traced scalars (`f64[]`, in [`Optimizer::hyper_names`]
    /// order). Reads and writes the optimiser's own variables with [`Tracer::read_var`] /
    /// [`Tracer::write_var`]; returns the new parameter values (the caller writes them).
    fn trace_update(
        &self,
        tr: &Tracer,
        params: &[(Variable, Tensor)],
        grads: &[Tensor],
        hyper: &[Tensor],
    ) -> Result<Vec<Tensor>, TraceError>;
}

/// Scales `grads` so their global L2 norm is at most `max_norm`:
/// `g * min(1, max_norm / (norm + 1e-12))` (traced).
pub fn clip_by_global_norm(grads: &[Tensor], max_norm: f64) -> Vec<Tensor> {
    let Some(first) = grads.first() else {
        return vec![];
    };
    let dt = first.dtype();
    let mut acc = first.full_like(TensorType::scalar(dt), 0.0);
    for g in grads {
        acc = acc + g.cast(dt).square().sum_all();
    }
    let norm = acc.sqrt();
    let one = first.full_like(TensorType::scalar(dt), 1.0);
    let scale = (max_norm / (norm + 1e-12)).minimum(&one);
    grads.iter().map(|g| g * &scale.cast(g.dtype())).collect()
}

/// A hyper scalar (`f64[]`) converted to the element type of `like`.
pub(crate) fn hyper_as(h: &Tensor, like: &Tensor) -> Tensor {
    if like.dtype() == DType::F64 {
        h.clone()
    } else {
        h.cast(like.dtype())
    }
}

/// Per-parameter optimiser state: `k` zero-initialised variables per registered parameter,
/// visited as `<name>.<param path>`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    names: Vec<&'static str>,
    /// (param path, param id, one variable per name)
    slots: Vec<(String, u64, Vec<Variable>)>,
}

impl Slots {
    pub(crate) fn new(names: &[&'static str]) -> Slots {
        Slots {
            names: names.to_vec(),
            slots: vec![],
        }
    }

    pub(crate) fn register(&mut self, params: &[(String, Variable)]) {
        for (path, v) in params {
            if self.slots.iter().any(|(_, id, _)| *id == v.id()) {
                continue;
            }
            let vars = self
                .names
                .iter()
                .map(|_| Variable::constant(Array::zeros(v.ty().clone())))
                .collect();
            self.slots.push((path.clone(), v.id(), vars));
        }
    }

    pub(crate) fn get(&self, param: &Variable) -> Result<&[Variable], TraceError> {
        self.slots
            .iter()
            .find(|(_, id, _)| *id == param.id())
            .map(|(_, _, v)| v.as_slice())
            .ok_or_else(|| TraceError::Op {
                op: "optimizer update".into(),
                msg: format!(
                    "parameter of type {} was not registered with the optimiser",
                    param.ty()
                ),
            })
    }

    pub(crate) fn visit(&self, f: &mut dyn FnMut(&str, &Variable)) {
        for (path, _, vars) in &self.slots {
            for (n, v) in self.names.iter().zip(vars) {
                f(&format!("{n}.{path}"), v);
            }
        }
    }

    pub(crate) fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        for (path, _, vars) in &mut self.slots {
            for (n, v) in self.names.iter().zip(vars) {
                f(&format!("{n}.{path}"), v);
            }
        }
    }
}

pub(crate) fn check_counts(
    params: usize,
    grads: usize,
    hyper: usize,
    want_hyper: usize,
) -> Result<(), TraceError> {
    if params != grads || hyper != want_hyper {
        return Err(TraceError::Op {
            op: "optimizer update".into(),
            msg: format!(
                "got {params} parameters, {grads} gradients and {hyper} hyper scalars; expected equal parameter and gradient counts and {want_hyper} scalars"
            ),
        });
    }
    Ok(())
}
