//! The `brainlift` command-line tool: the tutorial, IR inspection, benchmarks.

mod cmd_bench;
mod cmd_ir;
mod cmd_tutorial;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// brainlift: train brain-dynamics models in Rust (traced IR, reverse-mode AD, Cranelift JIT).
#[derive(Parser)]
#[command(name = "brainlift", version, about)]
struct Cli {
    /// Threads the JIT may use (scans over batch rows and large products run in parallel);
    /// default: $BRAINLIFT_THREADS or the number of CPUs. Results do not depend on it.
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the BrainPy tutorial's three parts: NG-RC, BPTT RNN, spiking net.
    Tutorial(cmd_tutorial::TutorialArgs),
    /// Interpreter vs JIT on the tutorial's workloads (speed, compile time).
    Bench(cmd_bench::BenchArgs),
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

/// Sets the JIT's thread count from `--threads` or, when absent, checks `BRAINLIFT_THREADS`.
fn pick_threads(flag: Option<u32>) -> CliResult {
    match flag {
        Some(n) => brainlift::runtime::set_num_threads(n as usize),
        None => {
            if let Ok(s) = std::env::var("BRAINLIFT_THREADS") {
                let n = brainlift::runtime::threads::parse_threads(&s)?;
                brainlift::runtime::set_num_threads(n);
            }
        }
    }
    Ok(())
}

/// Restores the default SIGPIPE action, so `brainlift ... | head` ends quietly like other Unix
/// tools instead of panicking on a closed stdout.
#[cfg(unix)]
fn default_sigpipe() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: resetting a signal to its default action at start-up, before any thread starts.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    if let Err(msg) = pick_threads(cli.threads) {
        eprintln!("error: {msg}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Ir { command } => cmd_ir::run(command),
        Command::Tutorial(args) => cmd_tutorial::run(args),
        Command::Bench(args) => cmd_bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
