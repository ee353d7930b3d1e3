//! Cranelift code generation for fused elementwise kernels.
//!
//! # Contract
//!
//! **Expects** a [`KernelPlan`] from [`crate::passes::fusion::fuse`]. **Produces**
//! [`CompiledKernels`]: one native function per [`FusedKernel`] of the plan (nested scan
//! bodies included), all in one `JITModule`, callable as [`KernelFn`]
//! `extern "C" fn(inputs: *const *const u8, outputs: *const *mut u8)`: `inputs[i]` points to
//! the buffer of `kernel.inputs[i]` and `outputs[j]` to a dense buffer of
//! `kernel.shape.numel()` elements of output `j`'s dtype. Shapes and strides are baked in.
//!
//! **Guarantees.** A kernel reads input `i` only at offsets `sum(idx[a] * strides[a])` for
//! in-range indices `idx` of the kernel shape, and writes each output element exactly once:
//! it never touches memory outside the buffers described by the plan. Any unsupported node
//! gives a [`CodegenError`] naming the op and dtype, never a panic. Results equal the reference
//! interpreter bit for bit when [`CodegenOptions::fma`] is off, and within one rounding per
//! contracted multiply-add when it is on (see [`kernel`] for the element semantics).
//!
//! **Host ISA.** Detected at run time with `cranelift_native::builder_with_options(true)`
//! (SSE4.1/AVX/AVX2/FMA flags when present). Only 128-bit SIMD is available in Cranelift
//! 0.135 on x86-64, so the vector loops use `f64x2` / `f32x4`, unrolled
//! [`CodegenOptions::unroll`] times. Explicit `fma` is emitted where a multiply feeds an
//! add or subtract (Cranelift never contracts on its own).
//!
//! **Cost.** About 0.1–0.5 ms of Cranelift time per kernel at opt level "none" (measured best
//! for these loops: "speed" sinks hoisted values back into the loops).
//!
//! **Memory.** Dropping [`CompiledKernels`] frees the module's code memory
//! (`JITModule::free_memory`); keep it alive (e.g. in an `Arc`) while any kernel pointer is in
//! use.

pub mod kernel;
pub mod mathfns;

use crate::passes::fusion::{FusedKernel, KernelPlan};
use brainlift_ir::DType;
use cranelift_codegen::ir::{AbiParam, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use mathfns::MathFn;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The native signature of every compiled kernel.
pub type KernelFn = unsafe extern "C" fn(*const *const u8, *const *mut u8);

/// Errors of code generation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CodegenError {
    /// A node the backend cannot compile.
    #[error("codegen: kernel k{kernel}: cannot compile {op} on {dtype}: {msg}")]
    Unsupported {
        /// Kernel id.
        kernel: usize,
        /// Op mnemonic.
        op: String,
        /// Element type of the node.
        dtype: DType,
        /// Why.
        msg: String,
    },
    /// Cranelift rejected or failed to compile a kernel.
    #[error("codegen: kernel k{kernel}: cranelift: {msg}")]
    Cranelift {
        /// Kernel id (`usize::MAX` for module-level failures).
        kernel: usize,
        /// Cranelift's message.
        msg: String,
    },
    /// The host ISA could not be set up.
    #[error("codegen: host ISA: {0}")]
    Isa(String),
}

/// Code generation settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodegenOptions {
    /// Contract a multiply feeding an add/subtract into one `fma` (one rounding fewer).
    pub fma: bool,
    /// SIMD vectors per inner-loop iteration (1 = no unrolling).
    pub unroll: usize,
    /// Keep the CLIF text of every kernel (for `ir dump --stage clif`).
    pub keep_clif: bool,
    /// Cranelift `opt_level`: "none", "speed" or "speed_and_size".
    pub opt_level: &'static str,
    /// Use the host's ISA extensions (AVX2/FMA, ...); false gives baseline SSE2.
    pub native_isa: bool,
}

impl Default for CodegenOptions {
    fn default() -> Self {
        CodegenOptions {
            fma: true,
            unroll: 4,
            keep_clif: false,
            opt_level: "none",
            native_isa: true,
        }
    }
}

/// A compiled plan: the JIT module and one function pointer per kernel id.
pub struct CompiledKernels {
    module: Option<JITModule>,
    fns: Vec<Option<KernelFn>>,
    clif: Vec<(usize, String)>,
    compile_time: Duration,
}

// SAFETY: the module is only touched at drop (free_memory) and the kernels are immutable
// machine code that reads and writes only the buffers passed to them.
unsafe impl Send for CompiledKernels {}
// SAFETY: as above; `&CompiledKernels` only hands out function pointers.
unsafe impl Sync for CompiledKernels {}

impl std::fmt::Debug for CompiledKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledKernels")
            .field("kernels", &self.fns.len())
            .field("compile_time", &self.compile_time)
            .finish()
    }
}

impl Drop for CompiledKernels {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the kernel pointers die with `self`; callers keep `self` alive while
            // they use them (documented on the type).
            unsafe { m.free_memory() };
        }
    }
}

fn make_isa(opts: &CodegenOptions) -> Result<cranelift_codegen::isa::OwnedTargetIsa, CodegenError> {
    let mut fb = settings::builder();
    let set = |fb: &mut settings::Builder, k: &str, v: &str| {
        fb.set(k, v)
            .map_err(|e| CodegenError::Isa(format!("{k}={v}: {e}")))
    };
    set(&mut fb, "opt_level", opts.opt_level)?;
    set(&mut fb, "use_colocated_libcalls", "false")?;
    set(&mut fb, "is_pic", "false")?;
    let ib = cranelift_native::builder_with_options(opts.native_isa)
        .map_err(|e| CodegenError::Isa(e.to_string()))?;
    ib.finish(settings::Flags::new(fb))
        .map_err(|e| CodegenError::Isa(e.to_string()))
}

impl CompiledKernels {
    /// Compiles every kernel of `plan` (and of its nested bodies) into one module.
    pub fn compile(
        plan: &KernelPlan,
        opts: &CodegenOptions,
    ) -> Result<CompiledKernels, CodegenError> {
        let kernels = plan.kernels();
        Self::compile_kernels(&kernels, opts)
    }

    /// Compiles the given kernels (ids must be distinct) into one module.
    pub fn compile_kernels(
        kernels: &[&FusedKernel],
        opts: &CodegenOptions,
    ) -> Result<CompiledKernels, CodegenError> {
        let t0 = Instant::now();
        let isa = make_isa(opts)?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for f in MathFn::ALL {
            jb.symbol(f.symbol(), f.address());
        }
        let mut module = JITModule::new(jb);
        let mut out = CompiledKernels {
            module: None,
            fns: Vec::new(),
            clif: Vec::new(),
            compile_time: Duration::ZERO,
        };
        let res = Self::define_all(&mut module, kernels, opts, &mut out.clif);
        let ids = match res {
            Ok(ids) => ids,
            Err(e) => {
                // SAFETY: no pointer into this module escaped.
                unsafe { module.free_memory() };
                return Err(e);
            }
        };
        if let Err(e) = module.finalize_definitions() {
            // SAFETY: as above.
            unsafe { module.free_memory() };
            return Err(CodegenError::Cranelift {
                kernel: usize::MAX,
                msg: e.to_string(),
            });
        }
        let max_id = kernels.iter().map(|k| k.id + 1).max().unwrap_or(0);
        out.fns = vec![None; max_id];
        for (kid, fid) in ids {
            let p = module.get_finalized_function(fid);
            // SAFETY: the function was defined with the KernelFn signature.
            out.fns[kid] = Some(unsafe { std::mem::transmute::<*const u8, KernelFn>(p) });
        }
        out.module = Some(module);
        out.compile_time = t0.elapsed();
        Ok(out)
    }

    fn define_all(
        module: &mut JITModule,
        kernels: &[&FusedKernel],
        opts: &CodegenOptions,
        clif: &mut Vec<(usize, String)>,
    ) -> Result<Vec<(usize, FuncId)>, CodegenError> {
        let mc = |e: cranelift_module::ModuleError| CodegenError::Cranelift {
            kernel: usize::MAX,
            msg: e.to_string(),
        };
        let mut math_ids = HashMap::new();
        for f in MathFn::ALL {
            let mut sig = module.make_signature();
            for _ in 0..f.arity() {
                sig.params.push(AbiParam::new(types::F64));
            }
            sig.returns.push(AbiParam::new(types::F64));
            let id = module
                .declare_function(f.symbol(), Linkage::Import, &sig)
                .map_err(mc)?;
            math_ids.insert(f, id);
        }
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        let mut ids = Vec::new();
        for k in kernels {
            let kc = |e: cranelift_module::ModuleError| CodegenError::Cranelift {
                kernel: k.id,
                msg: format!("{e:?}"),
            };
            ctx.func.signature.params.push(AbiParam::new(ptr));
            ctx.func.signature.params.push(AbiParam::new(ptr));
            ctx.func.name = UserFuncName::user(0, k.id as u32);
            let mut math = HashMap::new();
            for (f, id) in &math_ids {
                math.insert(*f, module.declare_func_in_func(*id, &mut ctx.func));
            }
            {
                let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                kernel::emit_kernel(&mut b, k, opts, &math)?;
                b.finalize(module.target_config());
            }
            if opts.keep_clif {
                clif.push((k.id, ctx.func.display().to_string()));
            }
            let name = format!("brainlift_kernel_{}", k.id);
            let id = module
                .declare_function(&name, Linkage::Local, &ctx.func.signature)
                .map_err(kc)?;
            module.define_function(id, &mut ctx).map_err(kc)?;
            module.clear_context(&mut ctx);
            ids.push((k.id, id));
        }
        Ok(ids)
    }

    /// The function of kernel `id`, if compiled here.
    pub fn get(&self, id: usize) -> Option<KernelFn> {
        self.fns.get(id).copied().flatten()
    }

    /// `(kernel id, CLIF text)` of every kernel, when compiled with `keep_clif`.
    pub fn clif(&self) -> &[(usize, String)] {
        &self.clif
    }

    /// Wall time spent building and compiling the module.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Number of kernels compiled.
    pub fn len(&self) -> usize {
        self.fns.iter().filter(|f| f.is_some()).count()
    }

    /// True when the plan had no kernels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The CLIF text of every kernel of `plan` (compiled with `opts` but `keep_clif` set), each
/// preceded by a `; kernel kN` line; for `ir dump --stage clif`.
pub fn clif_text(plan: &KernelPlan, opts: &CodegenOptions) -> Result<String, CodegenError> {
    let opts = CodegenOptions {
        keep_clif: true,
        ..opts.clone()
    };
    let c = CompiledKernels::compile(plan, &opts)?;
    let mut s = String::new();
    for (id, text) in c.clif() {
        s.push_str(&format!("; kernel k{id}\n{text}\n"));
    }
    Ok(s)
}
