//! The `brainlift` command-line tool: the tutorial, IR inspection, benchmarks.

mod cmd_ir;
mod cmd_tutorial;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// brainlift: train brain-dynamics models in Rust (traced IR, reverse-mode AD, Cranelift JIT).
#[derive(Parser)]
#[command(name = "brainlift", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the BrainPy tutorial's three parts: NG-RC, BPTT RNN, spiking net.
    Tutorial(cmd_tutorial::TutorialArgs),
    /// Inspect, check, run and differentiate IR functions.
    Ir {
        #[command(subcommand)]
        command: cmd_ir::IrCommand,
    },
}

/// A command's failure: printed as one line `error: ...` with exit code 1.
pub type CliResult<T = ()> = Result<T, String>;

/// The backend from `--backend` or, when absent, from `BRAINLIFT_BACKEND` (default `jit`).
pub fn pick_backend(flag: Option<&str>) -> CliResult<brainlift::Backend> {
    match flag {
        Some(s) => brainlift::Backend::parse(s).map_err(|e| e.to_string()),
        None => brainlift::Backend::from_env().map_err(|e| e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ir { command } => cmd_ir::run(command),
        Command::Tutorial(args) => cmd_tutorial::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
