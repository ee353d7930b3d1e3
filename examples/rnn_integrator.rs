//! Tutorial part 2: train a vanilla RNN with BPTT to integrate white noise.
//!
//! `cargo run --release --example rnn_integrator [-- --quick] [--out DIR] [--seed N] [--backend jit|interp]`
//!
//! Prints `Train {e} epoch, use {secs} s, loss {loss}` per epoch like the notebook, then a
//! summary; writes the loss curve and the prediction-vs-truth plot into `DIR` (default
//! `brainlift-out/rnn`).

use brainlift::Backend;
use brainlift::tutorial::rnn::{RnnConfig, run_rnn_part};
use std::path::PathBuf;

fn main() {
    let mut cfg = RnnConfig::default();
    let mut out = PathBuf::from("brainlift-out/rnn");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => {
                // Only the sizes change: flags given before --quick are kept.
                let q = RnnConfig::quick();
                cfg = RnnConfig {
                    backend: cfg.backend,
                    seed: cfg.seed,
                    brainpy_bias_correction: cfg.brainpy_bias_correction,
                    ..q
                };
            }
            "--out" => {
                out = PathBuf::from(
                    args.next()
                        .unwrap_or_else(|| usage("--out needs a directory")),
                )
            }
            "--seed" => {
                cfg.seed = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage("--seed needs an integer"))
            }
            "--backend" => {
                let b = args.next().unwrap_or_default();
                cfg.backend = Backend::parse(&b).unwrap_or_else(|e| usage(&e.to_string()));
            }
            "--brainpy-bias-correction" => cfg.brainpy_bias_correction = true,
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    cfg.out_dir = Some(out);
    match run_rnn_part(&cfg) {
        Ok(r) => {
            println!(
                "final loss {}, median epoch {:.4} s, total {:.2} s, prediction MSE {:.3e}, max|state2train| {:.3e}",
                r.final_loss, r.epoch_s_median, r.total_s, r.predict_mse, r.state2train_max_abs
            );
            for p in &r.plots {
                println!("wrote {}", p.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "rnn_integrator: {msg}\nusage: rnn_integrator [--quick] [--out DIR] [--seed N] [--backend jit|interp] [--brainpy-bias-correction]"
    );
    std::process::exit(2);
}
