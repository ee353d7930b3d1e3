//! Ridge regression for readouts, as BrainPy's `RidgeTrainer` defines it (spec §3), with a
//! choice of solver.
//!
//! Contract:
//! * The design matrix gets a leading column of ones for the bias: `X̃ = [1 | X]`, and the
//!   solution is `W̃ = (X̃ᵀX̃ + αI)⁻¹ X̃ᵀY` with the **full** identity, so the bias row is
//!   penalised too. `b = W̃[0]`, `W = W̃[1..]` in the Dense layout `(num_in, num_out)`.
//! * [`NormalEquations`] accumulates `X̃ᵀX̃` and `X̃ᵀY` block by block (no `T × F` matrix is
//!   kept unless the QR solver is wanted); [`ridge_fit`] is the one-shot form.
//! * Solvers ([`RidgeSolver`]): Cholesky of `X̃ᵀX̃ + αI` (default) with a symmetric
//!   eigendecomposition fallback; QR least squares on `[X̃; √α·I]` (does not square the
//!   condition number, needs the rows); SVD pseudo-inverse with BrainPy's relative cut-off.
//! * Every solution reports the condition number `λ_max / λ_min` of `X̃ᵀX̃ + αI` (infinite when
//!   `λ_min <= 0`), the solver actually used and the numerical rank it kept.
//! * Errors instead of silent NaNs: negative/NaN α, non-finite data, empty data, shape
//!   mismatches, a singular system with α = 0 (except with the pseudo-inverse, which is
//!   defined for singular systems), and a non-finite solution.
//!
//! Cost: accumulation `O(N·F²)` (faer matmul); every solve `O(F³)` plus one symmetric
//! eigenvalue decomposition `O(F³)` for the condition number; QR `O((N+F)·F²)`.

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::{Solve, SolveLstsq};
use faer::{Accum, Mat, MatRef, Par, Side};
use thiserror::Error;

/// Which linear solver [`NormalEquations::solve`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RidgeSolver {
    /// Cholesky of `X̃ᵀX̃ + αI`; if the factorisation fails, a symmetric eigendecomposition
    /// solve that drops eigenvalues `<= n·ε·λ_max` (a documented pseudo-inverse).
    #[default]
    Cholesky,
    /// Least squares on the augmented matrix `[X̃; √α·I]` by column-pivoted QR. Needs the
    /// design matrix: use [`NormalEquations::new_keeping_rows`] or [`ridge_fit`].
    Qr,
    /// SVD pseudo-inverse of `X̃ᵀX̃ + αI`, discarding singular values `<= rcond·σ_max`.
    /// `rcond = None` is BrainPy's (JAX's) default `10·n·ε` for the `n × n` system.
    Pinv {
        /// Relative cut-off; `None` for `10·n·ε`.
        rcond: Option<f64>,
    },
}

/// The solver that produced a [`RidgeSolution`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SolverUsed {
    /// Cholesky succeeded.
    Cholesky,
    /// Cholesky failed; the eigendecomposition pseudo-inverse solved the system.
    EigenFallback,
    /// Column-pivoted QR least squares on the augmented design matrix.
    Qr,
    /// SVD pseudo-inverse with this relative cut-off.
    Pinv {
        /// The relative cut-off applied.
        rcond: f64,
    },
}

/// Errors from ridge regression.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RidgeError {
    /// α is negative or not finite.
    #[error("ridge: alpha = {alpha} is invalid, expected a finite number >= 0")]
    InvalidAlpha {
        /// The α given.
        alpha: f64,
    },
    /// The pseudo-inverse cut-off is negative or not finite.
    #[error("ridge: pinv rcond = {rcond} is invalid, expected a finite number >= 0")]
    InvalidRcond {
        /// The cut-off given.
        rcond: f64,
    },
    /// A buffer does not have the size its shape implies.
    #[error("ridge {op}: {what} has {got} values, expected {expected}")]
    Shape {
        /// The call (`add_rows`, `ridge_fit`, `new`).
        op: &'static str,
        /// Which argument (`x`, `y`).
        what: &'static str,
        /// Values given.
        got: usize,
        /// Description of the expected size.
        expected: String,
    },
    /// NaN or ±inf in the data.
    #[error("ridge: {what}[row {row}, col {col}] = {value} is not finite")]
    NonFinite {
        /// `x` or `y`.
        what: &'static str,
        /// Row within the block given.
        row: usize,
        /// Column.
        col: usize,
        /// The value.
        value: f64,
    },
    /// No rows were accumulated.
    #[error("ridge solve: no data rows were added")]
    Empty,
    /// The system is singular and α = 0.
    #[error(
        "ridge solve ({solver}): X̃ᵀX̃ + αI ({n}x{n}) is singular (numerical rank {rank}) with alpha = 0; use alpha > 0 or RidgeSolver::Pinv"
    )]
    Singular {
        /// Solver that detected it.
        solver: &'static str,
        /// Numerical rank found.
        rank: usize,
        /// System size `num_features + 1`.
        n: usize,
    },
    /// QR was asked for but the accumulator did not keep the rows.
    #[error(
        "ridge solve: RidgeSolver::Qr needs the design matrix; build the accumulator with NormalEquations::new_keeping_rows"
    )]
    QrNeedsDesignMatrix,
    /// A faer decomposition did not converge.
    #[error("ridge solve: {0} did not converge")]
    NoConvergence(&'static str),
    /// The computed weights are not finite.
    #[error("ridge solve ({solver}): the solution contains non-finite values")]
    NonFiniteSolution {
        /// Solver used.
        solver: &'static str,
    },
}

/// A fitted readout.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeSolution {
    /// Weights `(num_in, num_out)` row-major (Dense layout).
    pub w: Vec<f64>,
    /// Bias `(num_out,)`.
    pub b: Vec<f64>,
    /// Input features `num_in`.
    pub num_in: usize,
    /// Outputs `num_out`.
    pub num_out: usize,
    /// `λ_max / λ_min` of `X̃ᵀX̃ + αI` (`inf` when `λ_min <= 0`). Computed from the
    /// symmetric eigenvalues, so above about `1/ε ≈ 4.5e15` it is only an order of magnitude
    /// (λ_min is then known to about `ε·λ_max`).
    pub condition_number: f64,
    /// Solver that produced the weights.
    pub solver_used: SolverUsed,
    /// Numerical rank kept by the solver (`num_in + 1` for a full-rank solve).
    pub rank: usize,
}

impl RidgeSolution {
    /// `y = x·W + b` for `rows` rows of `x` (row-major `(rows, num_in)`).
    pub fn predict(&self, x: &[f64], rows: usize) -> Result<Vec<f64>, RidgeError> {
        let (f, o) = (self.num_in, self.num_out);
        if self.w.len() != f * o || self.b.len() != o {
            return Err(RidgeError::Shape {
                op: "predict",
                what: "w/b",
                got: self.w.len(),
                expected: format!(
                    "w of num_in {f} x num_out {o} = {} and b of {o} (b has {})",
                    f * o,
                    self.b.len()
                ),
            });
        }
        if Some(x.len()) != rows.checked_mul(self.num_in) {
            return Err(RidgeError::Shape {
                op: "predict",
                what: "x",
                got: x.len(),
                expected: format!(
                    "rows {rows} x num_in {} = {}",
                    self.num_in,
                    rows.saturating_mul(self.num_in)
                ),
            });
        }
        let mut out = Vec::with_capacity(rows * o);
        for r in 0..rows {
            let xr = &x[r * f..(r + 1) * f];
            for k in 0..o {
                let mut acc = self.b[k];
                for (i, &xi) in xr.iter().enumerate() {
                    acc += xi * self.w[i * o + k];
                }
                out.push(acc);
            }
        }
        Ok(out)
    }
}

/// Accumulator of the normal equations `X̃ᵀX̃` and `X̃ᵀY` with `X̃ = [1 | X]`.
#[derive(Debug, Clone)]
pub struct NormalEquations {
    num_features: usize,
    num_out: usize,
    rows: usize,
    xtx: Mat<f64>,
    xty: Mat<f64>,
    /// Kept `X̃` rows (row-major, width `num_features + 1`) and `Y` rows, for QR.
    design: Option<(Vec<f64>, Vec<f64>)>,
}

fn validate_alpha(alpha: f64) -> Result<(), RidgeError> {
    if alpha.is_finite() && alpha >= 0.0 {
        Ok(())
    } else {
        Err(RidgeError::InvalidAlpha { alpha })
    }
}

impl NormalEquations {
    /// An empty accumulator for `num_features` inputs and `num_out` targets. QR is not
    /// available (the rows are not kept).
    pub fn new(num_features: usize, num_out: usize) -> Self {
        let n = num_features + 1;
        NormalEquations {
            num_features,
            num_out,
            rows: 0,
            xtx: Mat::zeros(n, n),
            xty: Mat::zeros(n, num_out),
            design: None,
        }
    }

    /// As [`NormalEquations::new`], but also keeps every row so [`RidgeSolver::Qr`] works
    /// (memory `O(N·F)`).
    pub fn new_keeping_rows(num_features: usize, num_out: usize) -> Self {
        let mut s = Self::new(num_features, num_out);
        s.design = Some((Vec::new(), Vec::new()));
        s
    }

    /// Input features `F` (without the ones column).
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Targets per row.
    pub fn num_out(&self) -> usize {
        self.num_out
    }

    /// Rows accumulated so far.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Forgets every accumulated row.
    pub fn reset(&mut self) {
        let keep = self.design.is_some();
        *self = Self::new(self.num_features, self.num_out);
        if keep {
            self.design = Some((Vec::new(), Vec::new()));
        }
    }

    /// `X̃ᵀX̃`, `(F+1) x (F+1)` row-major.
    pub fn xtx(&self) -> Vec<f64> {
        let n = self.num_features + 1;
        (0..n * n).map(|k| self.xtx[(k / n, k % n)]).collect()
    }

    /// `X̃ᵀY`, `(F+1) x num_out` row-major.
    pub fn xty(&self) -> Vec<f64> {
        let (n, o) = (self.num_features + 1, self.num_out);
        (0..n * o).map(|k| self.xty[(k / o, k % o)]).collect()
    }

    /// Adds `rows` rows: `x` is `(rows, num_features)` and `y` is `(rows, num_out)`, both
    /// row-major. Shapes and finiteness are checked before anything is added, so an error
    /// leaves the accumulator unchanged.
    pub fn add_rows(&mut self, x: &[f64], y: &[f64], rows: usize) -> Result<(), RidgeError> {
        let (f, o) = (self.num_features, self.num_out);
        if Some(x.len()) != rows.checked_mul(f) {
            return Err(RidgeError::Shape {
                op: "add_rows",
                what: "x",
                got: x.len(),
                expected: format!(
                    "rows {rows} x num_features {f} = {}",
                    rows.saturating_mul(f)
                ),
            });
        }
        if Some(y.len()) != rows.checked_mul(o) {
            return Err(RidgeError::Shape {
                op: "add_rows",
                what: "y",
                got: y.len(),
                expected: format!("rows {rows} x num_out {o} = {}", rows.saturating_mul(o)),
            });
        }
        for (what, data, width) in [("x", x, f), ("y", y, o)] {
            if let Some(k) = data.iter().position(|v| !v.is_finite()) {
                return Err(RidgeError::NonFinite {
                    what,
                    row: k / width,
                    col: k % width,
                    value: data[k],
                });
            }
        }
        if rows == 0 {
            return Ok(());
        }
        let n = f + 1;
        // Work in blocks so the temporary [1 | X] stays small.
        const BLOCK: usize = 1024;
        let mut start = 0;
        while start < rows {
            let m = BLOCK.min(rows - start);
            let phi = Mat::from_fn(m, n, |i, j| {
                if j == 0 {
                    1.0
                } else {
                    x[(start + i) * f + j - 1]
                }
            });
            let yb = MatRef::from_row_major_slice(&y[start * o..(start + m) * o], m, o);
            matmul(
                self.xtx.as_mut(),
                Accum::Add,
                phi.transpose(),
                phi.as_ref(),
                1.0,
                Par::Seq,
            );
            matmul(
                self.xty.as_mut(),
                Accum::Add,
                phi.transpose(),
                yb,
                1.0,
                Par::Seq,
            );
            if let Some((dx, dy)) = &mut self.design {
                for i in 0..m {
                    dx.push(1.0);
                    dx.extend_from_slice(&x[(start + i) * f..(start + i + 1) * f]);
                }
                dy.extend_from_slice(&y[start * o..(start + m) * o]);
            }
            start += m;
        }
        self.rows += rows;
        Ok(())
    }

    /// As [`NormalEquations::add_rows`] for f32 data: values are widened to f64 and the sums
    /// are kept in f64 (the ill-conditioned normal equations need it).
    pub fn add_rows_f32(&mut self, x: &[f32], y: &[f32], rows: usize) -> Result<(), RidgeError> {
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        self.add_rows(&x64, &y64, rows)
    }

    /// Adds precomputed partial sums, e.g. from a compiled accumulation kernel: `xtx` is
    /// `X̃ᵀX̃` `(F+1) x (F+1)` and `xty` is `X̃ᵀY` `(F+1) x num_out`, both row-major and both
    /// **including** the leading ones column, over `rows` rows. Not available when the rows
    /// are kept for QR (the design matrix would be incomplete). Checked before anything is
    /// added.
    pub fn add_normal_matrices(
        &mut self,
        xtx: &[f64],
        xty: &[f64],
        rows: usize,
    ) -> Result<(), RidgeError> {
        let (n, o) = (self.num_features + 1, self.num_out);
        if self.design.is_some() {
            return Err(RidgeError::Shape {
                op: "add_normal_matrices",
                what: "accumulator",
                got: self.rows,
                expected:
                    "an accumulator built with NormalEquations::new (this one keeps rows for QR)"
                        .into(),
            });
        }
        if xtx.len() != n * n {
            return Err(RidgeError::Shape {
                op: "add_normal_matrices",
                what: "xtx",
                got: xtx.len(),
                expected: format!("(num_features + 1)^2 = {}", n * n),
            });
        }
        if xty.len() != n * o {
            return Err(RidgeError::Shape {
                op: "add_normal_matrices",
                what: "xty",
                got: xty.len(),
                expected: format!("(num_features + 1) x num_out = {}", n * o),
            });
        }
        for (what, data, width) in [("xtx", xtx, n), ("xty", xty, o)] {
            if let Some(k) = data.iter().position(|v| !v.is_finite()) {
                return Err(RidgeError::NonFinite {
                    what,
                    row: k / width,
                    col: k % width,
                    value: data[k],
                });
            }
        }
        for i in 0..n {
            for j in 0..n {
                self.xtx[(i, j)] += xtx[i * n + j];
            }
            for k in 0..o {
                self.xty[(i, k)] += xty[i * o + k];
            }
        }
        self.rows += rows;
        Ok(())
    }

    /// `X̃ᵀX̃ + αI` as a faer matrix (symmetrised).
    fn regularised(&self, alpha: f64) -> Mat<f64> {
        let n = self.num_features + 1;
        Mat::from_fn(n, n, |i, j| {
            let v = 0.5 * (self.xtx[(i, j)] + self.xtx[(j, i)]);
            if i == j { v + alpha } else { v }
        })
    }

    /// Solves the regularised system with `solver`. The accumulator is not consumed, so more
    /// rows can be added and the system solved again.
    pub fn solve(&self, alpha: f64, solver: RidgeSolver) -> Result<RidgeSolution, RidgeError> {
        validate_alpha(alpha)?;
        if self.rows == 0 {
            return Err(RidgeError::Empty);
        }
        let n = self.num_features + 1;
        let a = self.regularised(alpha);
        let eig = a
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|_| RidgeError::NoConvergence("self-adjoint eigenvalue decomposition"))?;
        // X̃ᵀX̃ is positive semi-definite, so the smallest eigenvalue of X̃ᵀX̃ + αI is at least α;
        // a computed value below that is rounding noise of size ~n·ε·λ_max, so clamp to α.
        let lmin = eig.first().copied().unwrap_or(0.0).max(alpha);
        let lmax = eig.last().copied().unwrap_or(0.0);
        let condition_number = if lmin > 0.0 {
            lmax / lmin
        } else {
            f64::INFINITY
        };

        let (wt, solver_used, rank, name): (Mat<f64>, SolverUsed, usize, &'static str) =
            match solver {
                RidgeSolver::Cholesky if alpha == 0.0 && lmin <= n as f64 * f64::EPSILON * lmax => {
                    // A singular system may still factor with a tiny positive pivot: refuse.
                    let cut = n as f64 * f64::EPSILON * lmax;
                    return Err(RidgeError::Singular {
                        solver: "cholesky",
                        rank: eig.iter().filter(|&&l| l > cut).count(),
                        n,
                    });
                }
                RidgeSolver::Cholesky => match a.llt(Side::Lower) {
                    Ok(llt) => (llt.solve(&self.xty), SolverUsed::Cholesky, n, "cholesky"),
                    Err(_) => {
                        let (w, rank) = self.eigen_solve(&a)?;
                        if alpha == 0.0 && rank < n {
                            return Err(RidgeError::Singular {
                                solver: "cholesky/eigen fallback",
                                rank,
                                n,
                            });
                        }
                        (w, SolverUsed::EigenFallback, rank, "eigen fallback")
                    }
                },
                RidgeSolver::Qr => {
                    let (w, rank) = self.qr_solve(alpha)?;
                    (w, SolverUsed::Qr, rank, "qr")
                }
                RidgeSolver::Pinv { rcond } => {
                    let rcond = rcond.unwrap_or(10.0 * n as f64 * f64::EPSILON);
                    if !(rcond.is_finite() && rcond >= 0.0) {
                        return Err(RidgeError::InvalidRcond { rcond });
                    }
                    let (w, rank) = self.pinv_solve(&a, rcond)?;
                    (w, SolverUsed::Pinv { rcond }, rank, "pinv")
                }
            };
        let o = self.num_out;
        let mut w = Vec::with_capacity(self.num_features * o);
        for i in 1..n {
            for k in 0..o {
                w.push(wt[(i, k)]);
            }
        }
        let b: Vec<f64> = (0..o).map(|k| wt[(0, k)]).collect();
        if !w.iter().chain(&b).all(|v| v.is_finite()) {
            return Err(RidgeError::NonFiniteSolution { solver: name });
        }
        Ok(RidgeSolution {
            w,
            b,
            num_in: self.num_features,
            num_out: o,
            condition_number,
            solver_used,
            rank,
        })
    }

    /// Pseudo-inverse solve through the symmetric eigendecomposition, dropping eigenvalues
    /// `<= n·ε·λ_max`. Returns the solution and the rank kept.
    fn eigen_solve(&self, a: &Mat<f64>) -> Result<(Mat<f64>, usize), RidgeError> {
        let n = a.nrows();
        let evd = a
            .self_adjoint_eigen(Side::Lower)
            .map_err(|_| RidgeError::NoConvergence("self-adjoint eigendecomposition"))?;
        let u = evd.U();
        let s = evd.S().column_vector();
        let lmax = (0..n).map(|i| s[i].abs()).fold(0.0, f64::max);
        let cut = n as f64 * f64::EPSILON * lmax;
        let keep: Vec<usize> = (0..n).filter(|&i| s[i] > cut).collect();
        // W = U_k diag(1/λ_k) U_kᵀ XtY
        let mut t = Mat::<f64>::zeros(n, self.num_out);
        matmul(
            t.as_mut(),
            Accum::Replace,
            u.transpose(),
            self.xty.as_ref(),
            1.0,
            Par::Seq,
        );
        for i in 0..n {
            let scale = if keep.contains(&i) { 1.0 / s[i] } else { 0.0 };
            for k in 0..self.num_out {
                t[(i, k)] *= scale;
            }
        }
        let mut w = Mat::<f64>::zeros(n, self.num_out);
        matmul(w.as_mut(), Accum::Replace, u, t.as_ref(), 1.0, Par::Seq);
        Ok((w, keep.len()))
    }

    /// SVD pseudo-inverse of the (symmetric) system with relative cut-off `rcond`.
    fn pinv_solve(&self, a: &Mat<f64>, rcond: f64) -> Result<(Mat<f64>, usize), RidgeError> {
        let n = a.nrows();
        let svd = a.svd().map_err(|_| RidgeError::NoConvergence("svd"))?;
        let (u, v) = (svd.U(), svd.V());
        let s = svd.S().column_vector();
        let smax = (0..n).map(|i| s[i]).fold(0.0, f64::max);
        let cut = rcond * smax;
        let mut t = Mat::<f64>::zeros(n, self.num_out);
        matmul(
            t.as_mut(),
            Accum::Replace,
            u.transpose(),
            self.xty.as_ref(),
            1.0,
            Par::Seq,
        );
        let mut rank = 0;
        for i in 0..n {
            let scale = if s[i] > cut {
                rank += 1;
                1.0 / s[i]
            } else {
                0.0
            };
            for k in 0..self.num_out {
                t[(i, k)] *= scale;
            }
        }
        let mut w = Mat::<f64>::zeros(n, self.num_out);
        matmul(w.as_mut(), Accum::Replace, v, t.as_ref(), 1.0, Par::Seq);
        Ok((w, rank))
    }

    /// Least squares on `[X̃; √α·I] W = [Y; 0]` with column-pivoted QR.
    fn qr_solve(&self, alpha: f64) -> Result<(Mat<f64>, usize), RidgeError> {
        let Some((dx, dy)) = &self.design else {
            return Err(RidgeError::QrNeedsDesignMatrix);
        };
        let n = self.num_features + 1;
        let o = self.num_out;
        let rows = self.rows;
        let extra = if alpha > 0.0 { n } else { 0 };
        if rows + extra < n {
            return Err(RidgeError::Singular {
                solver: "qr",
                rank: rows + extra,
                n,
            });
        }
        let sa = alpha.sqrt();
        let m = rows + extra;
        let aug = Mat::from_fn(m, n, |i, j| {
            if i < rows {
                dx[i * n + j]
            } else if i - rows == j {
                sa
            } else {
                0.0
            }
        });
        let rhs = Mat::from_fn(m, o, |i, k| if i < rows { dy[i * o + k] } else { 0.0 });
        let qr = aug.col_piv_qr();
        let r = qr.R();
        let d0 = r[(0, 0)].abs();
        let rank = (0..n)
            .filter(|&i| r[(i, i)].abs() > m.max(n) as f64 * f64::EPSILON * d0)
            .count();
        if rank < n && alpha == 0.0 {
            return Err(RidgeError::Singular {
                solver: "qr",
                rank,
                n,
            });
        }
        Ok((qr.solve_lstsq(&rhs), rank))
    }
}

/// One-shot ridge fit on an in-memory design matrix: `x` is `(rows, F)` and `y` is
/// `(rows, O)`, both row-major; `F` and `O` are inferred from the lengths.
pub fn ridge_fit(
    x: &[f64],
    y: &[f64],
    rows: usize,
    alpha: f64,
    solver: RidgeSolver,
) -> Result<RidgeSolution, RidgeError> {
    validate_alpha(alpha)?;
    if rows == 0 {
        return Err(RidgeError::Empty);
    }
    if !x.len().is_multiple_of(rows) {
        return Err(RidgeError::Shape {
            op: "ridge_fit",
            what: "x",
            got: x.len(),
            expected: format!("a multiple of rows = {rows}"),
        });
    }
    if !y.len().is_multiple_of(rows) || y.is_empty() {
        return Err(RidgeError::Shape {
            op: "ridge_fit",
            what: "y",
            got: y.len(),
            expected: format!("a non-zero multiple of rows = {rows}"),
        });
    }
    let (f, o) = (x.len() / rows, y.len() / rows);
    let mut ne = if matches!(solver, RidgeSolver::Qr) {
        NormalEquations::new_keeping_rows(f, o)
    } else {
        NormalEquations::new(f, o)
    };
    ne.add_rows(x, y, rows)?;
    ne.solve(alpha, solver)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 2 + 3x exactly: every solver recovers it with alpha = 0.
    #[test]
    fn exact_line_alpha_zero() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y: Vec<f64> = x.iter().map(|v| 2.0 + 3.0 * v).collect();
        for solver in [
            RidgeSolver::Cholesky,
            RidgeSolver::Qr,
            RidgeSolver::Pinv { rcond: None },
        ] {
            let s = ridge_fit(&x, &y, 4, 0.0, solver).unwrap();
            assert!((s.w[0] - 3.0).abs() < 1e-12, "{solver:?} {s:?}");
            assert!((s.b[0] - 2.0).abs() < 1e-12, "{solver:?} {s:?}");
        }
    }

    /// Hand-computed ridge: X̃ = [[1,0],[1,1]], Y = [0,1], alpha = 1.
    /// X̃ᵀX̃ + I = [[3,1],[1,2]], X̃ᵀY = [1,1] → W̃ = [1/5, 2/5]; eigenvalues (5±√5)/2.
    #[test]
    fn hand_computed_ridge() {
        for solver in [
            RidgeSolver::Cholesky,
            RidgeSolver::Qr,
            RidgeSolver::Pinv { rcond: None },
        ] {
            let s = ridge_fit(&[0.0, 1.0], &[0.0, 1.0], 2, 1.0, solver).unwrap();
            assert!((s.b[0] - 0.2).abs() < 1e-14);
            assert!((s.w[0] - 0.4).abs() < 1e-14);
            let cond = (5.0 + 5f64.sqrt()) / (5.0 - 5f64.sqrt());
            assert!((s.condition_number - cond).abs() < 1e-12);
        }
    }

    /// X = [x, x] with x = (0, 0, 2, 2): every Cholesky step is exact and the last pivot is
    /// exactly 0 (alpha = 1e-300 vanishes next to the diagonal), so the factorisation fails and
    /// the eigendecomposition pseudo-inverse answers: the minimum-norm w0 = w1 = 0.5, b = 0.
    #[test]
    fn cholesky_failure_falls_back_to_eigen() {
        let x = [0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0];
        let y = [0.0, 0.0, 2.0, 2.0];
        let s = ridge_fit(&x, &y, 4, 1e-300, RidgeSolver::Cholesky).unwrap();
        assert_eq!(s.solver_used, SolverUsed::EigenFallback);
        assert_eq!(s.rank, 2);
        assert!(
            (s.w[0] - 0.5).abs() < 1e-12 && (s.w[1] - 0.5).abs() < 1e-12,
            "{s:?}"
        );
        assert!(s.b[0].abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn precomputed_normal_matrices_match_rows() {
        let x = [0.5, -1.0, 2.0, 0.25, 1.5, 3.0];
        let y = [1.0, 2.0, -1.0];
        let mut direct = NormalEquations::new(2, 1);
        direct.add_rows(&x, &y, 3).unwrap();
        let mut parts = NormalEquations::new(2, 1);
        let mut one = NormalEquations::new(2, 1);
        one.add_rows(&x[..2], &y[..1], 1).unwrap();
        parts
            .add_normal_matrices(&one.xtx(), &one.xty(), 1)
            .unwrap();
        one.reset();
        one.add_rows(&x[2..], &y[1..], 2).unwrap();
        parts
            .add_normal_matrices(&one.xtx(), &one.xty(), 2)
            .unwrap();
        assert_eq!(parts.num_rows(), 3);
        assert_eq!(parts.xtx(), direct.xtx());
        let (a, b) = (
            parts.solve(0.1, RidgeSolver::Cholesky).unwrap(),
            direct.solve(0.1, RidgeSolver::Cholesky).unwrap(),
        );
        assert_eq!(a.w, b.w);
        assert!(matches!(
            parts.add_normal_matrices(&[0.0; 8], &[0.0; 3], 1),
            Err(RidgeError::Shape { what: "xtx", .. })
        ));
        let mut bad = vec![0.0; 9];
        bad[4] = f64::NAN;
        assert!(matches!(
            parts.add_normal_matrices(&bad, &[0.0; 3], 1),
            Err(RidgeError::NonFinite {
                what: "xtx",
                row: 1,
                col: 1,
                ..
            })
        ));
        let mut keeping = NormalEquations::new_keeping_rows(2, 1);
        assert!(
            keeping
                .add_normal_matrices(&[0.0; 9], &[0.0; 3], 1)
                .is_err()
        );
    }

    #[test]
    fn f32_rows_accumulate_in_f64() {
        let mut a = NormalEquations::new(1, 1);
        let mut b = NormalEquations::new(1, 1);
        a.add_rows(&[0.5, 1.5, 2.0], &[1.0, 2.0, 4.0], 3).unwrap();
        b.add_rows_f32(&[0.5, 1.5, 2.0], &[1.0, 2.0, 4.0], 3)
            .unwrap();
        assert_eq!(a.xtx(), b.xtx());
        assert_eq!(a.xty(), b.xty());
        assert!(matches!(
            b.add_rows_f32(&[f32::NAN], &[1.0], 1),
            Err(RidgeError::NonFinite { what: "x", .. })
        ));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            ridge_fit(&[1.0], &[1.0], 1, -1.0, RidgeSolver::Cholesky),
            Err(RidgeError::InvalidAlpha { .. })
        ));
        assert!(matches!(
            ridge_fit(&[1.0], &[1.0], 1, f64::NAN, RidgeSolver::Cholesky),
            Err(RidgeError::InvalidAlpha { .. })
        ));
        assert!(matches!(
            ridge_fit(&[], &[], 0, 1.0, RidgeSolver::Cholesky),
            Err(RidgeError::Empty)
        ));
        let mut ne = NormalEquations::new(2, 1);
        assert!(matches!(
            ne.add_rows(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2),
            Err(RidgeError::Shape { what: "x", .. })
        ));
        assert!(matches!(
            ne.add_rows(&[1.0, f64::NAN], &[1.0], 1),
            Err(RidgeError::NonFinite {
                what: "x",
                row: 0,
                col: 1,
                ..
            })
        ));
        assert_eq!(ne.num_rows(), 0);
        assert!(matches!(
            ne.solve(0.1, RidgeSolver::Cholesky),
            Err(RidgeError::Empty)
        ));
        // Duplicate columns with alpha = 0: singular.
        ne.add_rows(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0], &[1.0, 2.0, 3.0], 3)
            .unwrap();
        assert!(matches!(
            ne.solve(0.0, RidgeSolver::Cholesky),
            Err(RidgeError::Singular { .. })
        ));
        assert!(matches!(
            ne.solve(0.0, RidgeSolver::Qr),
            Err(RidgeError::QrNeedsDesignMatrix)
        ));
        // Pinv gives the minimum-norm solution: w0 = w1 = 0.5, b = 0.
        let s = ne.solve(0.0, RidgeSolver::Pinv { rcond: None }).unwrap();
        assert_eq!(s.rank, 2);
        assert!((s.w[0] - 0.5).abs() < 1e-9 && (s.w[1] - 0.5).abs() < 1e-9 && s.b[0].abs() < 1e-9);
        assert!(s.condition_number > 1e12);
        // And alpha > 0 makes it solvable by Cholesky.
        let s = ne.solve(1e-3, RidgeSolver::Cholesky).unwrap();
        assert_eq!(s.solver_used, SolverUsed::Cholesky);
        assert!((s.w[0] - s.w[1]).abs() < 1e-9, "{s:?}");
        assert!((s.w[0] + s.w[1] - 1.0).abs() < 1e-2, "{s:?}");
    }
}
