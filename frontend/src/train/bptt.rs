//! Back-propagation through time: BrainPy's `BPTT` trainer (spec §4).
//!
//! [`Bptt::fit`] runs, for every epoch and every `(inputs, targets)` batch (batch-first
//! `(B, T, F)`):
//! 1. `model.reset_state(B)` (state reset before every batch, as BrainPy);
//! 2. one compiled [`TrainStep`]: the traced reset ([`Module::reset_state_traced`], so a
//!    trainable initial state is differentiated), the forward `scan` over time, the loss
//!    `loss(predictions (B, T, out), targets, &ModelView)`, the reverse scan and the optimiser
//!    update. The step is traced and compiled once per distinct pair of input/target types and
//!    reused;
//! 3. the batch loss is recorded. A non-finite loss stops training with an error naming the
//!    epoch and the batch.
//!
//! After each epoch the optimiser's epoch counter advances ([`Optimizer::step_epoch`]), the
//! epoch metric is the mean of the batch losses, and a line
//! `Train {e} epoch, use {secs:.4} s, loss {loss}` is printed (loss in Rust's shortest
//! round-trip form, like Python's `repr`). A progress bar is drawn on stderr when it is a
//! terminal.

use crate::autograd::TrainStep;
use crate::exec::{Bound, swap01, trace_over_time};
use crate::optim::Optimizer;
use crate::trace::{Tensor, Tracer};
use crate::vars::{Module, VarOwner, named_vars, state_vars, train_vars};
use crate::{Array, Error, Result, TraceError};
use brainlift_ir::TensorType;
use brainlift_runtime::Backend;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Instant;

/// The model as seen from inside a traced loss: its variables as traced tensors.
pub struct ModelView<'a> {
    tr: Tracer,
    model: &'a dyn VarOwner,
}

impl<'a> ModelView<'a> {
    /// A view of `model`'s variables in the trace `tr`.
    pub fn new(tr: &Tracer, model: &'a dyn VarOwner) -> ModelView<'a> {
        ModelView {
            tr: tr.clone(),
            model,
        }
    }

    /// The traced values of every trainable variable (BrainPy's `model.train_vars()`), in
    /// visiting order; e.g. for `l2_norm(&view.train_vars())`.
    pub fn train_vars(&self) -> Vec<Tensor> {
        train_vars(self.model)
            .iter()
            .map(|(_, v)| self.tr.read_var(v))
            .collect()
    }

    /// The traced value of the variable at `path` (`rnn.Wh`), if any.
    pub fn var(&self, path: &str) -> Option<Tensor> {
        named_vars(self.model)
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| self.tr.read_var(&v))
    }

    /// The tracer.
    pub fn tracer(&self) -> &Tracer {
        &self.tr
    }
}

/// A source of training batches `(inputs (B, T, F), targets (B, T, out))`, iterated once per
/// epoch. Implemented by `Vec`s and slices of pairs (re-iterated each epoch) and by closures
/// returning a fresh iterator per epoch (BrainPy's callable `train_data`).
pub trait TrainData {
    /// The batches of one epoch.
    fn batches(&mut self) -> Box<dyn Iterator<Item = (Array, Array)> + '_>;
}

impl TrainData for Vec<(Array, Array)> {
    fn batches(&mut self) -> Box<dyn Iterator<Item = (Array, Array)> + '_> {
        Box::new(self.iter().cloned())
    }
}

impl TrainData for &[(Array, Array)] {
    fn batches(&mut self) -> Box<dyn Iterator<Item = (Array, Array)> + '_> {
        Box::new(self.iter().cloned())
    }
}

impl<F, I> TrainData for F
where
    F: FnMut() -> I,
    I: IntoIterator<Item = (Array, Array)>,
    I::IntoIter: 'static,
{
    fn batches(&mut self) -> Box<dyn Iterator<Item = (Array, Array)> + '_> {
        Box::new(self().into_iter())
    }
}

/// Traces `model` over batch-first inputs `xs: (B, T, F)` in `tr` (one `scan` whose carry is
/// the model's states, starting from their current traced values); returns `(B, T, out)`.
pub fn forward_over_time(
    tr: &Tracer,
    model: &dyn Module,
    xs: &Tensor,
) -> Result<Tensor, TraceError> {
    let states = state_vars(model);
    let init: Vec<Tensor> = states.iter().map(|(_, v)| tr.read_var(v)).collect();
    let (_, ys) = tr.scan(&init, &[swap01(xs)], None, false, |body, c, x| {
        for ((_, v), t) in states.iter().zip(c) {
            body.write_var(v, t);
        }
        let y = model.update(&x[0]);
        let new: Vec<Tensor> = states.iter().map(|(_, v)| body.read_var(v)).collect();
        Ok((new, vec![y]))
    })?;
    Ok(swap01(&ys[0]))
}

/// The BPTT trainer (see the module doc).
pub struct Bptt<M, L> {
    /// The trained model.
    pub model: M,
    loss: L,
    opt: Box<dyn Optimizer>,
    backend: Backend,
    verbose: bool,
    progress: bool,
    steps: HashMap<(TensorType, TensorType), TrainStep>,
    predictor: Option<(TensorType, Bound)>,
    hist: Vec<f64>,
    detailed: Vec<Vec<f64>>,
    epoch_secs: Vec<f64>,
}

impl<M, L> Bptt<M, L>
where
    M: Module,
    L: Fn(&Tensor, &Tensor, &ModelView<'_>) -> Tensor,
{
    /// A trainer of `model` with `loss(predictions, targets, model_view)` and `optimizer`,
    /// running on the backend named by `BRAINLIFT_BACKEND` (JIT when unset or invalid).
    pub fn new(model: M, loss: L, optimizer: impl Optimizer + 'static) -> Bptt<M, L> {
        Bptt {
            model,
            loss,
            opt: Box::new(optimizer),
            backend: Backend::from_env().unwrap_or_default(),
            verbose: true,
            progress: true,
            steps: HashMap::new(),
            predictor: None,
            hist: vec![],
            detailed: vec![],
            epoch_secs: vec![],
        }
    }

    /// Selects the backend (builder style).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self.steps.clear();
        self.predictor = None;
        self
    }

    /// Turns the per-epoch lines on stdout on or off (builder style; on by default).
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// Turns the terminal progress bar on or off (builder style; on by default, drawn only
    /// when stderr is a terminal).
    pub fn progress_bar(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.opt.as_ref()
    }

    /// Trains for `num_epoch` epochs over `train_data`; returns the per-epoch mean losses of
    /// this call (also appended to [`Bptt::hist_metric`]).
    ///
    /// Errors: zero epochs; an epoch with no batches; inputs that are not float `(B, T, F)`;
    /// targets whose batch or time axis differ from the inputs' (or that the loss rejects); a
    /// non-finite loss (names the epoch and the batch; that step's update is not applied, so
    /// the model keeps the last finite-loss parameters).
    pub fn fit<D: TrainData>(&mut self, mut train_data: D, num_epoch: usize) -> Result<Vec<f64>> {
        if num_epoch == 0 {
            return Err(Error::invalid(
                "Bptt::fit",
                "num_epoch must be at least 1, got 0",
            ));
        }
        let mut out = Vec::with_capacity(num_epoch);
        let e0 = self.hist.len();
        for k in 0..num_epoch {
            let e = e0 + k;
            let start = Instant::now();
            let iter = train_data.batches();
            let bar = (self.progress && std::io::stderr().is_terminal()).then(|| {
                let pb = match iter.size_hint() {
                    (_, Some(n)) => indicatif::ProgressBar::new(n as u64),
                    _ => indicatif::ProgressBar::new_spinner(),
                };
                pb.set_message(format!("epoch {e}"));
                pb
            });
            let mut losses = vec![];
            for (b, (x, y)) in iter.enumerate() {
                let loss = self.train_batch(&x, &y).map_err(|err| {
                    Error::invalid("Bptt::fit", format!("epoch {e}, batch {b}: {err}"))
                })?;
                if !loss.is_finite() {
                    if let Some(pb) = &bar {
                        pb.abandon();
                    }
                    return Err(Error::invalid(
                        "Bptt::fit",
                        format!(
                            "the loss is {loss} at epoch {e}, batch {b}; training stopped (that step's update was not applied)"
                        ),
                    ));
                }
                losses.push(loss);
                if let Some(pb) = &bar {
                    pb.inc(1);
                }
            }
            if let Some(pb) = &bar {
                pb.finish_and_clear();
            }
            if losses.is_empty() {
                return Err(Error::invalid(
                    "Bptt::fit",
                    format!("the training data yielded no batches in epoch {e}"),
                ));
            }
            self.opt.step_epoch();
            let secs = start.elapsed().as_secs_f64();
            let mean = losses.iter().sum::<f64>() / losses.len() as f64;
            if self.verbose {
                println!("Train {e} epoch, use {secs:.4} s, loss {mean}");
            }
            self.hist.push(mean);
            self.detailed.push(losses);
            self.epoch_secs.push(secs);
            out.push(mean);
        }
        Ok(out)
    }

    /// Checks a batch's types and runs one compiled train step; returns the loss.
    fn train_batch(&mut self, x: &Array, y: &Array) -> Result<f64> {
        let (xs, ys) = (x.shape(), y.shape());
        if xs.len() != 3 || !x.dtype().is_float() {
            return Err(Error::invalid(
                "Bptt",
                format!(
                    "inputs must be float (batch, time, features), got {}",
                    x.ty()
                ),
            ));
        }
        if ys.len() < 2 || ys[0] != xs[0] || ys[1] != xs[1] {
            return Err(Error::invalid(
                "Bptt",
                format!(
                    "targets {} do not match inputs {}: expected (batch {}, time {}, ..)",
                    y.ty(),
                    x.ty(),
                    xs[0],
                    xs[1]
                ),
            ));
        }
        if xs[0] == 0 || xs[1] == 0 {
            return Err(Error::invalid(
                "Bptt",
                format!(
                    "empty batch: inputs have shape {:?} (batch and time must be positive)",
                    xs
                ),
            ));
        }
        check_finite("Bptt", "inputs", x)?;
        check_finite("Bptt", "targets", y)?;
        self.model.reset_state(xs[0]);
        let key = (x.ty().clone(), y.ty().clone());
        if !self.steps.contains_key(&key) {
            let model = &self.model;
            let loss = &self.loss;
            let step = TrainStep::new(
                "bptt_step",
                model,
                self.opt.as_mut(),
                &[("xs", key.0.clone()), ("targets", key.1.clone())],
                self.backend,
                |tr, d| {
                    model.reset_state_traced(tr);
                    let preds = forward_over_time(tr, model, &d[0])?;
                    let view = ModelView::new(tr, model);
                    Ok(loss(&preds, &d[1], &view))
                },
            )?;
            self.steps.insert(key.clone(), step);
        }
        let step = self.steps.get_mut(&key).expect("inserted above");
        step.step(&mut self.model, self.opt.as_mut(), &[x.clone(), y.clone()])
    }

    /// Resets the model's state for the batch of `x` and runs it over `x: (B, T, F)`; returns
    /// `(B, T, out)`. (The notebook calls `model.reset(B)` before BrainPy's `predict`.)
    pub fn predict(&mut self, x: &Array) -> Result<Array> {
        check_predict_inputs("Bptt::predict", x)?;
        self.model.reset_state(x.shape()[0]);
        self.run_predictor(x)
    }

    /// Runs the model over `x` from its current state (BrainPy's `predict(reset_state=False)`).
    ///
    /// The model's states must fit the batch of `x` (e.g. after [`Bptt::predict`] on a batch of
    /// the same size); otherwise the error names the states and suggests [`Bptt::predict`].
    pub fn predict_continue(&mut self, x: &Array) -> Result<Array> {
        check_predict_inputs("Bptt::predict_continue", x)?;
        self.run_predictor(x).map_err(|e| self.state_context(x, e))
    }

    /// Runs the (cached) compiled forward pass over `x` from the current state.
    fn run_predictor(&mut self, x: &Array) -> Result<Array> {
        let fresh = !matches!(&self.predictor, Some((t, _)) if t == x.ty());
        if fresh {
            let (f, b) = trace_over_time("predict", &self.model, x.ty(), true)?;
            self.predictor = Some((x.ty().clone(), Bound::compile(&f, b, self.backend)?));
        }
        let (_, bound) = self.predictor.as_mut().expect("compiled above");
        let mut out = bound.run(&mut self.model, std::slice::from_ref(x))?;
        Ok(out.remove(0))
    }

    /// `err` with the inputs' type and the model's state types when a state's leading
    /// (batch) axis differs from the batch of `x`, the usual cause of a failed
    /// [`Bptt::predict_continue`]; `err` itself otherwise.
    fn state_context(&self, x: &Array, err: Error) -> Error {
        let vars = state_vars(&self.model);
        if vars
            .iter()
            .all(|(_, v)| v.ty().dims().first() == Some(&x.shape()[0]))
        {
            return err;
        }
        let states: Vec<String> = vars
            .iter()
            .map(|(p, v)| format!("{p} {}", v.ty()))
            .collect();
        Error::invalid(
            "Bptt::predict_continue",
            format!(
                "inputs {} do not fit the model's current states ({}); call predict to reset them for this batch: {err}",
                x.ty(),
                states.join(", ")
            ),
        )
    }

    /// The per-epoch history of a metric. Only `"loss"` exists: the epoch means (BrainPy's
    /// `get_hist_metric(metric='loss', which='report')`); the per-batch losses are
    /// [`Bptt::detailed_losses`]. Another name is an error.
    pub fn hist_metric(&self, name: &str) -> Result<&[f64]> {
        match name {
            "loss" => Ok(&self.hist),
            other => Err(Error::invalid(
                "Bptt::hist_metric",
                format!("unknown metric '{other}': expected 'loss'"),
            )),
        }
    }

    /// Every batch loss, one vector per epoch (BrainPy's `which='detailed'`).
    pub fn detailed_losses(&self) -> &[Vec<f64>] {
        &self.detailed
    }

    /// Wall-clock seconds of every epoch so far.
    pub fn epoch_seconds(&self) -> &[f64] {
        &self.epoch_secs
    }
}

/// An error naming the first non-finite value of `a`, if any: NaN or infinite data would only
/// give NaN losses, gradients or predictions.
fn check_finite(op: &str, what: &str, a: &Array) -> Result<()> {
    let vals = a.to_f64_vec();
    match vals.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::invalid(
            op,
            format!(
                "{what} have a non-finite value ({}) at flat index {i}",
                vals[i]
            ),
        )),
        None => Ok(()),
    }
}

/// The checks of a prediction's inputs: rank 3 (batch, time, features) and finite.
fn check_predict_inputs(op: &str, x: &Array) -> Result<()> {
    if x.shape().len() != 3 {
        return Err(Error::invalid(
            op,
            format!("inputs must be (batch, time, features), got {}", x.ty()),
        ));
    }
    check_finite(op, "inputs", x)
}
