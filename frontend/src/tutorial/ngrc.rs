//! Tutorial part 1: next-generation reservoir computing (NVAR + ridge readout) forecasting
//! the Lorenz system 1, 10 and 100 steps ahead (BrainPy tutorial, spec §3, §13).

use crate::datasets::chaos::{ChaosSeries, lorenz};
use crate::linalg::ridge::RidgeSolver;
use crate::nn::{Dense, Nvar};
use crate::offline::{Readout, RidgeTrainer};
use crate::trace::Tensor;
use crate::vars::Module;
use crate::{Array, Backend, Error, Result, plot};
use std::path::PathBuf;
use std::time::Instant;

/// The tutorial's NG-RC model: `Nvar(3, delay 4, order 2, stride 5) >> Dense(90, 3)`.
pub struct Ngrc {
    /// The NVAR feature layer.
    pub r: Nvar,
    /// The linear readout (fitted by ridge regression).
    pub o: Dense,
}

impl Ngrc {
    /// `num_in` inputs, `num_out` outputs, the tutorial's NVAR settings.
    pub fn new(num_in: usize, num_out: usize) -> Result<Ngrc> {
        let r = Nvar::new(num_in, 4, &[2], 5, false)?;
        let o = Dense::new(r.num_out(), num_out)?;
        Ok(Ngrc { r, o })
    }
}

impl Module for Ngrc {
    fn update(&self, x: &Tensor) -> Tensor {
        x >> &self.r >> &self.o
    }
    fn reset_state(&mut self, batch: usize) {
        self.r.reset_state(batch);
    }
}

crate::var_owner!(Ngrc { "r" => child r, "o" => child o });

impl Readout for Ngrc {
    fn readout(&self) -> &Dense {
        &self.o
    }
    fn readout_mut(&mut self) -> &mut Dense {
        &mut self.o
    }
}

/// Settings of part 1.
#[derive(Clone, Debug)]
pub struct NgrcConfig {
    /// Execution backend.
    pub backend: Backend,
    /// Forecast horizons (steps ahead); the tutorial uses 1, 10 and 100.
    pub horizons: Vec<usize>,
    /// Ridge regularisation (the tutorial: 1e-6).
    pub alpha: f64,
    /// Linear solver.
    pub solver: RidgeSolver,
    /// Where plots go (`None`: no plots).
    pub out_dir: Option<PathBuf>,
    /// Seed for the readout's initial weights (overwritten by the fit).
    pub seed: u64,
}

impl Default for NgrcConfig {
    fn default() -> Self {
        NgrcConfig {
            backend: Backend::default(),
            horizons: vec![1, 10, 100],
            alpha: 1e-6,
            solver: RidgeSolver::default(),
            out_dir: None,
            seed: 0,
        }
    }
}

/// What part 1 measured.
#[derive(Clone, Debug, Default)]
pub struct NgrcReport {
    /// `(horizon, test MSE)` for each horizon.
    pub mse: Vec<(usize, f64)>,
    /// Condition number of `X̃ᵀX̃ + αI` of each fit.
    pub condition_numbers: Vec<f64>,
    /// Time spent in the three fits (s).
    pub fit_s: f64,
    /// Whole part (s).
    pub total_s: f64,
    /// Plot files written.
    pub plots: Vec<PathBuf>,
}

fn subset(data: &ChaosSeries, start: usize, end: usize) -> Result<Array> {
    let (v, shape) = data
        .subset(start, end)
        .map_err(|e| Error::invalid("lorenz subset", e.to_string()))?;
    Ok(Array::from_f64(shape, v)?)
}

fn mse(a: &Array, b: &Array) -> f64 {
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// Runs part 1; `log` receives the lines the tutorial prints.
pub fn run_ngrc_part(cfg: &NgrcConfig, log: &mut dyn FnMut(&str)) -> Result<NgrcReport> {
    let t0 = Instant::now();
    let dt = 0.01;
    let data = lorenz(100.0, dt).map_err(|e| Error::invalid("lorenz", e.to_string()))?;
    let n = data.len();
    let (warm, train_end) = ((20.0 / dt) as usize, (80.0 / dt) as usize);
    crate::random::seed(cfg.seed);
    let mut trainer = RidgeTrainer::new(Ngrc::new(3, 3)?, cfg.alpha)?
        .with_solver(cfg.solver)
        .with_backend(cfg.backend);
    let mut report = NgrcReport::default();
    if let Some(dir) = &cfg.out_dir {
        super::create_out_dir("ngrc", dir)?;
        let p = dir.join("ngrc_lorenz_attractor.png");
        let cols: Vec<Vec<f64>> = (0..3).map(|j| data.column(j).unwrap_or_default()).collect();
        plot::attractor_3d_projection(&p, &cols[0], &cols[1], &cols[2])
            .map_err(|e| Error::invalid("plot", e.to_string()))?;
        report.plots.push(p);
    }
    for &h in &cfg.horizons {
        if train_end + h > n || n < h + train_end + 1 {
            return Err(Error::invalid(
                "ngrc",
                format!("horizon {h} is too long for {n} samples"),
            ));
        }
        let out = trainer.predict(&subset(&data, 0, warm)?)?;
        if h == cfg.horizons[0] {
            log(&format!("warm-up outputs: {:?}", out.shape()));
        }
        let tf = Instant::now();
        trainer.fit(
            &subset(&data, warm, train_end)?,
            &subset(&data, warm + h, train_end + h)?,
        )?;
        report.fit_s += tf.elapsed().as_secs_f64();
        if let Some(s) = trainer.last_fit() {
            log(&format!(
                "fit on {} steps ({h} ahead): condition number of XᵀX + αI {:.2e}, solver {:?}",
                train_end - warm,
                s.condition_number,
                s.solver_used
            ));
            report.condition_numbers.push(s.condition_number);
        }
        let x_test = subset(&data, train_end, n - h)?;
        let y_test = subset(&data, train_end + h, n)?;
        let pred = trainer.predict(&x_test)?;
        let e = mse(&y_test, &pred);
        log(&format!("NG-RC {h}-step-ahead forecast: test MSE {e:e}"));
        report.mse.push((h, e));
        if let Some(dir) = &cfg.out_dir {
            let p = dir.join(format!("ngrc_forecast_h{h}.png"));
            let (yt, yp) = (y_test.to_f64_vec(), pred.to_f64_vec());
            let truth: Vec<Vec<f64>> = (0..3)
                .map(|j| yt.iter().skip(j).step_by(3).copied().collect())
                .collect();
            let preds: Vec<Vec<f64>> = (0..3)
                .map(|j| yp.iter().skip(j).step_by(3).copied().collect())
                .collect();
            plot::truth_vs_prediction(
                &p,
                &format!("NG-RC, {h} step(s) ahead: truth vs prediction"),
                &truth,
                &preds,
                &["x", "y", "z"],
            )
            .map_err(|e| Error::invalid("plot", e.to_string()))?;
            report.plots.push(p);
        }
    }
    report.total_s = t0.elapsed().as_secs_f64();
    Ok(report)
}
