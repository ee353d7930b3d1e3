//! Tutorial part 2: training an RNN with BPTT to integrate white noise.
//!
//! [`run_rnn_part`] reproduces the notebook: dt = 0.04, 25 steps, batches of 128, 100 batches
//! per epoch, 30 epochs; model `RnnCell(1, 100, train_state)` followed by `Dense(100, 1)`;
//! loss `MSE + 2e-4 * l2_norm(train_vars)^2`; optimiser
//! `Adam(lr = ExponentialDecay(0.025, 1, 0.99975), eps = 0.1)`. Every number is drawn from the
//! seeded default generator ([`crate::random::seed`]), so a seed and a backend fix the whole
//! loss history. [`RnnConfig::quick`] shrinks the sizes for tests.
//!
//! The Adam bias correction is counted per update (textbook; see [`crate::optim::Adam`]) unless
//! [`RnnConfig::brainpy_bias_correction`] asks for BrainPy's per-epoch counting.

use crate::losses::{l2_norm, mean_squared_error};
use crate::nn::{Dense, RnnCell};
use crate::optim::{Adam, BiasCorrection, LrSchedule};
use crate::trace::{Tensor, Tracer};
use crate::train::Bptt;
use crate::vars::Module;
use crate::{Array, Error, Result, random};
use brainlift_runtime::Backend;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Settings of the tutorial run. [`Default`] is the notebook's configuration.
#[derive(Clone, Debug)]
pub struct RnnConfig {
    /// Seed of the default generator (initial weights and data).
    pub seed: u64,
    /// Time step of the task (scales the noise).
    pub dt: f64,
    /// Steps per sequence.
    pub num_step: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
    /// Epochs.
    pub num_epoch: usize,
    /// Hidden units.
    pub num_hidden: usize,
    /// L2 regularisation weight.
    pub l2_reg: f64,
    /// Use BrainPy's per-epoch Adam bias correction instead of per-update.
    pub brainpy_bias_correction: bool,
    /// Backend.
    pub backend: Backend,
    /// Where the PNG plots go (none: no plots).
    pub out_dir: Option<PathBuf>,
    /// Print the per-epoch lines.
    pub verbose: bool,
}

impl Default for RnnConfig {
    fn default() -> RnnConfig {
        RnnConfig {
            seed: 42,
            dt: 0.04,
            num_step: 25,
            batch: 128,
            batches_per_epoch: 100,
            num_epoch: 30,
            num_hidden: 100,
            l2_reg: 2e-4,
            brainpy_bias_correction: false,
            backend: Backend::from_env().unwrap_or_default(),
            out_dir: None,
            verbose: true,
        }
    }
}

impl RnnConfig {
    /// A reduced run for tests: 3 epochs of 10 batches of 32 sequences, 32 hidden units.
    pub fn quick() -> RnnConfig {
        RnnConfig {
            batch: 32,
            batches_per_epoch: 10,
            num_epoch: 3,
            num_hidden: 32,
            ..RnnConfig::default()
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RnnReport {
    /// Per-epoch mean training loss.
    pub losses: Vec<f64>,
    /// The last epoch's loss.
    pub final_loss: f64,
    /// Seconds per epoch.
    pub epoch_s: Vec<f64>,
    /// Median seconds per epoch.
    pub epoch_s_median: f64,
    /// Total seconds (model construction, training, prediction, plots).
    pub total_s: f64,
    /// MSE of the prediction on a fresh batch against its ground truth.
    pub predict_mse: f64,
    /// `max |state2train|` after training (brainlift trains the initial state; BrainPy's stays 0).
    pub state2train_max_abs: f64,
    /// Backend name.
    pub backend: String,
    /// Plot files written.
    pub plots: Vec<PathBuf>,
}

/// The tutorial's model: `RnnCell(num_in, num_hidden, train_state=True)` then `Dense(num_hidden, 1)`.
pub struct TutorialRnn {
    /// The recurrent cell (paths `rnn.*`).
    pub rnn: RnnCell,
    /// The readout (paths `out.*`).
    pub out: Dense,
}

impl TutorialRnn {
    /// Draws the weights from the default generator (cell first, then readout).
    pub fn new(num_in: usize, num_hidden: usize) -> Result<TutorialRnn> {
        let rnn = RnnCell::new(num_in, num_hidden)?.train_state(true);
        let out = Dense::new(num_hidden, 1)?;
        Ok(TutorialRnn { rnn, out })
    }
}

impl Module for TutorialRnn {
    fn update(&self, x: &Tensor) -> Tensor {
        self.out.update(&self.rnn.update(x))
    }
    fn reset_state_traced(&self, tr: &Tracer) {
        self.rnn.reset_state_traced(tr);
    }
    fn reset_state(&mut self, batch: usize) {
        self.rnn.reset_state(batch);
        self.out.reset_state(batch);
    }
}

crate::var_owner!(TutorialRnn { "rnn" => child rnn, "out" => child out });

/// One batch of the task: inputs `bias + 0.01/sqrt(dt) * N(0,1)` with
/// `bias = 0.025 * 2 * (n - 0.5)`, one `n ~ N(0,1)` per sequence; targets the cumulative sum
/// over time. Shapes `(batch, num_step, 1)`.
pub fn build_inputs_and_targets(batch: usize, num_step: usize, dt: f64) -> Result<(Array, Array)> {
    let (mean, scale) = (0.025, 0.01);
    let sample = random::normal(batch);
    let noise = random::normal(batch * num_step);
    let mut x = vec![0.0; batch * num_step];
    let mut y = vec![0.0; batch * num_step];
    for b in 0..batch {
        let bias = mean * 2.0 * (sample[b] - 0.5);
        let mut acc = 0.0;
        for t in 0..num_step {
            let v = bias + scale / dt.sqrt() * noise[b * num_step + t];
            acc += v;
            x[b * num_step + t] = v;
            y[b * num_step + t] = acc;
        }
    }
    Ok((
        Array::from_f64([batch, num_step, 1], x)?,
        Array::from_f64([batch, num_step, 1], y)?,
    ))
}

/// The tutorial's loss: `MSE(pred, target) + l2_reg · l2_norm(train_vars)²`.
pub fn tutorial_loss(
    l2_reg: f64,
) -> impl Fn(&Tensor, &Tensor, &crate::train::ModelView<'_>) -> Tensor + Clone {
    move |p: &Tensor, t: &Tensor, m: &crate::train::ModelView<'_>| {
        mean_squared_error(p, t) + l2_norm(&m.train_vars()).square() * l2_reg
    }
}

/// The tutorial's optimiser: `Adam(lr = ExponentialDecay(0.025, 1, 0.99975), eps = 0.1)`, bias
/// correction per update, or per epoch as BrainPy counts it.
pub fn tutorial_optimizer(brainpy_bias_correction: bool) -> Adam {
    let lr = LrSchedule::ExponentialDecay {
        lr: 0.025,
        decay_steps: 1.0,
        decay_rate: 0.99975,
    };
    let bc = if brainpy_bias_correction {
        BiasCorrection::PerEpoch
    } else {
        BiasCorrection::PerUpdate
    };
    Adam::new(lr).eps(0.1).bias_correction(bc)
}

/// The function one BPTT train step of the tutorial compiles to (forward scan, loss, reverse
/// scan, Adam update) for batches of `batch × num_step` and `num_hidden` units, with weights
/// drawn from the default generator: for benchmarks and IR inspection.
pub fn tutorial_train_step_function(
    batch: usize,
    num_step: usize,
    num_hidden: usize,
) -> Result<brainlift_ir::Function> {
    let mut model = TutorialRnn::new(1, num_hidden)?;
    model.reset_state(batch);
    let mut opt = tutorial_optimizer(false);
    let loss = tutorial_loss(2e-4);
    let ty = brainlift_ir::TensorType::new(brainlift_ir::DType::F64, [batch, num_step, 1]);
    let data = [("xs", ty.clone()), ("targets", ty)];
    let step = crate::autograd::TrainStep::new(
        "bptt_step",
        &model,
        &mut opt,
        &data,
        Backend::Interp,
        |tr, d| {
            model.reset_state_traced(tr);
            let preds = crate::train::forward_over_time(tr, &model, &d[0])?;
            let view = crate::train::ModelView::new(tr, &model);
            Ok(loss(&preds, &d[1], &view))
        },
    )?;
    Ok(step.function().clone())
}

/// Runs tutorial part 2 (see the module doc); prints the notebook's lines when `verbose`.
pub fn run_rnn_part(cfg: &RnnConfig) -> Result<RnnReport> {
    if cfg.num_epoch == 0
        || cfg.batches_per_epoch == 0
        || cfg.batch == 0
        || cfg.num_step == 0
        || cfg.num_hidden == 0
    {
        return Err(Error::invalid(
            "run_rnn_part",
            format!("every size must be positive: {cfg:?}"),
        ));
    }
    if !(cfg.dt > 0.0 && cfg.dt.is_finite()) {
        return Err(Error::invalid(
            "run_rnn_part",
            format!("dt must be positive, got {}", cfg.dt),
        ));
    }
    // An unusable plot folder is reported before training, not after it.
    if let Some(dir) = &cfg.out_dir {
        super::create_out_dir("run_rnn_part", dir)?;
    }
    let start = Instant::now();
    random::seed(cfg.seed);
    let model = TutorialRnn::new(1, cfg.num_hidden)?;
    let loss = tutorial_loss(cfg.l2_reg);
    let opt = tutorial_optimizer(cfg.brainpy_bias_correction);
    let mut trainer = Bptt::new(model, loss, opt)
        .backend(cfg.backend)
        .verbose(cfg.verbose);
    let (batch, steps, dt, n) = (cfg.batch, cfg.num_step, cfg.dt, cfg.batches_per_epoch);
    let data = move || {
        (0..n)
            .map(move |_| build_inputs_and_targets(batch, steps, dt).expect("sizes checked above"))
    };
    let losses = trainer.fit(data, cfg.num_epoch)?;
    let (x, y) = build_inputs_and_targets(batch, steps, dt)?;
    let pred = trainer.predict(&x)?;
    let (pv, yv) = (pred.to_f64_vec(), y.to_f64_vec());
    let predict_mse = pv
        .iter()
        .zip(&yv)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / pv.len() as f64;
    let state2train_max_abs = trainer
        .model
        .rnn
        .state2train
        .as_ref()
        .map(|v| {
            v.value()
                .to_f64_vec()
                .iter()
                .fold(0.0f64, |m, x| m.max(x.abs()))
        })
        .unwrap_or(0.0);
    let mut plots = vec![];
    if let Some(dir) = &cfg.out_dir {
        super::create_out_dir("run_rnn_part", dir)?;
        let plot_err = |e: crate::plot::PlotError| Error::invalid("run_rnn_part", e.to_string());
        let p = dir.join("rnn_loss.png");
        crate::plot::loss_curve(&p, &losses).map_err(plot_err)?;
        plots.push(p);
        let p = dir.join("rnn_prediction.png");
        crate::plot::truth_vs_prediction(
            &p,
            "White-noise integration: ground truth vs prediction (sequence 0)",
            &[yv[..steps].to_vec()],
            &[pv[..steps].to_vec()],
            &["integral"],
        )
        .map_err(plot_err)?;
        plots.push(p);
    }
    let epoch_s = trainer.epoch_seconds().to_vec();
    let mut sorted = epoch_s.clone();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len();
    let epoch_s_median = if m % 2 == 1 {
        sorted[m / 2]
    } else {
        0.5 * (sorted[m / 2 - 1] + sorted[m / 2])
    };
    Ok(RnnReport {
        final_loss: *losses.last().expect("num_epoch > 0"),
        losses,
        epoch_s,
        epoch_s_median,
        total_s: start.elapsed().as_secs_f64(),
        predict_mse,
        state2train_max_abs,
        backend: cfg.backend.name().to_string(),
        plots,
    })
}
