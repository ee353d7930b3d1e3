//! Traditional reservoir computing: a 500-unit echo-state network forecasting the Lorenz `x`
//! one step ahead (`cargo run --release --example esn_lorenz`).
//!
//! Protocol (the tutorial's timeline): Lorenz over 100 time units with dt = 0.01, inputs
//! `(x, y, z)`; warm-up on 0–20, ridge fit of the readout on 20–80 against `x(t + dt)`,
//! test on 80–100. Prints the test NRMSE (RMSE divided by the standard deviation of the
//! target), which must be below 1e-2.

use brainlift::datasets::chaos::lorenz;
use brainlift::nn::{Esn, ReservoirConfig};
use brainlift::{Array, Backend, RidgeTrainer};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let units = env("UNITS", 500.0) as usize;
    let cfg = ReservoirConfig {
        spectral_radius: env("RHO", 0.9),
        leak_rate: env("LEAK", 0.3),
        input_scaling: env("INS", 0.1),
        sparsity: env("SPARS", 0.9),
        bias_scaling: env("BIAS", 0.1),
        seed: env("SEED", 0.0) as u64,
        ..ReservoirConfig::default()
    };
    let alpha = env("ALPHA", 1e-6);
    let onin = env("ONIN", 1.0) > 0.5;
    let backend = Backend::default();
    let data = lorenz(100.0, 0.01)?;
    let n = data.len();
    let (warm, train_end) = (2000, 8000);
    let xs = |a: usize, b: usize| -> Result<Array, Box<dyn std::error::Error>> {
        let (v, s) = data.subset(a, b)?;
        Ok(Array::from_f64(s, v)?)
    };
    let xcol = |a: usize, b: usize| -> Result<Array, Box<dyn std::error::Error>> {
        let v: Vec<f64> = (a..b).map(|t| data.row(t).map_or(f64::NAN, |r| r[0])).collect();
        Ok(Array::from_f64([1, b - a, 1], v)?)
    };
    brainlift::random::seed(0);
    let esn = brainlift::nn::Esn::with_readout(
        brainlift::nn::Reservoir::new(3, units, cfg)?,
        1,
        onin,
    )?;
    let _: &Esn = &esn;
    let mut trainer = RidgeTrainer::new(esn, alpha)?.with_backend(backend);
    trainer.predict(&xs(0, warm)?)?;
    let tf = Instant::now();
    trainer.fit(&xs(warm, train_end)?, &xcol(warm + 1, train_end + 1)?)?;
    let fit_s = tf.elapsed().as_secs_f64();
    let pred = trainer.predict(&xs(train_end, n - 1)?)?.to_f64_vec();
    let truth = xcol(train_end + 1, n)?.to_f64_vec();
    let m = truth.iter().sum::<f64>() / truth.len() as f64;
    let var = truth.iter().map(|v| (v - m).powi(2)).sum::<f64>() / truth.len() as f64;
    let mse = pred.iter().zip(&truth).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / truth.len() as f64;
    let nrmse = (mse / var).sqrt();
    println!("ESN {units} units: one-step-ahead test NRMSE of x {nrmse:e} (MSE {mse:e})");
    if let Some(s) = trainer.last_fit() {
        println!("condition number {:e}", s.condition_number);
    }
    println!("fit {fit_s:.3} s, total {:.3} s", t0.elapsed().as_secs_f64());
    Ok(())
}
