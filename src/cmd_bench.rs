//! `brainlift bench`: interpreter vs JIT on the tutorial's workloads, measured side by side.
//!
//! For every workload the same traced function runs on both backends with the same inputs:
//! the interpreter (median of a few runs), the JIT (median of repeated runs after warm-up), the
//! ratio, and the JIT's compile time measured on an empty kernel cache. Baselines measured in
//! the same run: a hand-written Rust loop for the elementwise chain, the `gemm` crate called
//! directly for the matmul.

use crate::CliResult;
use brainlift::ir::{DType, Function, TensorType};
use brainlift::runtime::{
    Backend, Tensor,
    random::{random_inputs, train_step_inputs},
};
use brainlift::trace;
use brainlift::tutorial::rnn::tutorial_train_step_function;
use clap::Args;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct BenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Only the workloads whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Seconds of JIT timing per workload (after warm-up).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    seconds: f64,
}

/// A named baseline measured beside the JIT.
type Baseline = (&'static str, Box<dyn FnMut()>);

/// A workload builder.
type Builder = fn() -> CliResult<Workload>;

struct Workload {
    name: &'static str,
    about: &'static str,
    f: Function,
    inputs: Vec<Tensor>,
    baseline: Option<Baseline>,
    /// JIT compile options (what the trainer using this function compiles with).
    opts: brainlift::runtime::CompileOptions,
}

fn f64t(d: &[usize]) -> TensorType {
    TensorType::new(DType::F64, d)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `f` over repeated runs: at least `min_runs`, until `budget` is spent.
fn time_it(
    mut f: impl FnMut() -> CliResult,
    warmup: usize,
    min_runs: usize,
    budget: Duration,
) -> CliResult<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let start = Instant::now();
    let mut samples = vec![];
    while samples.len() < min_runs || (start.elapsed() < budget && samples.len() < 10_000) {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64());
    }
    Ok(median(samples))
}

fn elementwise() -> CliResult<Workload> {
    let n = 1_000_000;
    let f = trace("elementwise", |tr| {
        let x = tr.input("x", f64t(&[n]));
        let y = tr.input("y", f64t(&[n]));
        Ok(vec![("out".into(), (&x * 1.5 + &y * 0.5).relu())])
    })
    .map_err(|e| e.to_string())?;
    let inputs = random_inputs(&f, 1);
    let (xs, ys) = (inputs[0].to_f64_vec(), inputs[1].to_f64_vec());
    let mut out = vec![0.0f64; n];
    let baseline = move || {
        for ((o, &x), &y) in out.iter_mut().zip(&xs).zip(&ys) {
            let v = 1.5 * x + 0.5 * y;
            *o = if v > 0.0 { v } else { 0.0 };
        }
        std::hint::black_box(&out);
    };
    Ok(Workload {
        name: "elementwise",
        about: "relu(1.5 x + 0.5 y) over 1e6 f64 (baseline: hand-written Rust loop)",
        f,
        inputs,
        baseline: Some(("rust_loop", Box::new(baseline))),
        opts: Default::default(),
    })
}

fn matmul() -> CliResult<Workload> {
    let n = 128;
    let f = trace("matmul", |tr| {
        let a = tr.input("a", f64t(&[n, n]));
        let b = tr.input("b", f64t(&[n, n]));
        Ok(vec![("c".into(), a.matmul(&b))])
    })
    .map_err(|e| e.to_string())?;
    let inputs = random_inputs(&f, 2);
    let (a, b) = (inputs[0].to_f64_vec(), inputs[1].to_f64_vec());
    let mut c = vec![0.0f64; n * n];
    let baseline = move || {
        // Row-major n x n: column stride 1, row stride n.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        std::hint::black_box(&c);
    };
    Ok(Workload {
        name: "matmul",
        about: "128x128x128 f64 matmul (baseline: the gemm crate called directly)",
        f,
        inputs,
        baseline: Some(("gemm_direct", Box::new(baseline))),
        opts: Default::default(),
    })
}

fn ngrc() -> CliResult<Workload> {
    use brainlift::tutorial::ngrc::Ngrc;
    let model = Ngrc::new(3, 3).map_err(|e| e.to_string())?;
    let (f, _) =
        brainlift::offline::fit_function(&model, &f64t(&[1, 6000, 3]), &f64t(&[1, 6000, 3]), false)
            .map_err(|e| e.to_string())?;
    let series = brainlift::datasets::chaos::lorenz(100.0, 0.01).map_err(|e| e.to_string())?;
    let (xv, _) = series.subset(2000, 8000).map_err(|e| e.to_string())?;
    let (yv, _) = series.subset(2001, 8001).map_err(|e| e.to_string())?;
    let mut inputs = random_inputs(&f, 3);
    inputs[0] = Tensor::from_f64([1, 6000, 3], xv).map_err(|e| e.to_string())?;
    inputs[1] = Tensor::from_f64([1, 6000, 3], yv).map_err(|e| e.to_string())?;
    Ok(Workload {
        name: "ngrc",
        about: "NVAR features + XtX/XtY accumulation over the 6000 training steps (ridge fit forward)",
        f,
        inputs,
        baseline: None,
        // As RidgeTrainer compiles it: the accumulation order is kept.
        opts: brainlift::runtime::CompileOptions {
            reassociate: false,
            ..Default::default()
        },
    })
}

fn bptt_step() -> CliResult<Workload> {
    brainlift::random::seed(0);
    let f = tutorial_train_step_function(128, 25, 100).map_err(|e| e.to_string())?;
    let inputs = train_step_inputs(&f, 4);
    Ok(Workload {
        name: "bptt_step",
        about: "one BPTT train step of the tutorial RNN (batch 128, T 25, hidden 100): forward scan, loss, reverse scan, Adam",
        f,
        inputs,
        baseline: None,
        opts: Default::default(),
    })
}

fn snn_step() -> CliResult<Workload> {
    let (f, x, y) = brainlift::tutorial::snn::tutorial_train_step_function(100, 256)
        .map_err(|e| e.to_string())?;
    let mut inputs = train_step_inputs(&f, 5);
    for (p, v) in f.params.iter().zip(inputs.iter_mut()) {
        if p.name == "xs" {
            *v = x.clone();
        } else if p.name == "labels" {
            *v = y.clone();
        }
    }
    Ok(Workload {
        name: "snn_step",
        about: "one training step of the tutorial spiking net (256 samples, 100 steps, 100->10->2, Poisson 10 Hz bool spikes)",
        f,
        inputs,
        baseline: None,
        opts: Default::default(),
    })
}

/// One epoch of the tutorial's BPTT training as `Bptt::fit` runs it (100 batches of 128 × 25:
/// data generation, state reset, the compiled train step, loss read-back) on the JIT: the
/// first epoch (it includes tracing and compiling) and the median of the following ones
/// (at least 3, until `budget`). The interpreter would take minutes per epoch; it is not run.
fn bptt_epoch(budget: Duration) -> CliResult<(f64, f64)> {
    use brainlift::train::Bptt;
    use brainlift::tutorial::rnn::{
        TutorialRnn, build_inputs_and_targets, tutorial_loss, tutorial_optimizer,
    };
    brainlift::random::seed(0);
    let model = TutorialRnn::new(1, 100).map_err(|e| e.to_string())?;
    let mut trainer = Bptt::new(model, tutorial_loss(2e-4), tutorial_optimizer(false))
        .backend(Backend::Jit)
        .verbose(false)
        .progress_bar(false);
    let data = || (0..100).map(|_| build_inputs_and_targets(128, 25, 0.04).expect("valid sizes"));
    let start = Instant::now();
    let mut epochs = 0;
    while epochs < 4 || (start.elapsed() < budget && epochs < 1000) {
        trainer.fit(data, 1).map_err(|e| e.to_string())?;
        epochs += 1;
    }
    let secs = trainer.epoch_seconds();
    Ok((secs[0], median(secs[1..].to_vec())))
}

pub fn run(args: BenchArgs) -> CliResult {
    let builders: Vec<(&str, Builder)> = vec![
        ("elementwise", elementwise),
        ("matmul", matmul),
        ("ngrc", ngrc),
        ("bptt_step", bptt_step),
        ("snn_step", snn_step),
    ];
    let names: Vec<&str> = builders
        .iter()
        .map(|(n, _)| *n)
        .chain(["bptt_epoch"])
        .collect();
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(format!(
            "--seconds must be in (0, 3600], got {}",
            args.seconds
        ));
    }
    if let Some(o) = &args.only
        && !names.iter().any(|n| n.contains(o.as_str()))
    {
        return Err(format!(
            "--only {o}: no workload matches; workloads: {}",
            names.join(", ")
        ));
    }
    let budget = Duration::from_secs_f64(args.seconds.max(0.05));
    let mut rows = vec![];
    let mut total_compile = 0.0;
    for (name, build) in builders {
        if let Some(o) = &args.only
            && !name.contains(o.as_str())
        {
            continue;
        }
        let mut w = build()?;
        brainlift::runtime::cache::clear_cache();
        let t = Instant::now();
        let mut jit = brainlift::runtime::compile_with(&w.f, Backend::Jit, &w.opts)
            .map_err(|e| e.to_string())?;
        let compile_s = t.elapsed().as_secs_f64();
        total_compile += compile_s;
        let mut interp =
            brainlift::runtime::compile(&w.f, Backend::Interp).map_err(|e| e.to_string())?;
        let inputs = w.inputs.clone();
        let jit_s = time_it(
            || jit.run(&inputs).map(|_| ()).map_err(|e| e.to_string()),
            3,
            5,
            budget,
        )?;
        let interp_s = time_it(
            || interp.run(&inputs).map(|_| ()).map_err(|e| e.to_string()),
            1,
            3,
            budget,
        )?;
        let baseline = match &mut w.baseline {
            Some((label, f)) => {
                let s = time_it(
                    || {
                        f();
                        Ok(())
                    },
                    3,
                    5,
                    budget,
                )?;
                Some((*label, s))
            }
            None => None,
        };
        if !args.json {
            println!("{:<12} {}", w.name, w.about);
            print!(
                "             interp {:>10.3} ms   jit {:>9.3} ms   speedup {:>7.1}x   compile {:>7.2} ms",
                interp_s * 1e3,
                jit_s * 1e3,
                interp_s / jit_s,
                compile_s * 1e3
            );
            if let Some((label, s)) = baseline {
                print!(
                    "   {label} {:.3} ms (jit/{label} = {:.2})",
                    s * 1e3,
                    jit_s / s
                );
            }
            println!();
        }
        let mut row = json!({
            "name": w.name,
            "interp_s": interp_s,
            "jit_s": jit_s,
            "speedup": interp_s / jit_s,
            "compile_s": compile_s,
        });
        if let Some((label, s)) = baseline {
            row["baseline"] = json!(label);
            row["baseline_s"] = json!(s);
            row["jit_over_baseline"] = json!(jit_s / s);
        }
        rows.push(row);
    }
    if args
        .only
        .as_deref()
        .is_none_or(|o| "bptt_epoch".contains(o))
    {
        let (first, steady) = bptt_epoch(budget)?;
        if !args.json {
            println!(
                "{:<12} one epoch of the tutorial's BPTT training (100 batches of 128 x 25 incl. data), JIT only",
                "bptt_epoch"
            );
            println!(
                "             first {:>9.1} ms (includes tracing and compiling)   steady {:>9.1} ms",
                first * 1e3,
                steady * 1e3
            );
        }
        rows.push(json!({
            "name": "bptt_epoch",
            "jit_s": steady,
            "first_s": first,
        }));
    }
    if args.json {
        println!(
            "{}",
            json!({
                "workloads": rows,
                "total_compile_s": total_compile,
                "threads": brainlift::runtime::num_threads(),
            })
        );
    } else {
        println!(
            "total JIT compile time {:.2} ms ({} thread(s))",
            total_compile * 1e3,
            brainlift::runtime::num_threads()
        );
    }
    Ok(())
}
