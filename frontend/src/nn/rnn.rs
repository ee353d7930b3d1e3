//! Recurrent cells: vanilla RNN (BrainPy's `RNNCell`, spec §5), GRU and LSTM.
//!
//! Each cell is a [`Module`] stepping one time step: it reads its hidden state, computes the new
//! one from the input `x: (B, num_in)` and writes it back. Parameters are trainable variables
//! with paths `Wi`, `Wh`, `b` (and `state2train` with a trainable initial state); states are
//! `state` (RNN, GRU) or `h` and `c` (LSTM), all `(B, num_out)`.
//!
//! Trainable initial state (`train_state`): `state2train: (num_out,)` starts at zero (BrainPy's
//! `ZeroInit`) and is broadcast over the batch at every reset. Unlike BrainPy — whose reset
//! re-zeroes `state2train` outside the differentiated function, so it never trains (spec §5)
//! — brainlift *does* train it: [`Module::reset_state_traced`] writes the broadcast value into
//! the state inside the traced forward pass, so the gradient reaches `state2train`.

use crate::init::Init;
use crate::trace::{Tensor, Tracer};
use crate::vars::{Module, Variable};
use crate::{Array, DType, Error, Result};
use brainlift_ir::TensorType;

/// An elementwise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)` (BrainPy's RNNCell default).
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x`.
    Identity,
}

impl Activation {
    /// Applies the activation (traced).
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Identity => x.clone(),
        }
    }
}

fn check_sizes(cell: &str, num_in: usize, num_out: usize) -> Result<()> {
    if num_in == 0 || num_out == 0 {
        return Err(Error::invalid(
            cell,
            format!("num_in and num_out must be positive, got {num_in} and {num_out}"),
        ));
    }
    Ok(())
}

fn zeros_state(num_out: usize) -> Variable {
    Variable::state(Array::zeros(TensorType::new(DType::F64, [1, num_out])))
}

/// The host value of a `(batch, num_out)` state: zeros, or `init` broadcast over the batch.
fn initial_state(batch: usize, num_out: usize, init: Option<&Variable>) -> Array {
    match init {
        Some(s) => {
            let row = s.value().to_f64_vec();
            let v: Vec<f64> = (0..batch).flat_map(|_| row.iter().copied()).collect();
            Array::from_f64_values(TensorType::new(s.ty().dtype, [batch, num_out]), &v)
                .unwrap_or_else(|_| Array::zeros(TensorType::new(DType::F64, [batch, num_out])))
        }
        None => Array::zeros(TensorType::new(DType::F64, [batch, num_out])),
    }
}

/// Writes `state2train` broadcast over the state's batch into `state` (traced).
fn write_trainable_init(tr: &Tracer, state: &Variable, init: &Variable) {
    let dims = state.ty().dims().to_vec();
    let s = tr.read_var(init);
    tr.write_var(state, &s.broadcast_to(&dims));
}

/// Vanilla RNN: `h_t = act(x_t · Wi + h_{t-1} · Wh + b)` (in that order, spec §5).
#[derive(Clone, Debug)]
pub struct RnnCell {
    /// Input features.
    pub num_in: usize,
    /// Hidden units.
    pub num_out: usize,
    /// Activation (ReLU by default).
    pub activation: Activation,
    /// Input weights `(num_in, num_out)`, XavierNormal.
    pub wi: Variable,
    /// Recurrent weights `(num_out, num_out)`, XavierNormal.
    pub wh: Variable,
    /// Bias `(num_out,)`, zeros.
    pub b: Variable,
    /// Trainable initial state `(num_out,)` when `train_state` is set.
    pub state2train: Option<Variable>,
    /// Hidden state `(B, num_out)`.
    pub state: Variable,
}

impl RnnCell {
    /// BrainPy's defaults: ReLU, XavierNormal `Wi` and `Wh` (drawn in that order from the
    /// default generator), zero `b`, zero initial state, no trainable initial state.
    pub fn new(num_in: usize, num_out: usize) -> Result<RnnCell> {
        check_sizes("RnnCell", num_in, num_out)?;
        let wi = Variable::param(Init::XavierNormal().array(DType::F64, &[num_in, num_out])?);
        let wh = Variable::param(Init::XavierNormal().array(DType::F64, &[num_out, num_out])?);
        let b = Variable::param(Array::zeros(TensorType::new(DType::F64, [num_out])));
        Ok(RnnCell {
            num_in,
            num_out,
            activation: Activation::Relu,
            wi,
            wh,
            b,
            state2train: None,
            state: zeros_state(num_out),
        })
    }

    /// Makes the initial hidden state a trainable parameter `state2train` (zeros), broadcast
    /// over the batch at every reset (builder style).
    pub fn train_state(mut self, on: bool) -> RnnCell {
        self.state2train =
            on.then(|| Variable::param(Array::zeros(TensorType::new(DType::F64, [self.num_out]))));
        self
    }

    /// Sets the activation (builder style).
    pub fn activation(mut self, a: Activation) -> RnnCell {
        self.activation = a;
        self
    }
}

impl Module for RnnCell {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        let h = tr.read_var(&self.state);
        if !super::check_input("RnnCell", x, h.shape().first().copied(), self.num_in) {
            return h;
        }
        let wi = tr.read_var(&self.wi);
        let wh = tr.read_var(&self.wh);
        let b = tr.read_var(&self.b);
        let pre = x.matmul(&wi) + h.matmul(&wh) + b;
        let h_new = self.activation.apply(&pre);
        tr.write_var(&self.state, &h_new);
        h_new
    }

    fn reset_state_traced(&self, tr: &Tracer) {
        if let Some(s) = &self.state2train {
            write_trainable_init(tr, &self.state, s);
        }
    }

    fn reset_state(&mut self, batch: usize) {
        let v = initial_state(batch, self.num_out, self.state2train.as_ref());
        let _ = self.state.set_value(v);
    }
}

crate::var_owner!(RnnCell { "Wi" => wi, "Wh" => wh, "b" => b, "state2train" => optional state2train, "state" => state });

/// Gated recurrent unit (BrainPy's `GRUCell` layout): `Wi: (num_in, 3n)`, `Wh: (n, 3n)`,
/// `b: (3n,)`, column blocks `[z | r | a]`:
///
/// ```text
/// z = sigmoid(x·Wi_z + h·Wh_z + b_z)        update gate
/// r = sigmoid(x·Wi_r + h·Wh_r + b_r)        reset gate
/// a = tanh(x·Wi_a + (r*h)·Wh_a + b_a)       candidate
/// h' = (1 - z) * h + z * a
/// ```
#[derive(Clone, Debug)]
pub struct GruCell {
    /// Input features.
    pub num_in: usize,
    /// Hidden units.
    pub num_out: usize,
    /// Input weights `(num_in, 3 num_out)`, XavierNormal.
    pub wi: Variable,
    /// Recurrent weights `(num_out, 3 num_out)`, Orthogonal in BrainPy; XavierNormal here.
    pub wh: Variable,
    /// Bias `(3 num_out,)`, zeros.
    pub b: Variable,
    /// Trainable initial state when set.
    pub state2train: Option<Variable>,
    /// Hidden state `(B, num_out)`.
    pub state: Variable,
}

impl GruCell {
    /// XavierNormal `Wi`, `Wh`, zero `b`, zero initial state.
    pub fn new(num_in: usize, num_out: usize) -> Result<GruCell> {
        check_sizes("GruCell", num_in, num_out)?;
        let n3 = 3 * num_out;
        Ok(GruCell {
            num_in,
            num_out,
            wi: Variable::param(Init::XavierNormal().array(DType::F64, &[num_in, n3])?),
            wh: Variable::param(Init::XavierNormal().array(DType::F64, &[num_out, n3])?),
            b: Variable::param(Array::zeros(TensorType::new(DType::F64, [n3]))),
            state2train: None,
            state: zeros_state(num_out),
        })
    }

    /// Trainable initial state (builder style), as [`RnnCell::train_state`].
    pub fn train_state(mut self, on: bool) -> GruCell {
        self.state2train =
            on.then(|| Variable::param(Array::zeros(TensorType::new(DType::F64, [self.num_out]))));
        self
    }
}

impl Module for GruCell {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        let n = self.num_out;
        let h = tr.read_var(&self.state);
        if !super::check_input("GruCell", x, h.shape().first().copied(), self.num_in) {
            return h;
        }
        let wi = tr.read_var(&self.wi);
        let wh = tr.read_var(&self.wh);
        let b = tr.read_var(&self.b);
        let gx = x.matmul(&wi);
        let zr = gx.slice_axis(1, 0, 2 * n)
            + h.matmul(&wh.slice_axis(1, 0, 2 * n))
            + b.slice_axis(0, 0, 2 * n);
        let zr = zr.sigmoid();
        let z = zr.slice_axis(1, 0, n);
        let r = zr.slice_axis(1, n, 2 * n);
        let a = (gx.slice_axis(1, 2 * n, 3 * n)
            + (&r * &h).matmul(&wh.slice_axis(1, 2 * n, 3 * n))
            + b.slice_axis(0, 2 * n, 3 * n))
        .tanh();
        let h_new = (1.0 - &z) * &h + &z * &a;
        tr.write_var(&self.state, &h_new);
        h_new
    }

    fn reset_state_traced(&self, tr: &Tracer) {
        if let Some(s) = &self.state2train {
            write_trainable_init(tr, &self.state, s);
        }
    }

    fn reset_state(&mut self, batch: usize) {
        let v = initial_state(batch, self.num_out, self.state2train.as_ref());
        let _ = self.state.set_value(v);
    }
}

crate::var_owner!(GruCell { "Wi" => wi, "Wh" => wh, "b" => b, "state2train" => optional state2train, "state" => state });

/// Long short-term memory: `Wi: (num_in, 4n)`, `Wh: (n, 4n)`, `b: (4n,)`, column blocks
/// `[i | g | f | o]` (BrainPy's order):
///
/// ```text
/// [i, g, f, o] = x·Wi + h·Wh + b
/// c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
/// h' = sigmoid(o) * tanh(c')
/// ```
/// The output is `h'`. States `h` and `c`, both `(B, n)`, start at zero.
#[derive(Clone, Debug)]
pub struct LstmCell {
    /// Input features.
    pub num_in: usize,
    /// Hidden units.
    pub num_out: usize,
    /// Input weights `(num_in, 4 num_out)`, XavierNormal.
    pub wi: Variable,
    /// Recurrent weights `(num_out, 4 num_out)`, XavierNormal.
    pub wh: Variable,
    /// Bias `(4 num_out,)`, zeros.
    pub b: Variable,
    /// Hidden output state.
    pub h: Variable,
    /// Cell state.
    pub c: Variable,
}

impl LstmCell {
    /// XavierNormal `Wi`, `Wh`, zero `b`, zero states.
    pub fn new(num_in: usize, num_out: usize) -> Result<LstmCell> {
        check_sizes("LstmCell", num_in, num_out)?;
        let n4 = 4 * num_out;
        Ok(LstmCell {
            num_in,
            num_out,
            wi: Variable::param(Init::XavierNormal().array(DType::F64, &[num_in, n4])?),
            wh: Variable::param(Init::XavierNormal().array(DType::F64, &[num_out, n4])?),
            b: Variable::param(Array::zeros(TensorType::new(DType::F64, [n4]))),
            h: zeros_state(num_out),
            c: zeros_state(num_out),
        })
    }
}

impl Module for LstmCell {
    fn update(&self, x: &Tensor) -> Tensor {
        let tr = x.tracer();
        let n = self.num_out;
        let h = tr.read_var(&self.h);
        if !super::check_input("LstmCell", x, h.shape().first().copied(), self.num_in) {
            return h;
        }
        let c = tr.read_var(&self.c);
        let wi = tr.read_var(&self.wi);
        let wh = tr.read_var(&self.wh);
        let b = tr.read_var(&self.b);
        let gates = x.matmul(&wi) + h.matmul(&wh) + b;
        let blk = |k: usize| gates.slice_axis(1, k * n, (k + 1) * n);
        let (i, g, f, o) = (blk(0), blk(1), blk(2), blk(3));
        let c_new = f.sigmoid() * &c + i.sigmoid() * g.tanh();
        let h_new = o.sigmoid() * c_new.tanh();
        tr.write_var(&self.c, &c_new);
        tr.write_var(&self.h, &h_new);
        h_new
    }
}

crate::var_owner!(LstmCell { "Wi" => wi, "Wh" => wh, "b" => b, "h" => h, "c" => c });
