//! Spike functions with surrogate gradients, as `custom_vjp` ops.
//!
//! Forward (every variant): the Heaviside step `s = H(u) = [u >= 0]` in the float dtype of
//! `u`, with `H(0) = 1` (BrainPy). Backward: `du = g * h(u)` with the surrogate derivative
//! `h` of the chosen variant. Insert the result with
//! `b.push(Op::CustomVjp(Box::new(surrogate.build(&ty))), &[u])`.

use brainlift_ir::{
    BinaryOp, CompareOp, CustomVjp, Function, FunctionBuilder, IrError, TensorType, UnaryOp,
    ValueId,
};

/// A surrogate derivative for the spike function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Surrogate {
    /// `h(u) = 1 / (alpha*|u| + 1)^2` — BrainPy's `InvSquareGrad`, the default (alpha = 100).
    InvSquare {
        /// Sharpness (BrainPy default 100).
        alpha: f64,
    },
    /// `h(u) = alpha * s * (1 - s)` with `s = sigmoid(alpha*u)` — the derivative of
    /// `sigmoid(alpha*u)` (BrainPy `Sigmoid`, default alpha = 4).
    Sigmoid {
        /// Sharpness.
        alpha: f64,
    },
    /// `h(u) = max(0, 1 - |u|/width) / width` — a triangle of half-width `width` and unit
    /// area (BrainPy `PiecewiseLinear`-style).
    PiecewiseLinear {
        /// Half-width of the triangle.
        width: f64,
    },
    /// `h(u) = (alpha/2) / (1 + (pi/2 * alpha * u)^2)` — the derivative of
    /// `atan(pi/2*alpha*u)/pi + 1/2` (BrainPy `Arctan`, default alpha = 2).
    Arctan {
        /// Sharpness.
        alpha: f64,
    },
    /// `h(u) = alpha / (2 * (1 + alpha*|u|)^2)` — the derivative of the fast sigmoid
    /// `1/2 + alpha*u / (2*(1 + alpha*|u|))`, normalised to unit area (SuperSpike-style;
    /// unlike [`Surrogate::InvSquare`] its peak is `alpha/2`).
    FastSigmoid {
        /// Sharpness.
        alpha: f64,
    },
}

impl Default for Surrogate {
    /// BrainPy's default: `InvSquare { alpha: 100.0 }`.
    fn default() -> Surrogate {
        Surrogate::InvSquare { alpha: 100.0 }
    }
}

impl Surrogate {
    /// A short name used for the op (`spike_inv_square`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Surrogate::InvSquare { .. } => "spike_inv_square",
            Surrogate::Sigmoid { .. } => "spike_sigmoid",
            Surrogate::PiecewiseLinear { .. } => "spike_piecewise_linear",
            Surrogate::Arctan { .. } => "spike_arctan",
            Surrogate::FastSigmoid { .. } => "spike_fast_sigmoid",
        }
    }

    /// The surrogate derivative `h(u)` evaluated in `f64` (the reference for tests).
    pub fn derivative(&self, u: f64) -> f64 {
        match *self {
            Surrogate::InvSquare { alpha } => 1.0 / (alpha * u.abs() + 1.0).powi(2),
            Surrogate::Sigmoid { alpha } => {
                let s = UnaryOp::Sigmoid.eval(alpha * u);
                alpha * s * (1.0 - s)
            }
            Surrogate::PiecewiseLinear { width } => (1.0 - u.abs() / width).max(0.0) / width,
            Surrogate::Arctan { alpha } => {
                let t = std::f64::consts::FRAC_PI_2 * alpha * u;
                alpha / 2.0 / (1.0 + t * t)
            }
            Surrogate::FastSigmoid { alpha } => alpha / (2.0 * (1.0 + alpha * u.abs()).powi(2)),
        }
    }

    /// The spike op for values of type `ty` (a float type): forward `H(u)`, backward
    /// `g * h(u)`. Panics only if `ty` is not a float type (a programming error).
    pub fn build(&self, ty: &TensorType) -> CustomVjp {
        assert!(
            ty.dtype.is_float(),
            "spike function needs a float type, got {ty}"
        );
        CustomVjp {
            name: self.name().to_string(),
            forward: self.forward(ty).expect("spike forward is well typed"),
            backward: self.backward(ty).expect("spike backward is well typed"),
        }
    }

    fn forward(&self, ty: &TensorType) -> Result<Function, IrError> {
        let mut b = FunctionBuilder::new("forward");
        let u = b.param("u", ty.clone());
        let zero = b.splat(ty.clone(), 0.0);
        let ge = b.compare(CompareOp::Ge, u, zero)?;
        let s = b.cast(ge, ty.dtype)?;
        Ok(b.finish([("s".to_string(), s)]))
    }

    fn backward(&self, ty: &TensorType) -> Result<Function, IrError> {
        let mut b = FunctionBuilder::new("backward");
        let u = b.param("u", ty.clone());
        let g = b.param("g", ty.clone());
        let c = |b: &mut FunctionBuilder, v: f64| b.splat(ty.clone(), v);
        let h: ValueId = match *self {
            Surrogate::InvSquare { alpha } => {
                let (a, one) = (c(&mut b, alpha), c(&mut b, 1.0));
                let au = b.unary(UnaryOp::Abs, u)?;
                let t = b.mul(a, au)?;
                let t = b.add(t, one)?;
                let t2 = b.mul(t, t)?;
                b.div(one, t2)?
            }
            Surrogate::Sigmoid { alpha } => {
                let (a, one) = (c(&mut b, alpha), c(&mut b, 1.0));
                let au = b.mul(a, u)?;
                let s = b.unary(UnaryOp::Sigmoid, au)?;
                let oms = b.sub(one, s)?;
                let t = b.mul(s, oms)?;
                b.mul(a, t)?
            }
            Surrogate::PiecewiseLinear { width } => {
                let (w, one, zero) = (c(&mut b, width), c(&mut b, 1.0), c(&mut b, 0.0));
                let au = b.unary(UnaryOp::Abs, u)?;
                let r = b.div(au, w)?;
                let t = b.sub(one, r)?;
                let t = b.binary(BinaryOp::Max, zero, t)?;
                b.div(t, w)?
            }
            Surrogate::Arctan { alpha } => {
                let k = c(&mut b, std::f64::consts::FRAC_PI_2 * alpha);
                let (half_a, one) = (c(&mut b, alpha / 2.0), c(&mut b, 1.0));
                let t = b.mul(k, u)?;
                let t2 = b.mul(t, t)?;
                let den = b.add(one, t2)?;
                b.div(half_a, den)?
            }
            Surrogate::FastSigmoid { alpha } => {
                let (a, one, half_a) = (c(&mut b, alpha), c(&mut b, 1.0), c(&mut b, alpha / 2.0));
                let au = b.unary(UnaryOp::Abs, u)?;
                let t = b.mul(a, au)?;
                let t = b.add(t, one)?;
                let t2 = b.mul(t, t)?;
                b.div(half_a, t2)?
            }
        };
        let du = b.mul(g, h)?;
        Ok(b.finish([("du".to_string(), du)]))
    }
}
