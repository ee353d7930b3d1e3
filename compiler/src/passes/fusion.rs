//! Fusion: groups maximal chains of elementwise ops into loop kernels.
//!
//! # Contract
//!
//! **Expects** a verified [`Function`]. **Produces** a [`KernelPlan`]: the function with every
//! `custom_vjp` replaced by its forward body (inlined, so the spike function fuses with its
//! neighbours), plus an ordered list of [`Step`]s that computes every output:
//!
//! - [`Step::Kernel`]: a [`FusedKernel`], a DAG of elementwise nodes over one iteration shape
//!   that reads each external operand once per element (full, or broadcast by index
//!   arithmetic) and writes each materialised value once.
//! - [`Step::Op`]: one non-elementwise instruction (matmul, reductions, argmax, cumsum,
//!   transpose, slice, pad, concat) executed on its own.
//! - [`Step::Scan`]: a scan whose body has its own nested plan.
//!
//! Constants, `iota`, and broadcasts/reshapes of splat constants are *sources*: they never
//! become steps. Splat sources are immediates inside kernels; any source a non-kernel consumer
//! (or a function output) needs is listed in [`KernelPlan::consts`] and materialised once by
//! the runtime. `reshape` of a computed value is an *alias* ([`KernelPlan::aliases`]): row-major
//! buffers need no copy.
//!
//! **Grouping rule.** Instructions are visited in order. An elementwise instruction (unary,
//! binary, compare, select, cast, stop_gradient, and broadcasts, which become broadcast
//! *loads*) joins the open groups of its operands that have its result shape; several groups
//! merge. A group is executed at the position of its last instruction, so it is *sealed* (no
//! longer joinable) as soon as any instruction outside it consumes one of its values: this
//! keeps every consumer after its producer, hence the step order valid. A broadcast with a
//! computed operand seals the operand's group (the operand is materialised and read with
//! broadcast indexing). Matmul, reductions, layout ops and scan are kernel boundaries.
//!
//! **Guarantees.** Steps are in a valid execution order; every value read by a step is a
//! function input, a materialised constant, an alias, or written by an earlier step; every
//! function output is materialised. All nodes of a kernel share its shape exactly.
//!
//! **Cost.** Linear in the number of instructions (plus the nested bodies), apart from
//! deduplicating kernel inputs (quadratic in the inputs of one kernel, which are few).

use brainlift_ir::{
    BinaryOp, CompareOp, DType, Function, IrError, Op, Shape, TensorType, UnaryOp, ValueId,
};
use std::fmt;
use std::sync::Arc;

/// How a kernel reads one external operand.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelInput {
    /// The value read (a function input, a materialised constant, an alias or a step result).
    pub value: ValueId,
    /// Element type of the buffer.
    pub dtype: DType,
    /// Stride in elements of the operand buffer for each axis of the kernel shape (0 where the
    /// operand is broadcast). A full operand has the row-major strides of the kernel shape.
    pub strides: Vec<usize>,
}

impl KernelInput {
    /// True when the operand is read element for element (no broadcast).
    pub fn is_full(&self, shape: &Shape) -> bool {
        self.strides
            .iter()
            .zip(shape.strides().iter())
            .zip(shape.dims())
            .all(|((a, b), d)| a == b || *d == 1)
    }
}

/// One node of a fused kernel. Operands are indices of earlier nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelNodeKind {
    /// Load kernel input `i` (see [`FusedKernel::inputs`]).
    Input(usize),
    /// A splat constant (already rounded to the node's dtype).
    Const(f64),
    /// Elementwise unary op.
    Unary(UnaryOp, usize),
    /// Elementwise binary op.
    Binary(BinaryOp, usize, usize),
    /// Comparison; the node's dtype is `bool`.
    Compare(CompareOp, usize, usize),
    /// `select pred, on_true, on_false`.
    Select(usize, usize, usize),
    /// Conversion of the operand to the node's dtype.
    Cast(usize),
}

/// A node with its element type.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelNode {
    /// What the node computes.
    pub kind: KernelNodeKind,
    /// Element type of the result.
    pub dtype: DType,
}

/// A value a kernel writes to its own buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelOutput {
    /// The node computing it.
    pub node: usize,
    /// The function value it materialises.
    pub value: ValueId,
}

/// A fused elementwise kernel: nodes over one iteration shape.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedKernel {
    /// Kernel number, unique within the whole plan including nested bodies (codegen order).
    pub id: usize,
    /// The iteration shape (the shape of every node and output).
    pub shape: Shape,
    /// External operands.
    pub inputs: Vec<KernelInput>,
    /// Nodes in topological order.
    pub nodes: Vec<KernelNode>,
    /// Materialised values, in the order of the kernel's output pointer array.
    pub outputs: Vec<KernelOutput>,
    /// Indices (in [`KernelPlan::func`]) of the instructions fused into this kernel.
    pub insts: Vec<usize>,
}

impl FusedKernel {
    /// Number of elements per output.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
}

/// Data of a materialised constant.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstData {
    /// Every element equal to this value.
    Splat(f64),
    /// Row-major values.
    Values(Arc<Vec<f64>>),
    /// The index along `axis` (an `iota`).
    Iota(usize),
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A fused elementwise kernel.
    Kernel(FusedKernel),
    /// A non-elementwise instruction, by index into [`KernelPlan::func`]'s instructions.
    Op(usize),
    /// A scan instruction and the plan of its body.
    Scan {
        /// Index of the scan instruction.
        inst: usize,
        /// Plan of the (flattened) body.
        body: Box<KernelPlan>,
    },
}

/// Counts before and after fusion, for reports and `ir dump --stage fused`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FusionReport {
    /// Loops executed per call without fusion: one per non-source instruction (this level only).
    pub kernels_before: usize,
    /// Steps after fusion (kernels plus single ops, this level only).
    pub kernels_after: usize,
    /// Fused kernels among the steps.
    pub fused_kernels: usize,
    /// Bytes of intermediate (non-output) buffers without fusion.
    pub intermediate_bytes_before: usize,
    /// Bytes of intermediate (non-output) buffers after fusion.
    pub intermediate_bytes_after: usize,
}

impl FusionReport {
    fn add(&mut self, o: &FusionReport) {
        self.kernels_before += o.kernels_before;
        self.kernels_after += o.kernels_after;
        self.fused_kernels += o.fused_kernels;
        self.intermediate_bytes_before += o.intermediate_bytes_before;
        self.intermediate_bytes_after += o.intermediate_bytes_after;
    }
}

/// The fused form of a function: what the JIT compiles and runs.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelPlan {
    /// The function the plan refers to (the input with `custom_vjp` forward bodies inlined).
    pub func: Function,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Sources that must exist as buffers, in definition order.
    pub consts: Vec<(ValueId, ConstData)>,
    /// `(result, operand)` pairs: the result shares the operand's buffer (reshape), in
    /// definition order (an operand may itself be an alias).
    pub aliases: Vec<(ValueId, ValueId)>,
    /// Counts for this level (nested bodies not included; see [`KernelPlan::total_report`]).
    pub report: FusionReport,
}

impl KernelPlan {
    /// All fused kernels, including those of nested bodies, in id order.
    pub fn kernels(&self) -> Vec<&FusedKernel> {
        let mut out = Vec::new();
        self.collect_kernels(&mut out);
        out.sort_by_key(|k| k.id);
        out
    }

    fn collect_kernels<'a>(&'a self, out: &mut Vec<&'a FusedKernel>) {
        for s in &self.steps {
            match s {
                Step::Kernel(k) => out.push(k),
                Step::Scan { body, .. } => body.collect_kernels(out),
                Step::Op(_) => {}
            }
        }
    }

    /// The report summed over this plan and every nested body (each body counted once).
    pub fn total_report(&self) -> FusionReport {
        let mut r = self.report.clone();
        for s in &self.steps {
            if let Step::Scan { body, .. } = s {
                r.add(&body.total_report());
            }
        }
        r
    }
}

/// Fuses `f` (which must have passed [`brainlift_ir::verify()`]). Kernel ids start at 0.
pub fn fuse(f: &Function) -> Result<KernelPlan, IrError> {
    let mut next_id = 0;
    fuse_with_ids(f, &mut next_id)
}

fn fuse_with_ids(f: &Function, next_id: &mut usize) -> Result<KernelPlan, IrError> {
    let flat = super::inline_custom_vjp::inline_custom_vjp(f)?;
    Fuser::new(&flat).run(next_id)
}

/// What the fuser knows about each value.
#[derive(Clone, Debug)]
enum ValKind {
    /// Function input.
    Param,
    /// Splat source with this value.
    Splat(f64),
    /// Non-splat source (constant data or iota), defined by an instruction.
    Source(ConstData),
    /// Reshape alias of another value.
    Alias(ValueId),
    /// Computed by group `g`.
    Group(usize),
    /// Computed by a non-fused step.
    Step,
}

/// Most instructions in one fused kernel; a longer elementwise chain continues in a new
/// kernel that reads the previous one's result.
pub const MAX_GROUP_OPS: usize = 256;

#[derive(Debug)]
struct Group {
    shape: Shape,
    insts: Vec<usize>,
    open: bool,
    /// Merged into another group.
    dead: bool,
}

struct Fuser<'a> {
    f: &'a Function,
    kind: Vec<ValKind>,
    groups: Vec<Group>,
    /// Instructions that are single steps (non-fusable), by index.
    is_step: Vec<bool>,
}

impl<'a> Fuser<'a> {
    fn new(f: &'a Function) -> Fuser<'a> {
        let mut kind = vec![ValKind::Step; f.types.len()];
        for k in kind.iter_mut().take(f.params.len()) {
            *k = ValKind::Param;
        }
        Fuser {
            f,
            kind,
            groups: Vec::new(),
            is_step: vec![false; f.insts.len()],
        }
    }

    fn group_of(&self, v: ValueId) -> Option<usize> {
        match self.kind[v.index()] {
            ValKind::Group(g) => Some(g),
            _ => None,
        }
    }

    fn seal_operands(&mut self, args: &[ValueId]) {
        for &a in args {
            if let Some(g) = self.group_of(a) {
                self.groups[g].open = false;
            }
        }
    }

    fn splat_of(&self, v: ValueId) -> Option<f64> {
        match self.kind[v.index()] {
            ValKind::Splat(x) => Some(x),
            _ => None,
        }
    }

    fn run(mut self, next_id: &mut usize) -> Result<KernelPlan, IrError> {
        let f = self.f;
        for (k, inst) in f.insts.iter().enumerate() {
            let rty = f.ty(inst.results[0]).clone();
            match &inst.op {
                Op::Constant(c) => {
                    self.kind[inst.results[0].index()] = match c.splat_value() {
                        Some(x) => ValKind::Splat(x),
                        None => ValKind::Source(ConstData::Values(c.data.clone())),
                    };
                }
                Op::Iota { axis, .. } => {
                    self.kind[inst.results[0].index()] = ValKind::Source(ConstData::Iota(*axis));
                }
                Op::Reshape(_) => {
                    let a = inst.args[0];
                    self.kind[inst.results[0].index()] = match self.splat_of(a) {
                        Some(x) => ValKind::Splat(x),
                        None => {
                            self.seal_operands(&inst.args);
                            ValKind::Alias(a)
                        }
                    };
                }
                Op::Broadcast { .. } if self.splat_of(inst.args[0]).is_some() => {
                    let x = self.splat_of(inst.args[0]).unwrap_or(0.0);
                    self.kind[inst.results[0].index()] = ValKind::Splat(x);
                }
                Op::Broadcast { .. } if f.ty(inst.args[0]).shape != rty.shape => {
                    // A broadcast load: the operand is materialised, the result starts a group.
                    self.seal_operands(&inst.args);
                    let g = self.groups.len();
                    self.groups.push(Group {
                        shape: rty.shape.clone(),
                        insts: vec![k],
                        open: true,
                        dead: false,
                    });
                    self.kind[inst.results[0].index()] = ValKind::Group(g);
                }
                op if is_elementwise(op) => {
                    // Candidate groups: open, same shape.
                    let mut cands: Vec<usize> = Vec::new();
                    for &a in &inst.args {
                        if let Some(g) = self.group_of(a) {
                            // A full group is sealed: kernels stay a size Cranelift compiles
                            // in time linear in the chain (one 30 000-op kernel took minutes).
                            if self.groups[g].insts.len() >= MAX_GROUP_OPS {
                                self.groups[g].open = false;
                            }
                            if self.groups[g].open && self.groups[g].shape == rty.shape {
                                if !cands.contains(&g) {
                                    cands.push(g);
                                }
                            } else {
                                self.groups[g].open = false;
                            }
                        }
                    }
                    let target = match cands.first() {
                        Some(&g) => g,
                        None => {
                            self.groups.push(Group {
                                shape: rty.shape.clone(),
                                insts: vec![],
                                open: true,
                                dead: false,
                            });
                            self.groups.len() - 1
                        }
                    };
                    for &g in cands.iter().skip(1) {
                        let moved = std::mem::take(&mut self.groups[g].insts);
                        self.groups[g].dead = true;
                        self.groups[g].open = false;
                        for &mi in &moved {
                            for r in &f.insts[mi].results {
                                self.kind[r.index()] = ValKind::Group(target);
                            }
                        }
                        self.groups[target].insts.extend(moved);
                    }
                    self.groups[target].insts.push(k);
                    if cands.len() > 1 {
                        self.groups[target].insts.sort_unstable();
                    }
                    for r in &inst.results {
                        self.kind[r.index()] = ValKind::Group(target);
                    }
                }
                _ => {
                    self.seal_operands(&inst.args);
                    self.is_step[k] = true;
                    for r in &inst.results {
                        self.kind[r.index()] = ValKind::Step;
                    }
                }
            }
        }
        self.build(next_id)
    }

    /// Which values are read outside their own group (or are outputs).
    fn external_uses(&self) -> Vec<bool> {
        let f = self.f;
        let mut used = vec![false; f.types.len()];
        for o in &f.outputs {
            used[o.value.index()] = true;
        }
        for inst in &f.insts {
            let my_group = inst.results.first().and_then(|r| self.group_of(*r));
            for &a in &inst.args {
                let ag = self.group_of(a);
                if ag.is_none() || ag != my_group {
                    used[a.index()] = true;
                }
            }
        }
        used
    }

    #[allow(clippy::needless_range_loop)]
    fn build(self, next_id: &mut usize) -> Result<KernelPlan, IrError> {
        let f = self.f;
        let used_outside = self.external_uses();
        // Position of each live group = its last instruction.
        let mut group_at: Vec<Option<usize>> = vec![None; f.insts.len()];
        for (g, grp) in self.groups.iter().enumerate() {
            if !grp.dead && !grp.insts.is_empty() {
                group_at[*grp.insts.last().unwrap_or(&0)] = Some(g);
            }
        }
        // Values that must be materialised: sources used by non-kernel consumers or outputs,
        // and non-splat sources read by kernels.
        let mut need_const = vec![false; f.types.len()];
        for o in &f.outputs {
            need_const[o.value.index()] = true;
        }
        for (k, inst) in f.insts.iter().enumerate() {
            let in_kernel = inst
                .results
                .first()
                .is_some_and(|r| self.group_of(*r).is_some());
            for &a in &inst.args {
                let splat = self.splat_of(a).is_some();
                if !in_kernel || !splat {
                    need_const[a.index()] = true;
                }
            }
            let _ = k;
        }
        let mut consts = Vec::new();
        let mut aliases = Vec::new();
        for v in 0..f.types.len() {
            match &self.kind[v] {
                ValKind::Splat(x) if need_const[v] => {
                    consts.push((ValueId(v as u32), ConstData::Splat(*x)))
                }
                ValKind::Source(d) if need_const[v] => consts.push((ValueId(v as u32), d.clone())),
                ValKind::Alias(a) => aliases.push((ValueId(v as u32), *a)),
                _ => {}
            }
        }
        let mut steps = Vec::new();
        let mut report = FusionReport::default();
        let is_output = {
            let mut o = vec![false; f.types.len()];
            for out in &f.outputs {
                o[out.value.index()] = true;
            }
            // A value whose reshape alias is returned is returned storage too.
            for (v, a) in aliases.iter().rev() {
                if o[v.index()] {
                    o[a.index()] = true;
                }
            }
            o
        };
        for (k, inst) in f.insts.iter().enumerate() {
            let source = matches!(inst.op, Op::Constant(_) | Op::Iota { .. });
            if !source {
                report.kernels_before += 1;
                for r in &inst.results {
                    if !is_output[r.index()] {
                        report.intermediate_bytes_before += f.ty(*r).size_bytes();
                    }
                }
            }
            if self.is_step[k] {
                for r in &inst.results {
                    if !is_output[r.index()] {
                        report.intermediate_bytes_after += f.ty(*r).size_bytes();
                    }
                }
                match &inst.op {
                    Op::Scan(s) => {
                        let body = fuse_with_ids(&s.body, next_id)?;
                        steps.push(Step::Scan {
                            inst: k,
                            body: Box::new(body),
                        });
                    }
                    _ => steps.push(Step::Op(k)),
                }
            } else if let Some(g) = group_at[k] {
                let kern = self.build_kernel(g, &used_outside, next_id);
                for o in &kern.outputs {
                    if !is_output[o.value.index()] {
                        report.intermediate_bytes_after += f.ty(o.value).size_bytes();
                    }
                }
                report.fused_kernels += 1;
                steps.push(Step::Kernel(kern));
            }
        }
        report.kernels_after = steps.len();
        Ok(KernelPlan {
            func: f.clone(),
            steps,
            consts,
            aliases,
            report,
        })
    }

    fn build_kernel(&self, g: usize, used_outside: &[bool], next_id: &mut usize) -> FusedKernel {
        let f = self.f;
        let grp = &self.groups[g];
        let shape = grp.shape.clone();
        let full_strides: Vec<usize> = shape.strides().to_vec();
        let mut inputs: Vec<KernelInput> = Vec::new();
        let mut nodes: Vec<KernelNode> = Vec::new();
        let mut node_of: std::collections::HashMap<ValueId, usize> =
            std::collections::HashMap::new();
        let mut outputs = Vec::new();

        let add_input = |inputs: &mut Vec<KernelInput>,
                         nodes: &mut Vec<KernelNode>,
                         inp: KernelInput|
         -> usize {
            let dtype = inp.dtype;
            let i = match inputs.iter().position(|x| *x == inp) {
                Some(i) => i,
                None => {
                    inputs.push(inp);
                    inputs.len() - 1
                }
            };
            if let Some(n) = nodes
                .iter()
                .position(|n| n.kind == KernelNodeKind::Input(i))
            {
                return n;
            }
            nodes.push(KernelNode {
                kind: KernelNodeKind::Input(i),
                dtype,
            });
            nodes.len() - 1
        };

        for &k in &grp.insts {
            let inst = &f.insts[k];
            let r = inst.results[0];
            let rdt = f.ty(r).dtype;
            // Operand nodes (external operands become inputs or constants).
            let operand =
                |v: ValueId, nodes: &mut Vec<KernelNode>, inputs: &mut Vec<KernelInput>| -> usize {
                    if let Some(&n) = node_of.get(&v) {
                        return n;
                    }
                    let dt = f.ty(v).dtype;
                    if let Some(x) = self.splat_of(v) {
                        nodes.push(KernelNode {
                            kind: KernelNodeKind::Const(x),
                            dtype: dt,
                        });
                        return nodes.len() - 1;
                    }
                    add_input(
                        inputs,
                        nodes,
                        KernelInput {
                            value: v,
                            dtype: dt,
                            strides: full_strides.clone(),
                        },
                    )
                };
            let node = match &inst.op {
                Op::Broadcast { dims, .. } => {
                    let a = inst.args[0];
                    let at = f.ty(a);
                    if at.shape == shape {
                        operand(a, &mut nodes, &mut inputs)
                    } else {
                        let src = at.shape.strides();
                        let mut strides = vec![0usize; shape.rank()];
                        for (i, &d) in dims.iter().enumerate() {
                            if at.dims()[i] != 1 {
                                strides[d] = src[i];
                            }
                        }
                        add_input(
                            &mut inputs,
                            &mut nodes,
                            KernelInput {
                                value: a,
                                dtype: at.dtype,
                                strides,
                            },
                        )
                    }
                }
                Op::StopGradient => operand(inst.args[0], &mut nodes, &mut inputs),
                Op::Cast(d) if *d == f.ty(inst.args[0]).dtype => {
                    operand(inst.args[0], &mut nodes, &mut inputs)
                }
                op => {
                    let a: Vec<usize> = inst
                        .args
                        .iter()
                        .map(|&v| operand(v, &mut nodes, &mut inputs))
                        .collect();
                    let kind = match op {
                        Op::Unary(u) => KernelNodeKind::Unary(*u, a[0]),
                        Op::Binary(b) => KernelNodeKind::Binary(*b, a[0], a[1]),
                        Op::Compare(c) => KernelNodeKind::Compare(*c, a[0], a[1]),
                        Op::Select => KernelNodeKind::Select(a[0], a[1], a[2]),
                        Op::Cast(_) => KernelNodeKind::Cast(a[0]),
                        // Only elementwise ops reach here (see `is_elementwise`).
                        _ => KernelNodeKind::Cast(a[0]),
                    };
                    nodes.push(KernelNode { kind, dtype: rdt });
                    nodes.len() - 1
                }
            };
            node_of.insert(r, node);
            if used_outside[r.index()] {
                outputs.push(KernelOutput { node, value: r });
            }
        }
        let id = *next_id;
        *next_id += 1;
        FusedKernel {
            id,
            shape,
            inputs,
            nodes,
            outputs,
            insts: grp.insts.clone(),
        }
    }
}

/// True for the ops a kernel node can compute (broadcast is handled separately).
fn is_elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::Cast(_)
            | Op::StopGradient
            | Op::Broadcast { .. }
    )
}

// ---------------------------------------------------------------------------------------------
// Printing (`ir dump --stage fused`).

impl fmt::Display for KernelPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.print(f, 0)
    }
}

fn ty_str(t: &TensorType) -> String {
    t.to_string()
}

impl KernelPlan {
    fn print(&self, out: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = " ".repeat(indent);
        let f = &self.func;
        let r = &self.report;
        writeln!(
            out,
            "{pad}fused @{}: {} steps ({} fused kernels); loops {} -> {}; intermediate bytes {} -> {}",
            f.name,
            self.steps.len(),
            r.fused_kernels,
            r.kernels_before,
            r.kernels_after,
            r.intermediate_bytes_before,
            r.intermediate_bytes_after
        )?;
        for (v, d) in &self.consts {
            let d = match d {
                ConstData::Splat(x) => format!("splat {x:?}"),
                ConstData::Values(v) => format!("{} values", v.len()),
                ConstData::Iota(a) => format!("iota axis {a}"),
            };
            writeln!(out, "{pad}  const %{}: {} = {d}", v.0, ty_str(f.ty(*v)))?;
        }
        for (v, a) in &self.aliases {
            writeln!(
                out,
                "{pad}  alias %{}: {} = reshape %{}",
                v.0,
                ty_str(f.ty(*v)),
                a.0
            )?;
        }
        for s in &self.steps {
            match s {
                Step::Kernel(k) => {
                    let names: Vec<&str> = k.insts.iter().map(|&i| f.insts[i].op.name()).collect();
                    writeln!(
                        out,
                        "{pad}  kernel k{} [{}] over {}: {} op(s) ({})",
                        k.id,
                        k.shape
                            .dims()
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                        k.numel(),
                        k.insts.len(),
                        names.join(", ")
                    )?;
                    for (i, inp) in k.inputs.iter().enumerate() {
                        let how = if inp.is_full(&k.shape) {
                            "full".to_string()
                        } else {
                            format!("broadcast strides={:?}", inp.strides)
                        };
                        writeln!(
                            out,
                            "{pad}    in{i} = %{}: {} ({how})",
                            inp.value.0,
                            ty_str(f.ty(inp.value))
                        )?;
                    }
                    for (n, node) in k.nodes.iter().enumerate() {
                        let body = match &node.kind {
                            KernelNodeKind::Input(i) => format!("load in{i}"),
                            KernelNodeKind::Const(x) => format!("const {x:?}"),
                            KernelNodeKind::Unary(u, a) => format!("{} n{a}", u.name()),
                            KernelNodeKind::Binary(b, a, c) => format!("{} n{a}, n{c}", b.name()),
                            KernelNodeKind::Compare(c, a, b) => format!("{} n{a}, n{b}", c.name()),
                            KernelNodeKind::Select(p, a, b) => format!("select n{p}, n{a}, n{b}"),
                            KernelNodeKind::Cast(a) => format!("cast n{a}"),
                        };
                        writeln!(out, "{pad}    n{n}: {} = {body}", node.dtype)?;
                    }
                    let outs: Vec<String> = k
                        .outputs
                        .iter()
                        .map(|o| format!("%{} = n{}", o.value.0, o.node))
                        .collect();
                    writeln!(out, "{pad}    out: {}", outs.join(", "))?;
                }
                Step::Op(i) => {
                    let inst = &f.insts[*i];
                    let res: Vec<String> = inst
                        .results
                        .iter()
                        .map(|r| format!("%{}: {}", r.0, ty_str(f.ty(*r))))
                        .collect();
                    let args: Vec<String> = inst.args.iter().map(|a| format!("%{}", a.0)).collect();
                    writeln!(
                        out,
                        "{pad}  op {} = {} {}",
                        res.join(", "),
                        inst.op.name(),
                        args.join(", ")
                    )?;
                }
                Step::Scan { inst, body } => {
                    let i = &f.insts[*inst];
                    let res: Vec<String> = i
                        .results
                        .iter()
                        .map(|r| format!("%{}: {}", r.0, ty_str(f.ty(*r))))
                        .collect();
                    let args: Vec<String> = i.args.iter().map(|a| format!("%{}", a.0)).collect();
                    let (len, rev) = match &i.op {
                        Op::Scan(s) => (s.length, s.reverse),
                        _ => (0, false),
                    };
                    writeln!(
                        out,
                        "{pad}  scan[length={len}{}] {} = {} {{",
                        if rev { ", reverse=true" } else { "" },
                        res.join(", "),
                        args.join(", ")
                    )?;
                    body.print(out, indent + 4)?;
                    writeln!(out, "{pad}  }}")?;
                }
            }
        }
        let outs: Vec<String> = f
            .outputs
            .iter()
            .map(|o| format!("{} = %{}", o.name, o.value.0))
            .collect();
        writeln!(out, "{pad}  return {}", outs.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::{FunctionBuilder, ReduceOp, verify};
    use expect_test::expect;

    fn t(dims: &[usize]) -> TensorType {
        TensorType::new(DType::F64, dims)
    }

    /// a = exp(x); s = sum(a, axis 1); b = a - broadcast(s); return b, s
    fn softmaxish() -> Function {
        let mut b = FunctionBuilder::new("softmaxish");
        let x = b.param("x", t(&[2, 3]));
        let a = b.unary(UnaryOp::Exp, x).unwrap();
        let s = b.reduce(ReduceOp::Sum, a, vec![1]).unwrap();
        let sb = b.broadcast(s, Shape::new(&[2, 3]), vec![0]).unwrap();
        let d = b.sub(a, sb).unwrap();
        let two = b.splat(t(&[2, 3]), 2.0);
        let m = b.mul(d, two).unwrap();
        let r = b.reshape(m, Shape::new(&[6])).unwrap();
        let f = b.finish([("b".to_string(), r), ("s".to_string(), s)]);
        verify(&f).unwrap();
        f
    }

    #[test]
    fn reduction_is_a_boundary_and_the_consumer_group_fuses_the_broadcast() {
        let plan = fuse(&softmaxish()).unwrap();
        expect![[r#"
            fused @softmaxish: 3 steps (2 fused kernels); loops 6 -> 3; intermediate bytes 144 -> 48
              alias %7: f64[6] = reshape %6
              kernel k0 [2,3] over 6: 1 op(s) (exp)
                in0 = %0: f64[2,3] (full)
                n0: f64 = load in0
                n1: f64 = exp n0
                out: %1 = n1
              op %2: f64[2] = reduce_sum %1
              kernel k1 [2,3] over 6: 3 op(s) (broadcast, sub, mul)
                in0 = %2: f64[2] (broadcast strides=[1, 0])
                in1 = %1: f64[2,3] (full)
                n0: f64 = load in0
                n1: f64 = load in1
                n2: f64 = sub n1, n0
                n3: f64 = const 2.0
                n4: f64 = mul n2, n3
                out: %6 = n4
              return b = %7, s = %2
        "#]]
        .assert_eq(&plan.to_string());
    }

    #[test]
    fn independent_chains_merge_and_sealed_groups_stay_closed() {
        // p = x*y ; q = exp(x) ; r = p + q  -> one kernel; m = matmul(r, w) ; u = r * 3 -> r's
        // group is sealed by the matmul, so u is a second kernel reading r.
        let mut b = FunctionBuilder::new("merge");
        let x = b.param("x", t(&[2, 2]));
        let y = b.param("y", t(&[2, 2]));
        let w = b.param("w", t(&[2, 2]));
        let p = b.mul(x, y).unwrap();
        let q = b.unary(UnaryOp::Exp, x).unwrap();
        let r = b.add(p, q).unwrap();
        let m = b.matmul(r, w, false, false).unwrap();
        let three = b.splat(t(&[2, 2]), 3.0);
        let u = b.mul(r, three).unwrap();
        let v = b.add(u, m).unwrap();
        let f = b.finish([("v".to_string(), v)]);
        let plan = fuse(&f).unwrap();
        let kinds: Vec<String> = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Kernel(k) => format!("k{}", k.insts.len()),
                Step::Op(i) => f.insts[*i].op.name().to_string(),
                Step::Scan { .. } => "scan".into(),
            })
            .collect();
        assert_eq!(kinds, ["k3", "matmul", "k2"]);
        assert_eq!(plan.report.kernels_before, 6);
        assert_eq!(plan.report.kernels_after, 3);
        assert_eq!(plan.kernels().len(), 2);
    }
}
