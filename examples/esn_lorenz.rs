//! Traditional reservoir computing: a 500-unit echo-state network forecasting the Lorenz `x`
//! one step ahead (`cargo run --release --example esn_lorenz`).
//!
//! Protocol (the NG-RC tutorial's timeline): Lorenz over 100 time units with dt = 0.01,
//! inputs `(x, y, z)`; warm-up on 0–20, ridge fit (α = 1e-6) of the readout on 20–80 against
//! `x(t + dt)`, test on 80–100. The readout reads `[x, h]` (input and reservoir state, the
//! default of [`Esn::new`]). Prints the test NRMSE (RMSE divided by the standard deviation
//! of the target; below 1e-2 is the goal, about 1.5e-7 is measured) and, for comparison, the
//! NRMSE of a linear readout on the input alone (no reservoir) and of persistence
//! (`x(t + dt) = x(t)`). Pass `--state-only` for a readout on `h` alone (about 3.8e-6).
//! The backend follows `BRAINLIFT_BACKEND` (`jit` or `interp`).

use brainlift::datasets::chaos::{ChaosSeries, lorenz};
use brainlift::linalg::ridge::{NormalEquations, RidgeSolver};
use brainlift::nn::{Esn, Reservoir, ReservoirConfig};
use brainlift::{Array, Backend, RidgeTrainer};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Rows `a..b` of `(x, y, z)` as a `(1, b − a, 3)` batch.
fn xyz(data: &ChaosSeries, a: usize, b: usize) -> Res<Array> {
    let (v, s) = data.subset(a, b)?;
    Ok(Array::from_f64(s, v)?)
}

/// Rows `a..b` of `x` as a `(1, b − a, 1)` batch.
fn x_only(data: &ChaosSeries, a: usize, b: usize) -> Res<Array> {
    let v = (a..b)
        .map(|t| data.row(t).map(|r| r[0]).ok_or("row out of range"))
        .collect::<Result<Vec<f64>, _>>()?;
    Ok(Array::from_f64([1, b - a, 1], v)?)
}

/// RMSE divided by the standard deviation of `truth`.
fn nrmse(pred: &[f64], truth: &[f64]) -> f64 {
    let n = truth.len() as f64;
    let m = truth.iter().sum::<f64>() / n;
    let var = truth.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    let mse = pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / n;
    (mse / var).sqrt()
}

fn main() -> Res<()> {
    let t0 = Instant::now();
    let state_only = std::env::args().any(|a| a == "--state-only");
    let backend = Backend::from_env()?;
    let units = 500;
    let alpha = 1e-6;
    let data = lorenz(100.0, 0.01)?;
    let n = data.len();
    let (warm, train_end) = (2000, 8000);

    let config = ReservoirConfig::default();
    println!("reservoir: {units} units, {config:?}");
    brainlift::random::seed(0);
    let esn = Esn::with_readout(Reservoir::new(3, units, config)?, 1, !state_only)?;
    let mut trainer = RidgeTrainer::new(esn, alpha)?.with_backend(backend);
    trainer.predict(&xyz(&data, 0, warm)?)?;
    let tf = Instant::now();
    trainer.fit(
        &xyz(&data, warm, train_end)?,
        &x_only(&data, warm + 1, train_end + 1)?,
    )?;
    let fit_s = tf.elapsed().as_secs_f64();
    let pred = trainer
        .predict(&xyz(&data, train_end, n - 1)?)?
        .to_f64_vec();
    let truth = x_only(&data, train_end + 1, n)?.to_f64_vec();
    let e = nrmse(&pred, &truth);
    let what = if state_only { "h" } else { "[x, h]" };
    println!("ESN ({what} readout): one-step-ahead test NRMSE of x = {e:e}");
    if let Some(s) = trainer.last_fit() {
        println!(
            "  ridge fit: condition number {:e}, solver {:?}",
            s.condition_number, s.solver_used
        );
    }

    // Baselines: a ridge readout on the input alone, and persistence.
    let mut eq = NormalEquations::new(3, 1);
    let train = xyz(&data, warm, train_end)?.to_f64_vec();
    let target = x_only(&data, warm + 1, train_end + 1)?.to_f64_vec();
    eq.add_rows(&train, &target, train_end - warm)?;
    let lin = eq.solve(alpha, RidgeSolver::default())?;
    let test = xyz(&data, train_end, n - 1)?.to_f64_vec();
    let lin_pred = lin.predict(&test, n - 1 - train_end)?;
    println!(
        "  baseline, linear readout on (x, y, z) only: NRMSE {:e}",
        nrmse(&lin_pred, &truth)
    );
    let persist: Vec<f64> = test.iter().step_by(3).copied().collect();
    println!(
        "  baseline, persistence x(t+dt) = x(t): NRMSE {:e}",
        nrmse(&persist, &truth)
    );
    println!(
        "fit {fit_s:.3} s, total {:.3} s ({} backend)",
        t0.elapsed().as_secs_f64(),
        backend.name()
    );
    if e >= 1e-2 {
        return Err(format!("NRMSE {e:e} is not below 1e-2").into());
    }
    Ok(())
}
