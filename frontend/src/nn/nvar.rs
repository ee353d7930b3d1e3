//! `Nvar`: nonlinear vector autoregression features (BrainPy's `NVAR`, spec §1), traced.
//!
//! The delay buffer is a state of shape `(B, L, d)` with `L = 1 + (k-1)·s`, newest sample at
//! index 0 (a shift register: each step prepends `x` and drops the oldest sample). This is the
//! same as BrainPy's ring buffer with a moving pointer, read in the same order: tap `j` is
//! `x(t - j·s)`, zero while the buffer fills. Features are `[1?] ++ linear ++ monomials`, the
//! monomials of each order in lexicographic index order (`combinations_with_replacement`),
//! built as products of slices of the linear part (exact, no gather).

use crate::nvar_spec::NvarSpec;
use crate::trace::Tensor;
use crate::vars::{Module, Variable};
use crate::{Array, DType, Error, Result, TensorType, concat};

/// An NVAR feature layer with its delay buffer as state.
#[derive(Clone, Debug)]
pub struct Nvar {
    spec: NvarSpec,
    /// Delay buffer `(B, L, d)`, newest first.
    pub store: Variable,
}

impl Nvar {
    /// `Nvar::new(num_in, delay, order, stride, constant)`: `order` lists the monomial degrees
    /// (e.g. `&[2]`; empty for a linear NVAR). Batch size 1 until [`Module::reset_state`].
    pub fn new(
        num_in: usize,
        delay: usize,
        order: &[usize],
        stride: usize,
        constant: bool,
    ) -> Result<Nvar> {
        let spec = NvarSpec::new(num_in, delay, order.to_vec(), stride, constant)
            .map_err(|e| Error::invalid("Nvar", e.to_string()))?;
        let store = Variable::state(Array::zeros(TensorType::new(
            DType::F64,
            [1, spec.buffer_len(), num_in],
        )));
        Ok(Nvar { spec, store })
    }

    /// The layout description (sizes, feature names).
    pub fn spec(&self) -> &NvarSpec {
        &self.spec
    }

    /// Number of output features.
    pub fn num_out(&self) -> usize {
        self.spec.num_out()
    }
}

/// All non-decreasing index tuples of length `n` over `start..D` in lexicographic order,
/// as products of columns of `lin` (`(B, D)`).
fn monomials(lin: &Tensor, n: usize, start: usize) -> Vec<Tensor> {
    let d = lin.shape()[1];
    if n == 1 {
        return vec![lin.slice_axis(1, start, d)];
    }
    let mut parts = vec![];
    for a in start..d {
        let col = lin.slice_axis(1, a, a + 1);
        for rest in monomials(lin, n - 1, a) {
            parts.push(&col * &rest);
        }
    }
    parts
}

impl Module for Nvar {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        let store = tr.read_var(&self.store);
        let (b, l, d) = (store.shape()[0], self.spec.buffer_len(), self.spec.num_in);
        if x.shape() != [b, d] {
            tr.fail(crate::TraceError::Op {
                op: "Nvar".into(),
                msg: format!(
                    "expected input of shape [{b},{d}] (batch, num_in), got {}",
                    x.ty()
                ),
            });
            return x.clone();
        }
        let x = x.cast(store.dtype());
        let newest = x.expand_dims(1);
        let new_store = if l > 1 {
            concat(&[newest, store.slice_axis(1, 0, l - 1)], 1)
        } else {
            Ok(newest)
        };
        let Ok(new_store) = new_store else { return x };
        tr.write_var(&self.store, &new_store);
        let taps: Vec<Tensor> = (0..self.spec.delay)
            .map(|j| {
                new_store
                    .slice_axis(1, j * self.spec.stride, j * self.spec.stride + 1)
                    .reshape(&[b, d])
            })
            .collect();
        let Ok(lin) = concat(&taps, 1) else { return x };
        let mut feats = vec![];
        if self.spec.constant {
            feats.push(lin.full_like(TensorType::new(lin.dtype(), [b, 1]), 1.0));
        }
        feats.push(lin.clone());
        for &n in &self.spec.order {
            feats.extend(monomials(&lin, n, 0));
        }
        concat(&feats, 1).unwrap_or(x)
    }

    fn reset_state(&mut self, batch: usize) {
        let ty = TensorType::new(
            self.store.ty().dtype,
            [batch, self.spec.buffer_len(), self.spec.num_in],
        );
        let _ = self.store.set_value(Array::zeros(ty));
    }
}

crate::var_owner!(Nvar { "store" => store });
