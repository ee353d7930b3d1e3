//! The scan driver: a `scan` runs as a loop over its body's compiled steps, and — when its
//! body splits by rows ([`brainlift_compiler::passes::row_split`]) and more than one thread
//! is configured ([`crate::threads`]) — as independent loops over blocks of batch rows, one per
//! thread, with no synchronisation inside the time loop.
//!
//! Per step the body's params are bound to the current carry buffers, `x_t` by pointer offset
//! into `xs`, and the loop invariants; a body step that computes `y_t` writes it straight into
//! its slice of the stacked result, one that computes a new carry into the other half of a
//! ping-pong buffer pair (or into the stacked output the carry lives in, see [`CarryHome`]).
//! Nothing is allocated per step. A row block reads and writes its rows of every split
//! operand and result through byte offsets; whole (unsplit) operands are shared.

use super::{Chunk, Level, LevelState, alloc_bytes, build_level, direct_outputs, run_level};
use crate::RuntimeError;
use brainlift_compiler::codegen::{CodegenOptions, CompiledKernels};
use brainlift_compiler::passes::fusion::{self, KernelPlan};
use brainlift_compiler::passes::row_split::split_scan_body;
use brainlift_ir::{Function, Scan, ValueId};
use std::sync::Arc;

/// Rows below which a block is not worth a thread.
const MIN_ROWS_PER_BLOCK: usize = 8;
/// Rows per block from which a scan is cut into two blocks per thread (smaller blocks cost
/// more per-step dispatch than the balancing wins on an idle machine: measured 3-5% slower
/// for the tutorial's batches of 128 and 256).
const FINE_ROWS: usize = 128;
/// Elements a scan must touch (length × body values) before it is split.
const MIN_SPLIT_WORK: usize = 1 << 17;

/// A carry whose value every step also stacks into a `ys` output lives in that output's
/// slices instead of a ping-pong buffer, so the stacking costs no copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CarryHome {
    /// `ys[j][t]` is the carry *entering* step `t` (a saved residual): step `t` reads its
    /// carry from `ys[j][t]` and writes the new carry into the next step's slice (the last
    /// step into the final buffer).
    Input(usize),
    /// `ys[j][t]` is the carry *leaving* step `t`: step `t` writes it there and the next
    /// step reads it from there.
    Output(usize),
}

/// Finds a [`CarryHome`] for each carry of a scan body (`nc` carries): a `ys` output that is
/// the body's carry param (`Input`) or the same value as the body's carry output, shared with
/// no other carry output (`Output`). Each `ys` is the home of at most one carry.
fn carry_homes(body: &Function, nc: usize) -> Vec<Option<CarryHome>> {
    let outs: Vec<ValueId> = body.outputs.iter().map(|o| o.value).collect();
    let mut taken = vec![false; outs.len().saturating_sub(nc)];
    (0..nc)
        .map(|i| {
            let param = ValueId(i as u32);
            let input = (nc..outs.len()).find(|&j| outs[j] == param && !taken[j - nc]);
            if let Some(j) = input {
                taken[j - nc] = true;
                return Some(CarryHome::Input(j - nc));
            }
            let v = outs[i];
            let shared = (0..nc).any(|c| c != i && outs[c] == v) || v.index() < nc;
            let output = (nc..outs.len()).find(|&j| outs[j] == v && !taken[j - nc]);
            match output {
                Some(j) if !shared => {
                    taken[j - nc] = true;
                    Some(CarryHome::Output(j - nc))
                }
                _ => None,
            }
        })
        .collect()
}

/// One loop over a body level, for the whole batch or a block of its rows.
struct Driver {
    body: Level,
    /// Per body output (carries, then ys): the body values written straight into the next
    /// carry buffer / the `ys[t]` block (see [`direct_outputs`]); `None`: copied after a step.
    direct: Vec<Option<Vec<ValueId>>>,
    /// Per carry: the stacked output it lives in, if any.
    homes: Vec<Option<CarryHome>>,
    /// Byte offset of this block in every scan operand (initial carries, `x_t` slices,
    /// invariants); 0 for whole operands.
    arg_off: Vec<usize>,
    /// Byte offset of this block in every result (final carries, `y_t` slices).
    res_off: Vec<usize>,
    /// Bytes of each carry of this block.
    carry_bytes: Vec<usize>,
    /// Bytes of each `y_t` block.
    y_bytes: Vec<usize>,
    /// Keeps a row block's own kernels alive (the whole-batch body uses the function's).
    _kernels: Option<Arc<CompiledKernels>>,
}

/// A lowered `scan` step.
pub(super) struct ScanStep {
    length: usize,
    reverse: bool,
    num_carry: usize,
    num_xs: usize,
    /// The scan's operands and results in the enclosing level.
    pub(super) args: Vec<ValueId>,
    results: Vec<ValueId>,
    /// Bytes of one `x_t` slice and one `y_t` slice of the whole batch (the time strides).
    x_stride: Vec<usize>,
    y_stride: Vec<usize>,
    whole: Driver,
    /// Row blocks, run in parallel; empty: the whole batch on the calling thread.
    blocks: Vec<Driver>,
}

impl ScanStep {
    /// Number of row blocks run in parallel (0: not split).
    pub(super) fn num_blocks(&self) -> usize {
        self.blocks.len()
    }
}

/// Mutable state of one [`Driver`].
struct DriverState {
    body: LevelState,
    cur: Vec<Vec<Chunk>>,
    next: Vec<Vec<Chunk>>,
    /// Body parameter pointers (capacity reserved once).
    params: Vec<*mut u8>,
}

// SAFETY: the pointers point into buffers owned by this state or by the executable running
// the scan; a state is used by one thread at a time (each row block has its own).
unsafe impl Send for DriverState {}

/// Per-executable state of a scan step.
pub(super) struct ScanState {
    whole: DriverState,
    blocks: Vec<DriverState>,
}

fn driver_state(d: &Driver) -> DriverState {
    DriverState {
        body: super::new_state(&d.body),
        cur: d.carry_bytes.iter().map(|&b| alloc_bytes(b)).collect(),
        next: d.carry_bytes.iter().map(|&b| alloc_bytes(b)).collect(),
        params: Vec::with_capacity(d.arg_off.len()),
    }
}

/// Fresh state for `sc`.
pub(super) fn new_scan_state(sc: &ScanStep) -> ScanState {
    ScanState {
        whole: driver_state(&sc.whole),
        blocks: sc.blocks.iter().map(driver_state).collect(),
    }
}

/// Lowers the scan instruction `inst` of `f` whose fused body is `body`; with `allow_split`
/// and more than one configured thread, also compiles row blocks of the body when it splits.
pub(super) fn build_scan(
    f: &Function,
    inst: usize,
    s: &Scan,
    body: &KernelPlan,
    kernels: &CompiledKernels,
    opts: &CodegenOptions,
    threads: usize,
) -> Result<ScanStep, RuntimeError> {
    let i = &f.insts[inst];
    let (nc, nx) = (s.num_carry, s.num_xs);
    let args: Vec<ValueId> = i.args.to_vec();
    let carry_bytes: Vec<usize> = args[..nc].iter().map(|a| f.ty(*a).size_bytes()).collect();
    let x_stride = if s.length == 0 {
        vec![0; nx]
    } else {
        args[nc..nc + nx]
            .iter()
            .map(|a| {
                let t = f.ty(*a);
                t.size_bytes() / t.dims()[0].max(1)
            })
            .collect()
    };
    let y_stride: Vec<usize> = i.results[nc..]
        .iter()
        .map(|r| {
            let t = f.ty(*r);
            let per: usize = t.dims()[1..].iter().product();
            per * t.dtype.size_bytes()
        })
        .collect();
    let level = build_level(body, kernels, opts, 1)?;
    let whole = Driver {
        direct: direct_outputs(&level),
        homes: if s.length == 0 {
            vec![None; nc]
        } else {
            carry_homes(&level.func, nc)
        },
        body: level,
        arg_off: vec![0; args.len()],
        res_off: vec![0; i.results.len()],
        carry_bytes,
        y_bytes: y_stride.clone(),
        _kernels: None,
    };
    let blocks = if threads > 1 {
        row_blocks(s, body, opts, threads, &whole)?
    } else {
        vec![]
    };
    Ok(ScanStep {
        length: s.length,
        reverse: s.reverse,
        num_carry: nc,
        num_xs: nx,
        args,
        results: i.results.to_vec(),
        x_stride,
        y_stride,
        whole,
        blocks,
    })
}

/// Row blocks of a scan for `threads` threads, or none when the body does not split by rows
/// or the work is too small to pay for the threads.
fn row_blocks(
    s: &Scan,
    body: &KernelPlan,
    opts: &CodegenOptions,
    threads: usize,
    whole: &Driver,
) -> Result<Vec<Driver>, RuntimeError> {
    let bf = &body.func;
    let nc = s.num_carry;
    if nc == 0 || s.length == 0 {
        return Ok(vec![]);
    }
    let batch = bf.params[0].ty.dims().first().copied().unwrap_or(0);
    let work: usize = s.length * bf.types.iter().map(|t| t.numel()).sum::<usize>();
    // Two blocks per thread when each keeps FINE_ROWS rows (blocks are claimed dynamically,
    // so a thread slowed down by the host takes fewer), else one per thread.
    let fine = (2 * threads).min(batch / FINE_ROWS);
    let nblocks = fine.max(threads.min(batch / MIN_ROWS_PER_BLOCK));
    if nblocks < 2 || work < MIN_SPLIT_WORK {
        return Ok(vec![]);
    }
    let mut out = Vec::with_capacity(nblocks);
    let mut compiled: Vec<(usize, Arc<CompiledKernels>, KernelPlan, Vec<bool>)> = vec![];
    let mut row0 = 0;
    for b in 0..nblocks {
        let rows = batch / nblocks + usize::from(b < batch % nblocks);
        if !compiled.iter().any(|c| c.0 == rows) {
            let Some(split) = split_scan_body(bf, nc, batch, rows) else {
                return Ok(vec![]);
            };
            let plan = fusion::fuse(&split.body)?;
            let kernels =
                Arc::new(CompiledKernels::compile(&plan, opts).map_err(super::codegen_err)?);
            compiled.push((rows, kernels, plan, split.split_params));
        }
        let (_, kernels, plan, split_params) = compiled
            .iter()
            .find(|c| c.0 == rows)
            .expect("compiled above");
        let level = build_level(plan, kernels, opts, 1)?;
        let per_row = |bytes: usize| bytes / batch;
        // Operand offsets: carries and split xs / invariants by rows (x_t strides stay whole).
        let arg_off: Vec<usize> = (0..split_params.len())
            .map(|p| {
                if split_params[p] {
                    row0 * per_row(bf.params[p].ty.size_bytes())
                } else {
                    0
                }
            })
            .collect();
        let carry_bytes: Vec<usize> = whole
            .carry_bytes
            .iter()
            .map(|&b| rows * per_row(b))
            .collect();
        let mut res_off: Vec<usize> = whole
            .carry_bytes
            .iter()
            .map(|&b| row0 * per_row(b))
            .collect();
        res_off.extend(whole.y_bytes.iter().map(|&b| row0 * per_row(b)));
        let y_bytes = whole.y_bytes.iter().map(|&b| rows * per_row(b)).collect();
        out.push(Driver {
            direct: direct_outputs(&level),
            homes: carry_homes(&level.func, nc),
            body: level,
            arg_off,
            res_off,
            carry_bytes,
            y_bytes,
            _kernels: Some(kernels.clone()),
        });
        row0 += rows;
    }
    Ok(out)
}

/// Pointers of the enclosing level, shared read-only by the row blocks.
#[derive(Clone, Copy)]
struct Outer(*const *mut u8, usize);

// SAFETY: the blocks only read the pointer table; what they write through the pointers are
// disjoint rows of the results.
unsafe impl Send for Outer {}
// SAFETY: as above.
unsafe impl Sync for Outer {}

impl Outer {
    fn get(&self, v: ValueId) -> *mut u8 {
        debug_assert!(v.index() < self.1);
        // SAFETY: in bounds (the scan's values belong to the level); the table outlives it.
        unsafe { *self.0.add(v.index()) }
    }
}

/// Runs a scan step.
///
/// # Safety
/// `outer` must hold valid buffers of the enclosing level for the scan's operands and results.
pub(super) unsafe fn run_scan(sc: &ScanStep, ss: &mut ScanState, outer: &[*mut u8]) {
    let o = Outer(outer.as_ptr(), outer.len());
    if sc.blocks.is_empty() {
        // SAFETY: forwarded from the caller.
        unsafe { drive(sc, &sc.whole, &mut ss.whole, o) };
        return;
    }
    // Each block owns its state; the pool hands block i to one thread.
    let states = StatePtrs(ss.blocks.as_mut_ptr());
    crate::threads::run_blocks_at(sc as *const ScanStep as usize, sc.blocks.len(), &|i| {
        let states = &states;
        // SAFETY: block i is run exactly once per region, so its state is used by one thread;
        // each block writes its own rows (see `drive`).
        unsafe { drive(sc, &sc.blocks[i], &mut *states.0.add(i), o) };
    });
}

/// The row blocks' states, handed to the worker threads (block i touches only state i).
struct StatePtrs(*mut DriverState);
// SAFETY: see `run_scan`: disjoint elements, one thread each.
unsafe impl Sync for StatePtrs {}

/// The time loop of one driver: no allocation, `x_t` by pointer offset, carries ping-pong
/// (or live in their home output).
///
/// # Safety
/// As for [`run_scan`]; `d` belongs to `sc` and `st` to `d`.
unsafe fn drive(sc: &ScanStep, d: &Driver, st: &mut DriverState, outer: Outer) {
    let (nc, nx) = (sc.num_carry, sc.num_xs);
    let bf = &d.body.func;
    let len = sc.length;
    let slot = |step: usize| if sc.reverse { len - 1 - step } else { step };
    // SAFETY: every pointer stays within buffers sized from the verified types: a block's
    // offsets and sizes cover its own rows; `ys` slices are taken at steps `0..len`.
    unsafe {
        let ys = |j: usize, t: usize| {
            outer
                .get(sc.results[nc + j])
                .add(t * sc.y_stride[j] + d.res_off[nc + j])
        };
        for i in 0..nc {
            let dst = match d.homes[i] {
                Some(CarryHome::Input(j)) => ys(j, slot(0)),
                _ => st.cur[i].as_mut_ptr() as *mut u8,
            };
            let src = outer.get(sc.args[i]).add(d.arg_off[i]);
            std::ptr::copy_nonoverlapping(src, dst, d.carry_bytes[i]);
        }
        let mut params = std::mem::take(&mut st.params);
        let nparams = sc.args.len();
        for step in 0..len {
            let t = slot(step);
            let last = step + 1 == len;
            // Where this step's carries come from and go to.
            let carry_in = |i: usize, st: &DriverState| match d.homes[i] {
                Some(CarryHome::Input(j)) => ys(j, t),
                Some(CarryHome::Output(j)) if step > 0 => ys(j, slot(step - 1)),
                _ => st.cur[i].as_ptr() as *mut u8,
            };
            let carry_out = |i: usize, st: &mut DriverState| match d.homes[i] {
                Some(CarryHome::Input(j)) if !last => ys(j, slot(step + 1)),
                Some(CarryHome::Output(j)) => ys(j, t),
                _ => st.next[i].as_mut_ptr() as *mut u8,
            };
            // Bind params: carries, x_t slices, invariants. (`params` keeps its capacity.)
            params.clear();
            for i in 0..nc {
                params.push(carry_in(i, st));
            }
            for j in nc..nc + nx {
                params.push(
                    outer
                        .get(sc.args[j])
                        .add(t * sc.x_stride[j - nc] + d.arg_off[j]),
                );
            }
            for j in nc + nx..nparams {
                params.push(outer.get(sc.args[j]).add(d.arg_off[j]));
            }
            st.body.bind_params(&params);
            // Outputs computed by a body step are written in place: carries into the next
            // buffer set (or their home slice), y into its block of the stacked result.
            for (j, dv) in d.direct.iter().enumerate() {
                if let Some(vals) = dv {
                    let p = if j < nc {
                        carry_out(j, st)
                    } else {
                        ys(j - nc, t)
                    };
                    for v in vals {
                        st.body.ptrs[v.index()] = p;
                    }
                }
            }
            run_level(&d.body, &mut st.body);
            for (j, yb) in d.y_bytes.iter().enumerate() {
                let home = d.homes.iter().any(|h| {
                    matches!(h, Some(CarryHome::Input(k)) | Some(CarryHome::Output(k)) if *k == j)
                });
                if d.direct[nc + j].is_none() && !home {
                    let src = st.body.ptrs[bf.outputs[nc + j].value.index()];
                    std::ptr::copy_nonoverlapping(src, ys(j, t), *yb);
                }
            }
            for i in 0..nc {
                if d.direct[i].is_none() {
                    let src = st.body.ptrs[bf.outputs[i].value.index()];
                    let dst = carry_out(i, st);
                    if src != dst {
                        std::ptr::copy_nonoverlapping(src, dst, d.carry_bytes[i]);
                    }
                }
            }
            std::mem::swap(&mut st.cur, &mut st.next);
        }
        for i in 0..nc {
            let src = match d.homes[i] {
                Some(CarryHome::Output(j)) if len > 0 => ys(j, slot(len - 1)) as *const u8,
                _ => st.cur[i].as_ptr() as *const u8,
            };
            let dst = outer.get(sc.results[i]).add(d.res_off[i]);
            std::ptr::copy_nonoverlapping(src, dst, d.carry_bytes[i]);
        }
        st.params = params;
    }
}
