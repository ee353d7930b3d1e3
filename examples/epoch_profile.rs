//! Profiling driver for the tutorial's BPTT epochs (data generation, binding, the compiled
//! step): `cargo run --release --example epoch_profile -- [epochs]` trains the tutorial RNN
//! (batch 128, 25 steps, 100 batches per epoch) and prints the median epoch time and the
//! median time of the compiled step alone on the same inputs, so the gap between them (the
//! work around the compiled call) is measured in one run.

use brainlift::train::Bptt;
use brainlift::tutorial::rnn::{
    TutorialRnn, build_inputs_and_targets, tutorial_loss, tutorial_optimizer,
};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    brainlift::random::seed(42);
    let model = TutorialRnn::new(1, 100)?;
    let mut trainer = Bptt::new(model, tutorial_loss(2e-4), tutorial_optimizer(false))
        .verbose(false)
        .progress_bar(false);
    let data = || (0..100).map(|_| build_inputs_and_targets(128, 25, 0.04).expect("sizes"));
    trainer.fit(data, epochs)?;
    let epoch = median(trainer.epoch_seconds().to_vec());
    let f = brainlift::tutorial::rnn::tutorial_train_step_function(128, 25, 100)?;
    let inputs = brainlift::runtime::random::train_step_inputs(&f, 4);
    let mut jit = brainlift::runtime::compile(&f, brainlift::Backend::Jit)?;
    let mut steps = vec![];
    for _ in 0..300 {
        let s = Instant::now();
        jit.run(&inputs)?;
        steps.push(s.elapsed().as_secs_f64());
    }
    let step = median(steps);
    println!(
        "epoch {:.1} ms = {:.3} ms per batch; compiled step alone {:.3} ms; around it {:.3} ms",
        epoch * 1e3,
        epoch * 10.0,
        step * 1e3,
        epoch * 10.0 - step * 1e3
    );
    Ok(())
}
