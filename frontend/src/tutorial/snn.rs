//! Tutorial part 3: training a spiking network with surrogate gradients (BrainPy's
//! "Training a spiking neural network", spec §6–§12).
//!
//! The network is `spike >> i2r >> r >> r2o >> o` with
//! `i2r = Linear(num_in, num_rec, KaimingNormal(20)) >> Expon(num_rec, τ 10)`,
//! `r = Lif(num_rec, τ 10, V_rest 0, V_reset 0, V_th 1)`,
//! `r2o = Linear(num_rec, num_out, KaimingNormal(20)) >> Expon(num_out, τ 10)` and
//! `o = Integrator(num_out, τ 5)`. Inputs are Poisson spike trains `(T, B, num_in)`
//! (probability `freq·dt/1000` per step), `bool` as in BrainPy: the first `Linear` multiplies
//! them as they are (a `bool`-lhs matmul, event-driven on the JIT), so the 0/1 train is read
//! as bytes instead of `f64`s; float spike trains work too. Labels random 0/1. The loss is the cross-entropy of
//! the max-over-time output; Adam (lr 4e-3) with BrainPy's bias correction, which stays at
//! `t = 1` because nobody steps its epoch counter (spec §10). Every integration uses
//! `dt = 1.0` (spec §11: the published numbers match dt = 1 everywhere); the layers get it
//! as an explicit `dt`, so the global [`crate::get_dt`] is left alone.
//!
//! [`run_snn_part`] trains with one compiled function per step ([`TrainStep`]: the scan over
//! time, its reverse scan and the Adam update), then evaluates with a [`Runner`] monitoring
//! `r.V` and `r.spike`, computes the accuracy, and draws the tutorial's plots.

use crate::autograd::TrainStep;
use crate::dyn_::{
    Expon, Integrator, Lif, LifParams, SpikeForward, check_finite_states, check_labels,
    check_spikes,
};
use crate::init::Init;
use crate::losses::cross_entropy_loss;
use crate::nn::{Dense, Sequential};
use crate::optim::{Adam, BiasCorrection};
use crate::runner::{Runner, for_loop};
use crate::trace::{Tensor, Tracer};
use crate::vars::Module;
use crate::{Array, DType, Error, Result, TraceError, random};
use brainlift_ir::TensorType;
use brainlift_runtime::Backend;
use std::path::PathBuf;
use std::time::Instant;

/// The tutorial's network (spec §8): `spike >> i2r >> r >> r2o >> o`.
pub struct SnnNet {
    /// Inputs per step.
    pub num_in: usize,
    /// `Linear(num_in, num_rec) >> Expon(num_rec)`, children `comm` and `syn`.
    pub i2r: Sequential,
    /// The recurrent LIF population.
    pub r: Lif,
    /// `Linear(num_rec, num_out) >> Expon(num_out)`.
    pub r2o: Sequential,
    /// The leaky readout.
    pub o: Integrator,
}

/// The tutorial's synapse `Linear(n_in, n_out, KaimingNormal(20)) >> Expon(n_out, tau 10)`,
/// children named `comm` and `syn`.
fn synapse(n_in: usize, n_out: usize, dt: f64, name: &str) -> Result<Sequential> {
    let comm = Dense::with_init(
        n_in,
        n_out,
        Init::KaimingNormal(20.0),
        Some(Init::Zeros),
        DType::F64,
    )?;
    let syn = Expon::new(n_out, 10.0)?
        .with_dt(dt)?
        .named(format!("{name}.syn"));
    Ok(Sequential::new().push("comm", comm).push("syn", syn))
}

impl SnnNet {
    /// The tutorial network with time step `dt` and the spike forward `spike_forward`
    /// (Heaviside for the tutorial; [`SpikeForward::SmoothSigmoid`] for gradient checks).
    /// Weights are drawn from the default generator ([`random::seed`]).
    pub fn new(
        num_in: usize,
        num_rec: usize,
        num_out: usize,
        dt: f64,
        spike_forward: SpikeForward,
    ) -> Result<SnnNet> {
        let i2r = synapse(num_in, num_rec, dt, "i2r")?;
        let r = Lif::new(
            num_rec,
            LifParams {
                tau: 10.0,
                v_reset: 0.0,
                v_rest: 0.0,
                v_th: 1.0,
                dt: Some(dt),
                spike_forward,
                ..Default::default()
            },
        )?
        .named("r");
        let r2o = synapse(num_rec, num_out, dt, "r2o")?;
        let o = Integrator::new(num_out, 5.0)?.with_dt(dt)?.named("o");
        Ok(SnnNet {
            num_in,
            i2r,
            r,
            r2o,
            o,
        })
    }
}

impl Module for SnnNet {
    fn update(&self, x: &Tensor) -> Tensor {
        if x.rank() != 2 || x.shape()[1] != self.num_in {
            x.tracer().fail(TraceError::Op {
                op: "SnnNet layer 'i2r'".into(),
                msg: format!(
                    "input spikes have type {}, expected (batch, {})",
                    x.ty(),
                    self.num_in
                ),
            });
            return x.clone();
        }
        x >> &self.i2r >> &self.r >> &self.r2o >> &self.o
    }

    fn reset_state_traced(&self, tr: &Tracer) {
        self.i2r.reset_state_traced(tr);
        self.r.reset_state_traced(tr);
        self.r2o.reset_state_traced(tr);
        self.o.reset_state_traced(tr);
    }

    fn reset_state(&mut self, batch: usize) {
        self.i2r.reset_state(batch);
        self.r.reset_state(batch);
        self.r2o.reset_state(batch);
        self.o.reset_state(batch);
    }
}

crate::var_owner!(SnnNet { "i2r" => child i2r, "r" => child r, "r2o" => child r2o, "o" => child o });

/// The tutorial loss traced into `tr`: run `net` over `xs` (`(T, B, num_in)`, `bool` spikes
/// or floats) with [`for_loop`], take the max over time and the cross-entropy against
/// `labels` (`(B,)`, float class indices).
pub fn snn_loss(net: &SnnNet, xs: &Tensor, labels: &Tensor) -> Result<Tensor, TraceError> {
    let outs = for_loop(net, std::slice::from_ref(xs), |x| vec![net.update(&x[0])])?;
    let logits = outs[0].max(&[0], false);
    let loss = cross_entropy_loss(&logits, labels);
    xs.tracer().check()?;
    Ok(loss)
}

/// Poisson spike trains `(num_step, num_sample, num_in)`, a `bool` array as in BrainPy
/// (`bm.random.rand(..) < freq * dt`): true where `U[0,1) < freq·dt/1000`, and labels
/// `(num_sample,)`: 1.0 where `U[0,1) < 0.5`, drawn from the default generator. The first
/// layer multiplies the spikes as they are (a `bool`-lhs matmul reads them as 0/1).
pub fn poisson_data(
    num_step: usize,
    num_sample: usize,
    num_in: usize,
    freq: f64,
    dt: f64,
) -> Result<(Array, Array)> {
    let p = freq * dt / 1000.0;
    let mask = random::uniform(num_step * num_sample * num_in);
    let x: Vec<bool> = mask.iter().map(|&u| u < p).collect();
    let y: Vec<f64> = random::uniform(num_sample)
        .iter()
        .map(|&u| if u < 0.5 { 1.0 } else { 0.0 })
        .collect();
    Ok((
        Array::from_bool([num_step, num_sample, num_in], &x)?,
        Array::from_f64([num_sample], y)?,
    ))
}

/// `mean_b [argmax_k max_t out[t, b, k] == y_b]` for `out` `(T, B, K)` (spec §12).
pub fn max_over_time_accuracy(out: &Array, labels: &Array) -> Result<f64> {
    let s = out.shape();
    if s.len() != 3 || labels.shape() != [s[1]] {
        return Err(Error::invalid(
            "accuracy",
            format!(
                "outputs {} must be (T, B, K) and labels {} (B,)",
                out.ty(),
                labels.ty()
            ),
        ));
    }
    let (t, b, k) = (s[0], s[1], s[2]);
    let o = out.to_f64_vec();
    let y = labels.to_f64_vec();
    let mut correct = 0usize;
    for bi in 0..b {
        let m: Vec<f64> = (0..k)
            .map(|ki| {
                (0..t)
                    .map(|ti| o[(ti * b + bi) * k + ki])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        // argmax: first maximum, as numpy
        let am = (0..k).fold(0, |best, ki| if m[ki] > m[best] { ki } else { best });
        if am as f64 == y[bi] {
            correct += 1;
        }
    }
    Ok(correct as f64 / b as f64)
}

/// The tutorial loss on host arrays: mean over samples of `logsumexp(m_b) − m_b[y_b]` with
/// `m = max_t out[t]` for `out` `(T, B, K)` and float class labels `(B,)`.
pub fn max_over_time_cross_entropy(out: &Array, labels: &Array) -> Result<f64> {
    let s = out.shape();
    if s.len() != 3 || labels.shape() != [s[1]] {
        return Err(Error::invalid(
            "cross_entropy",
            format!(
                "outputs {} must be (T, B, K) and labels {} (B,)",
                out.ty(),
                labels.ty()
            ),
        ));
    }
    check_labels("cross_entropy labels", labels, s[2])?;
    let (t, b, k) = (s[0], s[1], s[2]);
    let o = out.to_f64_vec();
    let y = labels.to_f64_vec();
    let mut total = 0.0;
    for bi in 0..b {
        let m: Vec<f64> = (0..k)
            .map(|ki| {
                (0..t)
                    .map(|ti| o[(ti * b + bi) * k + ki])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        let mx = m.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + m.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        total += lse - m[y[bi] as usize];
    }
    Ok(total / b as f64)
}

/// Configuration of [`run_snn_part`].
#[derive(Clone, Debug)]
pub struct SnnConfig {
    /// Inputs (100).
    pub num_in: usize,
    /// LIF neurons (10).
    pub num_rec: usize,
    /// Classes (2).
    pub num_out: usize,
    /// Time steps per sample (100).
    pub num_step: usize,
    /// Samples, trained as one batch (256).
    pub num_sample: usize,
    /// Input rate in Hz (10).
    pub freq: f64,
    /// Time step in ms (1.0, spec §11).
    pub dt: f64,
    /// Training steps (1000).
    pub train_steps: usize,
    /// Print and record the loss every this many steps (100).
    pub report_every: usize,
    /// Adam learning rate (4e-3).
    pub lr: f64,
    /// Seed of the default generator (weights, spikes, labels).
    pub seed: u64,
    /// Backend for training and the runner.
    pub backend: Backend,
    /// Where to write the plots (`None`: no plots).
    pub out_dir: Option<PathBuf>,
    /// Print progress lines (`Train {i} steps, loss {l}`, `Accuracy ...`).
    pub verbose: bool,
}

impl Default for SnnConfig {
    /// The tutorial's sizes, seed 0, the backend from `BRAINLIFT_BACKEND`, no plots.
    fn default() -> SnnConfig {
        SnnConfig {
            num_in: 100,
            num_rec: 10,
            num_out: 2,
            num_step: 100,
            num_sample: 256,
            freq: 10.0,
            dt: 1.0,
            train_steps: 1000,
            report_every: 100,
            lr: 4e-3,
            seed: 0,
            backend: Backend::from_env().unwrap_or_default(),
            out_dir: None,
            verbose: true,
        }
    }
}

impl SnnConfig {
    /// A reduced configuration for tests (20 inputs, 8 neurons, 30 steps, 32 samples, 60
    /// training steps, a higher rate so that inputs carry information).
    pub fn quick() -> SnnConfig {
        SnnConfig {
            num_in: 20,
            num_rec: 8,
            num_step: 30,
            num_sample: 32,
            freq: 50.0,
            train_steps: 60,
            report_every: 20,
            verbose: false,
            ..SnnConfig::default()
        }
    }
}

/// What [`run_snn_part`] measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SnnReport {
    /// The loss at every `report_every`-th step (steps `report_every, 2·report_every, ..`).
    pub losses: Vec<f64>,
    /// The loss of every training step.
    pub all_losses: Vec<f64>,
    /// Loss of the last training step.
    pub final_loss: f64,
    /// Runner accuracy after training (max over time, argmax over outputs).
    pub accuracy: f64,
    /// Median wall time of one training step, seconds.
    pub step_s_median: f64,
    /// Wall time of the whole part (data, compile, train, run, plots), seconds.
    pub total_s: f64,
    /// Seconds spent tracing and compiling the training step.
    pub compile_s: f64,
    /// The tutorial loss of the runner's outputs after training (the trained parameters).
    pub eval_loss: f64,
    /// Spikes emitted by the LIF layer in the evaluation run, per neuron per sample.
    pub mean_spikes_per_neuron: f64,
    /// The plots written.
    pub plots: Vec<PathBuf>,
}

impl SnnReport {
    /// `{"losses": [...], "final_loss": .., "accuracy": .., "step_s_median": .., "total_s": .., ..}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "losses": self.losses,
            "final_loss": self.final_loss,
            "accuracy": self.accuracy,
            "step_s_median": self.step_s_median,
            "total_s": self.total_s,
            "compile_s": self.compile_s,
            "eval_loss": self.eval_loss,
            "mean_spikes_per_neuron": self.mean_spikes_per_neuron,
            "plots": self.plots.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        })
    }
}

/// Compiles the tutorial's training step for `net` on data of `x_ty` / `y_ty`.
pub fn snn_train_step(
    net: &SnnNet,
    opt: &mut Adam,
    x_ty: &TensorType,
    y_ty: &TensorType,
    backend: Backend,
) -> Result<TrainStep> {
    TrainStep::new(
        "snn_train",
        net,
        opt,
        &[("xs", x_ty.clone()), ("labels", y_ty.clone())],
        backend,
        |_tr: &Tracer, d| snn_loss(net, &d[0], &d[1]),
    )
}

/// The function one training step of the tutorial network compiles to (forward scan over
/// `num_step` steps of `num_sample` samples with `bool` input spikes, cross-entropy of the
/// maximum over time, reverse scan, Adam with lr 4e-3), with weights drawn from generator
/// seed 0, and Poisson inputs at 10 Hz with random labels fitting it (for benchmarks,
/// profiles and IR inspection). The function's other inputs (states, moments, `hyper.*`)
/// are left to the caller.
pub fn tutorial_train_step_function(
    num_step: usize,
    num_sample: usize,
) -> Result<(brainlift_ir::Function, Array, Array)> {
    random::seed(0);
    let mut net = SnnNet::new(100, 10, 2, 1.0, SpikeForward::Heaviside)?;
    net.reset_state(num_sample);
    let (x, y) = poisson_data(num_step, num_sample, 100, 10.0, 1.0)?;
    let mut opt = Adam::new(4e-3);
    let step = snn_train_step(&net, &mut opt, x.ty(), y.ty(), Backend::Interp)?;
    Ok((step.function().clone(), x, y))
}

/// Runs tutorial part 3 (see the module doc) and returns its numbers.
pub fn run_snn_part(cfg: &SnnConfig) -> Result<SnnReport> {
    let start = Instant::now();
    if cfg.report_every == 0 || cfg.train_steps == 0 {
        return Err(Error::invalid(
            "snn",
            "train_steps and report_every must be positive",
        ));
    }
    // An unusable plot folder is reported before training, not after it.
    if let Some(dir) = &cfg.out_dir {
        super::create_out_dir("snn", dir)?;
    }
    random::seed(cfg.seed);
    let mut net = SnnNet::new(
        cfg.num_in,
        cfg.num_rec,
        cfg.num_out,
        cfg.dt,
        SpikeForward::Heaviside,
    )?;
    let (x, y) = poisson_data(cfg.num_step, cfg.num_sample, cfg.num_in, cfg.freq, cfg.dt)?;
    check_spikes("snn input", &x)?;
    check_labels("snn labels", &y, cfg.num_out)?;

    // f_loss starts with net.reset(num_sample); a TrainStep never writes states back, so
    // one reset keeps every step starting from zero states.
    net.reset_state(cfg.num_sample);
    let mut opt = Adam::new(cfg.lr).bias_correction(BiasCorrection::PerEpoch);
    let t_compile = Instant::now();
    let mut step = snn_train_step(&net, &mut opt, x.ty(), y.ty(), cfg.backend)?;
    let compile_s = t_compile.elapsed().as_secs_f64();

    let data = [x.clone(), y.clone()];
    let mut all_losses = Vec::with_capacity(cfg.train_steps);
    let mut times = Vec::with_capacity(cfg.train_steps);
    let mut losses = vec![];
    // A progress bar on a terminal; the per-100-step lines either way.
    let bar = (cfg.verbose && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| indicatif::ProgressBar::new(cfg.train_steps as u64));
    for i in 0..cfg.train_steps {
        if let Some(b) = &bar {
            b.inc(1);
        }
        let t0 = Instant::now();
        let l = step.step(&mut net, &mut opt, &data)?;
        times.push(t0.elapsed().as_secs_f64());
        if !l.is_finite() {
            return Err(Error::invalid(
                "snn",
                format!("the loss became {l} at training step {}", i + 1),
            ));
        }
        all_losses.push(l);
        if (i + 1) % cfg.report_every == 0 {
            losses.push(l);
            if cfg.verbose {
                let line = format!("Train {} steps, loss {l}", i + 1);
                match &bar {
                    Some(b) => b.suspend(|| println!("{line}")),
                    None => println!("{line}"),
                }
            }
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    check_finite_states("snn", &net)?;

    let mut runner = Runner::new(&mut net)
        .backend(cfg.backend)
        .dt(cfg.dt)
        .monitor("r.spike", "r.spike")
        .monitor("r.membrane", "r.V");
    let out = runner.run(&x, true)?;
    let accuracy = max_over_time_accuracy(&out.outputs, &y)?;
    let eval_loss = max_over_time_cross_entropy(&out.outputs, &y)?;
    if cfg.verbose {
        println!("Accuracy {accuracy:.3}");
    }
    let spk = out.mon("r.spike")?;
    let mem = out.mon("r.membrane")?;
    let spikes = spk.to_f64_vec();
    let mean_spikes_per_neuron = spikes.iter().sum::<f64>() / (cfg.num_sample * cfg.num_rec) as f64;

    let mut plots = vec![];
    if let Some(dir) = &cfg.out_dir {
        super::create_out_dir("snn", dir)?;
        let vpath = dir.join("snn_voltage_traces.png");
        let plot_err = |e: crate::plot::PlotError| Error::invalid("snn plots", e.to_string());
        crate::plot::voltage_grid(
            &vpath,
            &mem.to_f64_vec(),
            Some(&spikes),
            [cfg.num_step, cfg.num_sample, cfg.num_rec],
            3,
            5,
            5.0,
        )
        .map_err(plot_err)?;
        plots.push(vpath);
        let lpath = dir.join("snn_loss.png");
        crate::plot::loss_curve_steps(&lpath, &all_losses).map_err(plot_err)?;
        plots.push(lpath);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(SnnReport {
        final_loss: *all_losses.last().expect("train_steps > 0"),
        losses,
        all_losses,
        accuracy,
        step_s_median: sorted[sorted.len() / 2],
        total_s: start.elapsed().as_secs_f64(),
        compile_s,
        eval_loss,
        mean_spikes_per_neuron,
        plots,
    })
}
