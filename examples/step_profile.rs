//! Profiling driver for one tutorial train step on the JIT only.
//!
//! `cargo run --release --example step_profile -- [rnn|snn] [seconds] [ir-out-path]`: builds
//! the same step as `brainlift bench --only bptt_step` (`rnn`, the default) or `--only
//! snn_step` (`snn`), optionally writes the lowered IR the JIT runs (and its fused plan, with
//! the number of row blocks per scan), then runs the JIT for `seconds` and prints the median
//! ms per step (no interpreter run, so `perf record` sees only the JIT).
//! `BRAINLIFT_THREADS` / the thread count of the machine apply.

use brainlift::compiler::pipeline::{Lowering, PipelineConfig, run_pipeline};
use brainlift::runtime::{Backend, JitExecutable, random::train_step_inputs};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("rnn");
    let seconds: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let (f, data) = match which {
        "rnn" => {
            brainlift::random::seed(0);
            let f = brainlift::tutorial::rnn::tutorial_train_step_function(128, 25, 100)?;
            (f, vec![])
        }
        "snn" => {
            let (f, x, y) = brainlift::tutorial::snn::tutorial_train_step_function(100, 256)?;
            (f, vec![("xs", x), ("labels", y)])
        }
        other => return Err(format!("unknown step '{other}': expected rnn or snn").into()),
    };
    if let Some(path) = args.get(3) {
        let cfg = PipelineConfig {
            lower: Some(Lowering { reassociate: true }),
            ..Default::default()
        };
        let lowered = run_pipeline(&f, &cfg)?.output().clone();
        std::fs::write(path, lowered.to_string())?;
        let jit = JitExecutable::compile(&lowered)?;
        let plan = jit.compiled().plan().to_string();
        let blocks = jit.compiled().scan_row_blocks();
        std::fs::write(
            format!("{path}.plan"),
            format!("row blocks per top-level scan: {blocks:?}\n{plan}"),
        )?;
    }
    let mut inputs = train_step_inputs(&f, 4);
    for (p, t) in f.params.iter().zip(inputs.iter_mut()) {
        if let Some((_, v)) = data.iter().find(|(name, _)| *name == p.name) {
            *t = v.clone();
        }
    }
    let mut jit = brainlift::runtime::compile(&f, Backend::Jit)?;
    for _ in 0..3 {
        jit.run(&inputs)?;
    }
    let start = Instant::now();
    let mut samples = vec![];
    while start.elapsed().as_secs_f64() < seconds || samples.len() < 5 {
        let s = Instant::now();
        jit.run(&inputs)?;
        samples.push(s.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{which}: jit {:.3} ms/step (median of {})",
        samples[samples.len() / 2],
        samples.len()
    );
    Ok(())
}
