//! Running traced models: compiled functions bound to a module's variables.
//!
//! A [`Bound`] function knows which of its inputs are data (passed by the caller) and which
//! are variables of a module (read from the module at call time), and which outputs are new
//! values of state variables (written back after the call). [`trace_over_time`] builds the
//! standard "run a model over a sequence" function: one `scan` over the time axis whose carry
//! is the model's states and whose loop invariants are its parameters.

use crate::trace::{Tensor, Tracer};
use crate::vars::{Module, VarOwner, Variable, named_vars, state_vars};
use crate::{Array, Error, Result};
use brainlift_ir::{Function, TensorType};
use brainlift_runtime::{Backend, Executable};
use std::collections::HashMap;

/// Where a compiled function's inputs come from and where its outputs go.
#[derive(Clone, Debug, Default)]
pub struct Binding {
    /// Input positions of data arguments, in the caller's order.
    pub data_inputs: Vec<usize>,
    /// `(variable id, input position)` of inputs read from variables.
    pub var_inputs: Vec<(u64, usize)>,
    /// `(output position, variable id)` of outputs written back to variables.
    pub var_outputs: Vec<(usize, u64)>,
}

/// A function compiled for a backend together with its [`Binding`].
pub struct Bound {
    exe: Box<dyn Executable>,
    binding: Binding,
}

impl Bound {
    /// Compiles `f` for `backend`.
    pub fn compile(f: &Function, binding: Binding, backend: Backend) -> Result<Bound> {
        Bound::compile_with(f, binding, backend, &Default::default())
    }

    /// Compiles `f` for `backend` with explicit options.
    pub fn compile_with(
        f: &Function,
        binding: Binding,
        backend: Backend,
        opts: &brainlift_runtime::CompileOptions,
    ) -> Result<Bound> {
        let exe = brainlift_runtime::compile_with(f, backend, opts)?;
        Ok(Bound { exe, binding })
    }

    /// The compiled function.
    pub fn function(&self) -> &Function {
        self.exe.function()
    }

    /// The binding.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// Runs with `data` for the data inputs and the current values of `module`'s variables;
    /// writes state outputs back into `module`; returns the outputs that are not written back.
    pub fn run(&mut self, module: &mut dyn VarOwner, data: &[Array]) -> Result<Vec<Array>> {
        self.run_with(&mut [module], data)
    }

    /// Like [`Bound::run`] with variables drawn from several owners (a model and an optimiser).
    pub fn run_with(
        &mut self,
        owners: &mut [&mut dyn VarOwner],
        data: &[Array],
    ) -> Result<Vec<Array>> {
        self.run_with_if(owners, data, |_| true)
    }

    /// Like [`Bound::run_with`], but the new variable values are written back only when
    /// `accept` holds for the outputs that are not written back (e.g. "the loss is finite",
    /// so a diverging step leaves the parameters as they were); those outputs are returned
    /// either way.
    pub fn run_with_if(
        &mut self,
        owners: &mut [&mut dyn VarOwner],
        data: &[Array],
        accept: impl FnOnce(&[Array]) -> bool,
    ) -> Result<Vec<Array>> {
        let refs: Vec<&Array> = data.iter().collect();
        self.run_refs_if(owners, &refs, accept)
    }

    /// [`Bound::run_with_if`] with the data by reference: nothing is copied on the way in
    /// (variables are read in place too), which matters for a data set passed at every step.
    pub fn run_refs_if(
        &mut self,
        owners: &mut [&mut dyn VarOwner],
        data: &[&Array],
        accept: impl FnOnce(&[Array]) -> bool,
    ) -> Result<Vec<Array>> {
        let f = self.exe.function();
        if data.len() != self.binding.data_inputs.len() {
            return Err(Error::invalid(
                f.name.clone(),
                format!(
                    "expected {} data inputs, got {}",
                    self.binding.data_inputs.len(),
                    data.len()
                ),
            ));
        }
        // The variables' current values by id, as pointers: `visit_vars` hands out references
        // only for the duration of each callback. The owners are not touched again until the
        // write-back below, after the last use of these pointers.
        let mut values: HashMap<u64, *const Array> = HashMap::new();
        for o in owners.iter() {
            o.visit_vars(&mut |_, v| {
                values.insert(v.id(), v.value() as *const Array);
            });
        }
        let mut inputs: Vec<Option<&Array>> = vec![None; f.params.len()];
        for (d, &pos) in data.iter().zip(&self.binding.data_inputs) {
            let want = &f.params[pos];
            if d.ty() != &want.ty {
                return Err(Error::invalid(
                    f.name.clone(),
                    format!("input '{}' expects {}, got {}", want.name, want.ty, d.ty()),
                ));
            }
            inputs[pos] = Some(*d);
        }
        for &(id, pos) in &self.binding.var_inputs {
            let v = values.remove(&id).ok_or_else(|| {
                Error::invalid(
                    f.name.clone(),
                    format!(
                        "input '{}' is a variable the module does not own",
                        f.params[pos].name
                    ),
                )
            })?;
            // SAFETY: `v` points to a variable value of one of `owners`, which are borrowed
            // (not mutated) until the executable has run; see above.
            let v = unsafe { &*v };
            if v.ty() != &f.params[pos].ty {
                return Err(Error::invalid(
                    f.name.clone(),
                    format!(
                        "variable '{}' has type {} but the function was traced for {} (reset the state or retrace)",
                        f.params[pos].name,
                        v.ty(),
                        f.params[pos].ty
                    ),
                ));
            }
            inputs[pos] = Some(v);
        }
        let inputs: Vec<&Array> = inputs
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                a.ok_or_else(|| Error::invalid("Bound::run", format!("input {i} is unbound")))
            })
            .collect::<Result<_>>()?;
        let outs = self.exe.run_refs(&inputs)?;
        drop(inputs);
        let mut writes: HashMap<u64, Array> = HashMap::new();
        let mut rest = Vec::new();
        for (i, o) in outs.into_iter().enumerate() {
            match self.binding.var_outputs.iter().find(|(p, _)| *p == i) {
                Some(&(_, id)) => {
                    writes.insert(id, o);
                }
                None => rest.push(o),
            }
        }
        if !accept(&rest) {
            return Ok(rest);
        }
        let mut err = None;
        for o in owners.iter_mut() {
            o.visit_vars_mut(&mut |_, v| {
                if let Some(a) = writes.remove(&v.id())
                    && let Err(e) = v.set_value(a)
                {
                    err.get_or_insert(e);
                }
            });
        }
        match err {
            Some(e) => Err(e),
            None => Ok(rest),
        }
    }
}

/// The binding of a root tracer after tracing: data inputs are those declared with
/// [`Tracer::input`] that are not variables; `state_outputs` names the outputs that carry
/// new variable values.
pub fn binding_of(tr: &Tracer, num_inputs: usize, state_outputs: &[(usize, u64)]) -> Binding {
    let var_inputs = tr.var_inputs();
    let var_pos: Vec<usize> = var_inputs.iter().map(|(_, p)| *p).collect();
    Binding {
        data_inputs: (0..num_inputs).filter(|p| !var_pos.contains(p)).collect(),
        var_inputs,
        var_outputs: state_outputs.to_vec(),
    }
}

/// Traces `model` over a sequence `xs` of type `x_ty`.
///
/// `batch_first` selects the `(B, T, F..)` layout (BrainPy's default for trainers) instead of
/// time-first `(T, B, F..)`. The function's inputs are `xs` then the model's variables; its
/// outputs are `ys` (same layout as `xs`) then the final value of every state.
pub fn trace_over_time(
    name: &str,
    model: &dyn Module,
    x_ty: &TensorType,
    batch_first: bool,
) -> Result<(Function, Binding)> {
    if x_ty.rank() < 2 {
        return Err(Error::invalid(
            name,
            format!("inputs must have a batch and a time axis, got {x_ty}"),
        ));
    }
    let tr = Tracer::new(name);
    tr.name_vars(model, "");
    let xs_in = tr.input("xs", x_ty.clone());
    let xs = if batch_first { swap01(&xs_in) } else { xs_in };
    let states: Vec<(String, Variable)> = state_vars(model);
    let init: Vec<Tensor> = states.iter().map(|(_, v)| tr.read_var(v)).collect();
    let (carry, ys) = tr.scan(&init, &[xs], None, false, |body, c, x| {
        for ((_, v), t) in states.iter().zip(c) {
            body.write_var(v, t);
        }
        let y = model.update(&x[0]);
        let new: Vec<Tensor> = states.iter().map(|(_, v)| body.read_var(v)).collect();
        Ok((new, vec![y]))
    })?;
    let ys = if batch_first {
        swap01(&ys[0])
    } else {
        ys[0].clone()
    };
    let mut outs = vec![("ys".to_string(), ys)];
    let mut state_outputs = vec![];
    for (i, ((path, v), c)) in states.iter().zip(carry).enumerate() {
        outs.push((format!("state.{path}"), c));
        state_outputs.push((i + 1, v.id()));
    }
    let f = tr.finish(&outs)?;
    let binding = binding_of(&tr, f.params.len(), &state_outputs);
    Ok((f, binding))
}

/// Swaps the first two axes.
pub fn swap01(x: &Tensor) -> Tensor {
    let mut perm: Vec<usize> = (0..x.rank()).collect();
    perm.swap(0, 1);
    x.transpose(&perm)
}

/// Runs `model` over `xs` (traced and compiled for this call), updating its states.
pub fn run_over_time(
    model: &mut dyn Module,
    xs: &Array,
    batch_first: bool,
    backend: Backend,
) -> Result<Array> {
    let (f, b) = trace_over_time("run", model, xs.ty(), batch_first)?;
    let mut bound = Bound::compile(&f, b, backend)?;
    let mut out = bound.run(model, std::slice::from_ref(xs))?;
    Ok(out.remove(0))
}

/// Every variable of `module` by id.
pub fn vars_by_id(module: &dyn VarOwner) -> HashMap<u64, (String, Variable)> {
    named_vars(module)
        .into_iter()
        .map(|(p, v)| (v.id(), (p, v)))
        .collect()
}

/// Traces one step of `model` on an input of type `x_ty`: inputs `x` then the variables read;
/// outputs `y` then the new value of every state the step wrote (`state.<path>`).
pub fn trace_step(
    name: &str,
    model: &dyn Module,
    x_ty: &TensorType,
) -> Result<(Function, Binding)> {
    let tr = Tracer::new(name);
    tr.name_vars(model, "");
    let x = tr.input("x", x_ty.clone());
    let y = model.update(&x);
    let mut outs = vec![("y".to_string(), y)];
    let mut state_outputs = vec![];
    let written = tr.written_vars();
    for (path, v) in state_vars(model) {
        if written.contains(&v.id()) {
            state_outputs.push((outs.len(), v.id()));
            outs.push((format!("state.{path}"), tr.read_var(&v)));
        }
    }
    let f = tr.finish(&outs)?;
    let binding = binding_of(&tr, f.params.len(), &state_outputs);
    Ok((f, binding))
}
