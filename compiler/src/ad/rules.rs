//! The VJP rules: one `match` on [`Op`], a line or a few per op.
//!
//! `vjp_rule(b, op, x, y, ct, need, plan)` gets the op's operands `x` and results `y` (values in
//! the gradient function under construction), the cotangent of each result (`None` when no
//! gradient flows into that result) and which operands need a cotangent. It emits the
//! backward ops into `b` and returns one cotangent per operand (`None` = zero / not needed).
//! The engine only calls it when at least one result has a cotangent and one operand needs
//! one; single-result ops therefore always have `ct[0]`.

use super::{AdError, scan::ScanPlan};
use crate::rewrite::inline;
use brainlift_ir::{
    BinaryOp, CompareOp, DType, FunctionBuilder, Op, ReduceOp, Shape, UnaryOp, ValueId,
};

type Grads = Vec<Option<ValueId>>;

/// The VJP of one instruction (see the module doc).
pub(crate) fn vjp_rule(
    b: &mut FunctionBuilder,
    op: &Op,
    x: &[ValueId],
    y: &[ValueId],
    ct: &[Option<ValueId>],
    need: &[bool],
    plan: Option<&ScanPlan>,
) -> Result<Grads, AdError> {
    let g = || ct[0].ok_or_else(|| AdError::Internal(format!("{}: no cotangent", op.name())));
    Ok(match op {
        // Non-differentiable: zero cotangents (the activity analysis never routes through these).
        Op::Constant(_)
        | Op::Iota { .. }
        | Op::Compare(_)
        | Op::Argmax { .. }
        | Op::StopGradient => {
            vec![None; x.len()]
        }
        Op::Unary(u) => vec![Some(unary(b, *u, x[0], y[0], g()?)?)],
        Op::Binary(o) => binary(b, *o, x[0], x[1], y[0], g()?, need)?,
        Op::Select => {
            let (g, z) = (g()?, zeros(b, ct[0].unwrap()));
            vec![
                None,
                Some(b.select(x[0], g, z)?),
                Some(b.select(x[0], z, g)?),
            ]
        }
        Op::Cast(_) => vec![Some(b.cast(g()?, b.ty(x[0]).dtype)?)],
        Op::Broadcast { dims, .. } => vec![Some(unbroadcast(b, g()?, x[0], dims)?)],
        Op::Reshape(_) => vec![Some(b.reshape(g()?, b.ty(x[0]).shape.clone())?)],
        Op::Transpose(perm) => {
            let mut inv = vec![0; perm.len()];
            perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
            vec![Some(b.push1(Op::Transpose(inv), &[g()?])?)]
        }
        Op::Slice { start, end } => {
            let high = b
                .ty(x[0])
                .dims()
                .iter()
                .zip(end)
                .map(|(d, e)| d - e)
                .collect();
            vec![Some(b.push1(
                Op::Pad {
                    low: start.clone(),
                    high,
                },
                &[g()?],
            )?)]
        }
        Op::Pad { low, .. } => {
            let end = b
                .ty(x[0])
                .dims()
                .iter()
                .zip(low)
                .map(|(d, l)| d + l)
                .collect();
            vec![Some(b.push1(
                Op::Slice {
                    start: low.clone(),
                    end,
                },
                &[g()?],
            )?)]
        }
        Op::Concat { axis } => concat(b, g()?, x, *axis, need)?,
        Op::Reduce {
            op: ReduceOp::Sum,
            axes,
        } => vec![Some(unreduce(b, g()?, x[0], axes)?)],
        Op::Reduce { axes, .. } => {
            // JAX: the cotangent goes to every position equal to the result, split by the count.
            let yb = unreduce(b, y[0], x[0], axes)?;
            let dt = b.ty(x[0]).dtype;
            let hit = b.compare(CompareOp::Eq, x[0], yb)?;
            let hitf = b.cast(hit, dt)?;
            let count = b.reduce(ReduceOp::Sum, hitf, axes.clone())?;
            let share = b.div(g()?, count)?;
            let shareb = unreduce(b, share, x[0], axes)?;
            vec![Some(b.mul(shareb, hitf)?)]
        }
        Op::Matmul {
            transpose_lhs: tl,
            transpose_rhs: tr,
        } => {
            let (g, (l, r), (tl, tr)) = (g()?, (x[0], x[1]), (*tl, *tr));
            // d op(A) = G op(B)^T and d op(B) = op(A)^T G, folded into the transpose flags.
            // A bool lhs (spikes, masks) is never active, so it gets no cotangent; the rhs
            // cotangent keeps it on the left (a bool-lhs product again): for a transposed rhs
            // `dB = (op(A)^T G)^T` rather than `G^T op(A)`, which would put it on the right.
            let bool_lhs = b.ty(l).dtype == DType::Bool;
            let da = if !need[0] {
                None
            } else if !tl {
                Some(b.matmul(g, r, false, !tr)?)
            } else {
                Some(b.matmul(r, g, tr, true)?)
            };
            let db = if !need[1] {
                None
            } else if !tr {
                Some(b.matmul(l, g, !tl, false)?)
            } else if bool_lhs {
                let p = b.matmul(l, g, !tl, false)?;
                let r = b.ty(p).rank();
                let mut perm: Vec<usize> = (0..r).collect();
                perm.swap(r - 2, r - 1);
                Some(b.push1(Op::Transpose(perm), &[p])?)
            } else {
                Some(b.matmul(g, l, true, tl)?)
            };
            vec![da, db]
        }
        Op::Cumsum { axis, reverse } => vec![Some(b.push1(
            Op::Cumsum {
                axis: *axis,
                reverse: !reverse,
            },
            &[g()?],
        )?)],
        Op::Scan(s) => {
            let plan =
                plan.ok_or_else(|| AdError::Internal("scan without a residual plan".into()))?;
            super::scan::backward(b, s, x, ct, need, plan)?
        }
        Op::CustomVjp(c) => {
            // Inline the user's backward function on (operands.., cotangents..).
            let mut args: Vec<Option<ValueId>> = x.iter().map(|v| Some(*v)).collect();
            for (r, c) in y.iter().zip(ct) {
                args.push(Some(match c {
                    Some(c) => *c,
                    None => zeros(b, *r),
                }));
            }
            inline(b, &c.backward, &args)?
                .into_iter()
                .map(Some)
                .collect()
        }
    })
}

fn unary(
    b: &mut FunctionBuilder,
    u: UnaryOp,
    x: ValueId,
    y: ValueId,
    g: ValueId,
) -> Result<ValueId, AdError> {
    Ok(match u {
        UnaryOp::Neg => b.unary(UnaryOp::Neg, g)?,
        UnaryOp::Exp => b.mul(g, y)?,
        UnaryOp::Log => b.div(g, x)?,
        UnaryOp::Tanh => {
            let (one, yy) = (splat(b, y, 1.0), b.mul(y, y)?);
            let d = b.sub(one, yy)?;
            b.mul(g, d)?
        }
        UnaryOp::Sigmoid => {
            let one = splat(b, y, 1.0);
            let (gy, omy) = (b.mul(g, y)?, b.sub(one, y)?);
            b.mul(gy, omy)?
        }
        UnaryOp::Sqrt => {
            let two_y = b.add(y, y)?;
            b.div(g, two_y)?
        }
        UnaryOp::Abs => {
            let s = b.unary(UnaryOp::Sign, x)?;
            b.mul(g, s)?
        }
        UnaryOp::Sign => zeros(b, g),
    })
}

fn binary(
    b: &mut FunctionBuilder,
    o: BinaryOp,
    l: ValueId,
    r: ValueId,
    y: ValueId,
    g: ValueId,
    need: &[bool],
) -> Result<Grads, AdError> {
    Ok(match o {
        BinaryOp::Add => vec![Some(g), Some(g)],
        BinaryOp::Sub => vec![
            Some(g),
            if need[1] {
                Some(b.unary(UnaryOp::Neg, g)?)
            } else {
                None
            },
        ],
        BinaryOp::Mul => vec![
            if need[0] { Some(b.mul(g, r)?) } else { None },
            if need[1] { Some(b.mul(g, l)?) } else { None },
        ],
        BinaryOp::Div => {
            let da = b.div(g, r)?;
            let db = if need[1] {
                let t = b.mul(da, y)?;
                Some(b.unary(UnaryOp::Neg, t)?)
            } else {
                None
            };
            vec![Some(da), db]
        }
        BinaryOp::Max | BinaryOp::Min => {
            // Weight 1 to the chosen side, 0.5/0.5 at ties (JAX).
            let wins = if o == BinaryOp::Max {
                CompareOp::Gt
            } else {
                CompareOp::Lt
            };
            let (win, tie) = (b.compare(wins, l, r)?, b.compare(CompareOp::Eq, l, r)?);
            let (one, half, zero) = (splat(b, g, 1.0), splat(b, g, 0.5), splat(b, g, 0.0));
            let w_tie = b.select(tie, half, zero)?;
            let w = b.select(win, one, w_tie)?;
            let da = b.mul(g, w)?;
            vec![Some(da), if need[1] { Some(b.sub(g, da)?) } else { None }]
        }
        BinaryOp::Pow => {
            // d/da = b*a^(b-1); d/db = a^b*log(a) with log(0) replaced by log(1) (JAX).
            let da = if need[0] {
                let one = splat(b, r, 1.0);
                let rm1 = b.sub(r, one)?;
                let p = b.binary(BinaryOp::Pow, l, rm1)?;
                let t = b.mul(r, p)?;
                Some(b.mul(g, t)?)
            } else {
                None
            };
            let db = if need[1] {
                let (zero, one) = (splat(b, l, 0.0), splat(b, l, 1.0));
                let is0 = b.compare(CompareOp::Eq, l, zero)?;
                let safe = b.select(is0, one, l)?;
                let lg = b.unary(UnaryOp::Log, safe)?;
                let t = b.mul(y, lg)?;
                Some(b.mul(g, t)?)
            } else {
                None
            };
            vec![da, db]
        }
    })
}

/// Sums `g` over the axes a broadcast of `x` created or stretched, then reshapes to `x`'s shape.
fn unbroadcast(
    b: &mut FunctionBuilder,
    g: ValueId,
    x: ValueId,
    dims: &[usize],
) -> Result<ValueId, AdError> {
    let (src, dst) = (b.ty(x).shape.clone(), b.ty(g).shape.clone());
    let axes: Vec<usize> = (0..dst.rank())
        .filter(|ax| match dims.iter().position(|d| d == ax) {
            None => true,
            Some(i) => src.dims()[i] != dst.dims()[*ax],
        })
        .collect();
    let red = if axes.is_empty() {
        g
    } else {
        b.reduce(ReduceOp::Sum, g, axes)?
    };
    Ok(if b.ty(red).shape == src {
        red
    } else {
        b.reshape(red, src)?
    })
}

/// Broadcasts `g` (the shape of `x` with `axes` removed) back to the shape of `x`.
fn unreduce(
    b: &mut FunctionBuilder,
    g: ValueId,
    x: ValueId,
    axes: &[usize],
) -> Result<ValueId, AdError> {
    let shape: Shape = b.ty(x).shape.clone();
    let kept = (0..shape.rank()).filter(|a| !axes.contains(a)).collect();
    Ok(b.broadcast(g, shape, kept)?)
}

fn concat(
    b: &mut FunctionBuilder,
    g: ValueId,
    x: &[ValueId],
    axis: usize,
    need: &[bool],
) -> Result<Grads, AdError> {
    let gdims = b.ty(g).dims().to_vec();
    let mut off = 0;
    let mut out = Vec::with_capacity(x.len());
    for (i, v) in x.iter().enumerate() {
        let n = b.ty(*v).dims()[axis];
        if need[i] {
            let mut start = vec![0; gdims.len()];
            let mut end = gdims.clone();
            (start[axis], end[axis]) = (off, off + n);
            out.push(Some(b.push1(Op::Slice { start, end }, &[g])?));
        } else {
            out.push(None);
        }
        off += n;
    }
    Ok(out)
}

/// A splat constant with the type of `like`.
pub(crate) fn splat(b: &mut FunctionBuilder, like: ValueId, v: f64) -> ValueId {
    let t = b.ty(like).clone();
    b.splat(t, v)
}

/// Zeros with the type of `like`.
pub(crate) fn zeros(b: &mut FunctionBuilder, like: ValueId) -> ValueId {
    splat(b, like, 0.0)
}

/// True when gradients flow from operand `arg` of `op` to its results: the operand is a float
/// and the op is differentiable in it.
pub(crate) fn differentiable(op: &Op, arg: usize, arg_dtype: DType) -> bool {
    arg_dtype.is_float()
        && match op {
            Op::Constant(_)
            | Op::Iota { .. }
            | Op::Compare(_)
            | Op::Argmax { .. }
            | Op::StopGradient
            | Op::Unary(UnaryOp::Sign) => false,
            Op::Select => arg > 0,
            Op::Cast(d) => d.is_float(),
            _ => true,
        }
}
