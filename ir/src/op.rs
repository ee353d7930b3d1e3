//! The op table: every IR operation, its attributes, and its type rule in one place.
//!
//! To add an op: declare it here (variant, `name`, `category`), give its type rule in
//! [`Op::infer`], then add the printer/parser attributes (`print.rs`, `parse.rs`), the
//! interpreter case (runtime), the VJP rule (compiler `ad`), codegen, and a file test.
//! `ARCHITECTURE.md` has the full checklist.

use crate::{DType, Function, IrError, Shape, TensorType};
use std::sync::Arc;

/// Elementwise ops with one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// hyperbolic tangent
    Tanh,
    /// logistic sigmoid `1/(1+e^-x)`
    Sigmoid,
    /// square root
    Sqrt,
    /// absolute value
    Abs,
    /// `-1`, `0` or `1` (and `0` for `-0.0`, NaN for NaN)
    Sign,
}

impl UnaryOp {
    /// All unary ops.
    pub const ALL: [UnaryOp; 8] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::Sign,
    ];

    /// Text-format name.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
        }
    }

    /// True when the op is also defined on `i32`.
    pub fn allows_int(self) -> bool {
        matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign)
    }

    /// Applies the op to one `f64` (the reference semantics).
    pub fn eval(self, x: f64) -> f64 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => {
                // Stable on both tails.
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x // 0.0, -0.0 or NaN
                }
            }
        }
    }
}

/// Elementwise ops with two operands of the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (truncating for `i32`; division by zero gives 0 for `i32`)
    Div,
    /// larger of the two (NaN if either is NaN)
    Max,
    /// smaller of the two (NaN if either is NaN)
    Min,
    /// `a ^ b` (floats only)
    Pow,
}

impl BinaryOp {
    /// All binary ops.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
    ];

    /// Text-format name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Pow => "pow",
        }
    }

    /// True when the op is also defined on `i32`.
    pub fn allows_int(self) -> bool {
        self != BinaryOp::Pow
    }

    /// Applies the op to two `f64` values (the reference semantics for floats).
    #[inline]
    pub fn eval(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if a >= b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if a <= b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Pow => a.powf(b),
        }
    }
}

/// Elementwise comparisons; the result is `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
}

impl CompareOp {
    /// All comparisons.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Eq,
        CompareOp::Ne,
    ];

    /// Text-format name.
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
        }
    }

    /// Applies the comparison (IEEE semantics: every comparison with NaN is false except `ne`).
    pub fn eval(self, a: f64, b: f64) -> bool {
        match self {
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
        }
    }
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum (0 for an empty reduction).
    Sum,
    /// Maximum (-inf for an empty reduction).
    Max,
    /// Minimum (+inf for an empty reduction).
    Min,
}

impl ReduceOp {
    /// All reductions.
    pub const ALL: [ReduceOp; 3] = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min];

    /// Text-format name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
        }
    }

    /// The identity element the reduction starts from.
    pub fn init(self) -> f64 {
        match self {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        }
    }

    /// Combines an accumulator with one element.
    #[inline]
    pub fn combine(self, acc: f64, x: f64) -> f64 {
        match self {
            ReduceOp::Sum => acc + x,
            ReduceOp::Max => BinaryOp::Max.eval(acc, x),
            ReduceOp::Min => BinaryOp::Min.eval(acc, x),
        }
    }
}

/// A constant tensor: either one value splatted over the type's shape, or one value per element.
/// Values are stored as `f64` already rounded to the element type (see [`DType::round`]).
#[derive(Clone, Debug)]
pub struct Constant {
    /// Result type.
    pub ty: TensorType,
    /// One value (splat) or `ty.numel()` values, row-major.
    pub data: Arc<Vec<f64>>,
}

impl Constant {
    /// A constant filled with `value` (rounded to the element type).
    pub fn splat(ty: TensorType, value: f64) -> Constant {
        let v = ty.dtype.round(value);
        Constant {
            ty,
            data: Arc::new(vec![v]),
        }
    }

    /// A constant from row-major values (each rounded to the element type).
    pub fn from_values(ty: TensorType, values: Vec<f64>) -> Constant {
        let d = ty.dtype;
        Constant {
            ty,
            data: Arc::new(values.into_iter().map(|x| d.round(x)).collect()),
        }
    }

    /// The single value when this constant is a splat (or has one element).
    pub fn splat_value(&self) -> Option<f64> {
        if self.data.len() == 1 {
            Some(self.data[0])
        } else {
            None
        }
    }

    /// Element `i` in row-major order.
    pub fn get(&self, i: usize) -> f64 {
        if self.data.len() == 1 {
            self.data[0]
        } else {
            self.data[i]
        }
    }
}

impl PartialEq for Constant {
    /// Bitwise equality of the values, so that NaN constants compare equal to themselves.
    fn eq(&self, other: &Constant) -> bool {
        self.ty == other.ty
            && self.data.len() == other.data.len()
            && self
                .data
                .iter()
                .zip(other.data.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

/// A time loop: `body` applied along the leading axis of the `xs` operands with a carry.
///
/// Operands: `num_carry` initial carries, `num_xs` sequences (leading axis `length`), then
/// loop-invariant constants. The body takes `(carry.., x_t.., consts..)` and returns
/// `(carry.., y_t..)`. Results: the final carries, then each `y` stacked on a new leading axis
/// of size `length` (`ys[t]` is the output of step `t`, also when `reverse` runs `t` from
/// `length-1` down to 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    /// Number of time steps.
    pub length: usize,
    /// Number of carried values.
    pub num_carry: usize,
    /// Number of per-step inputs.
    pub num_xs: usize,
    /// Iterate from the last step to the first.
    pub reverse: bool,
    /// The step function.
    pub body: Function,
}

/// An op with a user-defined derivative: `forward` computes the results, `backward` maps
/// `(operands.., cotangents of results..)` to the cotangents of the operands.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomVjp {
    /// A name for reports and dumps (e.g. `spike_inv_square`).
    pub name: String,
    /// Forward function: operands -> results.
    pub forward: Function,
    /// Backward function: (operands.., result cotangents..) -> operand cotangents.
    pub backward: Function,
}

/// Coarse op categories used by passes (fusion, codegen, cost reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCategory {
    /// Produces a value from attributes only (`constant`, `iota`).
    Source,
    /// Pointwise over equal-shaped operands (unary, binary, compare, select, cast, stop_gradient).
    Elementwise,
    /// Moves or copies data (broadcast, reshape, transpose, slice, pad, concat).
    Layout,
    /// Reductions and scans along axes (reduce, argmax, cumsum).
    Reduction,
    /// Matrix products.
    Contraction,
    /// Ops holding nested functions (scan, custom_vjp).
    Control,
}

/// One IR operation with its attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A constant tensor.
    Constant(Constant),
    /// `result[i..] = i_axis` (the index along `axis`), of the given type.
    Iota {
        /// Result type.
        ty: TensorType,
        /// Axis whose index is written.
        axis: usize,
    },
    /// Elementwise unary op.
    Unary(UnaryOp),
    /// Elementwise binary op on equal types.
    Binary(BinaryOp),
    /// Elementwise comparison on equal types, result `bool`.
    Compare(CompareOp),
    /// `select pred, on_true, on_false` with `pred: bool` and equal shapes.
    Select,
    /// Elementwise conversion to another element type.
    Cast(DType),
    /// `broadcast_in_dim`: operand axis `i` becomes result axis `dims[i]` (size equal or 1).
    Broadcast {
        /// Result shape.
        shape: Shape,
        /// Where each operand axis goes, strictly increasing.
        dims: Vec<usize>,
    },
    /// Same elements, new shape (row-major order kept).
    Reshape(Shape),
    /// Axis permutation: result axis `i` is operand axis `perm[i]`.
    Transpose(Vec<usize>),
    /// Contiguous sub-block `[start, end)` per axis.
    Slice {
        /// First index per axis.
        start: Vec<usize>,
        /// One past the last index per axis.
        end: Vec<usize>,
    },
    /// Zero padding: `low[i]` zeros before and `high[i]` after axis `i` (the transpose of slice).
    Pad {
        /// Zeros before, per axis.
        low: Vec<usize>,
        /// Zeros after, per axis.
        high: Vec<usize>,
    },
    /// Concatenation of one or more operands along `axis`.
    Concat {
        /// The joined axis.
        axis: usize,
    },
    /// Reduction over `axes` (removed from the shape).
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// Reduced axes, strictly increasing.
        axes: Vec<usize>,
    },
    /// Index of the first maximum along `axis` (removed), result `i32`.
    Argmax {
        /// The searched axis.
        axis: usize,
    },
    /// Batched matrix product over the last two axes, optionally transposing either side.
    ///
    /// Operands share a numeric dtype (`f32`, `f64`, `i32`; the result has it), or the lhs
    /// is `bool` and the rhs a float: the lhs is read as 0.0/1.0 (a spike train or mask times
    /// a weight matrix, without a cast) and the result has the rhs dtype. A `bool` lhs is not
    /// differentiable; a `bool` rhs is not allowed.
    Matmul {
        /// Use the operand's last two axes transposed.
        transpose_lhs: bool,
        /// Use the operand's last two axes transposed.
        transpose_rhs: bool,
    },
    /// Inclusive cumulative sum along `axis` (from the end when `reverse`).
    Cumsum {
        /// The summed axis.
        axis: usize,
        /// Accumulate from the last index down.
        reverse: bool,
    },
    /// A time loop with a nested body.
    Scan(Box<Scan>),
    /// Identity in the forward pass; blocks gradients.
    StopGradient,
    /// An op with a user-defined derivative.
    CustomVjp(Box<CustomVjp>),
}

impl Op {
    /// Text-format mnemonic.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Constant(_) => "constant",
            Op::Iota { .. } => "iota",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::Cast(_) => "cast",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concat { .. } => "concat",
            Op::Reduce { op, .. } => op.name(),
            Op::Argmax { .. } => "argmax",
            Op::Matmul { .. } => "matmul",
            Op::Cumsum { .. } => "cumsum",
            Op::Scan(_) => "scan",
            Op::StopGradient => "stop_gradient",
            Op::CustomVjp(_) => "custom_vjp",
        }
    }

    /// The op's category.
    pub fn category(&self) -> OpCategory {
        match self {
            Op::Constant(_) | Op::Iota { .. } => OpCategory::Source,
            Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::Cast(_)
            | Op::StopGradient => OpCategory::Elementwise,
            Op::Broadcast { .. }
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. } => OpCategory::Layout,
            Op::Reduce { .. } | Op::Argmax { .. } | Op::Cumsum { .. } => OpCategory::Reduction,
            Op::Matmul { .. } => OpCategory::Contraction,
            Op::Scan(_) | Op::CustomVjp(_) => OpCategory::Control,
        }
    }

    /// Nested functions held by this op (scan body; custom_vjp forward and backward).
    pub fn bodies(&self) -> Vec<&Function> {
        match self {
            Op::Scan(s) => vec![&s.body],
            Op::CustomVjp(c) => vec![&c.forward, &c.backward],
            _ => vec![],
        }
    }

    /// Mutable access to nested functions.
    pub fn bodies_mut(&mut self) -> Vec<&mut Function> {
        match self {
            Op::Scan(s) => vec![&mut s.body],
            Op::CustomVjp(c) => vec![&mut c.forward, &mut c.backward],
            _ => vec![],
        }
    }

    /// The type rule: result types from operand types, or an error naming the op, the operand
    /// types and what was expected. This is the only place shapes and dtypes are checked.
    pub fn infer(&self, args: &[TensorType]) -> Result<Vec<TensorType>, IrError> {
        let fail = |msg: String| Err(IrError::type_error(self.name(), args, msg));
        let arity = |n: usize| -> Result<(), IrError> {
            if args.len() != n {
                Err(IrError::type_error(
                    self.name(),
                    args,
                    format!("expected {n} operand(s), got {}", args.len()),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Op::Constant(c) => {
                arity(0)?;
                let n = c.ty.numel();
                if c.data.len() != 1 && c.data.len() != n {
                    return fail(format!(
                        "constant of type {} needs 1 or {n} values, got {}",
                        c.ty,
                        c.data.len()
                    ));
                }
                Ok(vec![c.ty.clone()])
            }
            Op::Iota { ty, axis } => {
                arity(0)?;
                if *axis >= ty.rank() {
                    return fail(format!("iota axis {axis} out of range for type {ty}"));
                }
                if ty.dtype == DType::Bool {
                    return fail("iota needs a numeric type, got bool".into());
                }
                Ok(vec![ty.clone()])
            }
            Op::Unary(u) => {
                arity(1)?;
                let t = &args[0];
                if !(t.dtype.is_float() || (u.allows_int() && t.dtype == DType::I32)) {
                    return fail(format!(
                        "expected a float operand{}, got {}",
                        if u.allows_int() { " or i32" } else { "" },
                        t.dtype
                    ));
                }
                Ok(vec![t.clone()])
            }
            Op::Binary(b) => {
                arity(2)?;
                let (a, c) = (&args[0], &args[1]);
                if a != c {
                    return fail(format!(
                        "operands must have equal types (broadcast explicitly), got {a} and {c}"
                    ));
                }
                if !(a.dtype.is_float() || (b.allows_int() && a.dtype == DType::I32)) {
                    return fail(format!(
                        "expected float{} operands, got {}",
                        if b.allows_int() { " or i32" } else { "" },
                        a.dtype
                    ));
                }
                Ok(vec![a.clone()])
            }
            Op::Compare(_) => {
                arity(2)?;
                let (a, c) = (&args[0], &args[1]);
                if a != c {
                    return fail(format!("operands must have equal types, got {a} and {c}"));
                }
                Ok(vec![a.with_dtype(DType::Bool)])
            }
            Op::Select => {
                arity(3)?;
                let (p, a, c) = (&args[0], &args[1], &args[2]);
                if p.dtype != DType::Bool {
                    return fail(format!("predicate must be bool, got {p}"));
                }
                if a != c {
                    return fail(format!("branches must have equal types, got {a} and {c}"));
                }
                if p.shape != a.shape {
                    return fail(format!(
                        "predicate shape {} must equal branch shape {}",
                        p.shape, a.shape
                    ));
                }
                Ok(vec![a.clone()])
            }
            Op::Cast(d) => {
                arity(1)?;
                Ok(vec![args[0].with_dtype(*d)])
            }
            Op::StopGradient => {
                arity(1)?;
                Ok(vec![args[0].clone()])
            }
            Op::Broadcast { shape, dims } => {
                arity(1)?;
                let t = &args[0];
                if dims.len() != t.rank() {
                    return fail(format!(
                        "dims {dims:?} must have one entry per operand axis ({})",
                        t.rank()
                    ));
                }
                for (i, &d) in dims.iter().enumerate() {
                    if d >= shape.rank() {
                        return fail(format!(
                            "dims {dims:?}: {d} is out of range for result shape {shape}"
                        ));
                    }
                    if i > 0 && dims[i - 1] >= d {
                        return fail(format!("dims {dims:?} must be strictly increasing"));
                    }
                    let (src, dst) = (t.dims()[i], shape.dims()[d]);
                    if src != dst && src != 1 {
                        return fail(format!(
                            "operand axis {i} has size {src}, cannot broadcast to size {dst} (result axis {d} of {shape})"
                        ));
                    }
                }
                Ok(vec![TensorType::new(t.dtype, shape.clone())])
            }
            Op::Reshape(shape) => {
                arity(1)?;
                if shape.numel() != args[0].numel() {
                    return fail(format!(
                        "cannot reshape {} elements to {shape} ({} elements)",
                        args[0].numel(),
                        shape.numel()
                    ));
                }
                Ok(vec![TensorType::new(args[0].dtype, shape.clone())])
            }
            Op::Transpose(perm) => {
                arity(1)?;
                let t = &args[0];
                let mut seen = vec![false; t.rank()];
                if perm.len() != t.rank() {
                    return fail(format!(
                        "permutation {perm:?} must have {} entries",
                        t.rank()
                    ));
                }
                for &p in perm {
                    if p >= t.rank() || seen[p] {
                        return fail(format!("{perm:?} is not a permutation of 0..{}", t.rank()));
                    }
                    seen[p] = true;
                }
                let dims: Vec<usize> = perm.iter().map(|&p| t.dims()[p]).collect();
                Ok(vec![TensorType::new(t.dtype, dims)])
            }
            Op::Slice { start, end } => {
                arity(1)?;
                let t = &args[0];
                if start.len() != t.rank() || end.len() != t.rank() {
                    return fail(format!(
                        "start {start:?} and end {end:?} need one entry per axis ({})",
                        t.rank()
                    ));
                }
                let mut dims = Vec::with_capacity(t.rank());
                for i in 0..t.rank() {
                    if start[i] > end[i] || end[i] > t.dims()[i] {
                        return fail(format!(
                            "axis {i}: range {}..{} is not within 0..{}",
                            start[i],
                            end[i],
                            t.dims()[i]
                        ));
                    }
                    dims.push(end[i] - start[i]);
                }
                Ok(vec![TensorType::new(t.dtype, dims)])
            }
            Op::Pad { low, high } => {
                arity(1)?;
                let t = &args[0];
                if low.len() != t.rank() || high.len() != t.rank() {
                    return fail(format!(
                        "low {low:?} and high {high:?} need one entry per axis ({})",
                        t.rank()
                    ));
                }
                let dims: Vec<usize> = (0..t.rank())
                    .map(|i| low[i] + t.dims()[i] + high[i])
                    .collect();
                Ok(vec![TensorType::new(t.dtype, dims)])
            }
            Op::Concat { axis } => {
                if args.is_empty() {
                    return fail("expected at least one operand".into());
                }
                let first = &args[0];
                if *axis >= first.rank() {
                    return fail(format!(
                        "axis {axis} out of range for rank {}",
                        first.rank()
                    ));
                }
                let mut total = 0;
                for a in args {
                    let same = a.dtype == first.dtype
                        && a.rank() == first.rank()
                        && (0..a.rank()).all(|i| i == *axis || a.dims()[i] == first.dims()[i]);
                    if !same {
                        return fail(format!(
                            "operands must agree in dtype and in every axis but {axis}: {first} vs {a}"
                        ));
                    }
                    total += a.dims()[*axis];
                }
                let mut dims = first.dims().to_vec();
                dims[*axis] = total;
                Ok(vec![TensorType::new(first.dtype, dims)])
            }
            Op::Reduce { axes, .. } => {
                arity(1)?;
                let t = &args[0];
                if !t.dtype.is_numeric() {
                    return fail("expected a numeric operand, got bool".into());
                }
                if let Err(m) = check_axes(axes, t.rank()) {
                    return fail(m);
                }
                let dims: Vec<usize> = (0..t.rank())
                    .filter(|i| !axes.contains(i))
                    .map(|i| t.dims()[i])
                    .collect();
                Ok(vec![TensorType::new(t.dtype, dims)])
            }
            Op::Argmax { axis } => {
                arity(1)?;
                let t = &args[0];
                if !t.dtype.is_numeric() {
                    return fail("expected a numeric operand, got bool".into());
                }
                if *axis >= t.rank() {
                    return fail(format!("axis {axis} out of range for rank {}", t.rank()));
                }
                if t.dims()[*axis] == 0 {
                    return fail(format!("argmax over an empty axis {axis}"));
                }
                let dims: Vec<usize> = (0..t.rank())
                    .filter(|i| i != axis)
                    .map(|i| t.dims()[i])
                    .collect();
                Ok(vec![TensorType::new(DType::I32, dims)])
            }
            Op::Matmul {
                transpose_lhs,
                transpose_rhs,
            } => {
                arity(2)?;
                let (a, b) = (&args[0], &args[1]);
                let bool_lhs = a.dtype == DType::Bool && b.dtype.is_float();
                if !bool_lhs && (a.dtype != b.dtype || !a.dtype.is_numeric()) {
                    return fail(format!(
                        "operands must share a numeric dtype (or be a bool lhs and a float rhs), got {a} and {b}"
                    ));
                }
                if a.rank() < 2 || a.rank() != b.rank() {
                    return fail(format!(
                        "operands must have equal rank >= 2 (batch axes first), got {a} and {b}"
                    ));
                }
                let r = a.rank();
                if a.dims()[..r - 2] != b.dims()[..r - 2] {
                    return fail(format!("batch axes differ: {a} and {b}"));
                }
                let (m, ka) = if *transpose_lhs {
                    (a.dims()[r - 1], a.dims()[r - 2])
                } else {
                    (a.dims()[r - 2], a.dims()[r - 1])
                };
                let (kb, n) = if *transpose_rhs {
                    (b.dims()[r - 1], b.dims()[r - 2])
                } else {
                    (b.dims()[r - 2], b.dims()[r - 1])
                };
                if ka != kb {
                    let side = |t: bool| if t { " (transposed)" } else { "" };
                    return fail(format!(
                        "contracted sizes differ: the lhs{} contracts {ka}, the rhs{} {kb} \
                         (m×k = {m}x{ka}, k×n = {kb}x{n})",
                        side(*transpose_lhs),
                        side(*transpose_rhs)
                    ));
                }
                let mut dims = a.dims()[..r - 2].to_vec();
                dims.push(m);
                dims.push(n);
                Ok(vec![TensorType::new(b.dtype, dims)])
            }
            Op::Cumsum { axis, .. } => {
                arity(1)?;
                let t = &args[0];
                if !t.dtype.is_numeric() {
                    return fail("expected a numeric operand, got bool".into());
                }
                if *axis >= t.rank() {
                    return fail(format!("axis {axis} out of range for rank {}", t.rank()));
                }
                Ok(vec![t.clone()])
            }
            Op::Scan(s) => infer_scan(self, s, args),
            Op::CustomVjp(c) => {
                let fwd_in: Vec<&TensorType> = c.forward.params.iter().map(|p| &p.ty).collect();
                if fwd_in.len() != args.len() || fwd_in.iter().zip(args).any(|(p, a)| *p != a) {
                    return fail(format!(
                        "operands must match the forward function's inputs ({})",
                        list(fwd_in.iter().copied())
                    ));
                }
                let outs = c.forward.output_types();
                let mut bwd_in: Vec<TensorType> = args.to_vec();
                bwd_in.extend(outs.iter().cloned());
                let got: Vec<TensorType> = c.backward.params.iter().map(|p| p.ty.clone()).collect();
                if got != bwd_in {
                    return fail(format!(
                        "backward inputs must be (operands.., cotangents..) = ({}), got ({})",
                        list(bwd_in.iter()),
                        list(got.iter())
                    ));
                }
                let bwd_out = c.backward.output_types();
                if bwd_out != args {
                    return fail(format!(
                        "backward outputs must match the operands ({}), got ({})",
                        list(args.iter()),
                        list(bwd_out.iter())
                    ));
                }
                Ok(outs)
            }
        }
    }
}

fn infer_scan(op: &Op, s: &Scan, args: &[TensorType]) -> Result<Vec<TensorType>, IrError> {
    let fail = |msg: String| Err(IrError::type_error(op.name(), args, msg));
    let (nc, nx) = (s.num_carry, s.num_xs);
    if args.len() < nc + nx {
        return fail(format!(
            "expected at least {} operands (carry + xs), got {}",
            nc + nx,
            args.len()
        ));
    }
    let body_in: Vec<TensorType> = s.body.params.iter().map(|p| p.ty.clone()).collect();
    let mut expect_in: Vec<TensorType> = args[..nc].to_vec();
    for x in &args[nc..nc + nx] {
        if x.rank() == 0 || x.dims()[0] != s.length {
            return fail(format!(
                "per-step input {x} must have leading axis of length {}",
                s.length
            ));
        }
        expect_in.push(TensorType::new(x.dtype, &x.dims()[1..]));
    }
    expect_in.extend_from_slice(&args[nc + nx..]);
    if body_in != expect_in {
        return fail(format!(
            "body inputs must be (carry.., x_t.., consts..) = ({}), got ({})",
            list(expect_in.iter()),
            list(body_in.iter())
        ));
    }
    let body_out = s.body.output_types();
    if body_out.len() < nc || body_out[..nc] != args[..nc] {
        return fail(format!(
            "body must return the carry types ({}) first, got ({})",
            list(args[..nc].iter()),
            list(body_out.iter())
        ));
    }
    let mut res: Vec<TensorType> = args[..nc].to_vec();
    for y in &body_out[nc..] {
        let mut dims = vec![s.length];
        dims.extend_from_slice(y.dims());
        res.push(TensorType::new(y.dtype, dims));
    }
    Ok(res)
}

fn check_axes(axes: &[usize], rank: usize) -> Result<(), String> {
    for (i, &a) in axes.iter().enumerate() {
        if a >= rank {
            return Err(format!("axis {a} out of range for rank {rank}"));
        }
        if i > 0 && axes[i - 1] >= a {
            return Err(format!("axes {axes:?} must be strictly increasing"));
        }
    }
    Ok(())
}

/// Comma-separated list of displayable items.
pub(crate) fn list<T: std::fmt::Display>(it: impl IntoIterator<Item = T>) -> String {
    it.into_iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mnemonics of the ops that are not in one of the `ALL` tables above.
pub const OTHER_OP_NAMES: [&str; 16] = [
    "constant",
    "iota",
    "select",
    "cast",
    "broadcast",
    "reshape",
    "transpose",
    "slice",
    "pad",
    "concat",
    "argmax",
    "matmul",
    "cumsum",
    "scan",
    "stop_gradient",
    "custom_vjp",
];

/// Every op mnemonic of the op table.
pub fn all_op_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = UnaryOp::ALL.iter().map(|o| o.name()).collect();
    v.extend(BinaryOp::ALL.iter().map(|o| o.name()));
    v.extend(CompareOp::ALL.iter().map(|o| o.name()));
    v.extend(ReduceOp::ALL.iter().map(|o| o.name()));
    v.extend(OTHER_OP_NAMES);
    v
}
