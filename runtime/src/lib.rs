//! The brainlift runtime: host tensors, the reference interpreter and (later) compiled
//! executables behind one [`Executable`] interface.

#![warn(missing_docs)]

pub mod cache;
pub mod error;
pub mod gradcheck;
pub mod interp;
pub mod jit;
pub mod npy;
pub mod random;
pub mod tensor;
pub mod threads;

pub use cache::{CacheStats, cache_stats};
pub use error::RuntimeError;
pub use interp::{Interpreter, interpret};
pub use jit::JitExecutable;
pub use tensor::{Tensor, TensorData};
pub use threads::{num_threads, set_num_threads};

use brainlift_ir::Function;

/// A function prepared for repeated execution on some backend.
pub trait Executable: Send {
    /// Runs the function; `inputs` must match the function's inputs in order and type.
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError>;
    /// Like [`Executable::run`] with the inputs by reference (no copy of large inputs such as
    /// a data set passed at every training step). The default clones them.
    fn run_refs(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        let owned: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
        self.run(&owned)
    }
    /// The function this executable was built from.
    fn function(&self) -> &Function;
}

/// Checks that `inputs` match the inputs of `f` (count and types), naming the first mismatch.
pub fn check_inputs(f: &Function, inputs: &[Tensor]) -> Result<(), RuntimeError> {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    check_input_refs(f, &refs)
}

/// [`check_inputs`] for inputs by reference.
pub fn check_input_refs(f: &Function, inputs: &[&Tensor]) -> Result<(), RuntimeError> {
    if inputs.len() != f.params.len() {
        return Err(RuntimeError::Input {
            func: f.name.clone(),
            msg: format!("expected {} inputs, got {}", f.params.len(), inputs.len()),
        });
    }
    for (p, t) in f.params.iter().zip(inputs) {
        if &p.ty != t.ty() {
            return Err(RuntimeError::Input {
                func: f.name.clone(),
                msg: format!("input %{} expects {}, got {}", p.name, p.ty, t.ty()),
            });
        }
    }
    Ok(())
}

/// Which engine runs IR functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// Cranelift-compiled kernels (the default).
    #[default]
    Jit,
    /// The reference interpreter.
    Interp,
}

impl Backend {
    /// Parses `jit` or `interp`.
    pub fn parse(s: &str) -> Result<Backend, RuntimeError> {
        match s {
            "jit" => Ok(Backend::Jit),
            "interp" => Ok(Backend::Interp),
            other => Err(RuntimeError::Config(format!(
                "unknown backend '{other}': expected 'jit' or 'interp'"
            ))),
        }
    }

    /// The backend named by `BRAINLIFT_BACKEND` (`jit` when unset).
    pub fn from_env() -> Result<Backend, RuntimeError> {
        match std::env::var("BRAINLIFT_BACKEND") {
            Ok(s) => Backend::parse(s.trim()).map_err(|_| {
                RuntimeError::Config(format!(
                    "BRAINLIFT_BACKEND='{s}' is not a backend: expected 'jit' or 'interp'"
                ))
            }),
            Err(_) => Ok(Backend::Jit),
        }
    }

    /// The name (`jit` / `interp`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Jit => "jit",
            Backend::Interp => "interp",
        }
    }
}

/// Options of [`compile_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Let the JIT reorder sums where that is faster: per-step accumulators of a scan become
    /// one GEMM or reduction after the loop (`scan_hoist`), outer products become
    /// elementwise code contracted into `fma`s (`outer_product`), divisions by constants
    /// become multiplies (`const_scale`). Results then differ from the
    /// interpreter by rounding (~1e-15 relative). Turn off where rounding is amplified, e.g.
    /// the normal equations of an ill-conditioned ridge fit (`BRAINLIFT_NO_SCAN_HOIST=1` turns
    /// it off everywhere, for A/B measurements).
    pub reassociate: bool,
    /// Threads the JIT may use ([`threads`]): scans whose bodies never mix batch rows run as
    /// row blocks in parallel, large products as row blocks. Results do not depend on it
    /// (every element is computed by the same operations in the same order).
    pub threads: usize,
}

impl Default for CompileOptions {
    /// Reassociation on unless `BRAINLIFT_NO_SCAN_HOIST` is set; [`num_threads`] threads.
    fn default() -> Self {
        CompileOptions {
            reassociate: std::env::var_os("BRAINLIFT_NO_SCAN_HOIST").is_none(),
            threads: num_threads(),
        }
    }
}

/// The largest single tensor (bytes) an executable may allocate: beyond it, preparing a
/// function fails with an error instead of aborting the process on allocation.
pub const MAX_TENSOR_BYTES: usize = 1 << 34;

/// Checks that no value of `f` (nested bodies included) needs more than [`MAX_TENSOR_BYTES`].
pub fn check_memory(f: &Function) -> Result<(), RuntimeError> {
    for (i, t) in f.types.iter().enumerate() {
        let bytes = t
            .shape
            .checked_numel()
            .and_then(|n| n.checked_mul(t.dtype.size_bytes()));
        if bytes.is_none_or(|b| b > MAX_TENSOR_BYTES) {
            let what = match f.params.get(i) {
                Some(p) => format!("input %{}", p.name),
                None => format!("value %{}", i - f.params.len()),
            };
            return Err(RuntimeError::TooLarge {
                func: f.name.clone(),
                msg: format!(
                    "{what} of type {t} needs {}; the limit is {} GiB per tensor",
                    match bytes {
                        Some(b) => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
                        None => "more than 2^64 bytes".to_string(),
                    },
                    MAX_TENSOR_BYTES >> 30
                ),
            });
        }
    }
    for inst in &f.insts {
        for body in inst.op.bodies() {
            check_memory(body)?;
        }
    }
    Ok(())
}

/// Prepares `f` for execution on `backend` with default [`CompileOptions`] (the JIT goes
/// through the kernel cache).
pub fn compile(f: &Function, backend: Backend) -> Result<Box<dyn Executable>, RuntimeError> {
    compile_with(f, backend, &CompileOptions::default())
}

/// Prepares `f` for execution on `backend`.
///
/// The JIT runs the pipeline's `lowered` stage (see [`brainlift_compiler::pipeline`]): the
/// simplified function (CSE, folding, algebraic identities, short scans unrolled, custom_vjp
/// forwards inlined), with reverse scans reading the forward scan's saved values instead of
/// recomputing them and, with [`CompileOptions::reassociate`], per-step accumulators
/// hoisted out of loops and outer products as elementwise code. The
/// interpreter runs `f` as written.
pub fn compile_with(
    f: &Function,
    backend: Backend,
    opts: &CompileOptions,
) -> Result<Box<dyn Executable>, RuntimeError> {
    check_memory(f)?;
    let codegen = |e: &dyn std::fmt::Display| RuntimeError::Codegen(e.to_string());
    match backend {
        Backend::Jit => {
            let cfg = brainlift_compiler::pipeline::PipelineConfig {
                verify: cfg!(debug_assertions),
                lower: Some(brainlift_compiler::pipeline::Lowering {
                    reassociate: opts.reassociate,
                }),
                ..Default::default()
            };
            let report =
                brainlift_compiler::pipeline::run_pipeline(f, &cfg).map_err(|e| codegen(&e))?;
            Ok(Box::new(JitExecutable::compile_threads(
                report.output(),
                &Default::default(),
                opts.threads,
            )?))
        }
        Backend::Interp => Ok(Box::new(Interpreter::new(f.clone())?)),
    }
}
