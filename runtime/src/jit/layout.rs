//! Buffer planning: one arena per function level, with liveness-based reuse.
//!
//! Every value a step writes gets a byte range in the level's arena. Two values share memory
//! only when their live ranges (from the step that defines them to the last step that reads
//! them, inclusive; function outputs live to the end) are disjoint, so a step never writes
//! over one of its own operands. Reshape aliases share their operand's storage; function
//! inputs and constants live outside the arena. Placement is greedy by decreasing size, at the
//! lowest offset free for the whole live range (offsets aligned to 64 bytes).

use brainlift_compiler::passes::fusion::{KernelPlan, Step};
use brainlift_ir::ValueId;

/// Alignment of every arena offset.
pub(crate) const ALIGN: usize = 64;

/// Where each value of a plan's function lives.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// The value whose storage each value uses (itself, or an alias's operand, recursively).
    pub root: Vec<ValueId>,
    /// Arena offset of each root value a step writes.
    pub offset: Vec<Option<usize>>,
    /// Total arena size in bytes.
    pub arena_bytes: usize,
    /// Sum of the sizes of all step results (what a plan without reuse would allocate).
    pub unshared_bytes: usize,
}

/// Values a step writes and reads (reads resolved by the caller through `root`).
pub(crate) fn step_defs_uses(plan: &KernelPlan, s: &Step) -> (Vec<ValueId>, Vec<ValueId>) {
    let f = &plan.func;
    match s {
        Step::Kernel(k) => (
            k.outputs.iter().map(|o| o.value).collect(),
            k.inputs.iter().map(|i| i.value).collect(),
        ),
        Step::Op(i) | Step::Scan { inst: i, .. } => {
            let inst = &f.insts[*i];
            (inst.results.to_vec(), inst.args.to_vec())
        }
    }
}

fn align(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// Plans the arena of one plan level.
pub(crate) fn plan_layout(plan: &KernelPlan) -> Layout {
    let f = &plan.func;
    let nv = f.types.len();
    let mut root: Vec<ValueId> = (0..nv).map(|v| ValueId(v as u32)).collect();
    for (v, a) in &plan.aliases {
        root[v.index()] = root[a.index()];
    }
    let end = plan.steps.len();
    let mut def: Vec<Option<usize>> = vec![None; nv];
    let mut last: Vec<usize> = vec![0; nv];
    for (si, s) in plan.steps.iter().enumerate() {
        let (defs, uses) = step_defs_uses(plan, s);
        for d in defs {
            let r = root[d.index()].index();
            if def[r].is_none() {
                def[r] = Some(si);
                last[r] = last[r].max(si);
            }
        }
        for u in uses {
            let r = root[u.index()].index();
            last[r] = last[r].max(si);
        }
    }
    for o in &f.outputs {
        last[root[o.value.index()].index()] = end;
    }
    // Scan results are written progressively; keep them apart from their own operands by the
    // inclusive ranges above. Items: (size, start, end, value).
    let mut items: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut unshared = 0;
    for v in 0..nv {
        if let Some(s) = def[v] {
            let size = align(f.types[v].size_bytes().max(1));
            unshared += f.types[v].size_bytes();
            items.push((size, s, last[v].max(s), v));
        }
    }
    items.sort_by(|a, b| b.0.cmp(&a.0).then(a.3.cmp(&b.3)));
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, start, end)
    let mut offset = vec![None; nv];
    let mut arena = 0;
    for (size, s, e, v) in items {
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|p| p.2 <= e && s <= p.3)
            .map(|p| (p.0, p.1))
            .collect();
        conflicts.sort_unstable();
        let mut off = 0;
        for (po, ps) in conflicts {
            if off + size <= po {
                break;
            }
            off = off.max(po + ps);
        }
        placed.push((off, size, s, e));
        offset[v] = Some(off);
        arena = arena.max(off + size);
    }
    Layout {
        root,
        offset,
        arena_bytes: arena,
        unshared_bytes: unshared,
    }
}
