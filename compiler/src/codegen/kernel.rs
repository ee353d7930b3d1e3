//! Lowering of one [`FusedKernel`] to a Cranelift function.
//!
//! Signature: `extern "C" fn(inputs: *const *const u8, outputs: *const *mut u8)`; every shape
//! and stride is a compile-time constant (shapes are static).
//!
//! Loop structure: the kernel shape is collapsed (axes of size 1 dropped, adjacent axes merged
//! when every operand's strides allow it), giving outer axes and one inner axis of `C`
//! elements. Each outer axis is a counted loop; per row, the base address of every operand is
//! computed once. The inner axis runs a SIMD loop (`f64x2` when the kernel holds `f64` values,
//! else `f32x4`) unrolled `unroll` times, then a scalar tail. Nodes that do not vary along the
//! inner axis (broadcast operands, constants and what is computed from them only) are hoisted
//! to the row start or the function entry.
//!
//! Element semantics equal the interpreter's: floats are computed in their own width (f32 ops
//! round each result to f32), `max`/`min` return NaN when either operand is NaN and otherwise
//! `a >= b ? a : b` / `a <= b ? a : b`, `i32` arithmetic wraps (division by zero gives 0,
//! `i32::MIN / -1` wraps), casts follow [`DType::round`], and
//! transcendentals call the host functions of [`super::mathfns`]. The only intended difference
//! is `fma` contraction of a multiply feeding an add or subtract (switch off with
//! [`super::CodegenOptions::fma`]).

use super::mathfns::MathFn;
use super::{CodegenError, CodegenOptions};
use crate::passes::fusion::{FusedKernel, KernelNodeKind};
use brainlift_ir::{BinaryOp, CompareOp, DType, UnaryOp};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{Endianness, FuncRef, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;
use smallvec::SmallVec;
use std::collections::HashMap;

/// A value in vector mode.
#[derive(Clone, Debug)]
enum VV {
    /// A native SIMD value (`f64x2` / `f32x4`).
    Vec(Value),
    /// A comparison mask (`i64x2` / `i32x4`, all ones for true).
    Mask(Value),
    /// One scalar per lane (in the node's scalar type).
    Lanes(SmallVec<[Value; 4]>),
}

/// Rows of at most this many elements are emitted without an inner loop.
const SHORT_ROW: i64 = 16;

/// Where a node can be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// Once per call.
    Entry,
    /// Once per row (invariant along the inner axis).
    Row,
    /// Per element.
    Elem,
}

/// Collapsed iteration space.
struct Space {
    /// Axis sizes, outermost first; the last is the inner axis. Never empty.
    dims: Vec<usize>,
    /// Per input, its stride (elements) along each collapsed axis.
    strides: Vec<Vec<usize>>,
}

fn collapse(k: &FusedKernel) -> Space {
    let r = k.shape.rank();
    let mut axes: Vec<(usize, Vec<usize>)> = Vec::new(); // innermost first
    for ax in (0..r).rev() {
        let d = k.shape.dims()[ax];
        if d == 1 {
            continue;
        }
        let s: Vec<usize> = k.inputs.iter().map(|i| i.strides[ax]).collect();
        if let Some((ld, ls)) = axes.last_mut()
            && s.iter().zip(ls.iter()).all(|(a, b)| *a == *b * *ld)
        {
            *ld *= d;
            continue;
        }
        axes.push((d, s));
    }
    if axes.is_empty() {
        axes.push((1, vec![0; k.inputs.len()]));
    }
    axes.reverse();
    let dims = axes.iter().map(|a| a.0).collect();
    let strides = (0..k.inputs.len())
        .map(|i| axes.iter().map(|a| a.1[i]).collect())
        .collect();
    Space { dims, strides }
}

fn scalar_ty(d: DType) -> Type {
    match d {
        DType::F64 => types::F64,
        DType::F32 => types::F32,
        DType::I32 => types::I32,
        DType::Bool => types::I8,
    }
}

fn float_cc(c: CompareOp) -> FloatCC {
    match c {
        CompareOp::Lt => FloatCC::LessThan,
        CompareOp::Le => FloatCC::LessThanOrEqual,
        CompareOp::Gt => FloatCC::GreaterThan,
        CompareOp::Ge => FloatCC::GreaterThanOrEqual,
        CompareOp::Eq => FloatCC::Equal,
        CompareOp::Ne => FloatCC::NotEqual,
    }
}

fn int_cc(c: CompareOp, signed: bool) -> IntCC {
    match (c, signed) {
        (CompareOp::Lt, true) => IntCC::SignedLessThan,
        (CompareOp::Le, true) => IntCC::SignedLessThanOrEqual,
        (CompareOp::Gt, true) => IntCC::SignedGreaterThan,
        (CompareOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
        (CompareOp::Lt, false) => IntCC::UnsignedLessThan,
        (CompareOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
        (CompareOp::Gt, false) => IntCC::UnsignedGreaterThan,
        (CompareOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
        (CompareOp::Eq, _) => IntCC::Equal,
        (CompareOp::Ne, _) => IntCC::NotEqual,
    }
}

fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// Emits the body of kernel `k` into `b`, whose function has the kernel signature and whose
/// entry block is not yet created. `math` maps the host functions to imported refs.
pub(crate) fn emit_kernel(
    b: &mut FunctionBuilder<'_>,
    k: &FusedKernel,
    opts: &CodegenOptions,
    math: &HashMap<MathFn, FuncRef>,
) -> Result<(), CodegenError> {
    check_supported(k)?;
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    if k.numel() == 0 {
        b.ins().return_(&[]);
        b.seal_all_blocks();
        return Ok(());
    }
    let space = collapse(k);
    let lanes = if k.nodes.iter().any(|n| n.dtype == DType::F64) {
        2
    } else if k.nodes.iter().any(|n| n.dtype == DType::F32) {
        4
    } else {
        0
    };
    let mut e = Emitter {
        b,
        k,
        opts,
        math,
        space,
        lanes,
        in_ptrs: Vec::new(),
        out_ptrs: Vec::new(),
        level: Vec::new(),
        uses: vec![0; k.nodes.len()],
        hoisted_s: vec![None; k.nodes.len()],
        hoisted_v: vec![None; k.nodes.len()],
    };
    e.prepare(params[0], params[1]);
    e.emit_entry_and_loops();
    e.b.ins().return_(&[]);
    e.b.seal_all_blocks();
    Ok(())
}

fn check_supported(k: &FusedKernel) -> Result<(), CodegenError> {
    let unsup = |op: &str, d: DType, msg: &str| {
        Err(CodegenError::Unsupported {
            kernel: k.id,
            op: op.to_string(),
            dtype: d,
            msg: msg.to_string(),
        })
    };
    for (idx, n) in k.nodes.iter().enumerate() {
        // Operands must be earlier nodes (topological order; no cycles).
        let opd = |i: usize| {
            if i < idx {
                k.nodes.get(i).map(|x| x.dtype)
            } else {
                None
            }
        };
        match &n.kind {
            KernelNodeKind::Input(i) if *i >= k.inputs.len() => {
                return unsup("load", n.dtype, "input index out of range");
            }
            KernelNodeKind::Unary(u, a)
                if (!(n.dtype.is_float() || (u.allows_int() && n.dtype == DType::I32))
                    || opd(*a) != Some(n.dtype)) =>
            {
                return unsup(u.name(), n.dtype, "operand type not supported");
            }
            KernelNodeKind::Binary(bo, a, c)
                if (!(n.dtype.is_float() || (bo.allows_int() && n.dtype == DType::I32))
                    || opd(*a) != Some(n.dtype)
                    || opd(*c) != Some(n.dtype)) =>
            {
                return unsup(bo.name(), n.dtype, "operand types not supported");
            }
            KernelNodeKind::Compare(c, a, b)
                if (n.dtype != DType::Bool || opd(*a).is_none() || opd(*a) != opd(*b)) =>
            {
                return unsup(
                    c.name(),
                    n.dtype,
                    "operands must have equal types, result bool",
                );
            }
            KernelNodeKind::Select(p, a, c)
                if (opd(*p) != Some(DType::Bool)
                    || opd(*a) != Some(n.dtype)
                    || opd(*c) != Some(n.dtype)) =>
            {
                return unsup(
                    "select",
                    n.dtype,
                    "predicate must be bool and branches equal",
                );
            }
            KernelNodeKind::Cast(a) if opd(*a).is_none() => {
                return unsup("cast", n.dtype, "operand out of range");
            }
            _ => {}
        }
    }
    for o in &k.outputs {
        if o.node >= k.nodes.len() {
            return unsup("store", DType::F64, "output node out of range");
        }
    }
    for i in &k.inputs {
        if i.strides.len() != k.shape.rank() {
            return unsup(
                "load",
                i.dtype,
                "input strides do not match the kernel rank",
            );
        }
    }
    Ok(())
}

struct Emitter<'a, 'b, 'c> {
    b: &'a mut FunctionBuilder<'b>,
    k: &'c FusedKernel,
    opts: &'c CodegenOptions,
    math: &'c HashMap<MathFn, FuncRef>,
    space: Space,
    /// SIMD lanes for the inner loop (0: scalar only).
    lanes: usize,
    in_ptrs: Vec<Value>,
    out_ptrs: Vec<Value>,
    level: Vec<Level>,
    uses: Vec<usize>,
    hoisted_s: Vec<Option<Value>>,
    hoisted_v: Vec<Option<VV>>,
}

/// Kernels with more nodes than this evaluate their nodes in index order before the outputs
/// (each node's operands are then ready, so evaluation never recurses deeper than one level);
/// shorter kernels are emitted from the outputs down, which places every instruction next to
/// its first use. Without it a 10 000-op chain overflowed the stack.
const DEEP_KERNEL: usize = 256;

/// Per-iteration addressing context: row base address per input/output and the element index.
#[derive(Clone)]
struct Addr {
    in_base: Vec<Value>,
    out_base: Vec<Value>,
    /// Element index along the inner axis (i64), or None at the row start (index 0).
    elem: Option<Value>,
    /// Extra element offset (unrolling), added as an immediate.
    extra: i64,
    /// The bases already include the `elem` offset (see [`Emitter::rebase`]).
    pre: bool,
}

impl<'a, 'b, 'c> Emitter<'a, 'b, 'c> {
    fn prepare(&mut self, ins: Value, outs: Value) {
        let k = self.k;
        for i in 0..k.inputs.len() {
            let p = self.b.ins().load(types::I64, mem(), ins, (i * 8) as i32);
            self.in_ptrs.push(p);
        }
        for i in 0..k.outputs.len() {
            let p = self.b.ins().load(types::I64, mem(), outs, (i * 8) as i32);
            self.out_ptrs.push(p);
        }
        // Levels.
        let inner = self.space.dims.len() - 1;
        for n in &k.nodes {
            let lv = match &n.kind {
                KernelNodeKind::Input(i) => {
                    let s = &self.space.strides[*i];
                    if s.iter().all(|&x| x == 0) {
                        Level::Entry
                    } else if s[inner] == 0 {
                        Level::Row
                    } else {
                        Level::Elem
                    }
                }
                KernelNodeKind::Const(_) => Level::Entry,
                KernelNodeKind::Unary(_, a) | KernelNodeKind::Cast(a) => self.level[*a],
                KernelNodeKind::Binary(_, a, c) | KernelNodeKind::Compare(_, a, c) => {
                    self.level[*a].max(self.level[*c])
                }
                KernelNodeKind::Select(p, a, c) => {
                    self.level[*p].max(self.level[*a]).max(self.level[*c])
                }
            };
            self.level.push(lv);
        }
        for n in &k.nodes {
            match &n.kind {
                KernelNodeKind::Unary(_, a) | KernelNodeKind::Cast(a) => self.uses[*a] += 1,
                KernelNodeKind::Binary(_, a, c) | KernelNodeKind::Compare(_, a, c) => {
                    self.uses[*a] += 1;
                    self.uses[*c] += 1;
                }
                KernelNodeKind::Select(p, a, c) => {
                    self.uses[*p] += 1;
                    self.uses[*a] += 1;
                    self.uses[*c] += 1;
                }
                _ => {}
            }
        }
        for o in &k.outputs {
            self.uses[o.node] += 1;
        }
    }

    fn esize(&self, d: DType) -> i64 {
        d.size_bytes() as i64
    }

    fn emit_entry_and_loops(&mut self) {
        // Hoist entry-level nodes (computed in scalar form, vector form by splat).
        let entry_addr = Addr {
            in_base: self.in_ptrs.clone(),
            out_base: self.out_ptrs.clone(),
            elem: None,
            extra: 0,
            pre: false,
        };
        self.hoist(Level::Entry, &entry_addr);
        let outer = self.space.dims.len() - 1;
        let ins0: Vec<Value> = self.in_ptrs.clone();
        let outs0: Vec<Value> = self.out_ptrs.clone();
        self.emit_outer(0, outer, ins0, outs0);
    }

    /// Computes (scalar, then vector by splat) every node of `lv` whose operands are available.
    #[allow(clippy::needless_range_loop)]
    fn hoist(&mut self, lv: Level, addr: &Addr) {
        let mut memo: Vec<Option<Value>> = self.hoisted_s.clone();
        for n in 0..self.k.nodes.len() {
            if self.level[n] == lv && self.uses[n] > 0 {
                let v = self.scalar_node(n, addr, &mut memo);
                memo[n] = Some(v);
            }
        }
        for n in 0..self.k.nodes.len() {
            if self.level[n] == lv
                && let Some(v) = memo[n]
            {
                self.hoisted_s[n] = Some(v);
                if self.lanes > 0 {
                    let vv = self.splat_scalar(n, v);
                    self.hoisted_v[n] = Some(vv);
                }
            }
        }
    }

    fn splat_scalar(&mut self, n: usize, s: Value) -> VV {
        let dt = self.k.nodes[n].dtype;
        if let Some(vt) = self.native_ty(dt) {
            return VV::Vec(self.b.ins().splat(vt, s));
        }
        if dt == DType::Bool {
            let mt = self.mask_ty();
            let lane = self.b.ins().bmask(mt.lane_type(), s);
            return VV::Mask(self.b.ins().splat(mt, lane));
        }
        VV::Lanes(SmallVec::from_elem(s, self.lanes))
    }

    fn native_ty(&self, d: DType) -> Option<Type> {
        match (d, self.lanes) {
            (DType::F64, 2) => Some(types::F64X2),
            (DType::F32, 4) => Some(types::F32X4),
            _ => None,
        }
    }

    fn mask_ty(&self) -> Type {
        if self.lanes == 2 {
            types::I64X2
        } else {
            types::I32X4
        }
    }

    /// A counted loop `for i in 0..count` (count > 0), calling `body` with the index.
    fn counted_loop(&mut self, count: i64, body: &mut dyn FnMut(&mut Self, Value)) {
        let var = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(var, zero);
        let header = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var, next);
        let c = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, next, count);
        self.b.ins().brif(c, header, &[], exit, &[]);
        self.b.switch_to_block(exit);
    }

    fn emit_outer(&mut self, level: usize, inner: usize, ins: Vec<Value>, outs: Vec<Value>) {
        if level == inner {
            self.emit_row(ins, outs);
            return;
        }
        let d = self.space.dims[level] as i64;
        let row_elems: i64 = self.space.dims[level + 1..].iter().product::<usize>() as i64;
        let in_steps: Vec<i64> = (0..self.k.inputs.len())
            .map(|i| self.space.strides[i][level] as i64 * self.esize(self.k.inputs[i].dtype))
            .collect();
        let out_steps: Vec<i64> = self
            .k
            .outputs
            .iter()
            .map(|o| row_elems * self.esize(self.k.nodes[o.node].dtype))
            .collect();
        self.counted_loop(d, &mut |e: &mut Self, i| {
            let ins2: Vec<Value> = ins
                .iter()
                .zip(&in_steps)
                .map(|(&p, &s)| {
                    if s == 0 {
                        p
                    } else {
                        let off = e.b.ins().imul_imm_s(i, s);
                        e.b.ins().iadd(p, off)
                    }
                })
                .collect();
            let outs2: Vec<Value> = outs
                .iter()
                .zip(&out_steps)
                .map(|(&p, &s)| {
                    let off = e.b.ins().imul_imm_s(i, s);
                    e.b.ins().iadd(p, off)
                })
                .collect();
            e.emit_outer(level + 1, inner, ins2, outs2);
        });
    }

    fn emit_row(&mut self, ins: Vec<Value>, outs: Vec<Value>) {
        let row_addr = Addr {
            in_base: ins.clone(),
            out_base: outs.clone(),
            elem: None,
            extra: 0,
            pre: false,
        };
        self.hoist(Level::Row, &row_addr);
        // Hoisted outputs (entry/row level) are stored in the element loops like the others.
        let c = *self.space.dims.last().unwrap_or(&1) as i64;
        let l = self.lanes as i64;
        if l > 0 && c >= l && c <= SHORT_ROW {
            // A short row (a spiking layer's 10 units): every element inline, offsets as
            // immediates on the row's bases, no inner loop.
            let whole = c / l;
            for e in 0..c {
                let addr = Addr {
                    in_base: ins.clone(),
                    out_base: outs.clone(),
                    elem: None,
                    extra: e,
                    pre: true,
                };
                if e < whole * l {
                    if e % l == 0 {
                        self.vector_body(&addr);
                    }
                } else {
                    self.scalar_body(&addr);
                }
            }
            return;
        }
        // Big kernels gain little from unrolling (register pressure) and cost compile time.
        let nodes = self.k.nodes.len();
        let unroll = match nodes {
            0..=12 => self.opts.unroll.max(1),
            13..=32 => self.opts.unroll.clamp(1, 2),
            _ => 1,
        } as i64;
        let per_iter = l * unroll;
        let vec_iters = if l > 0 { c / per_iter } else { 0 };
        let done = vec_iters * per_iter;
        if vec_iters > 0 {
            self.counted_loop(vec_iters, &mut |e: &mut Self, it| {
                let elem = e.b.ins().imul_imm_s(it, per_iter);
                let at = Addr {
                    in_base: ins.clone(),
                    out_base: outs.clone(),
                    elem: Some(elem),
                    extra: 0,
                    pre: false,
                };
                let base = e.rebase(&at);
                for u in 0..unroll {
                    let addr = Addr {
                        extra: u * l,
                        ..base.clone()
                    };
                    e.vector_body(&addr);
                }
            });
        }
        // Remaining whole vectors: one vector body (inline if there is just one, else a loop).
        let tail = c - done;
        let mut start = done;
        if l > 0 && tail >= l {
            let whole = tail / l;
            if whole == 1 {
                let base = self.b.ins().iconst(types::I64, done);
                let addr = Addr {
                    in_base: ins.clone(),
                    out_base: outs.clone(),
                    elem: Some(base),
                    extra: 0,
                    pre: false,
                };
                self.vector_body(&addr);
            } else {
                self.counted_loop(whole, &mut |e: &mut Self, it| {
                    let off = e.b.ins().imul_imm_s(it, l);
                    let elem = e.b.ins().iadd_imm_s(off, done);
                    let addr = Addr {
                        in_base: ins.clone(),
                        out_base: outs.clone(),
                        elem: Some(elem),
                        extra: 0,
                        pre: false,
                    };
                    e.vector_body(&addr);
                });
            }
            start = done + whole * l;
        }
        let rest = c - start;
        if rest > 0 {
            self.counted_loop(rest, &mut |e: &mut Self, it| {
                let elem = e.b.ins().iadd_imm_s(it, start);
                let addr = Addr {
                    in_base: ins.clone(),
                    out_base: outs.clone(),
                    elem: Some(elem),
                    extra: 0,
                    pre: false,
                };
                e.scalar_body(&addr);
            });
        }
    }

    /// Address of element (elem + extra) of input `i` (inner stride applied).
    fn in_addr(&mut self, i: usize, addr: &Addr) -> (Value, i32) {
        let inner = self.space.dims.len() - 1;
        let st = self.space.strides[i][inner] as i64 * self.esize(self.k.inputs[i].dtype);
        match addr.elem {
            _ if addr.pre && st != 0 => (addr.in_base[i], (addr.extra * st) as i32),
            Some(e) if st != 0 => {
                let off = self.b.ins().imul_imm_s(e, st);
                let p = self.b.ins().iadd(addr.in_base[i], off);
                (p, (addr.extra * st) as i32)
            }
            _ => (addr.in_base[i], 0),
        }
    }

    /// The addressing context with every varying base advanced to element `elem` once, so
    /// unrolled copies only add immediates.
    fn rebase(&mut self, addr: &Addr) -> Addr {
        let Some(e) = addr.elem else {
            return addr.clone();
        };
        let inner = self.space.dims.len() - 1;
        let mut cache: HashMap<i64, Value> = HashMap::new();
        let mut off_for = |em: &mut Self, bytes: i64| -> Value {
            *cache
                .entry(bytes)
                .or_insert_with(|| em.b.ins().imul_imm_s(e, bytes))
        };
        let mut in_base = addr.in_base.clone();
        for (i, base) in in_base.iter_mut().enumerate() {
            let st = self.space.strides[i][inner] as i64 * self.esize(self.k.inputs[i].dtype);
            if st != 0 {
                let off = off_for(self, st);
                *base = self.b.ins().iadd(*base, off);
            }
        }
        let mut out_base = addr.out_base.clone();
        for (o, base) in out_base.iter_mut().enumerate() {
            let sz = self.esize(self.k.nodes[self.k.outputs[o].node].dtype);
            let off = off_for(self, sz);
            *base = self.b.ins().iadd(*base, off);
        }
        Addr {
            in_base,
            out_base,
            elem: Some(e),
            extra: 0,
            pre: true,
        }
    }

    fn out_addr(&mut self, o: usize, addr: &Addr) -> (Value, i32) {
        let sz = self.esize(self.k.nodes[self.k.outputs[o].node].dtype);
        match addr.elem {
            _ if addr.pre => (addr.out_base[o], (addr.extra * sz) as i32),
            Some(e) => {
                let off = self.b.ins().imul_imm_s(e, sz);
                let p = self.b.ins().iadd(addr.out_base[o], off);
                (p, (addr.extra * sz) as i32)
            }
            None => (addr.out_base[o], 0),
        }
    }

    /// The nodes to evaluate ahead in index order for a long kernel (see [`DEEP_KERNEL`]):
    /// reachable from an output, not hoisted, and not a multiply its consumer contracts.
    fn ahead(&self, hoisted: impl Fn(usize) -> bool) -> Vec<usize> {
        let nn = self.k.nodes.len();
        if nn <= DEEP_KERNEL {
            return vec![];
        }
        let mut live = vec![false; nn];
        for o in &self.k.outputs {
            live[o.node] = true;
        }
        for n in (0..nn).rev() {
            if !live[n] {
                continue;
            }
            match self.k.nodes[n].kind {
                KernelNodeKind::Unary(_, a) | KernelNodeKind::Cast(a) => live[a] = true,
                KernelNodeKind::Binary(_, a, c) | KernelNodeKind::Compare(_, a, c) => {
                    live[a] = true;
                    live[c] = true;
                }
                KernelNodeKind::Select(p, a, c) => {
                    live[p] = true;
                    live[a] = true;
                    live[c] = true;
                }
                _ => {}
            }
        }
        (0..nn)
            .filter(|&n| live[n] && !hoisted(n) && self.fma_operand(n).is_none())
            .collect()
    }

    fn scalar_body(&mut self, addr: &Addr) {
        let mut memo: Vec<Option<Value>> = self.hoisted_s.clone();
        // Long chains: evaluate in index order first, so the recursion below stays shallow.
        for n in self.ahead(|n| memo[n].is_some()) {
            self.scalar_eval(n, addr, &mut memo);
        }
        for o in 0..self.k.outputs.len() {
            let n = self.k.outputs[o].node;
            let v = self.scalar_eval(n, addr, &mut memo);
            let (p, off) = self.out_addr(o, addr);
            self.b.ins().store(mem(), v, p, off);
        }
    }

    fn scalar_eval(&mut self, n: usize, addr: &Addr, memo: &mut Vec<Option<Value>>) -> Value {
        if let Some(v) = memo[n] {
            return v;
        }
        let v = self.scalar_node(n, addr, memo);
        memo[n] = Some(v);
        v
    }

    /// A multiply node that can be contracted into an fma by its (only) consumer.
    fn fma_operand(&self, n: usize) -> Option<(usize, usize)> {
        if !self.opts.fma {
            return None;
        }
        let node = &self.k.nodes[n];
        match node.kind {
            KernelNodeKind::Binary(BinaryOp::Mul, a, b)
                if node.dtype.is_float() && self.uses[n] == 1 =>
            {
                Some((a, b))
            }
            _ => None,
        }
    }

    fn scalar_node(&mut self, n: usize, addr: &Addr, memo: &mut Vec<Option<Value>>) -> Value {
        let node = self.k.nodes[n].clone();
        let dt = node.dtype;
        match node.kind {
            KernelNodeKind::Input(i) => {
                let (p, off) = self.in_addr(i, addr);
                self.b.ins().load(scalar_ty(dt), mem(), p, off)
            }
            KernelNodeKind::Const(x) => self.scalar_const(dt, x),
            KernelNodeKind::Unary(u, a) => {
                let x = self.scalar_eval(a, addr, memo);
                self.scalar_unary(u, dt, x)
            }
            KernelNodeKind::Binary(bo, a, c) => {
                if dt.is_float()
                    && matches!(bo, BinaryOp::Add | BinaryOp::Sub)
                    && memo[n].is_none()
                    && let Some(r) = self.try_fma_scalar(bo, a, c, addr, memo)
                {
                    return r;
                }
                let x = self.scalar_eval(a, addr, memo);
                let y = self.scalar_eval(c, addr, memo);
                let const_a = self.const_of(a);
                let const_b = self.const_of(c);
                self.scalar_binary(bo, dt, x, y, const_a, const_b)
            }
            KernelNodeKind::Compare(c, a, b2) => {
                let odt = self.k.nodes[a].dtype;
                let x = self.scalar_eval(a, addr, memo);
                let y = self.scalar_eval(b2, addr, memo);
                self.scalar_compare(c, odt, x, y)
            }
            KernelNodeKind::Select(p, a, c) => {
                let pv = self.scalar_eval(p, addr, memo);
                let x = self.scalar_eval(a, addr, memo);
                let y = self.scalar_eval(c, addr, memo);
                self.b.ins().select(pv, x, y)
            }
            KernelNodeKind::Cast(a) => {
                let from = self.k.nodes[a].dtype;
                let x = self.scalar_eval(a, addr, memo);
                self.scalar_cast(from, dt, x)
            }
        }
    }

    fn try_fma_scalar(
        &mut self,
        bo: BinaryOp,
        a: usize,
        c: usize,
        addr: &Addr,
        memo: &mut Vec<Option<Value>>,
    ) -> Option<Value> {
        if let Some((x, y)) = self.fma_operand(a).filter(|_| memo[a].is_none()) {
            // a*b + c  or  a*b - c
            let xv = self.scalar_eval(x, addr, memo);
            let yv = self.scalar_eval(y, addr, memo);
            let mut cv = self.scalar_eval(c, addr, memo);
            if bo == BinaryOp::Sub {
                cv = self.b.ins().fneg(cv);
            }
            return Some(self.b.ins().fma(xv, yv, cv));
        }
        if let Some((x, y)) = self.fma_operand(c).filter(|_| memo[c].is_none()) {
            // a + x*y  or  a - x*y
            let av = self.scalar_eval(a, addr, memo);
            let mut xv = self.scalar_eval(x, addr, memo);
            let yv = self.scalar_eval(y, addr, memo);
            if bo == BinaryOp::Sub {
                xv = self.b.ins().fneg(xv);
            }
            return Some(self.b.ins().fma(xv, yv, av));
        }
        None
    }

    fn const_of(&self, n: usize) -> Option<f64> {
        match self.k.nodes[n].kind {
            KernelNodeKind::Const(x) => Some(x),
            _ => None,
        }
    }

    fn scalar_const(&mut self, dt: DType, x: f64) -> Value {
        match dt {
            DType::F64 => self.b.ins().f64const(x),
            DType::F32 => self.b.ins().f32const(x as f32),
            DType::I32 => self.b.ins().iconst(types::I32, x as i32 as i64),
            DType::Bool => self.b.ins().iconst(types::I8, (x != 0.0) as i64),
        }
    }

    fn fconst(&mut self, ty: Type, x: f64) -> Value {
        if ty == types::F32 {
            self.b.ins().f32const(x as f32)
        } else {
            self.b.ins().f64const(x)
        }
    }

    fn call_math(&mut self, f: MathFn, args: &[Value]) -> Value {
        let fref = self.math[&f];
        let call = self.b.ins().call(fref, args);
        self.b.inst_results(call)[0]
    }

    /// Unary op on a float scalar of type `ty` (F64 or F32).
    fn float_unary(&mut self, u: UnaryOp, ty: Type, x: Value) -> Value {
        match u {
            UnaryOp::Neg => self.b.ins().fneg(x),
            UnaryOp::Abs => self.b.ins().fabs(x),
            UnaryOp::Sqrt => self.b.ins().sqrt(x),
            UnaryOp::Sign => {
                let zero = self.fconst(ty, 0.0);
                let one = self.fconst(ty, 1.0);
                let mone = self.fconst(ty, -1.0);
                let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let inner = self.b.ins().select(lt, mone, x);
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                self.b.ins().select(gt, one, inner)
            }
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid => {
                let f = MathFn::for_unary(u).unwrap_or(MathFn::Exp);
                if ty == types::F32 {
                    let w = self.b.ins().fpromote(types::F64, x);
                    let r = self.call_math(f, &[w]);
                    self.b.ins().fdemote(types::F32, r)
                } else {
                    self.call_math(f, &[x])
                }
            }
        }
    }

    fn scalar_unary(&mut self, u: UnaryOp, dt: DType, x: Value) -> Value {
        match dt {
            DType::I32 => match u {
                UnaryOp::Neg => self.b.ins().ineg(x),
                UnaryOp::Abs => self.b.ins().iabs(x),
                _ => {
                    // sign (the type rule allows no other op on i32)
                    let zero = self.b.ins().iconst(types::I32, 0);
                    let one = self.b.ins().iconst(types::I32, 1);
                    let mone = self.b.ins().iconst(types::I32, -1);
                    let lt = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
                    let inner = self.b.ins().select(lt, mone, zero);
                    let gt = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, x, 0);
                    self.b.ins().select(gt, one, inner)
                }
            },
            _ => self.float_unary(u, scalar_ty(dt), x),
        }
    }

    /// `max`/`min` with the interpreter's NaN rule, given which operands are known non-NaN.
    fn minmax_scalar(&mut self, is_max: bool, x: Value, y: Value, a_ok: bool, b_ok: bool) -> Value {
        // max: b non-NaN -> (b > a) ? b : a ;  general -> (a ult b) ? b : a, then a-NaN fix.
        // min: b non-NaN -> (b < a) ? b : a ;  general -> (a ugt b) ? b : a, then a-NaN fix.
        if b_ok {
            let cc = if is_max {
                FloatCC::GreaterThan
            } else {
                FloatCC::LessThan
            };
            let c = self.b.ins().fcmp(cc, y, x);
            return self.b.ins().select(c, y, x);
        }
        let cc = if is_max {
            FloatCC::UnorderedOrLessThan
        } else {
            FloatCC::UnorderedOrGreaterThan
        };
        let c = self.b.ins().fcmp(cc, x, y);
        let m = self.b.ins().select(c, y, x);
        if a_ok {
            return m;
        }
        let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
        self.b.ins().select(nan, x, m)
    }

    fn float_binary(
        &mut self,
        bo: BinaryOp,
        x: Value,
        y: Value,
        ca: Option<f64>,
        cb: Option<f64>,
    ) -> Value {
        match bo {
            BinaryOp::Add => self.b.ins().fadd(x, y),
            BinaryOp::Sub => self.b.ins().fsub(x, y),
            BinaryOp::Mul => self.b.ins().fmul(x, y),
            BinaryOp::Div => self.b.ins().fdiv(x, y),
            BinaryOp::Max | BinaryOp::Min => {
                let a_ok = ca.is_some_and(|v| !v.is_nan());
                let b_ok = cb.is_some_and(|v| !v.is_nan());
                self.minmax_scalar(bo == BinaryOp::Max, x, y, a_ok, b_ok)
            }
            BinaryOp::Pow => {
                let ty = self.b.func.dfg.value_type(x);
                if ty == types::F32 {
                    let a = self.b.ins().fpromote(types::F64, x);
                    let c = self.b.ins().fpromote(types::F64, y);
                    let r = self.call_math(MathFn::Pow, &[a, c]);
                    self.b.ins().fdemote(types::F32, r)
                } else {
                    self.call_math(MathFn::Pow, &[x, y])
                }
            }
        }
    }

    fn scalar_binary(
        &mut self,
        bo: BinaryOp,
        dt: DType,
        x: Value,
        y: Value,
        ca: Option<f64>,
        cb: Option<f64>,
    ) -> Value {
        match dt {
            // Wrapping i32 arithmetic, like the interpreter.
            DType::I32 => match bo {
                BinaryOp::Add => self.b.ins().iadd(x, y),
                BinaryOp::Sub => self.b.ins().isub(x, y),
                BinaryOp::Mul => self.b.ins().imul(x, y),
                BinaryOp::Max => self.b.ins().smax(x, y),
                BinaryOp::Min => self.b.ins().smin(x, y),
                _ => {
                    // div: x / 0 = 0, x / -1 = wrapping neg; sdiv never sees 0 or -1 (no trap).
                    let one = self.b.ins().iconst(types::I32, 1);
                    let zero = self.b.ins().iconst(types::I32, 0);
                    let is0 = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                    let is_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                    let bad = self.b.ins().bor(is0, is_m1);
                    let safe = self.b.ins().select(bad, one, y);
                    let q = self.b.ins().sdiv(x, safe);
                    let neg = self.b.ins().ineg(x);
                    let q = self.b.ins().select(is_m1, neg, q);
                    self.b.ins().select(is0, zero, q)
                }
            },
            _ => self.float_binary(bo, x, y, ca, cb),
        }
    }

    fn scalar_compare(&mut self, c: CompareOp, odt: DType, x: Value, y: Value) -> Value {
        match odt {
            DType::F64 | DType::F32 => self.b.ins().fcmp(float_cc(c), x, y),
            DType::I32 => self.b.ins().icmp(int_cc(c, true), x, y),
            DType::Bool => self.b.ins().icmp(int_cc(c, false), x, y),
        }
    }

    fn scalar_cast(&mut self, from: DType, to: DType, x: Value) -> Value {
        use DType::*;
        match (from, to) {
            (a, b) if a == b => x,
            (F64, F32) => self.b.ins().fdemote(types::F32, x),
            (F32, F64) => self.b.ins().fpromote(types::F64, x),
            (F64 | F32, I32) => self.b.ins().fcvt_to_sint_sat(types::I32, x),
            (F64 | F32, Bool) => {
                let ty = scalar_ty(from);
                let zero = self.fconst(ty, 0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, zero)
            }
            (I32, F64 | F32) => self.b.ins().fcvt_from_sint(scalar_ty(to), x),
            (I32, Bool) => self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
            (Bool, F64 | F32) => {
                let ty = scalar_ty(to);
                let one = self.fconst(ty, 1.0);
                let zero = self.fconst(ty, 0.0);
                self.b.ins().select(x, one, zero)
            }
            (Bool, I32) => self.b.ins().uextend(types::I32, x),
            _ => x,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Vector mode.

    fn vector_body(&mut self, addr: &Addr) {
        let mut memo: Vec<Option<VV>> = self.hoisted_v.clone();
        // Long chains: evaluate in index order first, so the recursion below stays shallow.
        for n in self.ahead(|n| memo[n].is_some()) {
            self.vec_eval(n, addr, &mut memo);
        }
        for o in 0..self.k.outputs.len() {
            let n = self.k.outputs[o].node;
            let v = self.vec_eval(n, addr, &mut memo);
            self.store_vec(o, n, v, addr);
        }
    }

    fn store_vec(&mut self, o: usize, n: usize, v: VV, addr: &Addr) {
        let dt = self.k.nodes[n].dtype;
        let (p, off) = self.out_addr(o, addr);
        if let (Some(_), VV::Vec(x)) = (self.native_ty(dt), &v) {
            self.b.ins().store(mem(), *x, p, off);
            return;
        }
        let lanes = self.lanes_from(v, dt);
        let sz = self.esize(dt) as i32;
        for (j, l) in lanes.iter().enumerate() {
            self.b.ins().store(mem(), *l, p, off + j as i32 * sz);
        }
    }

    fn vec_eval(&mut self, n: usize, addr: &Addr, memo: &mut Vec<Option<VV>>) -> VV {
        if let Some(v) = &memo[n] {
            return v.clone();
        }
        let v = self.vec_node(n, addr, memo);
        memo[n] = Some(v.clone());
        v
    }

    fn lanes_from(&mut self, v: VV, dt: DType) -> SmallVec<[Value; 4]> {
        match v {
            VV::Lanes(l) => l,
            VV::Vec(x) => (0..self.lanes)
                .map(|j| self.b.ins().extractlane(x, j as u8))
                .collect(),
            VV::Mask(m) => (0..self.lanes)
                .map(|j| {
                    let l = self.b.ins().extractlane(m, j as u8);
                    let r = self.b.ins().icmp_imm_s(IntCC::NotEqual, l, 0);
                    let _ = dt;
                    r
                })
                .collect(),
        }
    }

    fn vector_from(&mut self, v: VV, dt: DType) -> Value {
        match v {
            VV::Vec(x) => x,
            VV::Lanes(l) => {
                let vt = self.native_ty(dt).unwrap_or(types::F64X2);
                let mut x = self.b.ins().scalar_to_vector(vt, l[0]);
                for (j, lane) in l.iter().enumerate().skip(1) {
                    x = self.b.ins().insertlane(x, *lane, j as u8);
                }
                x
            }
            VV::Mask(m) => m,
        }
    }

    fn mask_from(&mut self, v: VV) -> Value {
        match v {
            VV::Mask(m) => m,
            VV::Lanes(l) => {
                let mt = self.mask_ty();
                let lt = mt.lane_type();
                let first = self.b.ins().bmask(lt, l[0]);
                let mut x = self.b.ins().scalar_to_vector(mt, first);
                for (j, lane) in l.iter().enumerate().skip(1) {
                    let m = self.b.ins().bmask(lt, *lane);
                    x = self.b.ins().insertlane(x, m, j as u8);
                }
                x
            }
            VV::Vec(x) => x,
        }
    }

    #[allow(clippy::needless_range_loop)]
    fn lanewise(&mut self, n: usize, addr: &Addr, memo: &mut Vec<Option<VV>>) -> VV {
        // Evaluate node n lane by lane with the scalar emitters.
        let node = self.k.nodes[n].clone();
        let ops: Vec<usize> = match node.kind {
            KernelNodeKind::Unary(_, a) | KernelNodeKind::Cast(a) => vec![a],
            KernelNodeKind::Binary(_, a, c) | KernelNodeKind::Compare(_, a, c) => vec![a, c],
            KernelNodeKind::Select(p, a, c) => vec![p, a, c],
            _ => vec![],
        };
        let mut lanes_of: Vec<SmallVec<[Value; 4]>> = Vec::new();
        for &o in &ops {
            let v = self.vec_eval(o, addr, memo);
            let dt = self.k.nodes[o].dtype;
            lanes_of.push(self.lanes_from(v, dt));
        }
        let mut out = SmallVec::new();
        for j in 0..self.lanes {
            let r = match node.kind {
                KernelNodeKind::Unary(u, _) => self.scalar_unary(u, node.dtype, lanes_of[0][j]),
                KernelNodeKind::Cast(a) => {
                    let from = self.k.nodes[a].dtype;
                    self.scalar_cast(from, node.dtype, lanes_of[0][j])
                }
                KernelNodeKind::Binary(bo, a, c) => {
                    let (ca, cb) = (self.const_of(a), self.const_of(c));
                    self.scalar_binary(bo, node.dtype, lanes_of[0][j], lanes_of[1][j], ca, cb)
                }
                KernelNodeKind::Compare(c, a, _) => {
                    let odt = self.k.nodes[a].dtype;
                    self.scalar_compare(c, odt, lanes_of[0][j], lanes_of[1][j])
                }
                KernelNodeKind::Select(..) => {
                    self.b
                        .ins()
                        .select(lanes_of[0][j], lanes_of[1][j], lanes_of[2][j])
                }
                _ => lanes_of[0][j],
            };
            out.push(r);
        }
        VV::Lanes(out)
    }

    fn vec_node(&mut self, n: usize, addr: &Addr, memo: &mut Vec<Option<VV>>) -> VV {
        let node = self.k.nodes[n].clone();
        let dt = node.dtype;
        let native = self.native_ty(dt);
        match node.kind {
            KernelNodeKind::Input(i) => {
                let (p, off) = self.in_addr(i, addr);
                let inner = self.space.dims.len() - 1;
                let st = self.space.strides[i][inner] as i64;
                if let (Some(vt), 1) = (native, st) {
                    return VV::Vec(self.b.ins().load(vt, mem(), p, off));
                }
                let sz = self.esize(self.k.inputs[i].dtype) as i32;
                let st = st as i32;
                let lanes = (0..self.lanes)
                    .map(|j| {
                        self.b
                            .ins()
                            .load(scalar_ty(dt), mem(), p, off + j as i32 * st * sz)
                    })
                    .collect();
                VV::Lanes(lanes)
            }
            KernelNodeKind::Const(x) => {
                let s = self.scalar_const(dt, x);
                self.splat_scalar(n, s)
            }
            KernelNodeKind::Unary(u, a) if native.is_some() && MathFn::for_unary(u).is_none() => {
                let av = self.vec_eval(a, addr, memo);
                let x = self.vector_from(av, dt);
                let vt = native.unwrap_or(types::F64X2);
                VV::Vec(match u {
                    UnaryOp::Neg => self.b.ins().fneg(x),
                    UnaryOp::Abs => self.b.ins().fabs(x),
                    UnaryOp::Sqrt => self.b.ins().sqrt(x),
                    _ => {
                        // sign
                        let st = vt.lane_type();
                        let z = self.fconst(st, 0.0);
                        let zero = self.b.ins().splat(vt, z);
                        let o = self.fconst(st, 1.0);
                        let one = self.b.ins().splat(vt, o);
                        let mo = self.fconst(st, -1.0);
                        let mone = self.b.ins().splat(vt, mo);
                        let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                        let lt = self.b.ins().bitcast(vt, vflags(), lt);
                        let inner = self.b.ins().bitselect(lt, mone, x);
                        let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                        let gt = self.b.ins().bitcast(vt, vflags(), gt);
                        self.b.ins().bitselect(gt, one, inner)
                    }
                })
            }
            KernelNodeKind::Binary(bo, a, c) if native.is_some() && bo != BinaryOp::Pow => {
                let vt = native.unwrap_or(types::F64X2);
                if matches!(bo, BinaryOp::Add | BinaryOp::Sub)
                    && let Some(r) = self.try_fma_vec(bo, a, c, dt, addr, memo)
                {
                    return VV::Vec(r);
                }
                let av = self.vec_eval(a, addr, memo);
                let x = self.vector_from(av, dt);
                let cv = self.vec_eval(c, addr, memo);
                let y = self.vector_from(cv, dt);
                VV::Vec(match bo {
                    BinaryOp::Add => self.b.ins().fadd(x, y),
                    BinaryOp::Sub => self.b.ins().fsub(x, y),
                    BinaryOp::Mul => self.b.ins().fmul(x, y),
                    BinaryOp::Div => self.b.ins().fdiv(x, y),
                    _ => {
                        let is_max = bo == BinaryOp::Max;
                        let a_ok = self.const_of(a).is_some_and(|v| !v.is_nan());
                        let b_ok = self.const_of(c).is_some_and(|v| !v.is_nan());
                        if b_ok {
                            let cc = if is_max {
                                FloatCC::GreaterThan
                            } else {
                                FloatCC::LessThan
                            };
                            let m = self.b.ins().fcmp(cc, y, x);
                            let m = self.b.ins().bitcast(vt, vflags(), m);
                            self.b.ins().bitselect(m, y, x)
                        } else {
                            let cc = if is_max {
                                FloatCC::UnorderedOrLessThan
                            } else {
                                FloatCC::UnorderedOrGreaterThan
                            };
                            let m = self.b.ins().fcmp(cc, x, y);
                            let m = self.b.ins().bitcast(vt, vflags(), m);
                            let r = self.b.ins().bitselect(m, y, x);
                            if a_ok {
                                r
                            } else {
                                let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
                                let nan = self.b.ins().bitcast(vt, vflags(), nan);
                                self.b.ins().bitselect(nan, x, r)
                            }
                        }
                    }
                })
            }
            KernelNodeKind::Compare(c, a, b2)
                if self.native_ty(self.k.nodes[a].dtype).is_some() =>
            {
                let odt = self.k.nodes[a].dtype;
                let av = self.vec_eval(a, addr, memo);
                let x = self.vector_from(av, odt);
                let bv = self.vec_eval(b2, addr, memo);
                let y = self.vector_from(bv, odt);
                let m = self.b.ins().fcmp(float_cc(c), x, y);
                VV::Mask(m)
            }
            KernelNodeKind::Select(p, a, c) if native.is_some() => {
                let vt = native.unwrap_or(types::F64X2);
                let pv = self.vec_eval(p, addr, memo);
                let m = self.mask_from(pv);
                let m = self.b.ins().bitcast(vt, vflags(), m);
                let av = self.vec_eval(a, addr, memo);
                let x = self.vector_from(av, dt);
                let cv = self.vec_eval(c, addr, memo);
                let y = self.vector_from(cv, dt);
                VV::Vec(self.b.ins().bitselect(m, x, y))
            }
            KernelNodeKind::Cast(a) => {
                let from = self.k.nodes[a].dtype;
                if from == dt {
                    return self.vec_eval(a, addr, memo);
                }
                match (self.native_ty(from), native, from, dt) {
                    (Some(vt), _, _, DType::Bool) => {
                        // x != 0
                        let av = self.vec_eval(a, addr, memo);
                        let x = self.vector_from(av, from);
                        let z = self.fconst(vt.lane_type(), 0.0);
                        let zero = self.b.ins().splat(vt, z);
                        VV::Mask(self.b.ins().fcmp(FloatCC::NotEqual, x, zero))
                    }
                    (_, Some(vt), DType::Bool, _) => {
                        let av = self.vec_eval(a, addr, memo);
                        let m = self.mask_from(av);
                        let m = self.b.ins().bitcast(vt, vflags(), m);
                        let o = self.fconst(vt.lane_type(), 1.0);
                        let one = self.b.ins().splat(vt, o);
                        VV::Vec(self.b.ins().band(m, one))
                    }
                    _ => self.lanewise(n, addr, memo),
                }
            }
            _ => self.lanewise(n, addr, memo),
        }
    }

    fn try_fma_vec(
        &mut self,
        bo: BinaryOp,
        a: usize,
        c: usize,
        dt: DType,
        addr: &Addr,
        memo: &mut Vec<Option<VV>>,
    ) -> Option<Value> {
        if let Some((x, y)) = self.fma_operand(a).filter(|_| memo[a].is_none()) {
            let xv = self.vec_eval(x, addr, memo);
            let xv = self.vector_from(xv, dt);
            let yv = self.vec_eval(y, addr, memo);
            let yv = self.vector_from(yv, dt);
            let cv = self.vec_eval(c, addr, memo);
            let mut cv = self.vector_from(cv, dt);
            if bo == BinaryOp::Sub {
                cv = self.b.ins().fneg(cv);
            }
            return Some(self.b.ins().fma(xv, yv, cv));
        }
        if let Some((x, y)) = self.fma_operand(c).filter(|_| memo[c].is_none()) {
            let av = self.vec_eval(a, addr, memo);
            let av = self.vector_from(av, dt);
            let xv = self.vec_eval(x, addr, memo);
            let mut xv = self.vector_from(xv, dt);
            let yv = self.vec_eval(y, addr, memo);
            let yv = self.vector_from(yv, dt);
            if bo == BinaryOp::Sub {
                xv = self.b.ins().fneg(xv);
            }
            return Some(self.b.ins().fma(xv, yv, av));
        }
        None
    }
}
