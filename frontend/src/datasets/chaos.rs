//! Chaotic time series generated in-process: Lorenz-63 (exactly as BrainPy's
//! `brainpy_datasets.chaos.LorenzEq`, spec §13), Rössler and Mackey–Glass.
//!
//! Contract:
//! * Time grid: `n = ceil(duration / dt)` samples (numpy's `arange(0, duration, dt)` length),
//!   `ts[i] = (i + 1) * dt`; sample `i` is the state **after** step `i + 1`; the initial
//!   condition is not a sample. No transient is dropped.
//! * Lorenz and Rössler use classical RK4 with BrainPy's stage and combination order:
//!   `k1 = f(u)`, `k2 = f(u + dt*k1*0.5)`, `k3 = f(u + dt*k2*0.5)`, `k4 = f(u + dt*k3)`,
//!   `u' = u + k1*dt/6 + k2*dt/3 + k3*dt/3 + k4*dt/6` summed left to right.
//! * Every generator is deterministic (nothing random) and returns a [`ChaosSeries`], a
//!   row-major `(T, F)` table with helpers for the batch-first `(1, T, F)` layout.
//! * Bad arguments (non-positive or non-finite `dt`/`duration`, fewer than one sample, more
//!   than [`MAX_STEPS`] samples, non-finite parameters) give a [`ChaosError`], never a panic.
//!
//! Cost: `O(T * F)` time and memory.

use thiserror::Error;

/// Largest number of samples a generator produces (guards against `dt` typos such as 1e-12).
pub const MAX_STEPS: usize = 50_000_000;

/// Errors from the chaotic-series generators and [`ChaosSeries`] helpers.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ChaosError {
    /// A scalar argument is out of range.
    #[error("{system}: invalid {param} = {value}: expected {expected}")]
    InvalidArgument {
        /// Generator name (`lorenz`, `rossler`, `mackey_glass`).
        system: &'static str,
        /// Parameter name.
        param: &'static str,
        /// The value given.
        value: f64,
        /// What was expected.
        expected: &'static str,
    },
    /// `duration / dt` gives no sample, or more than [`MAX_STEPS`].
    #[error("{system}: duration {duration} / dt {dt} gives {steps} samples, expected 1..={max}")]
    StepCount {
        /// Generator name.
        system: &'static str,
        /// Duration given.
        duration: f64,
        /// Step given.
        dt: f64,
        /// `ceil(duration / dt)` (saturated).
        steps: f64,
        /// [`MAX_STEPS`].
        max: usize,
    },
    /// `subset(start, end)` out of range.
    #[error(
        "subset: rows {start}..{end} invalid for a series of {len} rows (need start < end <= len)"
    )]
    Subset {
        /// First row requested.
        start: usize,
        /// One past the last row requested.
        end: usize,
        /// Rows available.
        len: usize,
    },
    /// The integration left the finite range (e.g. an unstable `dt`).
    #[error("{system}: state became non-finite at step {step} (dt {dt} too large?)")]
    Diverged {
        /// Generator name.
        system: &'static str,
        /// 0-based sample index at which a non-finite value appeared.
        step: usize,
        /// Step given.
        dt: f64,
    },
}

/// A generated multivariate series: `T` samples of `F` features, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosSeries {
    /// Sample times, `ts[i] = (i + 1) * dt`.
    pub ts: Vec<f64>,
    /// Row-major `(T, F)` values: row `i` is the state at `ts[i]`.
    pub data: Vec<f64>,
    /// Number of features `F` per sample.
    pub num_features: usize,
    /// Feature names (`x`, `y`, `z` for the 3-D systems, `x` for Mackey–Glass).
    pub names: Vec<String>,
}

impl ChaosSeries {
    /// Number of samples `T`.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when there is no sample (generators never return an empty series).
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Row `i` (the state at `ts[i]`), or `None` when out of range.
    pub fn row(&self, i: usize) -> Option<&[f64]> {
        let f = self.num_features;
        self.data.get(i * f..(i + 1) * f)
    }

    /// Column `j` as a vector of length `T` (e.g. BrainPy's `xs`, `ys`, `zs`), or `None`.
    pub fn column(&self, j: usize) -> Option<Vec<f64>> {
        (j < self.num_features).then(|| {
            self.data
                .iter()
                .skip(j)
                .step_by(self.num_features)
                .copied()
                .collect()
        })
    }

    /// The whole series in the batch-first layout `(1, T, F)`.
    pub fn to_btf(&self) -> (Vec<f64>, [usize; 3]) {
        (self.data.clone(), [1, self.len(), self.num_features])
    }

    /// Rows `start..end` as `(1, end - start, F)`, like the tutorial's `get_subset(start, end)`.
    pub fn subset(&self, start: usize, end: usize) -> Result<(Vec<f64>, [usize; 3]), ChaosError> {
        if start >= end || end > self.len() {
            return Err(ChaosError::Subset {
                start,
                end,
                len: self.len(),
            });
        }
        let f = self.num_features;
        Ok((self.data[start * f..end * f].to_vec(), [1, end - start, f]))
    }
}

/// Parameters of the Lorenz-63 system (BrainPy defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LorenzParams {
    /// σ, default 10.
    pub sigma: f64,
    /// ρ, default 28.
    pub rho: f64,
    /// β, default 8/3 (the f64 2.6666666666666665).
    pub beta: f64,
    /// Initial state (x, y, z), default (8, 1, 1).
    pub init: [f64; 3],
}

impl Default for LorenzParams {
    fn default() -> Self {
        LorenzParams {
            sigma: 10.0,
            rho: 28.0,
            beta: 8.0 / 3.0,
            init: [8.0, 1.0, 1.0],
        }
    }
}

/// Parameters of the Rössler system `x' = -y - z`, `y' = x + a y`, `z' = b + z (x - c)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RosslerParams {
    /// a, default 0.2.
    pub a: f64,
    /// b, default 0.2.
    pub b: f64,
    /// c, default 5.7.
    pub c: f64,
    /// Initial state (x, y, z), default (1, 1, 1).
    pub init: [f64; 3],
}

impl Default for RosslerParams {
    fn default() -> Self {
        RosslerParams {
            a: 0.2,
            b: 0.2,
            c: 5.7,
            init: [1.0, 1.0, 1.0],
        }
    }
}

/// Parameters of the Mackey–Glass delay equation
/// `x'(t) = beta * x(t - tau) / (1 + x(t - tau)^n) - gamma * x(t)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MackeyGlassParams {
    /// Delay τ, default 17 (chaotic regime). Must be `>= dt`.
    pub tau: f64,
    /// Production rate β, default 0.2.
    pub beta: f64,
    /// Decay rate γ, default 0.1.
    pub gamma: f64,
    /// Hill exponent n, default 10.
    pub n: f64,
    /// Constant history `x(t) = x0` for `t <= 0`, default 1.2.
    pub x0: f64,
}

impl Default for MackeyGlassParams {
    fn default() -> Self {
        MackeyGlassParams {
            tau: 17.0,
            beta: 0.2,
            gamma: 0.1,
            n: 10.0,
            x0: 1.2,
        }
    }
}

fn finite(system: &'static str, param: &'static str, value: f64) -> Result<(), ChaosError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ChaosError::InvalidArgument {
            system,
            param,
            value,
            expected: "a finite number",
        })
    }
}

/// Validates `duration` and `dt` and returns the number of samples `ceil(duration / dt)`.
fn step_count(system: &'static str, duration: f64, dt: f64) -> Result<usize, ChaosError> {
    if !(dt.is_finite() && dt > 0.0) {
        return Err(ChaosError::InvalidArgument {
            system,
            param: "dt",
            value: dt,
            expected: "a finite number > 0",
        });
    }
    if !(duration.is_finite() && duration > 0.0) {
        return Err(ChaosError::InvalidArgument {
            system,
            param: "duration",
            value: duration,
            expected: "a finite number > 0",
        });
    }
    // numpy: len(arange(0, duration, dt)) = ceil((duration - 0) / dt).
    let steps = (duration / dt).ceil();
    if !(steps >= 1.0 && steps <= MAX_STEPS as f64) {
        return Err(ChaosError::StepCount {
            system,
            duration,
            dt,
            steps,
            max: MAX_STEPS,
        });
    }
    Ok(steps as usize)
}

/// One classical RK4 step in BrainPy's operation order.
fn rk4_step<const N: usize>(u: [f64; N], dt: f64, f: impl Fn(&[f64; N]) -> [f64; N]) -> [f64; N] {
    let k1 = f(&u);
    let k2 = f(&std::array::from_fn(|i| u[i] + dt * k1[i] * 0.5));
    let k3 = f(&std::array::from_fn(|i| u[i] + dt * k2[i] * 0.5));
    let k4 = f(&std::array::from_fn(|i| u[i] + dt * k3[i]));
    std::array::from_fn(|i| {
        u[i] + k1[i] * dt / 6.0 + k2[i] * dt / 3.0 + k3[i] * dt / 3.0 + k4[i] * dt / 6.0
    })
}

fn integrate3(
    system: &'static str,
    duration: f64,
    dt: f64,
    init: [f64; 3],
    f: impl Fn(&[f64; 3]) -> [f64; 3],
) -> Result<ChaosSeries, ChaosError> {
    let n = step_count(system, duration, dt)?;
    let mut data = Vec::with_capacity(3 * n);
    let mut u = init;
    for step in 0..n {
        u = rk4_step(u, dt, &f);
        if !u.iter().all(|v| v.is_finite()) {
            return Err(ChaosError::Diverged { system, step, dt });
        }
        data.extend_from_slice(&u);
    }
    Ok(ChaosSeries {
        ts: (0..n).map(|i| (i + 1) as f64 * dt).collect(),
        data,
        num_features: 3,
        names: vec!["x".into(), "y".into(), "z".into()],
    })
}

/// Lorenz-63 with BrainPy's defaults (σ 10, ρ 28, β 8/3, start (8, 1, 1)), classical RK4.
///
/// `lorenz(100.0, 0.01)` is the tutorial's data set: 10000 rows, first row
/// (7.43466087, 3.05339146, 1.12810185).
pub fn lorenz(duration: f64, dt: f64) -> Result<ChaosSeries, ChaosError> {
    lorenz_with(duration, dt, &LorenzParams::default())
}

/// Lorenz-63 with explicit parameters: `x' = σ(y − x)`, `y' = x(ρ − z) − y`, `z' = xy − βz`.
pub fn lorenz_with(duration: f64, dt: f64, p: &LorenzParams) -> Result<ChaosSeries, ChaosError> {
    const S: &str = "lorenz";
    finite(S, "sigma", p.sigma)?;
    finite(S, "rho", p.rho)?;
    finite(S, "beta", p.beta)?;
    for v in p.init {
        finite(S, "init", v)?;
    }
    let (sigma, rho, beta) = (p.sigma, p.rho, p.beta);
    integrate3(S, duration, dt, p.init, |u| {
        let [x, y, z] = *u;
        [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]
    })
}

/// Rössler system with the classic chaotic parameters (a 0.2, b 0.2, c 5.7, start (1, 1, 1)),
/// classical RK4 in the same order as [`lorenz`].
pub fn rossler(duration: f64, dt: f64) -> Result<ChaosSeries, ChaosError> {
    rossler_with(duration, dt, &RosslerParams::default())
}

/// Rössler system with explicit parameters.
pub fn rossler_with(duration: f64, dt: f64, p: &RosslerParams) -> Result<ChaosSeries, ChaosError> {
    const S: &str = "rossler";
    finite(S, "a", p.a)?;
    finite(S, "b", p.b)?;
    finite(S, "c", p.c)?;
    for v in p.init {
        finite(S, "init", v)?;
    }
    let (a, b, c) = (p.a, p.b, p.c);
    integrate3(S, duration, dt, p.init, |u| {
        let [x, y, z] = *u;
        [-y - z, x + a * y, b + z * (x - c)]
    })
}

/// Mackey–Glass with the classic chaotic parameters (τ 17, β 0.2, γ 0.1, n 10, history 1.2).
///
/// Integrator: classical RK4 on the grid `t_m = m*dt`. The delayed term at each stage time
/// `s - τ` is read from the stored trajectory (`x(t) = x0` for `t <= 0`) by linear
/// interpolation; when `τ / dt` is an integer the whole-step stages hit grid points exactly and
/// the half-step stage uses the mean of its two neighbours. Requires `τ >= dt` so that every
/// delayed time is already computed. Returns one feature named `x`.
pub fn mackey_glass(duration: f64, dt: f64) -> Result<ChaosSeries, ChaosError> {
    mackey_glass_with(duration, dt, &MackeyGlassParams::default())
}

/// Mackey–Glass with explicit parameters; see [`mackey_glass`].
pub fn mackey_glass_with(
    duration: f64,
    dt: f64,
    p: &MackeyGlassParams,
) -> Result<ChaosSeries, ChaosError> {
    const S: &str = "mackey_glass";
    let n_steps = step_count(S, duration, dt)?;
    finite(S, "beta", p.beta)?;
    finite(S, "gamma", p.gamma)?;
    finite(S, "n", p.n)?;
    finite(S, "x0", p.x0)?;
    if !(p.tau.is_finite() && p.tau >= dt) {
        return Err(ChaosError::InvalidArgument {
            system: S,
            param: "tau",
            value: p.tau,
            expected: "a finite delay >= dt",
        });
    }
    let mut q = p.tau / dt;
    if (q - q.round()).abs() < 1e-9 {
        q = q.round();
    }
    // hist[m] = x(m * dt); hist[0] = x0.
    let mut hist = Vec::with_capacity(n_steps + 1);
    hist.push(p.x0);
    let delayed = |hist: &[f64], pos: f64| -> f64 {
        if pos <= 0.0 {
            return p.x0;
        }
        let i = pos.floor() as usize;
        let frac = pos - i as f64;
        if frac == 0.0 || i + 1 >= hist.len() {
            hist[i.min(hist.len() - 1)]
        } else {
            hist[i] * (1.0 - frac) + hist[i + 1] * frac
        }
    };
    let rhs = |x: f64, xd: f64| p.beta * xd / (1.0 + xd.powf(p.n)) - p.gamma * x;
    for m in 0..n_steps {
        let x = hist[m];
        let base = m as f64 - q;
        let d0 = delayed(&hist, base);
        let dh = delayed(&hist, base + 0.5);
        let d1 = delayed(&hist, base + 1.0);
        let k1 = rhs(x, d0);
        let k2 = rhs(x + dt * k1 * 0.5, dh);
        let k3 = rhs(x + dt * k2 * 0.5, dh);
        let k4 = rhs(x + dt * k3, d1);
        let next = x + k1 * dt / 6.0 + k2 * dt / 3.0 + k3 * dt / 3.0 + k4 * dt / 6.0;
        if !next.is_finite() {
            return Err(ChaosError::Diverged {
                system: S,
                step: m,
                dt,
            });
        }
        hist.push(next);
    }
    hist.remove(0);
    Ok(ChaosSeries {
        ts: (0..n_steps).map(|i| (i + 1) as f64 * dt).collect(),
        data: hist,
        num_features: 1,
        names: vec!["x".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arange_length_semantics() {
        assert_eq!(step_count("t", 100.0, 0.01).unwrap(), 10000);
        // numpy: len(arange(0, 1, 0.3)) == 4, len(arange(0, 0.3, 0.1)) == 3.
        assert_eq!(step_count("t", 1.0, 0.3).unwrap(), 4);
        assert_eq!(step_count("t", 0.3, 0.1).unwrap(), 3);
        assert_eq!(step_count("t", 0.005, 0.01).unwrap(), 1);
    }

    #[test]
    fn lorenz_first_rows() {
        let s = lorenz(0.05, 0.01).unwrap();
        assert_eq!(s.len(), 5);
        let r0 = s.row(0).unwrap();
        let want = [7.434660869062066, 3.053391460146508, 1.1281018495405322];
        for (a, b) in r0.iter().zip(want) {
            assert!((a - b).abs() < 1e-13, "{a} vs {b}");
        }
        assert!((s.ts[4] - 0.05).abs() < 1e-15);
    }

    #[test]
    fn bad_arguments() {
        assert!(matches!(
            lorenz(100.0, 0.0),
            Err(ChaosError::InvalidArgument { param: "dt", .. })
        ));
        assert!(matches!(
            lorenz(f64::NAN, 0.01),
            Err(ChaosError::InvalidArgument {
                param: "duration",
                ..
            })
        ));
        assert!(matches!(
            rossler(-1.0, 0.01),
            Err(ChaosError::InvalidArgument { .. })
        ));
        assert!(matches!(
            lorenz(1e9, 1e-9),
            Err(ChaosError::StepCount { .. })
        ));
        let p = MackeyGlassParams {
            tau: 0.05,
            ..Default::default()
        };
        assert!(matches!(
            mackey_glass_with(10.0, 0.1, &p),
            Err(ChaosError::InvalidArgument { param: "tau", .. })
        ));
        let s = lorenz(0.1, 0.01).unwrap();
        assert!(matches!(s.subset(5, 5), Err(ChaosError::Subset { .. })));
        assert!(matches!(s.subset(0, 11), Err(ChaosError::Subset { .. })));
        let (sub, shape) = s.subset(2, 4).unwrap();
        assert_eq!(shape, [1, 2, 3]);
        assert_eq!(&sub[..3], s.row(2).unwrap());
    }
}
