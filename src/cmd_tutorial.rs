//! `brainlift tutorial`: the three parts of the BrainPy tutorial, in order.

use crate::{CliResult, pick_backend};
use brainlift::tutorial::ngrc::{NgrcConfig, run_ngrc_part};
use brainlift::tutorial::rnn::{RnnConfig, run_rnn_part};
use brainlift::tutorial::snn::{SnnConfig, run_snn_part};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// All three parts.
    All,
    /// Part 1: NG-RC forecasting of the Lorenz system (ridge regression).
    Ngrc,
    /// Part 2: a vanilla RNN trained by BPTT to integrate white noise.
    Rnn,
    /// Part 3: a spiking network (LIF, exponential synapses) trained with surrogate gradients.
    Snn,
}

#[derive(Args)]
pub struct TutorialArgs {
    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// `jit` or `interp` (default: $BRAINLIFT_BACKEND or jit).
    #[arg(long)]
    backend: Option<String>,
    /// Seed of every random draw (weights, data, noise).
    #[arg(long, default_value_t = 2024, allow_negative_numbers = true)]
    seed: u64,
    /// Print one JSON object on stdout (the usual lines go to stderr).
    #[arg(long)]
    json: bool,
    /// Reduced sizes (for tests and a quick look).
    #[arg(long)]
    quick: bool,
    /// Folder for the plots.
    #[arg(long, default_value = "brainlift-out")]
    out: PathBuf,
}

struct Row {
    part: &'static str,
    metric: String,
    value: String,
    tutorial: &'static str,
    seconds: f64,
}

pub fn run(args: TutorialArgs) -> CliResult {
    let backend = pick_backend(args.backend.as_deref())?;
    let t0 = Instant::now();
    let json_mode = args.json;
    let mut say = |line: &str| {
        if json_mode {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let mut obj = Map::new();
    let mut rows: Vec<Row> = vec![];
    if matches!(args.part, Part::All | Part::Ngrc) {
        say(
            "== Part 1: next-generation reservoir computing (NVAR + ridge) on the Lorenz system ==",
        );
        let cfg = NgrcConfig {
            backend,
            out_dir: Some(args.out.join("ngrc")),
            seed: args.seed,
            ..NgrcConfig::default()
        };
        let r = run_ngrc_part(&cfg, &mut say).map_err(|e| e.to_string())?;
        let mse: Map<String, Value> = r
            .mse
            .iter()
            .map(|(h, e)| (h.to_string(), json!(e)))
            .collect();
        obj.insert(
            "ngrc".into(),
            json!({
                "mse": mse,
                "fit_s": r.fit_s,
                "total_s": r.total_s,
                "condition_numbers": r.condition_numbers,
                "plots": r.plots,
            }),
        );
        let tut = ["5.4e-10", "(plot only)", "(plot only)"];
        for ((h, e), t) in r.mse.iter().zip(tut) {
            rows.push(Row {
                part: "ngrc",
                metric: format!("test MSE, {h} step(s) ahead"),
                value: format!("{e:.3e}"),
                tutorial: t,
                seconds: r.total_s,
            });
        }
    }
    if matches!(args.part, Part::All | Part::Rnn) {
        say("== Part 2: training a recurrent network with back-propagation through time ==");
        let base = if args.quick {
            RnnConfig::quick()
        } else {
            RnnConfig::default()
        };
        let cfg = RnnConfig {
            seed: args.seed,
            backend,
            out_dir: Some(args.out.join("rnn")),
            // In JSON mode stdout carries only the JSON object.
            verbose: !args.json,
            ..base
        };
        let r = run_rnn_part(&cfg).map_err(|e| e.to_string())?;
        obj.insert(
            "rnn".into(),
            serde_json::to_value(&r).map_err(|e| e.to_string())?,
        );
        rows.push(Row {
            part: "rnn",
            metric: format!("final training loss ({} epochs)", r.losses.len()),
            value: format!("{:.5}", r.final_loss),
            tutorial: "0.01993",
            seconds: r.total_s,
        });
        rows.push(Row {
            part: "rnn",
            metric: "median epoch time (s)".into(),
            value: format!("{:.4}", r.epoch_s_median),
            tutorial: "1.08",
            seconds: r.total_s,
        });
    }
    if matches!(args.part, Part::All | Part::Snn) {
        say("== Part 3: training a spiking neural network with surrogate gradients ==");
        let base = if args.quick {
            SnnConfig::quick()
        } else {
            SnnConfig::default()
        };
        let cfg = SnnConfig {
            seed: args.seed,
            backend,
            out_dir: Some(args.out.join("snn")),
            verbose: !args.json,
            ..base
        };
        let r = run_snn_part(&cfg).map_err(|e| e.to_string())?;
        obj.insert("snn".into(), r.to_json());
        rows.push(Row {
            part: "snn",
            metric: format!("final training loss ({} steps)", r.all_losses.len()),
            value: format!("{:.5}", r.final_loss),
            tutorial: "0.08588",
            seconds: r.total_s,
        });
        rows.push(Row {
            part: "snn",
            metric: "accuracy".into(),
            value: format!("{:.3}", r.accuracy),
            tutorial: "0.973",
            seconds: r.total_s,
        });
        rows.push(Row {
            part: "snn",
            metric: "median step time (s)".into(),
            value: format!("{:.4}", r.step_s_median),
            tutorial: "-",
            seconds: r.total_s,
        });
    }
    let total = t0.elapsed().as_secs_f64();
    obj.insert("backend".into(), json!(backend.name()));
    obj.insert("threads".into(), json!(brainlift::runtime::num_threads()));
    obj.insert("out".into(), json!(args.out));
    obj.insert("total_s".into(), json!(total));
    if args.json {
        println!("{}", Value::Object(obj));
    } else {
        println!();
        println!(
            "{:<6} {:<32} {:>14} {:>14} {:>9}",
            "part", "metric", "brainlift", "tutorial", "time (s)"
        );
        for r in &rows {
            println!(
                "{:<6} {:<32} {:>14} {:>14} {:>9.2}",
                r.part, r.metric, r.value, r.tutorial, r.seconds
            );
        }
        println!(
            "total {total:.2} s on the {} backend ({} thread(s)); plots in {}",
            backend.name(),
            brainlift::runtime::num_threads(),
            args.out.display()
        );
    }
    Ok(())
}
