//! Tutorial part 3: train a spiking network on random Poisson spike trains with surrogate
//! gradients, then evaluate it with a runner that monitors membrane potentials and spikes.
//!
//! ```text
//! cargo run --release --example snn_classify -- [--quick] [--backend jit|interp]
//!     [--out DIR] [--seed N] [--steps N] [--json] [--custom-loop]
//! ```
//!
//! `--custom-loop` trains with a hand-written trainer in the style of the tutorial's
//! `Trainer` class (`bm.grad` + `opt.update`), built from `for_loop`, `autograd::grad` and
//! `ApplyGradients`, instead of the fused one-function `TrainStep`.

use brainlift::autograd::{ApplyGradients, grad};
use brainlift::dyn_::SpikeForward;
use brainlift::optim::{Adam, BiasCorrection};
use brainlift::runner::Runner;
use brainlift::tutorial::snn::{
    SnnConfig, SnnNet, max_over_time_accuracy, poisson_data, run_snn_part, snn_loss,
};
use brainlift::{Backend, Module, Result, random, train_vars};
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut cfg = SnnConfig::default();
    let (mut json, mut custom) = (false, false);
    let mut args = std::env::args().skip(1);
    let bad = |m: String| brainlift::Error::invalid("snn_classify", m);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| bad(format!("{name} needs a value")))
        };
        match a.as_str() {
            "--quick" => {
                // Only the sizes change: --backend, --out and --seed given before are kept.
                cfg = SnnConfig {
                    backend: cfg.backend,
                    out_dir: cfg.out_dir.clone(),
                    seed: cfg.seed,
                    ..SnnConfig::quick()
                }
            }
            "--backend" => cfg.backend = Backend::parse(&value("--backend")?)?,
            "--out" => cfg.out_dir = Some(PathBuf::from(value("--out")?)),
            "--seed" => {
                cfg.seed = value("--seed")?
                    .parse()
                    .map_err(|e| bad(format!("--seed: {e}")))?
            }
            "--steps" => {
                cfg.train_steps = value("--steps")?
                    .parse()
                    .map_err(|e| bad(format!("--steps: {e}")))?
            }
            "--json" => json = true,
            "--custom-loop" => custom = true,
            other => return Err(bad(format!("unknown argument '{other}'"))),
        }
    }
    cfg.verbose = !json;
    if custom {
        return custom_loop(&cfg);
    }
    let report = run_snn_part(&cfg)?;
    if json {
        println!("{}", serde_json::json!({ "snn": report.to_json() }));
    } else {
        println!(
            "final loss {:.4}, accuracy {:.3}, step median {:.2} ms, total {:.1} s",
            report.final_loss,
            report.accuracy,
            report.step_s_median * 1e3,
            report.total_s
        );
        for p in &report.plots {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// The tutorial's `Trainer`, written by hand: `f_grad = grad(f_loss, vars_to_train)`, then
/// `opt.update(grads)` every step.
fn custom_loop(cfg: &SnnConfig) -> Result<()> {
    random::seed(cfg.seed);
    let mut net = SnnNet::new(
        cfg.num_in,
        cfg.num_rec,
        cfg.num_out,
        cfg.dt,
        SpikeForward::Heaviside,
    )?;
    let (x, y) = poisson_data(cfg.num_step, cfg.num_sample, cfg.num_in, cfg.freq, cfg.dt)?;
    net.reset_state(cfg.num_sample);
    let vars = train_vars(&net);
    let data_ty = [("xs", x.ty().clone()), ("labels", y.ty().clone())];
    // f_loss: for_loop over time, max over time, cross-entropy (traced once, compiled once)
    let mut f_grad = grad(&net, &vars, &data_ty, cfg.backend, |_, d| {
        snn_loss(&net, &d[0], &d[1])
    })?;
    let mut opt = Adam::new(cfg.lr).bias_correction(BiasCorrection::PerEpoch);
    let mut update = ApplyGradients::new(&net, &vars, &mut opt, cfg.backend)?;
    for i in 0..cfg.train_steps {
        net.reset_state(cfg.num_sample); // f_loss starts with net.reset(num_sample)
        let (grads, loss) = f_grad.call(&mut net, &[x.clone(), y.clone()])?;
        let g: Vec<_> = grads.into_iter().map(|(_, g)| g).collect();
        update.apply(&mut net, &mut opt, &g)?;
        if (i + 1) % cfg.report_every == 0 {
            println!("Train {} steps, loss {loss}", i + 1);
        }
    }
    let mut runner = Runner::new(&mut net)
        .backend(cfg.backend)
        .monitor("r.spike", "r.spike")
        .monitor("r.membrane", "r.V");
    let out = runner.run(&x, true)?;
    println!("Accuracy {:.3}", max_over_time_accuracy(&out.outputs, &y)?);
    Ok(())
}
