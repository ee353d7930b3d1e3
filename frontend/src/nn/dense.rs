//! `Dense` (alias `Linear`): `y = x · W + b` over the last axis (BrainPy spec §2). `x` may be
//! a `bool` spike train: the product reads it as 0/1 without a cast (a bool-lhs matmul) and
//! `y` has the weights' dtype.

use crate::init::Init;
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{DType, Result};

/// A fully connected layer with `W: (num_in, num_out)` and optional bias `b: (num_out,)`.
#[derive(Clone, Debug)]
pub struct Dense {
    /// Input features.
    pub num_in: usize,
    /// Output features.
    pub num_out: usize,
    /// Weights `(num_in, num_out)`.
    pub w: Variable,
    /// Bias `(num_out,)`, if any.
    pub b: Option<Variable>,
}

/// BrainPy's name for [`Dense`].
pub type Linear = Dense;

impl Dense {
    /// BrainPy defaults: XavierNormal weights, zero bias, f64, trainable.
    pub fn new(num_in: usize, num_out: usize) -> Result<Dense> {
        Dense::with_init(
            num_in,
            num_out,
            Init::XavierNormal(),
            Some(Init::Zeros),
            DType::F64,
        )
    }

    /// Explicit initialisers (`b_init = None`: no bias) and element type.
    pub fn with_init(
        num_in: usize,
        num_out: usize,
        w_init: Init,
        b_init: Option<Init>,
        dtype: DType,
    ) -> Result<Dense> {
        if num_in == 0 || num_out == 0 {
            return Err(crate::Error::invalid(
                "Dense",
                format!("num_in and num_out must be positive, got {num_in} and {num_out}"),
            ));
        }
        let w = Variable::param(w_init.array(dtype, &[num_in, num_out])?);
        let b = match b_init {
            Some(i) => Some(Variable::param(i.array(dtype, &[num_out])?)),
            None => None,
        };
        Ok(Dense {
            num_in,
            num_out,
            w,
            b,
        })
    }
}

impl Module for Dense {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        tr.tap(self.w.id(), x);
        let w = tr.read_var(&self.w);
        if !super::check_input("Dense", x, None, self.num_in) {
            return w;
        }
        let y = x.matmul(&w);
        match &self.b {
            Some(b) => y + tr.read_var(b),
            None => y,
        }
    }
}

crate::var_owner!(Dense { "W" => w, "b" => optional b });
