//! The reference interpreter: the semantic ground truth every backend must agree with.
//!
//! # Contract
//!
//! [`interpret`] and [`Interpreter`] verify the function once (recursively, including nested
//! bodies), check the inputs against the function's inputs with [`check_inputs`], and then run
//! every instruction in order with plain loops. Nothing here panics on a verified function;
//! problems are reported as [`RuntimeError`].
//!
//! # Value representation and rounding (the reference semantics)
//!
//! Every value is held as a row-major `Vec<f64>` together with its [`TensorType`]. `f64`, `f32`
//! and `i32` values are represented exactly; `bool` is `0.0` / `1.0`. The element type rules:
//!
//! - **Floats.** An op computes its result in `f64` from the (exact) `f64` images of its operands
//!   and rounds the result once to the element type with [`DType::round`]. So `f32` math is
//!   `f64` math rounded per op. For the elementwise `+ - * /` and `sqrt` this equals IEEE `f32`
//!   arithmetic exactly (no double-rounding issue: `f64` has more than `2*24+2` bits);
//!   for transcendental ops (`exp`, `log`, `tanh`, `sigmoid`, `pow`) it is the correctly rounded
//!   `f32` of the `f64` library result. The elementwise definitions are [`UnaryOp::eval`],
//!   [`BinaryOp::eval`] and [`CompareOp::eval`](brainlift_ir::CompareOp::eval) (one
//!   definition shared with the other crates).
//! - **Compound ops** (`reduce_*`, `matmul`, `cumsum`) accumulate in `f64`, in increasing index
//!   order along the reduced / contracted axis (decreasing for a reverse cumsum), with
//!   [`ReduceOp::combine`], and round each *result element* once. In particular an `f32` sum is
//!   not rounded after every addition. An empty reduction gives [`ReduceOp::init`] (0, -inf or
//!   +inf) rounded to the element type (so `i32` `reduce_max` of nothing is `i32::MIN`).
//!   A `matmul` with a `bool` lhs reads it as `0.0` / `1.0` (its value representation) and
//!   accumulates exactly like a float lhs holding those values, in the rhs dtype.
//! - **`i32`.** Computed in `i32`: `add`, `sub`, `mul`, `neg`, `abs`, sums, cumsums and matmul
//!   wrap like Rust's `wrapping_*` ops; `div` truncates toward zero, division by zero gives 0 and
//!   `i32::MIN / -1` wraps to `i32::MIN`; `max`, `min`, `sign` and comparisons are exact.
//! - **`cast`** is [`DType::round`]: float to `i32` truncates toward zero and saturates, NaN
//!   gives 0; to `bool` is `x != 0` (so NaN gives `true`); to `f32` rounds to nearest.
//! - **`argmax`** returns the first maximal index along the axis; NaN counts as larger than
//!   everything, so the first NaN wins (like numpy).
//!
//! # Ops with nested bodies
//!
//! `scan` calls the interpreter on its body once per step (forward `t = 0..length`, or
//! `length-1` down to 0 when `reverse`), passing `(carry.., xs[t].., consts..)`; `ys[t]` is the
//! output of step `t` in both directions. A `scan` of length 0 returns the initial carries and
//! `ys` with a leading axis of size 0. `custom_vjp` runs its forward function; `stop_gradient`
//! is the identity.
//!
//! # Cost
//!
//! Plain loops, no parallelism: every op is `O(elements * rank)` (matmul `O(b*m*n*k)`). Values
//! are reference-counted, so passing a value to a nested body does not copy it; every op result
//! is a fresh buffer. Intermediate values live until the end of the function they belong to.

use crate::{Executable, RuntimeError, Tensor, check_inputs};
use brainlift_ir::{
    BinaryOp, CustomVjp, DType, Function, Op, ReduceOp, Scan, TensorType, UnaryOp, verify,
};
use std::rc::Rc;

/// Runs `f` on `inputs` with the reference semantics (see the module documentation).
///
/// Verifies `f` and checks that `inputs` match its inputs in count, dtype and shape.
pub fn interpret(f: &Function, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
    verify(f)?;
    crate::check_memory(f)?;
    run_verified(f, inputs)
}

/// A verified function ready to be run by the reference interpreter any number of times.
#[derive(Clone, Debug)]
pub struct Interpreter {
    f: Function,
}

impl Interpreter {
    /// Verifies `f` once and wraps it.
    pub fn new(f: Function) -> Result<Interpreter, RuntimeError> {
        verify(&f)?;
        crate::check_memory(&f)?;
        Ok(Interpreter { f })
    }
}

impl Executable for Interpreter {
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        run_verified(&self.f, inputs)
    }

    fn function(&self) -> &Function {
        &self.f
    }
}

/// An interpreter value: the type and the row-major elements as exact `f64`.
#[derive(Clone, Debug)]
struct Value {
    ty: TensorType,
    data: Vec<f64>,
}

type Rv = Rc<Value>;

fn run_verified(f: &Function, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
    check_inputs(f, inputs)?;
    let vals: Vec<Rv> = inputs
        .iter()
        .map(|t| {
            let d = t.dtype();
            // Normalise (e.g. bool bytes other than 0/1); the identity for the other types.
            let data = t.to_f64_vec().into_iter().map(|x| d.round(x)).collect();
            Rc::new(Value {
                ty: t.ty().clone(),
                data,
            })
        })
        .collect();
    let outs = eval_function(f, vals)?;
    outs.iter()
        .map(|v| Tensor::from_f64_values(v.ty.clone(), &v.data))
        .collect()
}

fn internal(op: &str, msg: String) -> RuntimeError {
    RuntimeError::Unsupported {
        backend: "interpreter".into(),
        op: op.into(),
        msg,
    }
}

/// Runs a (verified) function on values of the right types.
fn eval_function(f: &Function, inputs: Vec<Rv>) -> Result<Vec<Rv>, RuntimeError> {
    if inputs.len() != f.params.len() {
        return Err(internal(
            "call",
            format!(
                "@{} expects {} inputs, got {}",
                f.name,
                f.params.len(),
                inputs.len()
            ),
        ));
    }
    let mut env: Vec<Option<Rv>> = vec![None; f.types.len()];
    for (slot, v) in env.iter_mut().zip(inputs) {
        *slot = Some(v);
    }
    let get = |env: &[Option<Rv>], v: brainlift_ir::ValueId, op: &str| {
        env.get(v.index())
            .and_then(|x| x.clone())
            .ok_or_else(|| internal(op, format!("in @{}: value {v} is not defined", f.name)))
    };
    for inst in &f.insts {
        let name = inst.op.name();
        let args: Vec<Rv> = inst
            .args
            .iter()
            .map(|&a| get(&env, a, name))
            .collect::<Result<_, _>>()?;
        let out_tys: Vec<TensorType> = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
        let outs = eval_op(&inst.op, &args, &out_tys)?;
        if outs.len() != inst.results.len() {
            return Err(internal(
                name,
                format!(
                    "produced {} results, expected {}",
                    outs.len(),
                    inst.results.len()
                ),
            ));
        }
        for (&r, v) in inst.results.iter().zip(outs) {
            env[r.index()] = Some(v);
        }
    }
    f.outputs
        .iter()
        .map(|o| get(&env, o.value, "return"))
        .collect()
}

/// Calls `f(flat, idx)` for every multi-index of `dims`, in row-major order.
fn for_each_index(dims: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let n: usize = dims.iter().product();
    let mut idx = vec![0usize; dims.len()];
    for flat in 0..n {
        f(flat, &idx);
        for a in (0..dims.len()).rev() {
            idx[a] += 1;
            if idx[a] < dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// `(outer, len, inner)`: the sizes before, at and after `axis`.
fn split_at_axis(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = dims[..axis].iter().product();
    let inner = dims[axis + 1..].iter().product();
    (outer, dims[axis], inner)
}

fn i32_unary(op: UnaryOp, x: i32) -> i32 {
    match op {
        UnaryOp::Neg => x.wrapping_neg(),
        UnaryOp::Abs => x.wrapping_abs(),
        UnaryOp::Sign => x.signum(),
        // Not allowed on i32 by the type rule; defined anyway (f64 math, then cast).
        _ => DType::I32.round(op.eval(x as f64)) as i32,
    }
}

fn i32_binary(op: BinaryOp, a: i32, b: i32) -> i32 {
    match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div => {
            if b == 0 {
                0
            } else {
                a.wrapping_div(b)
            }
        }
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        // Not allowed on i32 by the type rule; defined anyway (f64 math, then cast).
        BinaryOp::Pow => DType::I32.round(op.eval(a as f64, b as f64)) as i32,
    }
}

fn one(ty: &TensorType, data: Vec<f64>) -> Result<Vec<Rv>, RuntimeError> {
    Ok(vec![Rc::new(Value {
        ty: ty.clone(),
        data,
    })])
}

/// Evaluates one op. `out` are the result types recorded in the (verified) function.
fn eval_op(op: &Op, args: &[Rv], out: &[TensorType]) -> Result<Vec<Rv>, RuntimeError> {
    let name = op.name();
    // Arity is guaranteed by verification; checked here so that nothing can index out of range.
    let need = |n: usize| -> Result<(), RuntimeError> {
        if args.len() < n || out.is_empty() {
            Err(internal(
                name,
                format!("expected {n} operands, got {}", args.len()),
            ))
        } else {
            Ok(())
        }
    };
    match op {
        Op::Constant(c) => {
            need(0)?;
            let d = out[0].dtype;
            one(
                &out[0],
                (0..out[0].numel()).map(|i| d.round(c.get(i))).collect(),
            )
        }
        Op::Iota { axis, .. } => {
            need(0)?;
            let d = out[0].dtype;
            let mut data = Vec::with_capacity(out[0].numel());
            for_each_index(out[0].dims(), |_, idx| {
                data.push(d.round(idx[*axis] as f64))
            });
            one(&out[0], data)
        }
        Op::Unary(u) => {
            need(1)?;
            let d = out[0].dtype;
            let data = if d == DType::I32 {
                args[0]
                    .data
                    .iter()
                    .map(|&x| i32_unary(*u, x as i32) as f64)
                    .collect()
            } else {
                args[0].data.iter().map(|&x| d.round(u.eval(x))).collect()
            };
            one(&out[0], data)
        }
        Op::Binary(b) => {
            need(2)?;
            let d = out[0].dtype;
            let (x, y) = (&args[0].data, &args[1].data);
            let data = if d == DType::I32 {
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| i32_binary(*b, p as i32, q as i32) as f64)
                    .collect()
            } else {
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| d.round(b.eval(p, q)))
                    .collect()
            };
            one(&out[0], data)
        }
        Op::Compare(c) => {
            need(2)?;
            let (x, y) = (&args[0].data, &args[1].data);
            let data = x
                .iter()
                .zip(y)
                .map(|(&p, &q)| if c.eval(p, q) { 1.0 } else { 0.0 });
            one(&out[0], data.collect())
        }
        Op::Select => {
            need(3)?;
            let (p, a, b) = (&args[0].data, &args[1].data, &args[2].data);
            let data = p
                .iter()
                .zip(a.iter().zip(b))
                .map(|(&p, (&a, &b))| if p != 0.0 { a } else { b });
            one(&out[0], data.collect())
        }
        Op::Cast(d) => {
            need(1)?;
            one(&out[0], args[0].data.iter().map(|&x| d.round(x)).collect())
        }
        Op::StopGradient => {
            need(1)?;
            Ok(vec![args[0].clone()])
        }
        Op::Reshape(_) => {
            need(1)?;
            one(&out[0], args[0].data.clone())
        }
        Op::Broadcast { dims, .. } => {
            need(1)?;
            let a = &args[0];
            let (in_dims, in_strides) = (a.ty.dims(), a.ty.shape.strides());
            let mut data = Vec::with_capacity(out[0].numel());
            for_each_index(out[0].dims(), |_, idx| {
                let off: usize = (0..in_dims.len())
                    .map(|i| {
                        if in_dims[i] == 1 {
                            0
                        } else {
                            idx[dims[i]] * in_strides[i]
                        }
                    })
                    .sum();
                data.push(a.data[off]);
            });
            one(&out[0], data)
        }
        Op::Transpose(perm) => {
            need(1)?;
            let a = &args[0];
            let in_strides = a.ty.shape.strides();
            let mut data = Vec::with_capacity(out[0].numel());
            for_each_index(out[0].dims(), |_, idx| {
                let off: usize = perm
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| idx[i] * in_strides[p])
                    .sum();
                data.push(a.data[off]);
            });
            one(&out[0], data)
        }
        Op::Slice { start, .. } => {
            need(1)?;
            let a = &args[0];
            let in_strides = a.ty.shape.strides();
            let mut data = Vec::with_capacity(out[0].numel());
            for_each_index(out[0].dims(), |_, idx| {
                let off: usize = (0..idx.len())
                    .map(|i| (start[i] + idx[i]) * in_strides[i])
                    .sum();
                data.push(a.data[off]);
            });
            one(&out[0], data)
        }
        Op::Pad { low, .. } => {
            need(1)?;
            let a = &args[0];
            let out_strides = out[0].shape.strides();
            let mut data = vec![0.0; out[0].numel()];
            for_each_index(a.ty.dims(), |flat, idx| {
                let off: usize = (0..idx.len())
                    .map(|i| (low[i] + idx[i]) * out_strides[i])
                    .sum();
                data[off] = a.data[flat];
            });
            one(&out[0], data)
        }
        Op::Concat { axis } => {
            need(1)?;
            let out_strides = out[0].shape.strides();
            let mut data = vec![0.0; out[0].numel()];
            let mut base = 0;
            for a in args {
                for_each_index(a.ty.dims(), |flat, idx| {
                    let off: usize = (0..idx.len())
                        .map(|i| (idx[i] + if i == *axis { base } else { 0 }) * out_strides[i])
                        .sum();
                    data[off] = a.data[flat];
                });
                base += a.ty.dims()[*axis];
            }
            one(&out[0], data)
        }
        Op::Reduce { op: r, axes } => {
            need(1)?;
            eval_reduce(*r, axes, &args[0], &out[0])
        }
        Op::Argmax { axis } => {
            need(1)?;
            let a = &args[0];
            let (outer, len, inner) = split_at_axis(a.ty.dims(), *axis);
            let mut data = Vec::with_capacity(outer * inner);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| a.data[(o * len + k) * inner + i];
                    let mut best = 0;
                    for k in 1..len {
                        let (b, x) = (at(best), at(k));
                        if !b.is_nan() && (x.is_nan() || x > b) {
                            best = k;
                        }
                    }
                    data.push(best as f64);
                }
            }
            one(&out[0], data)
        }
        Op::Matmul {
            transpose_lhs,
            transpose_rhs,
        } => {
            need(2)?;
            eval_matmul(&args[0], &args[1], *transpose_lhs, *transpose_rhs, &out[0])
        }
        Op::Cumsum { axis, reverse } => {
            need(1)?;
            let a = &args[0];
            let d = out[0].dtype;
            let (outer, len, inner) = split_at_axis(a.ty.dims(), *axis);
            let mut data = vec![0.0; a.data.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let (mut acc, mut iacc) = (0.0f64, 0i32);
                    for step in 0..len {
                        let k = if *reverse { len - 1 - step } else { step };
                        let at = (o * len + k) * inner + i;
                        data[at] = if d == DType::I32 {
                            iacc = iacc.wrapping_add(a.data[at] as i32);
                            iacc as f64
                        } else {
                            acc += a.data[at];
                            d.round(acc)
                        };
                    }
                }
            }
            one(&out[0], data)
        }
        Op::Scan(s) => eval_scan(s, args, out),
        Op::CustomVjp(c) => {
            let CustomVjp { forward, .. } = &**c;
            eval_function(forward, args.to_vec())
        }
    }
}

fn eval_reduce(
    r: ReduceOp,
    axes: &[usize],
    a: &Value,
    out: &TensorType,
) -> Result<Vec<Rv>, RuntimeError> {
    let d = out.dtype;
    let out_strides = out.shape.strides();
    // For each operand axis: the output stride it moves along (0 for a reduced axis).
    let mut strides = Vec::with_capacity(a.ty.rank());
    let mut j = 0;
    for i in 0..a.ty.rank() {
        if axes.contains(&i) {
            strides.push(0);
        } else {
            strides.push(out_strides.get(j).copied().unwrap_or(0));
            j += 1;
        }
    }
    let n = out.numel();
    if d == DType::I32 && r == ReduceOp::Sum {
        let mut acc = vec![0i32; n];
        for_each_index(a.ty.dims(), |flat, idx| {
            let o: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
            acc[o] = acc[o].wrapping_add(a.data[flat] as i32);
        });
        return one(out, acc.into_iter().map(|x| x as f64).collect());
    }
    let mut acc = vec![r.init(); n];
    for_each_index(a.ty.dims(), |flat, idx| {
        let o: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        acc[o] = r.combine(acc[o], a.data[flat]);
    });
    one(out, acc.into_iter().map(|x| d.round(x)).collect())
}

fn eval_matmul(
    a: &Value,
    b: &Value,
    tl: bool,
    tr: bool,
    out: &TensorType,
) -> Result<Vec<Rv>, RuntimeError> {
    let (ad, bd) = (a.ty.dims(), b.ty.dims());
    let r = ad.len();
    if r < 2 || bd.len() != r {
        return Err(internal(
            "matmul",
            format!("bad operand types {} and {}", a.ty, b.ty),
        ));
    }
    let batch: usize = ad[..r - 2].iter().product();
    let (a0, a1, b0, b1) = (ad[r - 2], ad[r - 1], bd[r - 2], bd[r - 1]);
    let (m, k) = if tl { (a1, a0) } else { (a0, a1) };
    let n = if tr { b0 } else { b1 };
    // Element (i, kk) of the (possibly transposed) lhs of batch `bt`, and (kk, j) of the rhs.
    let lhs = |bt: usize, i: usize, kk: usize| {
        a.data[bt * a0 * a1 + if tl { kk * a1 + i } else { i * a1 + kk }]
    };
    let rhs = |bt: usize, kk: usize, j: usize| {
        b.data[bt * b0 * b1 + if tr { j * b1 + kk } else { kk * b1 + j }]
    };
    // The result dtype is the rhs's (for a `bool` lhs, whose elements are already 0.0/1.0).
    let d = out.dtype;
    let mut data = Vec::with_capacity(batch * m * n);
    for bt in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let v = if d == DType::I32 {
                    let mut acc = 0i32;
                    for kk in 0..k {
                        let p = (lhs(bt, i, kk) as i32).wrapping_mul(rhs(bt, kk, j) as i32);
                        acc = acc.wrapping_add(p);
                    }
                    acc as f64
                } else {
                    let mut acc = 0.0;
                    for kk in 0..k {
                        acc += lhs(bt, i, kk) * rhs(bt, kk, j);
                    }
                    d.round(acc)
                };
                data.push(v);
            }
        }
    }
    one(out, data)
}

fn eval_scan(s: &Scan, args: &[Rv], out: &[TensorType]) -> Result<Vec<Rv>, RuntimeError> {
    let (nc, nx, len) = (s.num_carry, s.num_xs, s.length);
    if args.len() < nc + nx || out.len() < nc {
        return Err(internal(
            "scan",
            format!("expected at least {} operands and {nc} results", nc + nx),
        ));
    }
    let mut carry: Vec<Rv> = args[..nc].to_vec();
    let xs = &args[nc..nc + nx];
    let consts = &args[nc + nx..];
    let ys_tys = &out[nc..];
    let mut ys: Vec<Vec<f64>> = ys_tys.iter().map(|t| vec![0.0; t.numel()]).collect();
    for step in 0..len {
        let t = if s.reverse { len - 1 - step } else { step };
        let mut inputs = carry.clone();
        for x in xs {
            let dims = x.ty.dims();
            let per: usize = dims[1..].iter().product();
            let data = x.data[t * per..(t + 1) * per].to_vec();
            inputs.push(Rc::new(Value {
                ty: TensorType::new(x.ty.dtype, &dims[1..]),
                data,
            }));
        }
        inputs.extend(consts.iter().cloned());
        let outs = eval_function(&s.body, inputs)?;
        if outs.len() != nc + ys.len() {
            return Err(internal(
                "scan",
                format!(
                    "body returned {} values, expected {}",
                    outs.len(),
                    nc + ys.len()
                ),
            ));
        }
        let mut outs = outs.into_iter();
        carry = outs.by_ref().take(nc).collect();
        for (buf, y) in ys.iter_mut().zip(outs) {
            let per = y.data.len();
            let dst = buf.get_mut(t * per..(t + 1) * per).ok_or_else(|| {
                internal(
                    "scan",
                    format!("body output {} does not fit the stacked ys", y.ty),
                )
            })?;
            dst.copy_from_slice(&y.data);
        }
    }
    let mut res = carry;
    for (ty, data) in ys_tys.iter().zip(ys) {
        res.push(Rc::new(Value {
            ty: ty.clone(),
            data,
        }));
    }
    Ok(res)
}
