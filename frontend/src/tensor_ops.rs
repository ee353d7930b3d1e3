//! The methods and operators of traced [`Tensor`]s, numpy-style.
//!
//! Binary operators broadcast like numpy (trailing axes aligned, size-1 axes stretched) by
//! inserting explicit `broadcast` ops. A plain `f64` operand is a *weakly typed* scalar: it takes
//! the element type of the tensor (so `x * 2.0` works for f32 and f64 tensors alike).

use crate::TraceError;
use crate::trace::{Tensor, Tracer};
use brainlift_ir::{
    BinaryOp, CompareOp, Constant, DType, Op, ReduceOp, Shape, TensorType, UnaryOp,
};
use std::ops::{Add, Div, Mul, Neg, Sub};

impl Tensor {
    /// The tracer this tensor belongs to.
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// The tensor's type.
    pub fn ty(&self) -> &TensorType {
        &self.ty
    }

    /// Axis sizes.
    pub fn shape(&self) -> &[usize] {
        self.ty.dims()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.ty.rank()
    }

    fn fail(&self, op: &str, msg: String) -> Tensor {
        self.tracer.fail(TraceError::Op { op: op.into(), msg });
        self.tracer.poisoned(self.ty.clone())
    }

    /// A constant in this tensor's trace with the given type, filled with `value`.
    pub fn full_like(&self, ty: TensorType, value: f64) -> Tensor {
        self.tracer
            .push1(Op::Constant(Constant::splat(ty, value)), &[])
    }

    /// A scalar constant of this tensor's element type, broadcast to its shape.
    pub fn scalar_like(&self, value: f64) -> Tensor {
        self.full_like(self.ty.clone(), value)
    }

    fn unary(&self, op: UnaryOp) -> Tensor {
        self.tracer.push1(Op::Unary(op), &[self])
    }

    /// `e^x`.
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh)
    }
    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid)
    }
    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt)
    }
    /// Absolute value.
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs)
    }
    /// Sign (-1, 0, 1).
    pub fn sign(&self) -> Tensor {
        self.unary(UnaryOp::Sign)
    }
    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor {
        self.maximum(&self.scalar_like(0.0))
    }
    /// `x * x`.
    pub fn square(&self) -> Tensor {
        self * self
    }
    /// `x ^ p` for a scalar exponent.
    pub fn powf(&self, p: f64) -> Tensor {
        let e = self.scalar_like(p);
        self.binary(BinaryOp::Pow, &e)
    }

    /// Elementwise maximum (broadcasting).
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Max, other)
    }
    /// Elementwise minimum (broadcasting).
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Min, other)
    }
    /// Elementwise power (broadcasting).
    pub fn pow(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Pow, other)
    }

    /// A binary elementwise op with numpy broadcasting.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Tensor {
        match broadcast_pair(self, other, op.name()) {
            Some((a, b)) => self.tracer.push1(Op::Binary(op), &[&a, &b]),
            None => self.tracer.poisoned(self.ty.clone()),
        }
    }

    /// An elementwise comparison with numpy broadcasting (result `bool`).
    pub fn compare(&self, op: CompareOp, other: &Tensor) -> Tensor {
        match broadcast_pair(self, other, op.name()) {
            Some((a, b)) => self.tracer.push1(Op::Compare(op), &[&a, &b]),
            None => self.tracer.poisoned(self.ty.with_dtype(DType::Bool)),
        }
    }

    /// `x < y`.
    pub fn lt(&self, o: &Tensor) -> Tensor {
        self.compare(CompareOp::Lt, o)
    }
    /// `x <= y`.
    pub fn le(&self, o: &Tensor) -> Tensor {
        self.compare(CompareOp::Le, o)
    }
    /// `x > y`.
    pub fn gt(&self, o: &Tensor) -> Tensor {
        self.compare(CompareOp::Gt, o)
    }
    /// `x >= y`.
    pub fn ge(&self, o: &Tensor) -> Tensor {
        self.compare(CompareOp::Ge, o)
    }
    /// `x == y` elementwise.
    pub fn eq_elem(&self, o: &Tensor) -> Tensor {
        self.compare(CompareOp::Eq, o)
    }
    /// `x != y` elementwise.
    pub fn ne_elem(&self, o: &Tensor) -> Tensor {
        self.compare(CompareOp::Ne, o)
    }
    /// `x >= s` for a scalar.
    pub fn ge_scalar(&self, s: f64) -> Tensor {
        self.ge(&self.scalar_like(s))
    }

    /// `select(self, on_true, on_false)`: `self` must be bool; all three broadcast together.
    pub fn select(&self, on_true: &Tensor, on_false: &Tensor) -> Tensor {
        if self.dtype() != DType::Bool {
            return on_true.fail(
                "select",
                format!("the condition must be bool, got {}", self.ty),
            );
        }
        let Some(shape) = broadcast_shapes(&[self.shape(), on_true.shape(), on_false.shape()])
        else {
            return on_true.fail(
                "select",
                format!(
                    "shapes {}, {} and {} do not broadcast together",
                    self.ty, on_true.ty, on_false.ty
                ),
            );
        };
        let (p, a, b) = (
            self.broadcast_to(&shape),
            on_true.broadcast_to(&shape),
            on_false.broadcast_to(&shape),
        );
        self.tracer.push1(Op::Select, &[&p, &a, &b])
    }

    /// Converts the element type.
    pub fn cast(&self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            return self.clone();
        }
        self.tracer.push1(Op::Cast(dtype), &[self])
    }

    /// Identity that blocks gradients.
    pub fn stop_gradient(&self) -> Tensor {
        self.tracer.push1(Op::StopGradient, &[self])
    }

    /// Broadcasts to `shape` with numpy rules (trailing axes aligned).
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let r = self.rank();
        if r > shape.len() {
            return self.fail(
                "broadcast",
                format!("cannot broadcast {} to {:?}", self.ty, shape),
            );
        }
        let off = shape.len() - r;
        let dims: Vec<usize> = (0..r).map(|i| i + off).collect();
        self.tracer.push1(
            Op::Broadcast {
                shape: Shape::new(shape),
                dims,
            },
            &[self],
        )
    }

    /// Broadcast with an explicit axis map (`broadcast_in_dim`).
    pub fn broadcast_in_dim(&self, shape: &[usize], dims: &[usize]) -> Tensor {
        self.tracer.push1(
            Op::Broadcast {
                shape: Shape::new(shape),
                dims: dims.to_vec(),
            },
            &[self],
        )
    }

    /// Same elements, new shape. One axis may be `usize::MAX` meaning "inferred".
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let mut dims = shape.to_vec();
        if let Some(p) = dims.iter().position(|&d| d == usize::MAX) {
            let known: usize = dims.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || !self.ty.numel().is_multiple_of(known) {
                return self.fail(
                    "reshape",
                    format!("cannot reshape {} to {:?}", self.ty, shape),
                );
            }
            dims[p] = self.ty.numel() / known;
        }
        if dims == self.shape() {
            return self.clone();
        }
        self.tracer.push1(Op::Reshape(Shape::new(&dims)), &[self])
    }

    /// Axis permutation.
    pub fn transpose(&self, perm: &[usize]) -> Tensor {
        self.tracer.push1(Op::Transpose(perm.to_vec()), &[self])
    }

    /// Swaps the last two axes.
    pub fn t(&self) -> Tensor {
        let r = self.rank();
        if r < 2 {
            return self.fail("transpose", format!("needs rank >= 2, got {}", self.ty));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 1, r - 2);
        self.transpose(&perm)
    }

    /// The block `[start, end)` of every axis.
    pub fn slice(&self, start: &[usize], end: &[usize]) -> Tensor {
        self.tracer.push1(
            Op::Slice {
                start: start.to_vec(),
                end: end.to_vec(),
            },
            &[self],
        )
    }

    /// The range `[start, end)` of one axis (other axes whole).
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Tensor {
        if axis >= self.rank() {
            return self.fail("slice", format!("axis {axis} out of range for {}", self.ty));
        }
        let mut s = vec![0; self.rank()];
        let mut e = self.shape().to_vec();
        s[axis] = start;
        e[axis] = end;
        self.slice(&s, &e)
    }

    /// Element `i` of the leading axis (the axis is removed).
    pub fn index(&self, i: usize) -> Tensor {
        if self.rank() == 0 {
            return self.fail("index", "cannot index a scalar".into());
        }
        let s = self.slice_axis(0, i, i + 1);
        s.reshape(&self.shape()[1..])
    }

    /// Zero padding per axis.
    pub fn pad(&self, low: &[usize], high: &[usize]) -> Tensor {
        self.tracer.push1(
            Op::Pad {
                low: low.to_vec(),
                high: high.to_vec(),
            },
            &[self],
        )
    }

    /// Inserts a size-1 axis at `axis`.
    pub fn expand_dims(&self, axis: usize) -> Tensor {
        if axis > self.rank() {
            return self.fail(
                "expand_dims",
                format!("axis {axis} out of range for {}", self.ty),
            );
        }
        let mut d = self.shape().to_vec();
        d.insert(axis, 1);
        self.reshape(&d)
    }

    fn reduce(&self, op: ReduceOp, axes: &[usize], keepdims: bool) -> Tensor {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        axes.dedup();
        let r = self.tracer.push1(
            Op::Reduce {
                op,
                axes: axes.clone(),
            },
            &[self],
        );
        if keepdims {
            let d: Vec<usize> = (0..self.rank())
                .map(|i| {
                    if axes.contains(&i) {
                        1
                    } else {
                        self.shape()[i]
                    }
                })
                .collect();
            r.reshape(&d)
        } else {
            r
        }
    }

    /// Sum over `axes`.
    pub fn sum(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Sum, axes, keepdims)
    }
    /// Sum of every element (a scalar).
    pub fn sum_all(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.sum(&axes, false)
    }
    /// Mean over `axes`.
    pub fn mean(&self, axes: &[usize], keepdims: bool) -> Tensor {
        let n: usize = axes.iter().filter_map(|&a| self.shape().get(a)).product();
        let s = self.sum(axes, keepdims);
        let inv = 1.0 / n.max(1) as f64;
        &s * inv
    }
    /// Mean of every element (a scalar).
    pub fn mean_all(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.mean(&axes, false)
    }
    /// Maximum over `axes`.
    pub fn max(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Max, axes, keepdims)
    }
    /// Minimum over `axes`.
    pub fn min(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Min, axes, keepdims)
    }
    /// Index of the first maximum along `axis` (`i32`).
    pub fn argmax(&self, axis: usize) -> Tensor {
        self.tracer.push1(Op::Argmax { axis }, &[self])
    }
    /// Inclusive cumulative sum along `axis`.
    pub fn cumsum(&self, axis: usize) -> Tensor {
        self.tracer.push1(
            Op::Cumsum {
                axis,
                reverse: false,
            },
            &[self],
        )
    }

    /// `log(sum(exp(x)))` over `axis`, computed stably (max subtracted, gradient stopped).
    pub fn logsumexp(&self, axis: usize, keepdims: bool) -> Tensor {
        let m = self.max(&[axis], true).stop_gradient();
        let s = (self - &m).exp().sum(&[axis], true).log() + &m;
        if keepdims {
            s
        } else {
            let d: Vec<usize> = (0..self.rank())
                .filter(|&i| i != axis)
                .map(|i| self.shape()[i])
                .collect();
            s.reshape(&d)
        }
    }

    /// Matrix product, numpy `@` style: `(.., m, k) @ (k, n)` folds the leading axes of the
    /// left operand into rows; equal-rank operands must share their batch axes.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        self.matmul_t(other, false, false)
    }

    /// Matrix product with the last two axes of either operand transposed.
    pub fn matmul_t(&self, other: &Tensor, transpose_lhs: bool, transpose_rhs: bool) -> Tensor {
        let op = Op::Matmul {
            transpose_lhs,
            transpose_rhs,
        };
        let (ra, rb) = (self.rank(), other.rank());
        if ra > 2 && rb == 2 && !transpose_lhs {
            let k = self.shape()[ra - 1];
            let lead: Vec<usize> = self.shape()[..ra - 1].to_vec();
            let a2 = self.reshape(&[lead.iter().product(), k]);
            let r = self.tracer.push1(op, &[&a2, other]);
            let mut d = lead;
            d.push(*r.shape().last().unwrap_or(&0));
            return r.reshape(&d);
        }
        if ra == 1 || rb == 1 {
            // Vector cases: promote, multiply, squeeze.
            let a = if ra == 1 {
                self.reshape(&[1, self.shape()[0]])
            } else {
                self.clone()
            };
            let b = if rb == 1 {
                other.reshape(&[other.shape()[0], 1])
            } else {
                other.clone()
            };
            let r = a.matmul_t(&b, transpose_lhs && ra != 1, transpose_rhs && rb != 1);
            let mut d = r.shape().to_vec();
            if rb == 1 {
                d.pop();
            }
            if ra == 1 {
                let n = d.len();
                d.remove(n - 1 - usize::from(rb != 1));
            }
            return r.reshape(&d);
        }
        self.tracer.push1(op, &[self, other])
    }
}

/// numpy broadcast of several shapes, or `None` if incompatible.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Option<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

fn broadcast_pair(a: &Tensor, b: &Tensor, op: &str) -> Option<(Tensor, Tensor)> {
    if a.dtype() != b.dtype() {
        a.tracer.fail(TraceError::Op {
            op: op.into(),
            msg: format!(
                "element types differ: {} and {} (cast one explicitly)",
                a.ty, b.ty
            ),
        });
        return None;
    }
    let Some(shape) = broadcast_shapes(&[a.shape(), b.shape()]) else {
        a.tracer.fail(TraceError::Op {
            op: op.into(),
            msg: format!("shapes {} and {} do not broadcast together", a.ty, b.ty),
        });
        return None;
    };
    Some((a.broadcast_to(&shape), b.broadcast_to(&shape)))
}

macro_rules! binop {
    ($trait:ident, $method:ident, $op:expr) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary($op, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary($op, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary($op, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary($op, &rhs)
            }
        }
        impl $trait<f64> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f64) -> Tensor {
                let s = self.full_like(TensorType::scalar(self.dtype()), rhs);
                self.binary($op, &s)
            }
        }
        impl $trait<f64> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f64) -> Tensor {
                (&self).$method(rhs)
            }
        }
        impl $trait<&Tensor> for f64 {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                let s = rhs.full_like(TensorType::scalar(rhs.dtype()), self);
                s.binary($op, rhs)
            }
        }
        impl $trait<Tensor> for f64 {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.$method(&rhs)
            }
        }
    };
}

binop!(Add, add, BinaryOp::Add);
binop!(Sub, sub, BinaryOp::Sub);
binop!(Mul, mul, BinaryOp::Mul);
binop!(Div, div, BinaryOp::Div);

impl Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        (&self).neg()
    }
}

/// Concatenates tensors of one trace along `axis`.
pub fn concat(parts: &[Tensor], axis: usize) -> Result<Tensor, TraceError> {
    let Some(first) = parts.first() else {
        return Err(TraceError::Op {
            op: "concat".into(),
            msg: "nothing to concatenate".into(),
        });
    };
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    let r = first.tracer.push1(Op::Concat { axis }, &refs);
    first.tracer.check()?;
    Ok(r)
}

/// Stacks equal-shaped tensors on a new axis.
pub fn stack(parts: &[Tensor], axis: usize) -> Result<Tensor, TraceError> {
    let ex: Vec<Tensor> = parts.iter().map(|p| p.expand_dims(axis)).collect();
    concat(&ex, axis)
}
