//! `RidgeTrainer`: offline training of a model's linear readout by ridge regression
//! (BrainPy's `RidgeTrainer`/`OfflineTrainer`, spec §3).
//!
//! `predict` runs the model over a batch-first `(B, T, F)` sequence and keeps its state between
//! calls (the tutorial's warm-up call fills the NVAR buffer). `fit([x, y])` runs the model once
//! more, without resetting, in a compiled function that also accumulates `X̃ᵀX̃` and `X̃ᵀY` of
//! the readout's input features `X̃ = [1 | φ]` inside the time loop (no `T × features`
//! matrix is held unless the QR solver asks for it), then solves the regularised system on
//! the host with [`crate::linalg::ridge`] and writes the readout's `W` and `b` (the bias row is
//! penalised too, as BrainPy does). Like BrainPy, `fit` returns the outputs computed with the
//! old weights.

use crate::exec::{Bound, binding_of, run_over_time, swap01};
use crate::linalg::ridge::{NormalEquations, RidgeSolution, RidgeSolver};
use crate::nn::Dense;
use crate::trace::{Tensor, Tracer};
use crate::vars::{Module, Variable, state_vars};
use crate::{Array, Backend, Error, Result, TensorType, concat};

/// A model with a linear readout that offline training fits.
pub trait Readout: Module {
    /// The readout layer.
    fn readout(&self) -> &Dense;
    /// The readout layer, mutably.
    fn readout_mut(&mut self) -> &mut Dense;
}

/// Ridge-regression trainer of a model's readout.
pub struct RidgeTrainer<M: Readout> {
    /// The model (its state persists across `predict`/`fit` calls).
    pub model: M,
    /// Regularisation strength (≥ 0).
    pub alpha: f64,
    /// Linear solver (Cholesky with an eigen fallback by default).
    pub solver: RidgeSolver,
    /// Execution backend.
    pub backend: Backend,
    last: Option<RidgeSolution>,
}

fn check_data(component: &str, what: &str, a: &Array) -> Result<()> {
    if a.shape().len() != 3 {
        return Err(Error::invalid(
            component,
            format!(
                "{what} must be batch-first (batch, time, features), got shape {:?}",
                a.shape()
            ),
        ));
    }
    if a.shape()[1] == 0 || a.shape()[0] == 0 {
        return Err(Error::invalid(
            component,
            format!("{what} is empty (shape {:?})", a.shape()),
        ));
    }
    if let Some(i) = a.to_f64_vec().iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            component,
            format!("{what} has a non-finite value at flat index {i}"),
        ));
    }
    Ok(())
}

impl<M: Readout> RidgeTrainer<M> {
    /// A trainer with BrainPy's semantics; `alpha` must be finite and ≥ 0.
    pub fn new(model: M, alpha: f64) -> Result<RidgeTrainer<M>> {
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(Error::invalid(
                "RidgeTrainer",
                format!("alpha must be finite and >= 0, got {alpha}"),
            ));
        }
        Ok(RidgeTrainer {
            model,
            alpha,
            solver: RidgeSolver::default(),
            backend: Backend::default(),
            last: None,
        })
    }

    /// Builder: the solver.
    pub fn with_solver(mut self, solver: RidgeSolver) -> Self {
        self.solver = solver;
        self
    }

    /// Builder: the backend.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The last fit's solution (weights, condition number, solver used).
    pub fn last_fit(&self) -> Option<&RidgeSolution> {
        self.last.as_ref()
    }

    /// Runs the model over `x` `(B, T, F)`; returns `(B, T, out)`; state is kept.
    pub fn predict(&mut self, x: &Array) -> Result<Array> {
        check_data("RidgeTrainer::predict", "x", x)?;
        self.ensure_batch(x.shape()[0]);
        run_over_time(&mut self.model, x, true, self.backend)
    }

    /// The model's states are sized for a batch; resize (reset) when the batch changes.
    fn ensure_batch(&mut self, batch: usize) {
        let mut need = false;
        self.model.visit_vars(&mut |_, v| {
            if v.is_state() && v.ty().dims().first() != Some(&batch) {
                need = true;
            }
        });
        if need {
            self.model.reset_state(batch);
        }
    }

    /// Fits the readout on inputs `x` `(B, T, F)` and targets `y` `(B, T, out)`; returns the
    /// model's outputs for `x` (computed with the weights before the fit).
    pub fn fit(&mut self, x: &Array, y: &Array) -> Result<Array> {
        const C: &str = "RidgeTrainer::fit";
        check_data(C, "x", x)?;
        check_data(C, "y", y)?;
        if x.shape()[..2] != y.shape()[..2] {
            return Err(Error::invalid(
                C,
                format!(
                    "x and y must share batch and time axes: x is {:?}, y is {:?}",
                    x.shape(),
                    y.shape()
                ),
            ));
        }
        let out_dim = self.model.readout().num_out;
        if y.shape()[2] != out_dim {
            return Err(Error::invalid(
                C,
                format!(
                    "y has {} features, the readout has {out_dim} outputs",
                    y.shape()[2]
                ),
            ));
        }
        self.ensure_batch(x.shape()[0]);
        let y = y.cast(x.dtype());
        let keep_rows = self.solver == RidgeSolver::Qr;
        let (f, binding, num_in) = trace_fit(&self.model, x.ty(), y.ty(), keep_rows)?;
        // Keep the written summation order of X̃ᵀX̃ (no hoisting into one GEMM): with a
        // condition number near 1e16 any reordering changes the weights visibly, and the JIT
        // and the interpreter must fit the same readout.
        let opts = brainlift_runtime::CompileOptions {
            reassociate: false,
            ..Default::default()
        };
        let mut bound = Bound::compile_with(&f, binding, self.backend, &opts)?;
        let outs = bound.run(&mut self.model, &[x.clone(), y.clone()])?;
        let rows = x.shape()[0] * x.shape()[1];
        let eqs = if keep_rows {
            let mut eq = NormalEquations::new_keeping_rows(num_in, out_dim);
            // outs: ys, phi (T, B, F); y is (B, T, out): add rows time-major per batch order.
            let phi = outs[1].to_f64_vec();
            let (b, t) = (x.shape()[0], x.shape()[1]);
            let yv = y.to_f64_vec();
            let mut xr = Vec::with_capacity(rows * num_in);
            let mut yr = Vec::with_capacity(rows * out_dim);
            for bi in 0..b {
                for ti in 0..t {
                    let p = (ti * b + bi) * num_in;
                    xr.extend_from_slice(&phi[p..p + num_in]);
                    let q = (bi * t + ti) * out_dim;
                    yr.extend_from_slice(&yv[q..q + out_dim]);
                }
            }
            eq.add_rows(&xr, &yr, rows)
                .map_err(|e| Error::invalid(C, e.to_string()))?;
            eq
        } else {
            let mut eq = NormalEquations::new(num_in, out_dim);
            eq.add_normal_matrices(&outs[1].to_f64_vec(), &outs[2].to_f64_vec(), rows)
                .map_err(|e| Error::invalid(C, e.to_string()))?;
            eq
        };
        let sol = eqs
            .solve(self.alpha, self.solver)
            .map_err(|e| Error::invalid(C, e.to_string()))?;
        let dtype = self.model.readout().w.ty().dtype;
        let readout = self.model.readout_mut();
        readout.w.set_value(Array::from_f64_values(
            TensorType::new(dtype, [num_in, out_dim]),
            &sol.w,
        )?)?;
        match &mut readout.b {
            Some(b) => b.set_value(Array::from_f64_values(
                TensorType::new(dtype, [out_dim]),
                &sol.b,
            )?)?,
            None => {
                return Err(Error::invalid(
                    C,
                    "the readout has no bias; BrainPy's ridge fit needs one",
                ));
            }
        }
        self.last = Some(sol);
        Ok(outs.into_iter().next().expect("ys"))
    }
}

/// Traces the fit function: inputs `xs (B,T,F)`, `ys (B,T,O)`, then the model's variables;
/// outputs the model's outputs `(B,T,out)`, then `X̃ᵀX̃` and `X̃ᵀY` (or the features
/// `(T,B,F)` when `keep_rows`), then the final states.
/// The function `RidgeTrainer::fit` compiles (for benchmarks and IR dumps): inputs `xs`,
/// `ys`, then the model's variables; outputs the model's outputs, `X̃ᵀX̃` and `X̃ᵀY` (or the
/// features when `keep_rows`), then the final states.
pub fn fit_function(
    model: &dyn Readout,
    x_ty: &TensorType,
    y_ty: &TensorType,
    keep_rows: bool,
) -> Result<(brainlift_ir::Function, crate::exec::Binding)> {
    let (f, b, _) = trace_fit(model, x_ty, y_ty, keep_rows)?;
    Ok((f, b))
}

fn trace_fit(
    model: &dyn Readout,
    x_ty: &TensorType,
    y_ty: &TensorType,
    keep_rows: bool,
) -> Result<(brainlift_ir::Function, crate::exec::Binding, usize)> {
    let readout = model.readout();
    let num_in = readout.num_in;
    // The normal equations are accumulated in f64 whatever the model's element type: they are
    // ill-conditioned (1e12 for an ESN, 1e16 for the NG-RC), f32 sums would lose the fit.
    let (b, dt) = (x_ty.dims()[0], crate::DType::F64);
    let tr = Tracer::new("ridge_fit");
    tr.name_vars(model, "");
    tr.want_tap(readout.w.id());
    let xs = swap01(&tr.input("xs", x_ty.clone()));
    let ys = swap01(&tr.input("ys", y_ty.clone()));
    let states: Vec<(String, Variable)> = state_vars(model);
    let mut init: Vec<Tensor> = states.iter().map(|(_, v)| tr.read_var(v)).collect();
    let n = num_in + 1;
    let o = y_ty.dims()[2];
    if !keep_rows {
        init.push(xs.full_like(TensorType::new(dt, [n, n]), 0.0));
        init.push(xs.full_like(TensorType::new(dt, [n, o]), 0.0));
    }
    let ns = states.len();
    let (carry, outs) = tr.scan(&init, &[xs, ys], None, false, |body, c, x| {
        for ((_, v), t) in states.iter().zip(c) {
            body.write_var(v, t);
        }
        let out = model.update(&x[0]);
        // A layer that rejected its input poisons everything after it (the readout's tap
        // included): report that root cause rather than a missing tap.
        body.check()?;
        let taps = body.taps();
        let phi = match taps.as_slice() {
            [(_, phi)] => phi.clone(),
            [] => {
                return Err(crate::TraceError::Op {
                    op: "RidgeTrainer".into(),
                    msg: "the readout layer was not called in the model's update".into(),
                });
            }
            _ => {
                return Err(crate::TraceError::Op {
                    op: "RidgeTrainer".into(),
                    msg: "the readout layer is called more than once per step".into(),
                });
            }
        };
        let mut new: Vec<Tensor> = states.iter().map(|(_, v)| body.read_var(v)).collect();
        if keep_rows {
            return Ok((new, vec![out, phi]));
        }
        let phi = phi.cast(dt);
        let ones = phi.full_like(TensorType::new(dt, [b, 1]), 1.0);
        let phi1 = concat(&[ones, phi], 1)?;
        new.push(&c[ns] + phi1.matmul_t(&phi1, true, false));
        new.push(&c[ns + 1] + phi1.matmul_t(&x[1].cast(dt), true, false));
        Ok((new, vec![out]))
    })?;
    let mut outputs = vec![("outs".to_string(), swap01(&outs[0]))];
    if keep_rows {
        outputs.push(("features".into(), outs[1].clone()));
    } else {
        outputs.push(("xtx".into(), carry[ns].clone()));
        outputs.push(("xty".into(), carry[ns + 1].clone()));
    }
    let mut state_outputs = vec![];
    for ((path, v), c) in states.iter().zip(&carry) {
        state_outputs.push((outputs.len(), v.id()));
        outputs.push((format!("state.{path}"), c.clone()));
    }
    let f = tr.finish(&outputs)?;
    let binding = binding_of(&tr, f.params.len(), &state_outputs);
    Ok((f, binding, num_in))
}
