//! Variables (parameters and states) and the [`Module`] trait models implement.
//!
//! A [`Variable`] holds a concrete value ([`Array`]) and a process-unique id. Modules own their
//! variables as plain fields and list them by path through [`VarOwner::visit_vars`] (e.g.
//! `rnn.Wh`). While tracing, [`Tracer::read_var`] turns a variable into a traced tensor: the
//! first read in a trace creates a function input named by the variable's path; writes
//! ([`Tracer::write_var`]) rebind it, and the trace's outputs can include the new values of
//! written states. Inside a loop body, reads of variables bound outside are captured as loop
//! invariants, and states bound to the loop carry are read from the carry.

use crate::trace::{Tensor, Tracer};
use crate::{Array, Error, Result};
use brainlift_ir::TensorType;
use std::ops::Shr;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_VAR_ID: AtomicU64 = AtomicU64::new(1);

/// What a variable is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarKind {
    /// A parameter; trainable ones are differentiated and updated by optimisers.
    Param {
        /// Whether optimisers train it.
        trainable: bool,
    },
    /// Dynamical state (membrane potential, hidden state, delay buffer), reset per batch.
    State,
}

/// A named slot holding a concrete array: a parameter or a state.
#[derive(Clone, Debug)]
pub struct Variable {
    id: u64,
    kind: VarKind,
    value: Array,
}

impl Variable {
    /// A trainable parameter.
    pub fn param(value: Array) -> Variable {
        Variable::new(VarKind::Param { trainable: true }, value)
    }

    /// A fixed (non-trainable) parameter.
    pub fn constant(value: Array) -> Variable {
        Variable::new(VarKind::Param { trainable: false }, value)
    }

    /// A state variable.
    pub fn state(value: Array) -> Variable {
        Variable::new(VarKind::State, value)
    }

    /// A variable of the given kind.
    pub fn new(kind: VarKind, value: Array) -> Variable {
        Variable {
            id: NEXT_VAR_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            value,
        }
    }

    /// Process-unique id (clones share it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Kind.
    pub fn kind(&self) -> VarKind {
        self.kind
    }

    /// True for trainable parameters.
    pub fn is_trainable(&self) -> bool {
        self.kind == VarKind::Param { trainable: true }
    }

    /// True for states.
    pub fn is_state(&self) -> bool {
        self.kind == VarKind::State
    }

    /// The current value.
    pub fn value(&self) -> &Array {
        &self.value
    }

    /// The value's type.
    pub fn ty(&self) -> &TensorType {
        self.value.ty()
    }

    /// Replaces the value. The type may change only for states (a new batch size).
    pub fn set_value(&mut self, value: Array) -> Result<()> {
        if !self.is_state() && value.ty() != self.value.ty() {
            return Err(Error::invalid(
                "Variable::set_value",
                format!(
                    "parameter has type {}, new value has {}",
                    self.value.ty(),
                    value.ty()
                ),
            ));
        }
        self.value = value;
        Ok(())
    }
}

/// Implements [`VarOwner`] for a struct by listing its variables once, in visiting order;
/// both methods are generated from the list. Entries: `"W" => w` (a [`Variable`] field),
/// `"b" => optional b` (an `Option<Variable>`, visited when present) and
/// `"rnn" => child rnn` (a field that is itself a [`VarOwner`]; its paths get the prefix
/// `rnn.`).
///
/// ```ignore
/// var_owner!(Dense { "W" => w, "b" => optional b });
/// ```
#[macro_export]
macro_rules! var_owner {
    ($ty:ty { $($entries:tt)* }) => {
        impl $crate::vars::VarOwner for $ty {
            fn visit_vars(&self, f: &mut dyn FnMut(&str, &$crate::vars::Variable)) {
                $crate::var_owner!(@visit (self, f, &) $($entries)*);
            }

            fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut $crate::vars::Variable)) {
                $crate::var_owner!(@visit (self, f, &mut) $($entries)*);
            }
        }
    };
    (@visit ($s:ident, $f:ident, $($r:tt)+) $(,)?) => {};
    (@visit ($s:ident, $f:ident, &) $name:literal => child $field:ident $(, $($rest:tt)*)?) => {
        $crate::vars::visit_child($name, &$s.$field, $f);
        $crate::var_owner!(@visit ($s, $f, &) $($($rest)*)?);
    };
    (@visit ($s:ident, $f:ident, &mut) $name:literal => child $field:ident $(, $($rest:tt)*)?) => {
        $crate::vars::visit_child_mut($name, &mut $s.$field, $f);
        $crate::var_owner!(@visit ($s, $f, &mut) $($($rest)*)?);
    };
    (@visit ($s:ident, $f:ident, $($r:tt)+) $name:literal => optional $field:ident $(, $($rest:tt)*)?) => {
        if let Some(v) = $($r)+ $s.$field {
            $f($name, v);
        }
        $crate::var_owner!(@visit ($s, $f, $($r)+) $($($rest)*)?);
    };
    (@visit ($s:ident, $f:ident, $($r:tt)+) $name:literal => $field:ident $(, $($rest:tt)*)?) => {
        $f($name, $($r)+ $s.$field);
        $crate::var_owner!(@visit ($s, $f, $($r)+) $($($rest)*)?);
    };
}

/// Anything that owns variables: modules, optimisers (their moment estimates).
pub trait VarOwner {
    /// Calls `f(path, var)` for every variable, paths relative to this owner (`W`, `rnn.Wh`).
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable));

    /// Mutable counterpart of [`VarOwner::visit_vars`], same order.
    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable));
}

/// A model or layer: owns variables and maps an input to an output, one time step at a time.
pub trait Module: VarOwner {
    /// One step: `x` is traced; parameters and states are read and written through the tracer
    /// of `x` ([`Tracer::read_var`], [`Tracer::write_var`]).
    fn update(&self, x: &Tensor) -> Tensor;

    /// The traced part of a reset, run at the start of a traced (differentiated) forward pass
    /// after [`Module::reset_state`] has set the state shapes: writes initial state values that
    /// are computed from parameters (e.g. a trainable initial state broadcast over the batch)
    /// with [`Tracer::write_var`], so gradients reach those parameters. Default: nothing (the
    /// states' current values are read as inputs). Containers forward it to their children.
    fn reset_state_traced(&self, tr: &Tracer) {
        let _ = tr;
    }

    /// Resets states for a batch of `batch` samples (zeros unless the module says otherwise).
    fn reset_state(&mut self, batch: usize) {
        self.visit_vars_mut(&mut |_, v| {
            if v.is_state() {
                let mut dims = v.ty().dims().to_vec();
                if let Some(d) = dims.first_mut() {
                    *d = batch;
                }
                let ty = TensorType::new(v.ty().dtype, dims);
                let _ = v.set_value(Array::zeros(ty));
            }
        });
    }
}

/// Visits a child module's variables with `prefix.` prepended to their paths.
pub fn visit_child(prefix: &str, child: &dyn VarOwner, f: &mut dyn FnMut(&str, &Variable)) {
    child.visit_vars(&mut |p, v| f(&format!("{prefix}.{p}"), v));
}

/// Mutable counterpart of [`visit_child`].
pub fn visit_child_mut(
    prefix: &str,
    child: &mut dyn VarOwner,
    f: &mut dyn FnMut(&str, &mut Variable),
) {
    child.visit_vars_mut(&mut |p, v| f(&format!("{prefix}.{p}"), v));
}

/// Every variable of a module with its path, in visiting order.
pub fn named_vars(m: &dyn VarOwner) -> Vec<(String, Variable)> {
    let mut out = vec![];
    m.visit_vars(&mut |p, v| out.push((p.to_string(), v.clone())));
    out
}

/// The trainable parameters of a module by path (BrainPy's `train_vars()`).
pub fn train_vars(m: &dyn VarOwner) -> Vec<(String, Variable)> {
    named_vars(m)
        .into_iter()
        .filter(|(_, v)| v.is_trainable())
        .collect()
}

/// The states of a module by path.
pub fn state_vars(m: &dyn VarOwner) -> Vec<(String, Variable)> {
    named_vars(m)
        .into_iter()
        .filter(|(_, v)| v.is_state())
        .collect()
}

/// `x >> layer` calls `layer.update(x)`, as BrainPy's `>>` composition.
impl<M: Module + ?Sized> Shr<&M> for Tensor {
    type Output = Tensor;
    fn shr(self, m: &M) -> Tensor {
        m.update(&self)
    }
}

/// `&x >> layer` calls `layer.update(x)`.
impl<M: Module + ?Sized> Shr<&M> for &Tensor {
    type Output = Tensor;
    fn shr(self, m: &M) -> Tensor {
        m.update(self)
    }
}

impl Tracer {
    /// The outermost tracer (the one whose function is being built).
    pub fn root(&self) -> Tracer {
        let mut t = self.clone();
        while let Some(p) = t.parent() {
            t = p;
        }
        t
    }

    /// Registers display paths for a module's variables (used as input names).
    pub fn name_vars(&self, m: &dyn VarOwner, prefix: &str) {
        let root = self.root();
        let mut st = root.state.borrow_mut();
        m.visit_vars(&mut |p, v| {
            let name = if prefix.is_empty() {
                p.to_string()
            } else {
                format!("{prefix}.{p}")
            };
            st.var_names.insert(v.id(), name);
        });
    }

    /// The traced value of `var` here: its latest binding in this tracer or an enclosing one
    /// (captured into loop bodies), or a new input of the root function.
    pub fn read_var(&self, var: &Variable) -> Tensor {
        let bound = self.state.borrow().var_bindings.get(&var.id()).copied();
        if let Some(idx) = bound {
            return self.tensor_at(idx);
        }
        match self.parent() {
            Some(p) => p.read_var(var), // a tensor of the parent: captured on use
            None => {
                let name = self
                    .state
                    .borrow()
                    .var_names
                    .get(&var.id())
                    .cloned()
                    .unwrap_or_else(|| format!("var{}", var.id()));
                let t = self.input(name, var.ty().clone());
                let mut st = self.state.borrow_mut();
                if let Some(idx) = t.index {
                    let pos = st.inputs_len() - 1;
                    st.var_inputs.push((var.id(), pos));
                    st.var_bindings.insert(var.id(), idx);
                }
                t
            }
        }
    }

    /// Binds `var` to `value` in this tracer (a state update or a loop-carry binding).
    pub fn write_var(&self, var: &Variable, value: &Tensor) {
        let Some(idx) = self.import(value, "write_var") else {
            return;
        };
        let mut st = self.state.borrow_mut();
        if !st.var_written.contains(&var.id()) {
            st.var_written.push(var.id());
        }
        st.var_bindings.insert(var.id(), idx);
    }

    /// Asks layers to report the value they tap under `key` (see [`Tracer::tap`]).
    pub fn want_tap(&self, key: u64) {
        self.root().state.borrow_mut().taps_wanted.push(key);
    }

    /// Reports `value` under `key` if the root tracer asked for it. Layers tap what offline
    /// trainers need: `Dense` taps its input under its weight's id (the readout features
    /// ridge regression fits on, BrainPy's offline-fit hook).
    pub fn tap(&self, key: u64, value: &Tensor) {
        if !self.root().state.borrow().taps_wanted.contains(&key) {
            return;
        }
        if let Some(idx) = self.import(value, "tap") {
            self.state.borrow_mut().taps.push((key, idx));
        }
    }

    /// The values tapped in this tracer, in order.
    pub fn taps(&self) -> Vec<(u64, Tensor)> {
        let taps = self.state.borrow().taps.clone();
        taps.into_iter()
            .map(|(k, i)| (k, self.tensor_at(i)))
            .collect()
    }

    /// Variables that became inputs of this (root) tracer: (variable id, input position).
    pub fn var_inputs(&self) -> Vec<(u64, usize)> {
        self.state.borrow().var_inputs.clone()
    }

    /// Variables written in this tracer, in first-write order.
    pub fn written_vars(&self) -> Vec<u64> {
        self.state.borrow().var_written.clone()
    }
}
