//! The JIT backend: fused Cranelift kernels plus Rust routines, over planned buffers.
//!
//! # Contract
//!
//! [`JitExecutable::compile`] verifies the function, fuses it
//! ([`brainlift_compiler::passes::fusion`]), compiles every fused kernel with Cranelift
//! ([`brainlift_compiler::codegen`]) and plans the buffers (`jit::layout`); the compiled part is
//! shared through the process-wide cache ([`crate::cache`]). [`Executable::run`] then:
//!
//! - reads the input tensors in place (never writes them);
//! - runs the steps in order over one preallocated arena per function level (liveness-based
//!   reuse); non-elementwise steps are Rust routines (`jit::ops`): matmul through the `gemm`
//!   crate (`Parallelism::None`, transposes as strides, batched), reductions, argmax, cumsum
//!   and layout copies;
//! - runs a `scan` as a driver loop over its body's compiled steps: `x_t` is read in place by
//!   pointer offset, `y_t` is written in place into the stacked result, and the carries
//!   ping-pong between two preallocated buffer sets, so a step allocates nothing;
//! - runs a `custom_vjp` as its forward body (inlined by fusion);
//! - copies the outputs into fresh tensors (the only allocation per call).
//!
//! Results equal the interpreter's except for `fma` contraction in kernels and the summation
//! order of `gemm` (see [`brainlift_compiler::codegen`]).

mod gemm;
pub(crate) mod layout;
pub(crate) mod ops;
mod scan;
pub(crate) mod simd;

use crate::cache;
use crate::{Executable, RuntimeError, Tensor, TensorData, check_input_refs};
use brainlift_compiler::codegen::{CodegenError, CodegenOptions, CompiledKernels, KernelFn};
use brainlift_compiler::passes::fusion::{ConstData, KernelPlan, Step};
use brainlift_ir::{DType, Function, Op, TensorType, ValueId, verify};
use layout::Layout;
use ops::{AxisDesc, CopyDesc, MatmulDesc, ReduceDesc};
use std::sync::Arc;
use std::time::Duration;

/// 64-byte aligned storage unit.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Chunk([u8; 64]);

fn alloc_bytes(n: usize) -> Vec<Chunk> {
    vec![Chunk([0; 64]); n.div_ceil(64).max(1)]
}

/// A non-elementwise step with everything precomputed.
#[derive(Debug)]
enum OpStep {
    Matmul(MatmulDesc),
    Reduce(ReduceDesc),
    Argmax(AxisDesc),
    Cumsum(AxisDesc, bool),
    /// One strided copy per operand (transpose, slice, concat) into the result.
    Copy(Vec<CopyDesc>, DType),
    /// Zero the result, then a strided copy.
    Pad(CopyDesc, DType, usize),
}

/// One step of a level, lowered.
enum LStep {
    Kernel {
        f: KernelFn,
        ins: Vec<ValueId>,
        outs: Vec<ValueId>,
        numel: usize,
    },
    Op {
        op: OpStep,
        args: Vec<ValueId>,
        out: ValueId,
    },
    Scan(Box<scan::ScanStep>),
}

/// The immutable, compiled form of one function level (the top function or a scan body).
struct Level {
    func: Function,
    layout: Layout,
    steps: Vec<LStep>,
    /// Materialised constants: value and its bytes.
    consts: Vec<(ValueId, Vec<Chunk>)>,
    /// Largest `f64` scratch any step needs.
    scratch: usize,
}

/// The compiled, shareable part of a [`JitExecutable`] (what the kernel cache holds).
pub struct CompiledFunction {
    plan: KernelPlan,
    top: Level,
    /// Keeps the kernels' code alive; freed when the last user drops.
    kernels: Arc<CompiledKernels>,
    compile_time: Duration,
}

// SAFETY: `Level` holds function pointers into `kernels` (immutable code) and constant bytes
// that are never written after construction.
unsafe impl Send for CompiledFunction {}
// SAFETY: as above; nothing is mutated through `&CompiledFunction`.
unsafe impl Sync for CompiledFunction {}

impl std::fmt::Debug for CompiledFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFunction")
            .field("function", &self.plan.func.name)
            .field("kernels", &self.kernels.len())
            .field("compile_time", &self.compile_time)
            .finish()
    }
}

fn codegen_err(e: CodegenError) -> RuntimeError {
    match e {
        CodegenError::Unsupported {
            op,
            dtype,
            msg,
            kernel,
        } => RuntimeError::Unsupported {
            backend: "jit".into(),
            op,
            msg: format!("kernel k{kernel} on {dtype}: {msg}"),
        },
        other => RuntimeError::Codegen(other.to_string()),
    }
}

fn unsupported(op: &str, msg: String) -> RuntimeError {
    RuntimeError::Unsupported {
        backend: "jit".into(),
        op: op.into(),
        msg,
    }
}

impl CompiledFunction {
    /// Fuses, compiles and lays out a verified function (no cache involved).
    pub fn build(
        f: &Function,
        opts: &CodegenOptions,
        threads: usize,
    ) -> Result<CompiledFunction, RuntimeError> {
        let t0 = std::time::Instant::now();
        verify(f)?;
        let plan = brainlift_compiler::passes::fusion::fuse(f)?;
        let kernels = Arc::new(CompiledKernels::compile(&plan, opts).map_err(codegen_err)?);
        let top = build_level(&plan, &kernels, opts, threads)?;
        Ok(CompiledFunction {
            plan,
            top,
            kernels,
            compile_time: t0.elapsed(),
        })
    }

    /// The fused plan.
    pub fn plan(&self) -> &KernelPlan {
        &self.plan
    }

    /// Wall time of fusion, code generation and layout.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Number of Cranelift kernels.
    pub fn num_kernels(&self) -> usize {
        self.kernels.len()
    }

    /// For every top-level scan, in order: the number of row blocks it runs on parallel
    /// threads (0: the whole batch on the calling thread).
    pub fn scan_row_blocks(&self) -> Vec<usize> {
        self.top
            .steps
            .iter()
            .filter_map(|s| match s {
                LStep::Scan(sc) => Some(sc.num_blocks()),
                _ => None,
            })
            .collect()
    }

    /// Bytes of the top-level arena (after reuse) and without reuse.
    pub fn arena_bytes(&self) -> (usize, usize) {
        (self.top.layout.arena_bytes, self.top.layout.unshared_bytes)
    }
}

fn const_bytes(ty: &TensorType, d: &ConstData) -> Vec<Chunk> {
    let n = ty.numel();
    let mut buf = alloc_bytes(ty.size_bytes());
    let p = buf.as_mut_ptr() as *mut u8;
    let strides = ty.shape.strides();
    for i in 0..n {
        let x = match d {
            ConstData::Splat(x) => *x,
            ConstData::Values(v) => {
                if v.len() == 1 {
                    v[0]
                } else {
                    v[i]
                }
            }
            ConstData::Iota(axis) => ((i / strides[*axis]) % ty.dims()[*axis]) as f64,
        };
        // SAFETY: `buf` holds `n` elements of the type.
        unsafe { ops::write(p, ty.dtype, i, x) };
    }
    buf
}

/// Lowers one level of a plan; scans of this level are split into row blocks for `threads`
/// threads where their bodies allow it (nested levels get 1).
fn build_level(
    plan: &KernelPlan,
    kernels: &CompiledKernels,
    opts: &CodegenOptions,
    threads: usize,
) -> Result<Level, RuntimeError> {
    let f = &plan.func;
    let layout = layout::plan_layout(plan);
    let mut steps = Vec::with_capacity(plan.steps.len());
    let mut scratch = 0;
    for s in &plan.steps {
        match s {
            Step::Kernel(k) => {
                let kf = kernels.get(k.id).ok_or_else(|| {
                    RuntimeError::Codegen(format!("kernel k{} was not compiled", k.id))
                })?;
                steps.push(LStep::Kernel {
                    f: kf,
                    ins: k.inputs.iter().map(|i| i.value).collect(),
                    outs: k.outputs.iter().map(|o| o.value).collect(),
                    numel: k.numel(),
                });
            }
            Step::Op(i) => {
                let inst = &f.insts[*i];
                let args: Vec<ValueId> = inst.args.to_vec();
                let out = inst.results[0];
                let at = |j: usize| f.ty(args[j]);
                let rt = f.ty(out);
                let op = match &inst.op {
                    Op::Matmul {
                        transpose_lhs,
                        transpose_rhs,
                    } => {
                        let d = MatmulDesc::new(at(0), at(1), *transpose_lhs, *transpose_rhs)
                            .parallel(threads);
                        scratch = scratch.max(d.scratch());
                        OpStep::Matmul(d)
                    }
                    Op::Reduce { op, axes } => {
                        let d = ReduceDesc::new(*op, at(0), axes);
                        scratch = scratch.max(d.scratch());
                        OpStep::Reduce(d)
                    }
                    Op::Argmax { axis } => OpStep::Argmax(AxisDesc::new(at(0), *axis)),
                    Op::Cumsum { axis, reverse } => {
                        OpStep::Cumsum(AxisDesc::new(at(0), *axis), *reverse)
                    }
                    Op::Transpose(perm) => {
                        let is = at(0).shape.strides();
                        let d = CopyDesc {
                            dims: rt.dims().to_vec(),
                            src_offset: 0,
                            src_strides: perm.iter().map(|&p| is[p]).collect(),
                            dst_offset: 0,
                            dst_strides: rt.shape.strides().to_vec(),
                        };
                        OpStep::Copy(vec![d.simplified()], rt.dtype)
                    }
                    Op::Slice { start, .. } => {
                        let is = at(0).shape.strides();
                        let d = CopyDesc {
                            dims: rt.dims().to_vec(),
                            src_offset: start.iter().zip(is.iter()).map(|(a, b)| a * b).sum(),
                            src_strides: is.to_vec(),
                            dst_offset: 0,
                            dst_strides: rt.shape.strides().to_vec(),
                        };
                        OpStep::Copy(vec![d.simplified()], rt.dtype)
                    }
                    Op::Pad { low, .. } => {
                        let os = rt.shape.strides();
                        let d = CopyDesc {
                            dims: at(0).dims().to_vec(),
                            src_offset: 0,
                            src_strides: at(0).shape.strides().to_vec(),
                            dst_offset: low.iter().zip(os.iter()).map(|(a, b)| a * b).sum(),
                            dst_strides: os.to_vec(),
                        };
                        OpStep::Pad(d.simplified(), rt.dtype, rt.size_bytes())
                    }
                    Op::Concat { axis } => {
                        let os = rt.shape.strides();
                        let mut base = 0;
                        let mut v = Vec::new();
                        for j in 0..args.len() {
                            let t = at(j);
                            v.push(
                                CopyDesc {
                                    dims: t.dims().to_vec(),
                                    src_offset: 0,
                                    src_strides: t.shape.strides().to_vec(),
                                    dst_offset: base * os[*axis],
                                    dst_strides: os.to_vec(),
                                }
                                .simplified(),
                            );
                            base += t.dims()[*axis];
                        }
                        OpStep::Copy(v, rt.dtype)
                    }
                    other => {
                        return Err(unsupported(
                            other.name(),
                            format!("no JIT step for this op (in @{}, result {})", f.name, rt),
                        ));
                    }
                };
                steps.push(LStep::Op { op, args, out });
            }
            Step::Scan { inst, body } => {
                let i = &f.insts[*inst];
                let s = match &i.op {
                    Op::Scan(s) => s,
                    other => {
                        return Err(unsupported(
                            other.name(),
                            "scan step on a non-scan op".into(),
                        ));
                    }
                };
                let sc = scan::build_scan(f, *inst, s, body, kernels, opts, threads)?;
                steps.push(LStep::Scan(Box::new(sc)));
            }
        }
    }
    let consts = plan
        .consts
        .iter()
        .map(|(v, d)| (*v, const_bytes(f.ty(*v), d)))
        .collect();
    Ok(Level {
        func: f.clone(),
        layout,
        steps,
        consts,
        scratch,
    })
}

/// Mutable per-executable state of one level.
struct LevelState {
    /// Owns the memory `ptrs` point into (never read directly).
    _arena: Vec<Chunk>,
    /// Pointer to every value's storage (by root); params are set per call.
    ptrs: Vec<*mut u8>,
    /// For each value, the param whose storage it uses (params and their aliases).
    param_of: Vec<Option<usize>>,
    /// Per kernel step: input and output pointer arrays.
    kargs: Vec<(Vec<*const u8>, Vec<*mut u8>)>,
    scans: Vec<scan::ScanState>,
    scratch: Vec<f64>,
}

fn new_state(level: &Level) -> LevelState {
    let f = &level.func;
    let nv = f.types.len();
    let mut arena = alloc_bytes(level.layout.arena_bytes);
    let base = arena.as_mut_ptr() as *mut u8;
    let mut ptrs = vec![std::ptr::null_mut(); nv];
    let mut param_of = vec![None; nv];
    let const_ptr: std::collections::HashMap<ValueId, *mut u8> = level
        .consts
        .iter()
        .map(|(v, b)| (*v, b.as_ptr() as *mut u8))
        .collect();
    for v in 0..nv {
        let r = level.layout.root[v];
        if r.index() < f.params.len() {
            param_of[v] = Some(r.index());
        } else if let Some(off) = level.layout.offset[r.index()] {
            // SAFETY: the offset lies within the arena (planned size).
            ptrs[v] = unsafe { base.add(off) };
        } else if let Some(p) = const_ptr.get(&r) {
            ptrs[v] = *p;
        }
    }
    let mut kargs = Vec::new();
    let mut scans = Vec::new();
    for s in &level.steps {
        match s {
            LStep::Kernel { ins, outs, .. } => {
                kargs.push((
                    vec![std::ptr::null(); ins.len()],
                    vec![std::ptr::null_mut(); outs.len()],
                ));
            }
            LStep::Scan(sc) => {
                scans.push(scan::new_scan_state(sc));
                kargs.push((vec![], vec![]));
            }
            LStep::Op { .. } => kargs.push((vec![], vec![])),
        }
    }
    LevelState {
        _arena: arena,
        ptrs,
        param_of,
        kargs,
        scans,
        scratch: vec![0.0; level.scratch],
    }
}

impl LevelState {
    /// Points every param-rooted value at the given param buffers.
    fn bind_params(&mut self, params: &[*mut u8]) {
        for (v, p) in self.param_of.iter().enumerate() {
            if let Some(i) = p {
                self.ptrs[v] = params[*i];
            }
        }
    }
}

/// Runs the steps of `level` with its params already bound.
///
/// # Safety
/// Every pointer in `st.ptrs` must point to a buffer of its value's type.
unsafe fn run_level(level: &Level, st: &mut LevelState) {
    let mut scan_i = 0;
    for (si, step) in level.steps.iter().enumerate() {
        match step {
            LStep::Kernel {
                f,
                ins,
                outs,
                numel,
            } => {
                if *numel == 0 {
                    continue;
                }
                let (ia, oa) = &mut st.kargs[si];
                for (slot, v) in ia.iter_mut().zip(ins) {
                    *slot = st.ptrs[v.index()];
                }
                for (slot, v) in oa.iter_mut().zip(outs) {
                    *slot = st.ptrs[v.index()];
                }
                // SAFETY: the kernel reads/writes only within the buffers described by its
                // plan entry, which the pointers provide.
                unsafe { f(ia.as_ptr(), oa.as_ptr()) };
            }
            LStep::Op { op, args, out } => {
                let a = |j: usize| st.ptrs[args[j].index()] as *const u8;
                let o = st.ptrs[out.index()];
                // SAFETY: descriptors were derived from the verified types of these buffers.
                unsafe {
                    match op {
                        OpStep::Matmul(d) => ops::matmul(d, a(0), a(1), o, &mut st.scratch),
                        OpStep::Reduce(d) => ops::reduce(d, a(0), o, &mut st.scratch),
                        OpStep::Argmax(d) => ops::argmax(d, a(0), o),
                        OpStep::Cumsum(d, rev) => ops::cumsum(d, *rev, a(0), o),
                        OpStep::Copy(ds, dt) => {
                            for (j, d) in ds.iter().enumerate() {
                                ops::copy(d, *dt, a(j), o);
                            }
                        }
                        OpStep::Pad(d, dt, bytes) => {
                            std::ptr::write_bytes(o, 0, *bytes);
                            ops::copy(d, *dt, a(0), o);
                        }
                    }
                }
            }
            LStep::Scan(sc) => {
                let ss = &mut st.scans[scan_i];
                scan_i += 1;
                // SAFETY: as for the function; see `run_scan`.
                unsafe { scan::run_scan(sc, ss, &st.ptrs) };
            }
        }
    }
}

/// A function compiled by the JIT backend, ready to run repeatedly.
pub struct JitExecutable {
    f: Function,
    compiled: Arc<CompiledFunction>,
    state: LevelState,
    params: Vec<*mut u8>,
    /// Whether this executable's compiled part came from the cache.
    cache_hit: bool,
    /// See [`direct_outputs`].
    direct: Vec<Option<Vec<ValueId>>>,
}

// SAFETY: the raw pointers point into buffers owned by `state`/`compiled` (moved with the
// executable) or are rebound on every `run`; nothing is shared mutably across threads.
unsafe impl Send for JitExecutable {}

impl std::fmt::Debug for JitExecutable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitExecutable")
            .field("function", &self.f.name)
            .field("compiled", &self.compiled)
            .finish()
    }
}

impl JitExecutable {
    /// Compiles `f` with the default [`CodegenOptions`] (through the kernel cache).
    pub fn compile(f: &Function) -> Result<JitExecutable, RuntimeError> {
        Self::compile_with(f, &CodegenOptions::default())
    }

    /// Compiles `f` with explicit code generation options (through the kernel cache).
    pub fn compile_with(
        f: &Function,
        opts: &CodegenOptions,
    ) -> Result<JitExecutable, RuntimeError> {
        Self::compile_threads(f, opts, crate::threads::num_threads())
    }

    /// Compiles `f` for `threads` threads (scans split into row blocks and large products
    /// into row blocks where that applies; 1 = everything on the calling thread), through
    /// the kernel cache.
    pub fn compile_threads(
        f: &Function,
        opts: &CodegenOptions,
        threads: usize,
    ) -> Result<JitExecutable, RuntimeError> {
        let threads = threads.clamp(1, crate::threads::MAX_THREADS);
        let (compiled, hit) = cache::get_or_compile(f, opts, threads)?;
        let state = new_state(&compiled.top);
        let direct = direct_outputs(&compiled.top);
        Ok(JitExecutable {
            f: f.clone(),
            params: vec![std::ptr::null_mut(); f.params.len()],
            compiled,
            state,
            cache_hit: hit,
            direct,
        })
    }

    /// The shared compiled part (plan, kernels, timings).
    pub fn compiled(&self) -> &CompiledFunction {
        &self.compiled
    }

    /// True when compiling found the function in the kernel cache.
    pub fn was_cache_hit(&self) -> bool {
        self.cache_hit
    }
}

fn tensor_ptr(t: &Tensor) -> *mut u8 {
    match t.data() {
        TensorData::F64(v) => v.as_ptr() as *mut u8,
        TensorData::F32(v) => v.as_ptr() as *mut u8,
        TensorData::I32(v) => v.as_ptr() as *mut u8,
        TensorData::Bool(v) => v.as_ptr() as *mut u8,
    }
}

/// Copies `ty.numel()` elements from `p` into a new tensor.
unsafe fn tensor_from(ty: &TensorType, p: *const u8) -> Result<Tensor, RuntimeError> {
    let n = ty.numel();
    // SAFETY: `p` points to `n` elements of the type (or n == 0).
    let data = unsafe {
        match ty.dtype {
            DType::F64 => TensorData::F64(if n == 0 {
                vec![]
            } else {
                std::slice::from_raw_parts(p as *const f64, n).to_vec()
            }),
            DType::F32 => TensorData::F32(if n == 0 {
                vec![]
            } else {
                std::slice::from_raw_parts(p as *const f32, n).to_vec()
            }),
            DType::I32 => TensorData::I32(if n == 0 {
                vec![]
            } else {
                std::slice::from_raw_parts(p as *const i32, n).to_vec()
            }),
            DType::Bool => TensorData::Bool(if n == 0 {
                vec![]
            } else {
                std::slice::from_raw_parts(p, n)
                    .iter()
                    .map(|&b| (b != 0) as u8)
                    .collect()
            }),
        }
    };
    Tensor::new(ty.clone(), data)
}

/// An output buffer allocated per call and written by the steps directly.
enum OutBuf {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I32(Vec<i32>),
    Bool(Vec<u8>),
}

impl OutBuf {
    fn with_capacity(dt: DType, n: usize) -> OutBuf {
        match dt {
            DType::F64 => OutBuf::F64(Vec::with_capacity(n)),
            DType::F32 => OutBuf::F32(Vec::with_capacity(n)),
            DType::I32 => OutBuf::I32(Vec::with_capacity(n)),
            DType::Bool => OutBuf::Bool(Vec::with_capacity(n)),
        }
    }

    fn ptr(&mut self) -> *mut u8 {
        match self {
            OutBuf::F64(v) => v.as_mut_ptr() as *mut u8,
            OutBuf::F32(v) => v.as_mut_ptr() as *mut u8,
            OutBuf::I32(v) => v.as_mut_ptr() as *mut u8,
            OutBuf::Bool(v) => v.as_mut_ptr(),
        }
    }

    /// # Safety
    /// All `n` elements must have been written.
    unsafe fn finish(self, n: usize) -> TensorData {
        // SAFETY: guaranteed by the caller; the capacity is `n`.
        unsafe {
            match self {
                OutBuf::F64(mut v) => {
                    v.set_len(n);
                    TensorData::F64(v)
                }
                OutBuf::F32(mut v) => {
                    v.set_len(n);
                    TensorData::F32(v)
                }
                OutBuf::I32(mut v) => {
                    v.set_len(n);
                    TensorData::I32(v)
                }
                OutBuf::Bool(mut v) => {
                    v.set_len(n);
                    for b in v.iter_mut() {
                        *b = (*b != 0) as u8;
                    }
                    TensorData::Bool(v)
                }
            }
        }
    }
}

/// For each output: the values whose storage a per-call output buffer replaces, when the
/// output is written by a step (its first occurrence only); `None` means copy at the end.
fn direct_outputs(level: &Level) -> Vec<Option<Vec<ValueId>>> {
    let f = &level.func;
    let mut claimed = std::collections::HashSet::new();
    f.outputs
        .iter()
        .map(|o| {
            let r = level.layout.root[o.value.index()];
            if level.layout.offset[r.index()].is_none() || !claimed.insert(r) {
                return None;
            }
            Some(
                (0..f.types.len())
                    .map(|v| ValueId(v as u32))
                    .filter(|v| level.layout.root[v.index()] == r)
                    .collect(),
            )
        })
        .collect()
}

impl Executable for JitExecutable {
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        let refs: Vec<&Tensor> = inputs.iter().collect();
        self.run_refs(&refs)
    }

    fn run_refs(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        check_input_refs(&self.f, inputs)?;
        for (slot, t) in self.params.iter_mut().zip(inputs) {
            *slot = tensor_ptr(t);
        }
        let top = &self.compiled.top;
        self.state.bind_params(&self.params);
        let tf = &top.func;
        // Steps write function outputs straight into the returned tensors' storage.
        let mut bufs: Vec<Option<OutBuf>> = Vec::with_capacity(tf.outputs.len());
        for (o, d) in tf.outputs.iter().zip(&self.direct) {
            match d {
                Some(vals) => {
                    let ty = tf.ty(o.value);
                    let mut b = OutBuf::with_capacity(ty.dtype, ty.numel());
                    let p = b.ptr();
                    for v in vals {
                        self.state.ptrs[v.index()] = p;
                    }
                    bufs.push(Some(b));
                }
                None => bufs.push(None),
            }
        }
        // Bool inputs other than 0/1 are read as "nonzero is true" by every kernel.
        // SAFETY: inputs were checked against the function's types, every other buffer was
        // planned from those types, and the output buffers have their values' sizes.
        unsafe { run_level(top, &mut self.state) };
        let mut outs = Vec::with_capacity(tf.outputs.len());
        for (o, b) in tf.outputs.iter().zip(bufs) {
            let ty = tf.ty(o.value);
            let t = match b {
                // SAFETY: the step defining the value wrote every element.
                Some(b) => Tensor::new(ty.clone(), unsafe { b.finish(ty.numel()) })?,
                // SAFETY: every output value has storage of its type.
                None => unsafe { tensor_from(ty, self.state.ptrs[o.value.index()]) }?,
            };
            outs.push(t);
        }
        Ok(outs)
    }

    fn function(&self) -> &Function {
        &self.f
    }
}
