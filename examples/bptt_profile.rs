//! Profiling driver for the tutorial's BPTT train step on the JIT only.
//!
//! `cargo run --release --example bptt_profile -- [seconds] [ir-out-path]`: builds the same
//! step as `brainlift bench --only bptt`, optionally writes the simplified IR the JIT runs,
//! then runs the JIT for `seconds` and prints the median ms per step (no interpreter run, so
//! `perf record` sees only the JIT).

use brainlift::runtime::{Backend, random::random_inputs};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    brainlift::random::seed(0);
    let f = brainlift::tutorial::rnn::tutorial_train_step_function(128, 25, 100)?;
    if let Some(path) = args.get(2) {
        let cfg = brainlift::compiler::pipeline::PipelineConfig::default();
        let report = brainlift::compiler::pipeline::run_pipeline(&f, &cfg)?;
        let fwd = brainlift::compiler::passes::scan_residuals::scan_residuals(report.output())?;
        let hoisted = brainlift::compiler::passes::scan_hoist::scan_hoist(&fwd)?;
        std::fs::write(path, hoisted.to_string())?;
        let plan = brainlift::compiler::passes::fusion::fuse(&hoisted)?;
        std::fs::write(format!("{path}.plan"), plan.to_string())?;
    }
    let mut inputs = random_inputs(&f, 4);
    for (p, t) in f.params.iter().zip(inputs.iter_mut()) {
        if p.name.contains("opt") || p.name.starts_with("hyper") {
            let v: Vec<f64> = t.to_f64_vec().iter().map(|x| x.abs() * 1e-2).collect();
            *t = brainlift::runtime::Tensor::from_f64_values(t.ty().clone(), &v)?;
        }
    }
    let mut jit = brainlift::runtime::compile(&f, Backend::Jit)?;
    if std::env::var_os("SHOW_BLOCKS").is_some() {
        let cfg = brainlift::compiler::pipeline::PipelineConfig {
            lower: Some(brainlift::compiler::pipeline::Lowering { reassociate: true }),
            ..Default::default()
        };
        let report = brainlift::compiler::pipeline::run_pipeline(&f, &cfg)?;
        let j = brainlift::runtime::JitExecutable::compile(report.output())?;
        eprintln!("row blocks per scan: {:?}", j.compiled().scan_row_blocks());
    }
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
        "jit {:.3} ms/step (median of {})",
        samples[samples.len() / 2],
        samples.len()
    );
    Ok(())
}
