//! Loss functions on traced tensors, with BrainPy's reductions (spec §14).
//!
//! Every function appends ops to the tensors' trace and returns a traced scalar, so losses can
//! be differentiated ([`crate::autograd`]) and fused into a training step. Bad input (shapes
//! that do not match, integer logits) is recorded on the tracer as a [`crate::TraceError`]
//! naming the loss and the shapes, and surfaces when the trace finishes; nothing panics.

use crate::TraceError;
use crate::trace::Tensor;
use brainlift_ir::{DType, Op, TensorType};

fn fail(t: &Tensor, op: &str, msg: String) -> Tensor {
    t.tracer().fail(TraceError::Op { op: op.into(), msg });
    t.full_like(
        TensorType::scalar(if t.dtype().is_float() {
            t.dtype()
        } else {
            DType::F64
        }),
        f64::NAN,
    )
}

/// `mean((pred - target)^2)` over every element (a scalar), BrainPy's default `reduction='mean'`.
///
/// `pred` and `target` must have the same shape and float element type.
pub fn mean_squared_error(pred: &Tensor, target: &Tensor) -> Tensor {
    const OP: &str = "mean_squared_error";
    if pred.ty() != target.ty() {
        return fail(
            pred,
            OP,
            format!(
                "predictions {} and targets {} must have the same type and shape",
                pred.ty(),
                target.ty()
            ),
        );
    }
    if !pred.dtype().is_float() {
        return fail(
            pred,
            OP,
            format!("predictions must be floats, got {}", pred.ty()),
        );
    }
    (pred - target).square().mean_all()
}

/// Softmax cross-entropy, mean over the samples (BrainPy's `cross_entropy_loss`).
///
/// `logits` is `(.., C)`. `targets` is either
/// * class indices with one axis fewer than `logits` (`i32`, or floats such as `0.`/`1.` that
///   are truncated to integer class indices, as the tutorial does), one-hot encoded with
///   `iota` + compare; or
/// * one-hot (or soft) float targets of the same shape as `logits`.
///
/// Per sample the loss is `logsumexp(logits) - sum_k logits_k * onehot_k`; the result is the
/// mean over every sample (all leading axes).
pub fn cross_entropy_loss(logits: &Tensor, targets: &Tensor) -> Tensor {
    const OP: &str = "cross_entropy_loss";
    if !logits.dtype().is_float() || logits.rank() == 0 {
        return fail(
            logits,
            OP,
            format!(
                "logits must be floats with a class axis, got {}",
                logits.ty()
            ),
        );
    }
    let r = logits.rank();
    let classes = logits.shape()[r - 1];
    let onehot = if targets.rank() + 1 == r {
        if targets.shape() != &logits.shape()[..r - 1] {
            return fail(
                logits,
                OP,
                format!(
                    "class-index targets {} must have the logits' leading shape {:?} (logits {})",
                    targets.ty(),
                    &logits.shape()[..r - 1],
                    logits.ty()
                ),
            );
        }
        if targets.dtype() == DType::Bool {
            return fail(
                logits,
                OP,
                format!(
                    "class-index targets must be i32 or float, got {}",
                    targets.ty()
                ),
            );
        }
        let idx = targets.cast(DType::I32).stop_gradient();
        let ty = TensorType::new(DType::I32, logits.shape());
        let iota = logits.tracer().push1(Op::Iota { ty, axis: r - 1 }, &[]);
        let dims: Vec<usize> = (0..r - 1).collect();
        let idx_b = idx.broadcast_in_dim(logits.shape(), &dims);
        iota.eq_elem(&idx_b).cast(logits.dtype())
    } else if targets.shape() == logits.shape() {
        if targets.dtype() != logits.dtype() {
            return fail(
                logits,
                OP,
                format!(
                    "one-hot targets {} must have the logits' element type ({})",
                    targets.ty(),
                    logits.ty()
                ),
            );
        }
        targets.clone()
    } else {
        return fail(
            logits,
            OP,
            format!(
                "targets {} must be class indices of shape {:?} or one-hot of shape {:?} ({classes} classes)",
                targets.ty(),
                &logits.shape()[..r - 1],
                logits.shape()
            ),
        );
    };
    let lse = logits.logsumexp(r - 1, false);
    let picked = (logits * &onehot).sum(&[r - 1], false);
    (lse - picked).mean_all()
}

/// `sqrt(sum of squares of every element of every tensor)`: the Frobenius norm over a tree of
/// parameters (BrainPy's `l2_norm`). An empty list gives a constant `0` of a detached trace:
/// combining it with other tensors records a "belongs to another trace" error.
pub fn l2_norm(tensors: &[Tensor]) -> Tensor {
    let Some(first) = tensors.first() else {
        return panic_free_zero();
    };
    let dt = first.dtype();
    let mut acc = first.full_like(TensorType::scalar(dt), 0.0);
    for t in tensors {
        if t.dtype() != dt {
            return fail(
                t,
                "l2_norm",
                format!(
                    "all tensors must share one element type: {} and {}",
                    first.ty(),
                    t.ty()
                ),
            );
        }
        acc = acc + t.square().sum_all();
    }
    acc.sqrt()
}

/// The squared norm `l2_norm(tensors)^2` computed without the square root (cheaper and
/// differentiable at zero).
pub fn l2_norm_squared(tensors: &[Tensor]) -> Tensor {
    let Some(first) = tensors.first() else {
        return panic_free_zero();
    };
    let mut acc = first.full_like(TensorType::scalar(first.dtype()), 0.0);
    for t in tensors {
        acc = acc + t.square().sum_all();
    }
    acc
}

fn panic_free_zero() -> Tensor {
    let tr = crate::Tracer::new("l2_norm_empty");
    tr.push1(
        Op::Constant(brainlift_ir::Constant::splat(
            TensorType::scalar(DType::F64),
            0.0,
        )),
        &[],
    )
}
