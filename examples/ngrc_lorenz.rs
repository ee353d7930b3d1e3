//! Tutorial part 1: NG-RC forecasting of the Lorenz system (`cargo run --release --example ngrc_lorenz`).

use brainlift::tutorial::ngrc::{NgrcConfig, run_ngrc_part};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cfg = NgrcConfig {
        out_dir: Some("brainlift-out/ngrc".into()),
        ..NgrcConfig::default()
    };
    let r = run_ngrc_part(&cfg, &mut |l| println!("{l}"))?;
    println!(
        "fit {:.3} s, total {:.3} s, plots in brainlift-out/ngrc",
        r.fit_s, r.total_s
    );
    Ok(())
}
