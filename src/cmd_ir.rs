//! `brainlift ir list|dump|check|run|grad`.

use crate::{CliResult, pick_backend};
use brainlift::builtins::builtins;
use brainlift::ir::{Function, parse_function, print_function};
use brainlift::runtime::{Tensor, check_inputs, npy::read_npy, random::random_inputs};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum IrCommand {
    /// List the built-in example functions.
    List,
    /// Print the IR of a built-in example function or of a text IR file at a pipeline stage.
    Dump {
        /// Built-in name (see `brainlift ir list`) or a `.ir` file.
        name: String,
        /// Stage: traced, ad, simplified, unrolled (`scanned` with --unroll 0), lowered, fused
        /// or clif. Scalar-output functions get an `ad` stage (value and gradient w.r.t. every
        /// float input).
        #[arg(long, default_value = "traced")]
        stage: String,
        /// Print every stage with its op count (and the fused kernel counts).
        #[arg(long)]
        stages: bool,
        /// Unroll scans of at most this many steps (0: keep every scan, stage `scanned`).
        #[arg(long, default_value_t = 8)]
        unroll: usize,
        /// Also write a Graphviz file of the chosen stage.
        #[arg(long)]
        dot: Option<PathBuf>,
    },
    /// Parse and verify a text IR file; print it in canonical form.
    Check {
        /// The `.ir` file.
        file: PathBuf,
    },
    /// Run a text IR function on seeded random inputs (or `.npy` inputs) and print its outputs.
    Run {
        /// The `.ir` file.
        file: PathBuf,
        /// Seed of the random inputs.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        seed: u64,
        /// Folder with one `<input name>.npy` per input (instead of random inputs); each file
        /// must have the input's shape, and its element type or one that converts without
        /// loss (float64 files may feed f32 inputs).
        #[arg(long)]
        inputs: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// `jit` or `interp` (default: $BRAINLIFT_BACKEND or jit).
        #[arg(long)]
        backend: Option<String>,
    },
    /// Differentiate a scalar-output function; with --check compare against finite differences.
    Grad {
        /// The `.ir` file.
        file: PathBuf,
        /// Comma-separated input names (default: every floating-point input).
        #[arg(long, value_delimiter = ',')]
        wrt: Vec<String>,
        /// Compare with central finite differences on seeded random inputs (f64).
        #[arg(long)]
        check: bool,
        /// Seed of the random inputs for --check.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        seed: u64,
        /// With --check: compare at most this many elements of each input, evenly spaced
        /// (each costs two evaluations of the function); 0 compares every element.
        #[arg(long, default_value_t = 256)]
        check_elements: usize,
    },
}

pub fn run(cmd: IrCommand) -> CliResult {
    match cmd {
        IrCommand::List => {
            for b in builtins() {
                println!("{:<10} {}", b.name, b.about);
            }
            Ok(())
        }
        IrCommand::Dump {
            name,
            stage,
            stages,
            unroll,
            dot,
        } => {
            let f = if name.ends_with(".ir") || Path::new(&name).is_file() {
                load(Path::new(&name))?
            } else {
                brainlift::builtins::builtin(&name).map_err(|e| e.to_string())?
            };
            dump(&f, &stage, stages, unroll, dot.as_deref())
        }
        IrCommand::Check { file } => {
            let f = load(&file)?;
            print!("{}", print_function(&f));
            Ok(())
        }
        IrCommand::Run {
            file,
            seed,
            inputs,
            json,
            backend,
        } => {
            let backend = pick_backend(backend.as_deref())?;
            let f = load(&file)?;
            brainlift::runtime::check_memory(&f).map_err(|e| e.to_string())?;
            let args = match inputs {
                Some(dir) => read_inputs(&f, &dir)?,
                None => random_inputs(&f, seed),
            };
            check_inputs(&f, &args).map_err(|e| e.to_string())?;
            let mut exe = brainlift::runtime::compile(&f, backend).map_err(|e| e.to_string())?;
            let outs = exe.run(&args).map_err(|e| e.to_string())?;
            print_outputs(&f, &outs, json, backend.name());
            Ok(())
        }
        IrCommand::Grad {
            file,
            wrt,
            check,
            seed,
            check_elements,
        } => {
            // 0 means every element.
            let max = if check_elements == 0 {
                usize::MAX
            } else {
                check_elements
            };
            grad(&file, &wrt, check.then_some(max), seed)
        }
    }
}

/// Runs the pass pipeline on `f` and prints one stage, or a summary of all of them.
fn dump(f: &Function, stage: &str, all: bool, unroll: usize, dot: Option<&Path>) -> CliResult {
    use brainlift::compiler::pipeline::{GradRequest, PipelineConfig, run_pipeline};
    let scalar = f.outputs.len() == 1 && {
        let t = f.ty(f.outputs[0].value);
        t.rank() == 0 && t.dtype.is_float()
    };
    let cfg = PipelineConfig {
        grad: scalar.then(|| GradRequest::ValueAndGrad(brainlift::compiler::ad::float_inputs(f))),
        unroll_threshold: (unroll > 0).then_some(unroll),
        // What the JIT compiles: `fused` and `clif` show the lowered function.
        lower: Some(brainlift::compiler::pipeline::Lowering {
            reassociate: brainlift::runtime::CompileOptions::default().reassociate,
        }),
        ..Default::default()
    };
    let report = run_pipeline(f, &cfg).map_err(|e| e.to_string())?;
    let last = report.output().clone();
    let plan = || brainlift::compiler::passes::fusion::fuse(&last).map_err(|e| e.to_string());
    if all {
        print!("{}", report.summary());
        let p = plan()?;
        let r = p.total_report();
        println!(
            "fused           {} kernels; top-level steps {} -> {}; intermediate buffers {} -> {} bytes",
            p.kernels().len(),
            r.kernels_before,
            r.kernels_after,
            r.intermediate_bytes_before,
            r.intermediate_bytes_after
        );
        return Ok(());
    }
    let names: Vec<&str> = report.stages.iter().map(|s| s.name).collect();
    let text = match stage {
        "fused" => plan()?.to_string(),
        "clif" => brainlift::compiler::codegen::clif_text(&plan()?, &Default::default())
            .map_err(|e| e.to_string())?,
        s => match report.stage(s) {
            Some(st) => print_function(&st.function),
            None => {
                let hint = match s {
                    "scanned" => " (`scanned` replaces `unrolled` with --unroll 0)",
                    "unrolled" => " (`unrolled` is `scanned` with --unroll 0)",
                    "ad" => " (`ad` exists for functions with one float scalar output)",
                    _ => "",
                };
                return Err(format!(
                    "unknown stage '{s}' for @{}: available {}, fused, clif{hint}",
                    f.name,
                    names.join(", ")
                ));
            }
        },
    };
    // The Graphviz file first: a bad --dot path fails before anything is printed.
    if let Some(path) = dot {
        let g = match stage {
            "fused" | "clif" => &last,
            s => &report.stage(s).expect("checked above").function,
        };
        std::fs::write(path, brainlift::ir::to_dot(g))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print!("{text}");
    Ok(())
}

/// Reads, parses and verifies a text IR file; errors are `file:line:col: message`.
pub fn load(file: &Path) -> CliResult<Function> {
    let src = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    parse_function(&src).map_err(|e| match e {
        brainlift::ir::IrError::Parse { line, col, msg } => {
            format!("{}:{line}:{col}: {msg}", file.display())
        }
        other => format!("{}: {other}", file.display()),
    })
}

fn read_inputs(f: &Function, dir: &Path) -> CliResult<Vec<Tensor>> {
    f.params
        .iter()
        .map(|p| {
            let path = dir.join(format!("{}.npy", p.name));
            let t = read_npy(&path).map_err(|e| format!("input %{}: {e}", p.name))?;
            if t.shape() != p.ty.dims() {
                return Err(format!(
                    "input %{}: {} has shape {:?}, the function expects {}",
                    p.name,
                    path.display(),
                    t.shape(),
                    p.ty
                ));
            }
            // Casts that keep every value (and float64 -> float32, numpy's default float);
            // floats into integer or bool inputs, or integers into bool inputs, would be
            // truncated silently, so they are errors.
            let (from, to) = (t.dtype(), p.ty.dtype);
            if from == to {
                return Ok(t);
            }
            let ok = (from.is_float() && to.is_float())
                || (!from.is_float() && to.is_float())
                || (from == brainlift::ir::DType::Bool && to == brainlift::ir::DType::I32);
            if !ok {
                return Err(format!(
                    "input %{}: {} holds {} values, the function expects {} (converting would truncate them)",
                    p.name,
                    path.display(),
                    from.name(),
                    to.name()
                ));
            }
            Ok(t.cast(to))
        })
        .collect()
}

/// The sum of the values in index order from +0, as a `reduce_sum` (an empty output gives 0,
/// not the -0 that `Iterator::sum` starts from).
fn checksum(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |s, x| s + x)
}

fn print_outputs(f: &Function, outs: &[Tensor], json: bool, backend: &str) {
    if json {
        let list: Vec<_> = f
            .outputs
            .iter()
            .zip(outs)
            .map(|(o, t)| {
                let v = t.to_f64_vec();
                json!({
                    "name": o.name,
                    "dtype": t.dtype().name(),
                    "shape": t.shape(),
                    "values": v.iter().map(|x| if x.is_finite() { json!(x) } else { json!(x.to_string()) }).collect::<Vec<_>>(),
                    "checksum": checksum(&v),
                })
            })
            .collect();
        println!(
            "{}",
            json!({"function": f.name, "backend": backend, "outputs": list})
        );
        return;
    }
    for (o, t) in f.outputs.iter().zip(outs) {
        let v = t.to_f64_vec();
        let int = !t.dtype().is_float();
        let head: Vec<String> = v
            .iter()
            .take(8)
            .map(|x| {
                if int {
                    format!("{x}")
                } else {
                    format!("{x:.6e}")
                }
            })
            .collect();
        println!(
            "{}: {}  [{}{}]  checksum {:.12e}",
            o.name,
            t.ty(),
            head.join(", "),
            if v.len() > 8 { ", ..." } else { "" },
            checksum(&v)
        );
    }
}

/// `check`: compare with finite differences on at most that many elements per input.
fn grad(file: &Path, wrt: &[String], check: Option<usize>, seed: u64) -> CliResult {
    let f = load(file)?;
    let idx: Vec<usize> = if wrt.is_empty() {
        (0..f.params.len())
            .filter(|&i| f.params[i].ty.dtype.is_float())
            .collect()
    } else {
        wrt.iter()
            .map(|n| {
                f.param_index(n).ok_or_else(|| {
                    format!(
                        "--wrt {n}: @{} has no input named '{n}' (inputs: {})",
                        f.name,
                        f.params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect::<CliResult<_>>()?
    };
    // The gradient function after simplification (CSE, folding, algebraic identities); scans
    // are kept as loops and custom_vjp ops stay visible.
    let cfg = brainlift::compiler::pipeline::PipelineConfig {
        grad: Some(brainlift::compiler::pipeline::GradRequest::Grad(
            idx.clone(),
        )),
        unroll_threshold: None,
        finalize: false,
        ..Default::default()
    };
    let report =
        brainlift::compiler::pipeline::run_pipeline(&f, &cfg).map_err(|e| e.to_string())?;
    let g = report
        .stage("simplified")
        .map(|s| &s.function)
        .unwrap_or(report.output());
    print!("{}", print_function(g));
    if let Some(max_elements) = check {
        brainlift::runtime::check_memory(&f).map_err(|e| e.to_string())?;
        let inputs = random_inputs(&f, seed);
        let r = brainlift::runtime::gradcheck::check_grad_sampled(&f, &idx, &inputs, max_elements)
            .map_err(|e| e.to_string())?;
        for c in &r.inputs {
            let of = if c.checked < c.total {
                format!(", {} of {} elements checked", c.checked, c.total)
            } else {
                String::new()
            };
            println!(
                "// check %{}: max error {:.3e} (element {}: reverse {:.9e}, finite difference {:.9e}{of})",
                c.name, c.max_err, c.worst_index, c.analytic, c.numeric
            );
        }
        println!(
            "// worst relative error {:.3e} (loss {:.9e})",
            r.max_err, r.value
        );
        if r.max_err > 1e-6 {
            let surrogate = if has_custom_vjp(&f) {
                " (the function has custom_vjp ops, e.g. surrogate spike gradients, which differ from finite differences by design)"
            } else {
                ""
            };
            return Err(format!(
                "gradient check failed: worst relative error {:.3e} > 1e-6{surrogate}",
                r.max_err
            ));
        }
    }
    Ok(())
}

fn has_custom_vjp(f: &Function) -> bool {
    f.insts.iter().any(|i| {
        matches!(i.op, brainlift::ir::Op::CustomVjp(_))
            || i.op.bodies().into_iter().any(has_custom_vjp)
    })
}
