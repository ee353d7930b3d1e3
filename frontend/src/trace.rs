//! Tracing: recording Rust closures into IR functions.
//!
//! A [`Tracer`] owns a tape of ops. [`Tensor`] handles point into a tracer; arithmetic on them
//! appends ops to the tape and computes nothing. When the closure returns, the tape is replayed
//! into a verified [`Function`].
//!
//! Errors (shape mismatches and the like) are recorded on the tracer at the op that caused them
//! and the op returns a *poisoned* tensor; later ops on poisoned tensors are skipped. The first
//! error is returned by [`trace`] (or by [`Tracer::check`]), naming the op and the shapes. So
//! operator overloading works without panics across the public API.
//!
//! Nested bodies ([`Tracer::scan`]) are traced by a child tracer. A tensor of an enclosing
//! tracer used inside a body is captured automatically: it becomes an extra loop-invariant
//! operand of the scan (closure conversion), so bodies stay self-contained as the IR requires.

use crate::TraceError;
use brainlift_ir::{Function, FunctionBuilder, Op, Scan, TensorType, ValueId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Where a traced value comes from.
#[derive(Clone, Copy, Debug)]
enum Def {
    /// Input `k` of the traced function (declared inputs and captures, in order).
    Input(usize),
    /// Result `j` of tape entry `i`.
    Result(usize, usize),
}

#[derive(Debug)]
struct TapeEntry {
    op: Op,
    args: Vec<usize>,
}

impl TraceState {
    pub(crate) fn inputs_len(&self) -> usize {
        self.inputs.len()
    }
}

#[derive(Debug)]
pub(crate) struct TraceState {
    name: String,
    /// Inputs in order: (name, type).
    inputs: Vec<(String, TensorType)>,
    tape: Vec<TapeEntry>,
    /// Every value: its type and definition.
    values: Vec<(TensorType, Def)>,
    /// For a nested tracer: the parent's value index of each captured input, with the local
    /// value index it maps to.
    captures: Vec<(usize, usize)>,
    capture_map: HashMap<usize, usize>,
    parent: Option<Tracer>,
    error: Option<TraceError>,
    finished: bool,
    /// Variable bindings in this tracer: variable id -> value index.
    pub(crate) var_bindings: HashMap<u64, usize>,
    /// Variables written in this tracer, in first-write order.
    pub(crate) var_written: Vec<u64>,
    /// Variables read as inputs of this (root) tracer: (variable id, input position).
    pub(crate) var_inputs: Vec<(u64, usize)>,
    /// Display names (paths) of variables, for input names.
    pub(crate) var_names: HashMap<u64, String>,
    /// Tap keys the root tracer asked for (see [`Tracer::tap`]).
    pub(crate) taps_wanted: Vec<u64>,
    /// Values tapped in this tracer: (key, value index), in order.
    pub(crate) taps: Vec<(u64, usize)>,
}

/// A recording context. Cheap to clone (a shared handle).
#[derive(Clone, Debug)]
pub struct Tracer {
    pub(crate) state: Rc<RefCell<TraceState>>,
}

/// A traced array value: a handle into a [`Tracer`]. Operators (`+ - * /`, unary `-`) and
/// methods append ops; shapes follow numpy broadcasting.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub(crate) tracer: Tracer,
    /// Index into the tracer's values, or `None` when poisoned by an earlier error.
    pub(crate) index: Option<usize>,
    pub(crate) ty: TensorType,
}

impl Tracer {
    /// A fresh top-level tracer for a function called `name`.
    pub fn new(name: impl Into<String>) -> Tracer {
        Tracer::with_parent(name.into(), None)
    }

    fn with_parent(name: String, parent: Option<Tracer>) -> Tracer {
        Tracer {
            state: Rc::new(RefCell::new(TraceState {
                name,
                inputs: vec![],
                tape: vec![],
                values: vec![],
                captures: vec![],
                capture_map: HashMap::new(),
                parent,
                error: None,
                finished: false,
                var_bindings: HashMap::new(),
                var_written: vec![],
                var_inputs: vec![],
                var_names: HashMap::new(),
                taps_wanted: vec![],
                taps: vec![],
            })),
        }
    }

    /// True when both handles refer to the same tracer.
    pub fn same(&self, other: &Tracer) -> bool {
        Rc::ptr_eq(&self.state, &other.state)
    }

    /// Declares a named input of the traced function. Names are made identifiers of the text
    /// format (`[A-Za-z_][A-Za-z0-9_.]*`: other characters become `_`), so every traced function
    /// prints as text that parses back.
    pub fn input(&self, name: impl Into<String>, ty: TensorType) -> Tensor {
        let mut st = self.state.borrow_mut();
        let k = st.inputs.len();
        let name = identifier(&name.into());
        if st.inputs.iter().any(|(n, _)| *n == name) {
            let err = TraceError::Op {
                op: "input".into(),
                msg: format!("input name '{name}' is declared twice"),
            };
            st.error.get_or_insert(err);
            return Tensor {
                tracer: self.clone(),
                index: None,
                ty,
            };
        }
        st.inputs.push((name, ty.clone()));
        let idx = st.values.len();
        st.values.push((ty.clone(), Def::Input(k)));
        Tensor {
            tracer: self.clone(),
            index: Some(idx),
            ty,
        }
    }

    /// The enclosing tracer of a loop body.
    pub fn parent(&self) -> Option<Tracer> {
        self.state.borrow().parent.clone()
    }

    /// A handle to the tensor with value index `idx` of this tracer.
    pub(crate) fn tensor_at(&self, idx: usize) -> Tensor {
        let ty = self.state.borrow().values[idx].0.clone();
        Tensor {
            tracer: self.clone(),
            index: Some(idx),
            ty,
        }
    }

    /// Records an error unless one is recorded already (the first error wins).
    pub fn fail(&self, err: TraceError) {
        self.state.borrow_mut().error.get_or_insert(err);
    }

    /// Returns the first recorded error, if any.
    pub fn check(&self) -> Result<(), TraceError> {
        match &self.state.borrow().error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// A poisoned tensor of the given type (used after an error).
    pub(crate) fn poisoned(&self, ty: TensorType) -> Tensor {
        Tensor {
            tracer: self.clone(),
            index: None,
            ty,
        }
    }

    /// The local value index of `t` in this tracer, capturing it from an enclosing tracer
    /// when needed. `None` if `t` is poisoned or belongs to an unrelated tracer (recorded as
    /// an error naming `op`).
    pub(crate) fn import(&self, t: &Tensor, op: &str) -> Option<usize> {
        let idx = t.index?;
        if self.same(&t.tracer) {
            return Some(idx);
        }
        let parent = self.state.borrow().parent.clone();
        let Some(parent) = parent else {
            self.fail(TraceError::Op {
                op: op.into(),
                msg: "operand belongs to another trace (a tensor escaped its trace or loop body)"
                    .into(),
            });
            return None;
        };
        let pidx = parent.import(t, op)?;
        let mut st = self.state.borrow_mut();
        if let Some(&local) = st.capture_map.get(&pidx) {
            return Some(local);
        }
        let k = st.inputs.len();
        let name = format!("capture{}", st.captures.len());
        st.inputs.push((name, t.ty.clone()));
        let local = st.values.len();
        st.values.push((t.ty.clone(), Def::Input(k)));
        st.captures.push((pidx, local));
        st.capture_map.insert(pidx, local);
        Some(local)
    }

    /// Appends `op` applied to `args`, returning its results (poisoned on error).
    pub fn push(&self, op: Op, args: &[&Tensor]) -> Vec<Tensor> {
        let name = op.name();
        let mut idxs = Vec::with_capacity(args.len());
        let mut poisoned = false;
        for a in args {
            match self.import(a, name) {
                Some(i) => idxs.push(i),
                None => poisoned = true,
            }
        }
        let arg_types: Vec<TensorType> = args.iter().map(|a| a.ty.clone()).collect();
        if poisoned || self.state.borrow().error.is_some() {
            // Keep going with plausible types so shape queries still work; nothing is recorded.
            let tys = op
                .infer(&arg_types)
                .unwrap_or_else(|_| vec![guess_type(&arg_types)]);
            return tys.into_iter().map(|t| self.poisoned(t)).collect();
        }
        match op.infer(&arg_types) {
            Ok(tys) => {
                let mut st = self.state.borrow_mut();
                let i = st.tape.len();
                st.tape.push(TapeEntry { op, args: idxs });
                tys.into_iter()
                    .enumerate()
                    .map(|(j, ty)| {
                        let idx = st.values.len();
                        st.values.push((ty.clone(), Def::Result(i, j)));
                        Tensor {
                            tracer: self.clone(),
                            index: Some(idx),
                            ty,
                        }
                    })
                    .collect()
            }
            Err(e) => {
                self.fail(TraceError::Ir(e));
                vec![self.poisoned(guess_type(&arg_types))]
            }
        }
    }

    /// Appends a single-result op.
    pub fn push1(&self, op: Op, args: &[&Tensor]) -> Tensor {
        self.push(op, args)
            .into_iter()
            .next()
            .expect("op has a result")
    }

    /// Inlines `f` applied to `args` into this trace and returns its outputs (how a gradient
    /// function is composed with, e.g., an optimiser update into one function).
    pub fn call(&self, f: &Function, args: &[Tensor]) -> Result<Vec<Tensor>, TraceError> {
        if args.len() != f.params.len() {
            return Err(TraceError::Op {
                op: "call".into(),
                msg: format!(
                    "@{} takes {} inputs, got {}",
                    f.name,
                    f.params.len(),
                    args.len()
                ),
            });
        }
        for (p, a) in f.params.iter().zip(args) {
            if p.ty != a.ty {
                return Err(TraceError::Op {
                    op: "call".into(),
                    msg: format!(
                        "@{} input %{} expects {}, got {}",
                        f.name, p.name, p.ty, a.ty
                    ),
                });
            }
        }
        let mut vals: Vec<Option<Tensor>> = vec![None; f.types.len()];
        for (i, a) in args.iter().enumerate() {
            vals[i] = Some(a.clone());
        }
        for inst in &f.insts {
            let ins: Vec<Tensor> = inst
                .args
                .iter()
                .map(|a| vals[a.index()].clone().expect("SSA order"))
                .collect();
            let refs: Vec<&Tensor> = ins.iter().collect();
            let outs = self.push(inst.op.clone(), &refs);
            for (r, t) in inst.results.iter().zip(outs) {
                vals[r.index()] = Some(t);
            }
        }
        self.check()?;
        Ok(f.outputs
            .iter()
            .map(|o| vals[o.value.index()].clone().expect("defined"))
            .collect())
    }

    /// Replays the tape into a verified function with the given named outputs.
    pub fn finish(&self, outputs: &[(String, Tensor)]) -> Result<Function, TraceError> {
        let mut out_idx = Vec::with_capacity(outputs.len());
        for (_, t) in outputs {
            out_idx.push(self.import(t, "return"));
        }
        self.check()?;
        let mut st = self.state.borrow_mut();
        if st.finished {
            return Err(TraceError::Op {
                op: "trace".into(),
                msg: "tracer finished twice".into(),
            });
        }
        st.finished = true;
        let mut b = FunctionBuilder::new(st.name.clone());
        let mut map: Vec<Option<ValueId>> = vec![None; st.values.len()];
        let mut input_values = Vec::with_capacity(st.inputs.len());
        for (name, ty) in &st.inputs {
            input_values.push(b.param(name.clone(), ty.clone()));
        }
        let mut results_of: Vec<Vec<ValueId>> = Vec::with_capacity(st.tape.len());
        // Values are created in tape order, so a single pass resolves every definition.
        let mut tape_iter = 0usize;
        for (idx, (_, def)) in st.values.iter().enumerate() {
            match *def {
                Def::Input(k) => map[idx] = Some(input_values[k]),
                Def::Result(i, j) => {
                    while tape_iter <= i {
                        let e = &st.tape[tape_iter];
                        let args: Vec<ValueId> = e
                            .args
                            .iter()
                            .map(|a| map[*a].expect("defined before use"))
                            .collect();
                        let r = b.push(e.op.clone(), &args).map_err(TraceError::Ir)?;
                        results_of.push(r.to_vec());
                        tape_iter += 1;
                    }
                    map[idx] = Some(results_of[i][j]);
                }
            }
        }
        let outs = outputs
            .iter()
            .zip(out_idx)
            .map(|((n, _), i)| (identifier(n), map[i.expect("checked")].expect("defined")))
            .collect::<Vec<_>>();
        let f = b.finish(outs);
        brainlift_ir::verify(&f).map_err(TraceError::Ir)?;
        Ok(f)
    }

    /// A loop over the leading axis of `xs` with a carry: `body(carry, x_t)` returns
    /// `(new_carry, y_t)`. Returns `(final_carry, ys)` with each `y` stacked over time.
    /// Tensors of enclosing traces used in `body` (parameters) are captured as loop invariants.
    /// `length` is needed only when `xs` is empty. With `reverse`, steps run from last to first.
    pub fn scan<F>(
        &self,
        init: &[Tensor],
        xs: &[Tensor],
        length: Option<usize>,
        reverse: bool,
        body: F,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>), TraceError>
    where
        F: FnOnce(&Tracer, &[Tensor], &[Tensor]) -> Result<(Vec<Tensor>, Vec<Tensor>), TraceError>,
    {
        self.check()?;
        let length = match (xs.first(), length) {
            (Some(x), l) => {
                let Some(&t) = x.ty.dims().first() else {
                    return Err(TraceError::Op {
                        op: "scan".into(),
                        msg: format!("per-step input {} has no leading time axis", x.ty),
                    });
                };
                if let Some(l) = l
                    && l != t
                {
                    return Err(TraceError::Op {
                        op: "scan".into(),
                        msg: format!("length {l} does not match the leading axis of {}", x.ty),
                    });
                }
                t
            }
            (None, Some(l)) => l,
            (None, None) => {
                return Err(TraceError::Op {
                    op: "scan".into(),
                    msg: "a scan without per-step inputs needs an explicit length".into(),
                });
            }
        };
        for x in xs {
            if x.ty.dims().first() != Some(&length) {
                return Err(TraceError::Op {
                    op: "scan".into(),
                    msg: format!(
                        "per-step inputs must share the leading axis {length}, got {}",
                        x.ty
                    ),
                });
            }
        }
        let name = format!("{}_body", self.state.borrow().name);
        let child = Tracer::with_parent(name, Some(self.clone()));
        let carry_in: Vec<Tensor> = init
            .iter()
            .enumerate()
            .map(|(i, c)| child.input(format!("carry{i}"), c.ty.clone()))
            .collect();
        let x_in: Vec<Tensor> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                child.input(
                    format!("x{i}"),
                    TensorType::new(x.ty.dtype, &x.ty.dims()[1..]),
                )
            })
            .collect();
        let (carry_out, ys) = body(&child, &carry_in, &x_in)?;
        if carry_out.len() != init.len() {
            return Err(TraceError::Op {
                op: "scan".into(),
                msg: format!(
                    "body returned {} carries, expected {}",
                    carry_out.len(),
                    init.len()
                ),
            });
        }
        for (i, (a, b)) in init.iter().zip(&carry_out).enumerate() {
            if a.ty != b.ty {
                return Err(TraceError::Op {
                    op: "scan".into(),
                    msg: format!(
                        "carry {i} enters the body as {} but leaves as {}",
                        a.ty, b.ty
                    ),
                });
            }
        }
        let mut outs: Vec<(String, Tensor)> = Vec::new();
        for (i, c) in carry_out.iter().enumerate() {
            outs.push((format!("carry{i}"), c.clone()));
        }
        for (i, y) in ys.iter().enumerate() {
            outs.push((format!("y{i}"), y.clone()));
        }
        let body_fn = child.finish(&outs)?;
        // Operands: init, xs, then the captured values of this tracer.
        let captures: Vec<usize> = child
            .state
            .borrow()
            .captures
            .iter()
            .map(|(p, _)| *p)
            .collect();
        let capture_tensors: Vec<Tensor> = {
            let st = self.state.borrow();
            captures
                .iter()
                .map(|&p| Tensor {
                    tracer: self.clone(),
                    index: Some(p),
                    ty: st.values[p].0.clone(),
                })
                .collect()
        };
        let mut args: Vec<&Tensor> = init.iter().collect();
        args.extend(xs.iter());
        args.extend(capture_tensors.iter());
        let op = Op::Scan(Box::new(Scan {
            length,
            num_carry: init.len(),
            num_xs: xs.len(),
            reverse,
            body: body_fn,
        }));
        let res = self.push(op, &args);
        self.check()?;
        let ys = res[init.len()..].to_vec();
        let carry = res[..init.len()].to_vec();
        Ok((carry, ys))
    }
}

/// `name` as an identifier of the text format: characters outside `[A-Za-z0-9_.]` become `_`,
/// and a name that does not start with a letter or `_` gets a leading `_`.
pub fn identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s.insert(0, '_');
    }
    s
}

fn guess_type(args: &[TensorType]) -> TensorType {
    args.first()
        .cloned()
        .unwrap_or_else(|| TensorType::scalar(brainlift_ir::DType::F64))
}

/// Traces `body` into a function called `name`. The closure declares inputs with
/// [`Tracer::input`] and returns the named outputs.
///
/// ```
/// use brainlift::{trace, DType, TensorType};
/// let f = trace("affine", |tr| {
///     let x = tr.input("x", TensorType::new(DType::F64, [4, 3]));
///     let w = tr.input("w", TensorType::new(DType::F64, [3, 2]));
///     let y = x.matmul(&w).tanh() * 2.0;
///     Ok(vec![("y".to_string(), y)])
/// })
/// .unwrap();
/// assert_eq!(f.outputs.len(), 1);
/// ```
pub fn trace<F>(name: &str, body: F) -> Result<Function, TraceError>
where
    F: FnOnce(&Tracer) -> Result<Vec<(String, Tensor)>, TraceError>,
{
    let tr = Tracer::new(name);
    let outs = body(&tr)?;
    tr.finish(&outs)
}
