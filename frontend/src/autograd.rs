//! Differentiating models: `bm.grad`-style gradient functions and fused training steps.
//!
//! This is the machinery trainers share (BPTT, surrogate-gradient spiking networks):
//!
//! * [`trace_loss`] traces a loss closure once. The closure reads the model's variables through
//!   the tracer ([`Tracer::read_var`], usually by calling the model's `update`) and receives the
//!   traced data inputs. The differentiated variables become the first inputs of the traced
//!   function (in the order given), then the data, then any other variable the loss reads
//!   (states, fixed parameters). States the loss writes become extra outputs.
//! * [`grad`] is BrainPy's `bm.grad(f, grad_vars, return_value=True)`: it differentiates the
//!   traced loss with reverse-mode AD ([`brainlift_compiler::ad`]), simplifies and compiles
//!   it, and returns a [`GradFn`] whose [`GradFn::call`] gives `(gradients by path, loss)` and
//!   writes the states the loss mutated back into the model.
//! * [`TrainStep`] is ONE compiled function: the loss (including any scan over time), its
//!   gradient (the reverse scan), optional gradient clipping, and the optimiser's traced
//!   update. The model's trainable variables and the optimiser's moments are read as inputs
//!   and written back as outputs ([`Bound::run_with`]); the host scalars of the optimiser
//!   (scheduled learning rate, bias correction) are data inputs, so the compiled function is
//!   reused for every step. States are *not* written back by a train step (trainers reset
//!   them before each batch).
//! * [`ApplyGradients`] compiles just the optimiser update, for gradients computed elsewhere
//!   (`grads, loss = grad_fn(..); opt.update(grads)`).
//!
//! Cost: tracing and AD are linear in the size of the loss function; compiling happens once
//! per [`GradFn`] / [`TrainStep`]; each call runs the compiled function once.

use crate::exec::{Binding, Bound, binding_of, vars_by_id};
use crate::optim::{Optimizer, clip_by_global_norm};
use crate::trace::{Tensor, Tracer};
use crate::vars::{VarOwner, Variable, train_vars};
use crate::{Array, Error, Result, TraceError};
use brainlift_compiler::pipeline::{PipelineConfig, run_pipeline};
use brainlift_ir::{DType, Function, TensorType};
use brainlift_runtime::{Backend, RuntimeError};
use std::collections::HashMap;

/// Runs the compiler's simplification pipeline ([`brainlift_compiler::pipeline`], stage
/// `simplified` with `finalize`: custom-VJP inlining, `stop_gradient` removal, then rounds of
/// algebraic identities, constant folding, CSE and DCE; scans are kept) on a function that
/// will only be executed, not differentiated again.
pub fn simplify(f: &Function) -> Result<Function> {
    let cfg = PipelineConfig {
        grad: None,
        unroll_threshold: None,
        finalize: true,
        verify: false,
        max_rounds: 4,
        lower: None,
    };
    let report = run_pipeline(f, &cfg).map_err(|e| Error::invalid("simplify", e.to_string()))?;
    Ok(report.output().clone())
}

fn ad_err(e: brainlift_compiler::ad::AdError) -> Error {
    Error::Runtime(RuntimeError::Ad(e))
}

/// A traced loss function (see the module doc for the input/output layout).
#[derive(Clone, Debug)]
pub struct LossTrace {
    /// The function: inputs `(wrt vars.., data.., other vars..)`, outputs `(loss, states..)`.
    pub function: Function,
    /// The differentiated variables (inputs `0..wrt.len()`), by path.
    pub wrt: Vec<(String, Variable)>,
    /// Binding of the inputs to variables, and of the state outputs to variables.
    pub binding: Binding,
}

/// Traces `loss(tracer, data)` (a float scalar) over `model`'s variables, with the variables
/// `wrt` as the first inputs and `data` (`(name, type)`) next. See the module doc.
pub fn trace_loss<F>(
    name: &str,
    model: &dyn VarOwner,
    wrt: &[(String, Variable)],
    data: &[(&str, TensorType)],
    write_states: bool,
    loss: F,
) -> Result<LossTrace>
where
    F: FnOnce(&Tracer, &[Tensor]) -> Result<Tensor, TraceError>,
{
    let tr = Tracer::new(name);
    tr.name_vars(model, "");
    for (_, v) in wrt {
        tr.read_var(v);
    }
    let data_t: Vec<Tensor> = data
        .iter()
        .map(|(n, ty)| tr.input(*n, ty.clone()))
        .collect();
    let l = loss(&tr, &data_t)?;
    tr.check()?;
    if l.rank() != 0 || !l.dtype().is_float() {
        return Err(Error::invalid(
            name,
            format!("the loss must be a float scalar, got {}", l.ty()),
        ));
    }
    let mut outs = vec![("loss".to_string(), l)];
    let mut state_out = vec![];
    if write_states {
        for (path, t, id) in written_outputs(&tr, model) {
            state_out.push((outs.len(), id));
            outs.push((format!("state.{path}"), t));
        }
    }
    let f = tr.finish(&outs)?;
    let binding = binding_of(&tr, f.params.len(), &state_out);
    Ok(LossTrace {
        function: f,
        wrt: wrt.to_vec(),
        binding,
    })
}

/// The final traced value of every variable written in `tr` (root level), with its path.
fn written_outputs(tr: &Tracer, owner: &dyn VarOwner) -> Vec<(String, Tensor, u64)> {
    let by_id = vars_by_id(owner);
    written_outputs_named(tr, &|id| by_id.get(&id).map(|(p, _)| p.clone()))
}

fn written_outputs_named(
    tr: &Tracer,
    name: &dyn Fn(u64) -> Option<String>,
) -> Vec<(String, Tensor, u64)> {
    let ids = tr.written_vars();
    let mut out = vec![];
    for id in ids {
        let idx = tr.state.borrow().var_bindings.get(&id).copied();
        if let Some(idx) = idx {
            let path = name(id).unwrap_or_else(|| format!("var{id}"));
            out.push((path, tr.tensor_at(idx), id));
        }
    }
    out
}

/// A compiled gradient function (see [`grad`]).
pub struct GradFn {
    bound: Bound,
    paths: Vec<String>,
}

impl GradFn {
    /// Runs with the current values of `model`'s variables and `data`; returns the gradients
    /// `(path, gradient)` in the order of the differentiated variables, and the loss. States
    /// the loss wrote are stored back into `model`.
    pub fn call(
        &mut self,
        model: &mut dyn VarOwner,
        data: &[Array],
    ) -> Result<(Vec<(String, Array)>, f64)> {
        let mut outs = self.bound.run(model, data)?.into_iter();
        let loss = outs
            .next()
            .and_then(|l| l.item())
            .ok_or_else(|| Error::invalid("GradFn", "no loss output"))?;
        let grads = self.paths.iter().cloned().zip(outs).collect();
        Ok((grads, loss))
    }

    /// The compiled gradient function (inputs as [`trace_loss`], outputs
    /// `(loss, states.., gradients..)`).
    pub fn function(&self) -> &Function {
        self.bound.function()
    }
}

/// BrainPy's `bm.grad(f, grad_vars, return_value=True)`: traces `loss` once (see
/// [`trace_loss`]), differentiates it w.r.t. `grad_vars`, simplifies and compiles it.
///
/// Errors: a loss that is not a float scalar, a trace error in the loss, a non-float
/// variable in `grad_vars`.
pub fn grad<F>(
    model: &dyn VarOwner,
    grad_vars: &[(String, Variable)],
    data: &[(&str, TensorType)],
    backend: Backend,
    loss: F,
) -> Result<GradFn>
where
    F: FnOnce(&Tracer, &[Tensor]) -> Result<Tensor, TraceError>,
{
    let lt = trace_loss("loss", model, grad_vars, data, true, loss)?;
    let f = &lt.function;
    let wrt: Vec<usize> = (0..lt.wrt.len()).collect();
    let g = if f.outputs.len() == 1 {
        brainlift_compiler::ad::value_and_grad(f, &wrt).map_err(ad_err)?
    } else {
        // Loss plus written states: a VJP seeded with 1 for the loss and 0 for the states.
        let v = brainlift_compiler::ad::vjp(f, &wrt).map_err(ad_err)?;
        let tr = Tracer::new("loss_grad");
        let mut args: Vec<Tensor> = f
            .params
            .iter()
            .map(|p| tr.input(p.name.clone(), p.ty.clone()))
            .collect();
        for (i, o) in f.outputs.iter().enumerate() {
            let ty = f.ty(o.value).clone();
            let seed = if i == 0 { 1.0 } else { 0.0 };
            args.push(tr.push1(
                brainlift_ir::Op::Constant(brainlift_ir::Constant::splat(ty, seed)),
                &[],
            ));
        }
        let outs = tr.call(&v, &args)?;
        let names: Vec<String> = f
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .chain(lt.wrt.iter().map(|(p, _)| format!("grad.{p}")))
            .collect();
        let named: Vec<(String, Tensor)> = names.into_iter().zip(outs).collect();
        tr.finish(&named)?
    };
    let g = simplify(&g)?;
    let bound = Bound::compile(&g, lt.binding.clone(), backend)?;
    Ok(GradFn {
        bound,
        paths: lt.wrt.iter().map(|(p, _)| p.clone()).collect(),
    })
}

/// Traces the optimiser update of `params` with gradients `grads` into `tr` (clipping first
/// if the optimiser asks), declaring the hyper scalars as inputs `hyper.<name>`, and writes
/// the new parameter values.
fn trace_opt_update(
    tr: &Tracer,
    opt: &dyn Optimizer,
    params: &[(String, Variable)],
    grads: Vec<Tensor>,
) -> Result<(), TraceError> {
    let grads = match opt.clip_norm() {
        Some(c) => clip_by_global_norm(&grads, c),
        None => grads,
    };
    let hyper: Vec<Tensor> = opt
        .hyper_names()
        .iter()
        .map(|n| tr.input(format!("hyper.{n}"), TensorType::scalar(DType::F64)))
        .collect();
    let pt: Vec<(Variable, Tensor)> = params
        .iter()
        .map(|(_, v)| (v.clone(), tr.read_var(v)))
        .collect();
    let new = opt.trace_update(tr, &pt, &grads, &hyper)?;
    for ((_, v), n) in params.iter().zip(&new) {
        tr.write_var(v, n);
    }
    tr.check()
}

/// Finishes a root trace whose outputs are `first` then every written variable; returns the
/// bound function.
fn finish_with_writes(
    tr: &Tracer,
    first: Vec<(String, Tensor)>,
    model: &dyn VarOwner,
    opt: &dyn VarOwner,
    backend: Backend,
) -> Result<Bound> {
    let mut names: HashMap<u64, String> = HashMap::new();
    model.visit_vars(&mut |p, v| {
        names.insert(v.id(), p.to_string());
    });
    opt.visit_vars(&mut |p, v| {
        names.insert(v.id(), format!("opt.{p}"));
    });
    let mut outs = first;
    let mut var_outputs = vec![];
    for (path, t, id) in written_outputs_named(tr, &|id| names.get(&id).cloned()) {
        var_outputs.push((outs.len(), id));
        outs.push((format!("new.{path}"), t));
    }
    let f = tr.finish(&outs)?;
    let binding = binding_of(tr, f.params.len(), &var_outputs);
    let f = simplify(&f)?;
    Bound::compile(&f, binding, backend)
}

/// One compiled training step: loss, gradient, optimiser update (see the module doc).
pub struct TrainStep {
    bound: Bound,
    num_data: usize,
}

impl TrainStep {
    /// Traces `loss(tracer, data)` over `model`, differentiates it w.r.t. every trainable
    /// variable of `model` ([`train_vars`]), registers those with `opt`, and compiles loss +
    /// gradient + update into one function for `backend`.
    pub fn new<F>(
        name: &str,
        model: &dyn VarOwner,
        opt: &mut dyn Optimizer,
        data: &[(&str, TensorType)],
        backend: Backend,
        loss: F,
    ) -> Result<TrainStep>
    where
        F: FnOnce(&Tracer, &[Tensor]) -> Result<Tensor, TraceError>,
    {
        let params = train_vars(model);
        if params.is_empty() {
            return Err(Error::invalid(name, "the model has no trainable variables"));
        }
        opt.register(&params)?;
        let lt = trace_loss(&format!("{name}_loss"), model, &params, data, false, loss)?;
        let wrt: Vec<usize> = (0..params.len()).collect();
        let g = brainlift_compiler::ad::value_and_grad(&lt.function, &wrt).map_err(ad_err)?;
        let by_id = vars_by_id(model);
        let tr = Tracer::new(name);
        tr.name_vars(model, "");
        tr.name_vars(opt, "opt");
        let var_at: HashMap<usize, u64> = lt
            .binding
            .var_inputs
            .iter()
            .map(|&(id, p)| (p, id))
            .collect();
        let mut args = Vec::with_capacity(g.params.len());
        for (i, p) in g.params.iter().enumerate() {
            match var_at.get(&i) {
                Some(id) => {
                    let (_, v) = &by_id[id];
                    args.push(tr.read_var(v));
                }
                None => args.push(tr.input(p.name.clone(), p.ty.clone())),
            }
        }
        let mut outs = tr.call(&g, &args)?.into_iter();
        let loss_t = outs
            .next()
            .ok_or_else(|| Error::invalid(name, "gradient function has no outputs"))?;
        let grads: Vec<Tensor> = outs.collect();
        trace_opt_update(&tr, opt, &params, grads)?;
        let bound = finish_with_writes(&tr, vec![("loss".into(), loss_t)], model, opt, backend)?;
        Ok(TrainStep {
            bound,
            num_data: data.len(),
        })
    }

    /// Runs one step on `data`: updates `model`'s trainable variables and `opt`'s moments in
    /// place, advances the optimiser's counters, and returns the loss (before the update).
    /// When the loss is not finite nothing is updated (variables and counters stay as they
    /// were) and the loss is returned for the caller to report.
    pub fn step(
        &mut self,
        model: &mut dyn VarOwner,
        opt: &mut dyn Optimizer,
        data: &[Array],
    ) -> Result<f64> {
        if data.len() != self.num_data {
            return Err(Error::invalid(
                "TrainStep::step",
                format!("expected {} data arrays, got {}", self.num_data, data.len()),
            ));
        }
        // The data by reference (a data set reused at every step is not copied); the
        // optimiser's per-step scalars after it.
        let hyper: Vec<Array> = opt
            .next_hyper()
            .into_iter()
            .map(Array::scalar_f64)
            .collect();
        let all: Vec<&Array> = data.iter().chain(&hyper).collect();
        // A non-finite loss leaves every variable (parameters, optimiser state) and the
        // optimiser's update count as they were.
        let finite = |outs: &[Array]| {
            outs.first()
                .and_then(|l| l.item())
                .is_some_and(f64::is_finite)
        };
        let outs = self
            .bound
            .run_refs_if(&mut [model, opt as &mut dyn VarOwner], &all, finite);
        let loss = match outs {
            Ok(o) => o.first().and_then(|l| l.item()),
            Err(e) => {
                opt.rewind_update();
                return Err(e);
            }
        };
        let loss = loss.ok_or_else(|| Error::invalid("TrainStep::step", "no loss output"))?;
        if !loss.is_finite() {
            opt.rewind_update();
        }
        Ok(loss)
    }

    /// The compiled function (inputs: variables, data, `hyper.*`; outputs: loss, new values).
    pub fn function(&self) -> &Function {
        self.bound.function()
    }
}

/// A compiled optimiser update for externally computed gradients (`opt.update(grads)`).
pub struct ApplyGradients {
    bound: Bound,
    num_params: usize,
}

impl ApplyGradients {
    /// Compiles `opt`'s update of `params` (registered with `opt` here); the gradients are
    /// data inputs in the order of `params`.
    pub fn new(
        owner: &dyn VarOwner,
        params: &[(String, Variable)],
        opt: &mut dyn Optimizer,
        backend: Backend,
    ) -> Result<ApplyGradients> {
        opt.register(params)?;
        let tr = Tracer::new("apply_gradients");
        tr.name_vars(owner, "");
        tr.name_vars(opt, "opt");
        for (_, v) in params {
            tr.read_var(v);
        }
        let grads: Vec<Tensor> = params
            .iter()
            .map(|(p, v)| tr.input(format!("grad.{p}"), v.ty().clone()))
            .collect();
        trace_opt_update(&tr, opt, params, grads)?;
        let bound = finish_with_writes(&tr, vec![], owner, opt, backend)?;
        Ok(ApplyGradients {
            bound,
            num_params: params.len(),
        })
    }

    /// Applies one update with `grads` (same order and types as the parameters).
    pub fn apply(
        &mut self,
        owner: &mut dyn VarOwner,
        opt: &mut dyn Optimizer,
        grads: &[Array],
    ) -> Result<()> {
        if grads.len() != self.num_params {
            return Err(Error::invalid(
                "ApplyGradients::apply",
                format!(
                    "expected {} gradients, got {}",
                    self.num_params,
                    grads.len()
                ),
            ));
        }
        let mut all = grads.to_vec();
        all.extend(opt.next_hyper().into_iter().map(Array::scalar_f64));
        self.bound
            .run_with(&mut [owner, opt as &mut dyn VarOwner], &all)?;
        Ok(())
    }
}
