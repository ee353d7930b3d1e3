//! Running models over sequences with monitors (BrainPy's `DSRunner`, spec §12), and
//! [`for_loop`], the traced loop over the time axis used to write custom training losses
//! (BrainPy's `bm.for_loop`, spec §11).
//!
//! [`Runner::run`] traces *one* `scan` over time whose carry is the model's states, whose
//! loop invariants are its parameters and whose per-step outputs are the model output plus
//! every monitored variable's value **after** the step's update (`V` after the reset, spikes
//! as 0/1 floats). The compiled function is cached and reused while the input type, the
//! state types and `dt` stay the same. Cost per run: one call of the compiled scan; memory
//! `T × (out + monitored sizes)`.

use crate::exec::{Binding, Bound, binding_of, swap01};
use crate::trace::{Tensor, Tracer};
use crate::vars::{Module, VarOwner, Variable, named_vars, state_vars};
use crate::{Array, Error, Result, TraceError, get_dt};
use brainlift_ir::TensorType;
use brainlift_runtime::Backend;
use std::collections::BTreeMap;

/// `for_loop(states, xs, step)`: a traced loop over the leading (time) axis of `xs`, carrying
/// every state variable of `states` through the loop (BrainPy's `bm.for_loop`, time-first).
///
/// `step(x_t)` gets one slice of each `xs` (`(B, F)` for `xs` of shape `(T, B, F)`), updates
/// the model (reads/writes its variables through the tracer) and returns per-step outputs,
/// which come back stacked over time (`(T, ...)`). After the loop the states are bound to
/// their final values in the enclosing trace, so code traced afterwards (or the traced
/// function's outputs) sees the mutated states, as in BrainPy. Parameters used in `step` are
/// captured as loop invariants, so the loop is differentiable with respect to them.
///
/// Errors: `xs` empty or with different leading axes, or any error recorded while tracing the
/// step (e.g. a layer rejecting its input width).
pub fn for_loop<F>(
    states: &dyn VarOwner,
    xs: &[Tensor],
    mut step: F,
) -> Result<Vec<Tensor>, TraceError>
where
    F: FnMut(&[Tensor]) -> Vec<Tensor>,
{
    let Some(first) = xs.first() else {
        return Err(TraceError::Op {
            op: "for_loop".into(),
            msg: "needs at least one per-step input".into(),
        });
    };
    let tr = first.tracer().clone();
    let svars: Vec<(String, Variable)> = state_vars(states);
    let init: Vec<Tensor> = svars.iter().map(|(_, v)| tr.read_var(v)).collect();
    let (carry, ys) = tr.scan(&init, xs, None, false, |body, c, x| {
        for ((_, v), t) in svars.iter().zip(c) {
            body.write_var(v, t);
        }
        let ys = step(x);
        body.check()?;
        let new: Vec<Tensor> = svars.iter().map(|(_, v)| body.read_var(v)).collect();
        Ok((new, ys))
    })?;
    for ((_, v), c) in svars.iter().zip(&carry) {
        tr.write_var(v, c);
    }
    Ok(ys)
}

/// Which input axis is time (BrainPy's `data_first_axis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DataAxis {
    /// `(T, B, F)`: time first (`'T'`).
    #[default]
    Time,
    /// `(B, T, F)`: batch first (`'B'`).
    Batch,
}

/// What [`Runner::run`] returns.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Model outputs, `(T, B, out)` (or `(B, T, out)` for [`DataAxis::Batch`]).
    pub outputs: Array,
    /// Monitored values by key, `(T, B, N)` (or `(B, T, N)`), recorded after every update.
    pub monitors: BTreeMap<String, Array>,
    /// Times of the steps, `(i0 + i)·dt`.
    pub ts: Vec<f64>,
}

impl RunOutput {
    /// The monitor named `key`.
    pub fn mon(&self, key: &str) -> Result<&Array> {
        self.monitors.get(key).ok_or_else(|| {
            Error::invalid(
                "Runner",
                format!(
                    "no monitor '{key}'; monitors are {:?}",
                    self.monitors.keys().collect::<Vec<_>>()
                ),
            )
        })
    }
}

struct Cached {
    key: (TensorType, Vec<TensorType>, u64),
    bound: Bound,
}

/// Runs a model over input sequences and records monitored variables at every step.
///
/// ```no_run
/// # use brainlift::runner::Runner;
/// # fn demo(net: brainlift::dyn_::Lif, xs: &brainlift::Array) -> brainlift::Result<()> {
/// let mut runner = Runner::new(net).monitor("r.spike", "spike").monitor("r.V", "V");
/// let out = runner.run(xs, true)?; // xs: (T, B, N)
/// let spikes = out.mon("r.spike")?; // (T, B, N)
/// # Ok(()) }
/// ```
pub struct Runner<M: Module> {
    model: M,
    monitors: Vec<(String, String)>,
    axis: DataAxis,
    backend: Backend,
    check_finite: bool,
    dt: Option<f64>,
    i0: usize,
    cache: Option<Cached>,
}

impl<M: Module> Runner<M> {
    /// A runner for `model`: time-first data, the backend from `BRAINLIFT_BACKEND` (JIT when
    /// unset or unparsable), non-finite states rejected.
    pub fn new(model: M) -> Runner<M> {
        Runner {
            model,
            monitors: vec![],
            axis: DataAxis::Time,
            backend: Backend::from_env().unwrap_or_default(),
            check_finite: true,
            dt: None,
            i0: 0,
            cache: None,
        }
    }

    /// Records the variable at `path` (e.g. `r.V`, as listed by [`named_vars`]) under `key`.
    /// Unknown paths are reported by [`Runner::run`].
    pub fn monitor(mut self, key: impl Into<String>, path: impl Into<String>) -> Runner<M> {
        self.monitors.push((key.into(), path.into()));
        self.cache = None;
        self
    }

    /// Selects the data layout (time-first by default).
    pub fn data_first_axis(mut self, axis: DataAxis) -> Runner<M> {
        self.axis = axis;
        self.cache = None;
        self
    }

    /// Selects the backend.
    pub fn backend(mut self, backend: Backend) -> Runner<M> {
        self.backend = backend;
        self.cache = None;
        self
    }

    /// Whether a non-finite state or output after a run is an error (default true).
    pub fn check_finite(mut self, on: bool) -> Runner<M> {
        self.check_finite = on;
        self
    }

    /// Fixes the `dt` used for [`RunOutput::ts`] (default: [`get_dt`] at run time). Layers
    /// read their own `dt` (explicit or global) when traced.
    pub fn dt(mut self, dt: f64) -> Runner<M> {
        self.dt = Some(dt);
        self
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, mutably (e.g. to train it between runs).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Gives the model back.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Runs the model over `inputs` (`(T, B, F..)` time-first, or `(B, T, F..)`). With
    /// `reset_state` the model's states are reset for batch `B` first and the step counter
    /// restarts at 0.
    pub fn run(&mut self, inputs: &Array, reset_state: bool) -> Result<RunOutput> {
        let dims = inputs.shape().to_vec();
        if dims.len() < 2 {
            return Err(Error::invalid(
                "Runner",
                format!(
                    "inputs must have a time and a batch axis, got {}",
                    inputs.ty()
                ),
            ));
        }
        let (t_len, batch) = match self.axis {
            DataAxis::Time => (dims[0], dims[1]),
            DataAxis::Batch => (dims[1], dims[0]),
        };
        if reset_state {
            self.model.reset_state(batch);
            self.i0 = 0;
        }
        let dt = self.dt.unwrap_or_else(get_dt);
        let state_tys: Vec<TensorType> = state_vars(&self.model)
            .iter()
            .map(|(_, v)| v.ty().clone())
            .collect();
        let key = (inputs.ty().clone(), state_tys, get_dt().to_bits());
        if self.cache.as_ref().is_none_or(|c| c.key != key) {
            let (f, binding) = self.trace(inputs.ty())?;
            let bound = Bound::compile(&f, binding, self.backend)?;
            self.cache = Some(Cached { key, bound });
        }
        let cached = self.cache.as_mut().expect("compiled above");
        let mut outs = cached
            .bound
            .run(&mut self.model, std::slice::from_ref(inputs))?
            .into_iter();
        let outputs = outs.next().expect("the runner returns the outputs first");
        let monitors: BTreeMap<String, Array> = self
            .monitors
            .iter()
            .map(|(k, _)| k.clone())
            .zip(outs)
            .collect();
        if self.check_finite {
            crate::dyn_::check_finite_states("Runner", &self.model)?;
            for (k, a) in monitors
                .iter()
                .chain(std::iter::once((&"outputs".to_string(), &outputs)))
            {
                if let Some((i, x)) = a
                    .to_f64_vec()
                    .iter()
                    .enumerate()
                    .find(|(_, x)| !x.is_finite())
                {
                    return Err(Error::invalid(
                        "Runner",
                        format!(
                            "monitor '{k}' {} became non-finite ({x} at flat index {i})",
                            a.ty()
                        ),
                    ));
                }
            }
        }
        let ts = (0..t_len).map(|i| (self.i0 + i) as f64 * dt).collect();
        self.i0 += t_len;
        Ok(RunOutput {
            outputs,
            monitors,
            ts,
        })
    }

    fn trace(&self, x_ty: &TensorType) -> Result<(brainlift_ir::Function, Binding)> {
        let all = named_vars(&self.model);
        let mon_vars: Vec<Variable> = self
            .monitors
            .iter()
            .map(|(k, p)| {
                all.iter().find(|(path, _)| path == p).map(|(_, v)| v.clone()).ok_or_else(|| {
                    Error::invalid(
                        "Runner",
                        format!(
                            "monitor '{k}': the model has no variable '{p}'; variables are {:?}",
                            all.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>()
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let tr = Tracer::new("runner");
        tr.name_vars(&self.model, "");
        let xs_in = tr.input("xs", x_ty.clone());
        let batch_first = self.axis == DataAxis::Batch;
        let xs = if batch_first { swap01(&xs_in) } else { xs_in };
        let states = state_vars(&self.model);
        let init: Vec<Tensor> = states.iter().map(|(_, v)| tr.read_var(v)).collect();
        let model = &self.model;
        let (carry, ys) = tr.scan(&init, &[xs], None, false, |body, c, x| {
            for ((_, v), t) in states.iter().zip(c) {
                body.write_var(v, t);
            }
            let y = model.update(&x[0]);
            body.check()?;
            let new: Vec<Tensor> = states.iter().map(|(_, v)| body.read_var(v)).collect();
            let mut ys = vec![y];
            ys.extend(mon_vars.iter().map(|v| body.read_var(v)));
            Ok((new, ys))
        })?;
        let mut outs = Vec::new();
        for (i, y) in ys.into_iter().enumerate() {
            let y = if batch_first { swap01(&y) } else { y };
            let name = if i == 0 {
                "outputs".to_string()
            } else {
                format!("mon.{}", self.monitors[i - 1].0)
            };
            outs.push((name, y));
        }
        let first_state = outs.len();
        let mut state_outputs = vec![];
        for (i, ((path, v), c)) in states.iter().zip(carry).enumerate() {
            outs.push((format!("state.{path}"), c));
            state_outputs.push((first_state + i, v.id()));
        }
        let f = tr.finish(&outs)?;
        let binding = binding_of(&tr, f.params.len(), &state_outputs);
        Ok((f, binding))
    }
}

/// A mutable borrow of a module is a module (so a [`Runner`] can borrow a model).
impl<M: Module + ?Sized> Module for &mut M {
    fn update(&self, x: &Tensor) -> Tensor {
        (**self).update(x)
    }

    fn reset_state_traced(&self, tr: &Tracer) {
        (**self).reset_state_traced(tr)
    }

    fn reset_state(&mut self, batch: usize) {
        (**self).reset_state(batch)
    }
}

impl<M: VarOwner + ?Sized> VarOwner for &mut M {
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable)) {
        (**self).visit_vars(f)
    }

    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        (**self).visit_vars_mut(f)
    }
}
