//! Non-elementwise steps as Rust loops over raw buffers: matmul (through the `gemm` crate),
//! reductions, argmax, cumsum and layout copies (transpose, slice, pad, concat).
//!
//! Every routine takes a descriptor computed once at compile time and raw pointers to dense
//! row-major buffers of the sizes the descriptor implies. Semantics are the interpreter's:
//! compound ops accumulate in `f64` in increasing index order and round each result element
//! once; `i32` sums and products wrap. Matmul on floats uses `gemm` (a different summation
//! order, so results agree to rounding, not bit for bit); `f32` matmul is computed in `f64`
//! and rounded once per element, like the interpreter.

use super::simd;
use brainlift_ir::{DType, ReduceOp, TensorType};

/// Reads element `i` of a buffer of `dt` as `f64`.
#[inline(always)]
pub(crate) unsafe fn read(p: *const u8, dt: DType, i: usize) -> f64 {
    // SAFETY: the caller guarantees `p` points to at least `i+1` elements of `dt`.
    unsafe {
        match dt {
            DType::F64 => *(p as *const f64).add(i),
            DType::F32 => *(p as *const f32).add(i) as f64,
            DType::I32 => *(p as *const i32).add(i) as f64,
            DType::Bool => (*p.add(i) != 0) as u8 as f64,
        }
    }
}

/// Writes `x` rounded to `dt` ([`DType::round`]) at element `i`.
#[inline(always)]
pub(crate) unsafe fn write(p: *mut u8, dt: DType, i: usize, x: f64) {
    // SAFETY: the caller guarantees `p` points to at least `i+1` elements of `dt`.
    unsafe {
        match dt {
            DType::F64 => *(p as *mut f64).add(i) = x,
            DType::F32 => *(p as *mut f32).add(i) = x as f32,
            DType::I32 => *(p as *mut i32).add(i) = x as i32,
            DType::Bool => *p.add(i) = (x != 0.0) as u8,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matmul

/// A batched matrix product `out[b] = op(a[b]) · op(b[b])`.
#[derive(Clone, Debug)]
pub(crate) struct MatmulDesc {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Row and column strides (elements) of the logical `m×k` lhs.
    pub a_rs: isize,
    pub a_cs: isize,
    /// Row and column strides of the logical `k×n` rhs.
    pub b_rs: isize,
    pub b_cs: isize,
    /// Elements per batch of each operand.
    pub a_batch: usize,
    pub b_batch: usize,
    pub dtype: DType,
    /// Blocks computed on parallel threads (1: serial); see [`MatmulDesc::parallel`].
    pub blocks: usize,
    /// The blocks split the contraction (partial products summed after) instead of the
    /// output rows.
    pub split_k: bool,
}

impl MatmulDesc {
    /// From the operand types and transpose flags (types already verified).
    pub fn new(a: &TensorType, b: &TensorType, tl: bool, tr: bool) -> MatmulDesc {
        let (ad, bd) = (a.dims(), b.dims());
        let r = ad.len();
        let batch = ad[..r - 2].iter().product();
        let (a0, a1, b0, b1) = (ad[r - 2], ad[r - 1], bd[r - 2], bd[r - 1]);
        let (m, k, a_rs, a_cs) = if tl {
            (a1, a0, 1, a1 as isize)
        } else {
            (a0, a1, a1 as isize, 1)
        };
        let (n, b_rs, b_cs) = if tr {
            (b0, 1, b1 as isize)
        } else {
            (b1, b1 as isize, 1)
        };
        MatmulDesc {
            batch,
            m,
            n,
            k,
            a_rs,
            a_cs,
            b_rs,
            b_cs,
            a_batch: a0 * a1,
            b_batch: b0 * b1,
            dtype: a.dtype,
            blocks: 1,
            split_k: false,
        }
    }

    /// Splits large single products for `threads` threads. A long contraction (a weight
    /// gradient summed over time × batch: `k` much larger than the output) is split into
    /// `k` ranges whose partial products are added in block order after the parallel part
    /// (rounding then differs from the serial sum, deterministically); otherwise the output
    /// rows are split, and every element is summed exactly as in the serial product.
    pub fn parallel(mut self, threads: usize) -> MatmulDesc {
        let big = self.m * self.n * self.k >= PARALLEL_MIN_MNK;
        if threads < 2 || !big || self.batch != 1 || self.dtype != DType::F64 {
            return self;
        }
        if self.k >= 4 * self.m.max(self.n) && std::env::var_os("TMP_NO_KSPLIT").is_none() {
            self.blocks = threads.min(self.k / PARALLEL_MIN_K).max(1);
            self.split_k = self.blocks > 1;
        } else {
            self.blocks = threads.min(self.m / PARALLEL_MIN_ROWS).max(1);
        }
        self
    }

    /// `f64` scratch elements needed (for `f32`: converted operands and result).
    pub fn scratch(&self) -> usize {
        if self.dtype == DType::F32 {
            self.batch * (self.a_batch + self.b_batch + self.m * self.n)
        } else if self.split_k {
            (self.blocks - 1) * self.m * self.n
        } else {
            0
        }
    }
}

/// Multiply-adds from which a product is split over threads ([`MatmulDesc::parallel`]).
const PARALLEL_MIN_MNK: usize = 1 << 22;
/// Fewest output rows per parallel block.
const PARALLEL_MIN_ROWS: usize = 16;
/// Shortest contraction range per parallel block.
const PARALLEL_MIN_K: usize = 256;

/// Below this many multiply-adds per batch (or for `k` up to [`SMALL_K`]) a plain loop beats
/// `gemm`'s packing; it also sums in the interpreter's order.
const SMALL_MNK: usize = 4096;
/// See [`SMALL_MNK`].
const SMALL_K: usize = 4;

/// `out[i, :] = sum_kk a[i, kk] * b[kk, :]`, accumulating in increasing `kk` (row by row).
unsafe fn small_f64(d: &MatmulDesc, a: *const f64, b: *const f64, out: *mut f64) {
    let (m, n, k) = (d.m, d.n, d.k);
    // SAFETY: offsets follow the operand strides within their buffers.
    unsafe {
        for bt in 0..d.batch {
            let (a, b) = (a.add(bt * d.a_batch), b.add(bt * d.b_batch));
            let o = std::slice::from_raw_parts_mut(out.add(bt * m * n), m * n);
            for i in 0..m {
                let row = &mut o[i * n..(i + 1) * n];
                row.fill(0.0);
                for kk in 0..k {
                    let x = *a.offset(i as isize * d.a_rs + kk as isize * d.a_cs);
                    let bp = b.offset(kk as isize * d.b_rs);
                    if d.b_cs == 1 {
                        let br = std::slice::from_raw_parts(bp, n);
                        for (r, y) in row.iter_mut().zip(br) {
                            *r += x * y;
                        }
                    } else {
                        for (j, r) in row.iter_mut().enumerate() {
                            *r += x * *bp.offset(j as isize * d.b_cs);
                        }
                    }
                }
            }
        }
    }
}

/// Event-driven product for a sparse lhs (spike trains: ~1% ones): when the rhs is narrow,
/// at most [`SPARSE_MAX_DENSITY`] of the lhs entries are nonzero and the rhs is finite, adds
/// only the rhs rows of nonzero lhs entries, in `k` order — the same sum as the reference
/// (skipped terms are exact zeros), at a cost proportional to the nonzeros. Returns false
/// (having written nothing) when the lhs is too dense; the scan for nonzeros stops early then.
unsafe fn sparse_lhs_f64(d: &MatmulDesc, a: *const f64, b: *const f64, out: *mut f64) -> bool {
    let (m, n, k) = (d.m, d.n, d.k);
    let row_major = d.a_cs == 1 && d.a_rs == k as isize;
    let col_major = d.a_rs == 1 && d.a_cs == m as isize;
    if n > SPARSE_MAX_N || m * k < SPARSE_MIN_LHS || d.batch != 1 || !(row_major || col_major) {
        return false;
    }
    // SAFETY (whole function): the lhs buffer holds m·k contiguous elements (one of the two
    // layouts checked above), the rhs is the logical k×n matrix of the verified operand type,
    // and `out` holds m×n elements.
    unsafe {
        let lhs = std::slice::from_raw_parts(a, m * k);
        for p in 0..k {
            for j in 0..n {
                if !(*b.offset(p as isize * d.b_rs + j as isize * d.b_cs)).is_finite() {
                    return false;
                }
            }
        }
        // One pass in memory order; give up (the caller's dense GEMM then overwrites `out`) as
        // soon as the lhs proves too dense, so a dense lhs costs a read of ~10% of it.
        let limit = ((m * k) as f64 * SPARSE_MAX_DENSITY) as usize;
        let mut nnz = 0usize;
        std::ptr::write_bytes(out, 0, m * n);
        // Add `v · b[p, :]` to `out[i, :]`; per output element the terms come in `p` order.
        let add_row = |i: usize, p: usize, v: f64| {
            let row = out.add(i * n);
            let brow = b.offset(p as isize * d.b_rs);
            for j in 0..n {
                *row.add(j) += v * *brow.offset(j as isize * d.b_cs);
            }
        };
        let (outer, inner) = if row_major { (m, k) } else { (k, m) };
        const CHUNK: usize = 8;
        for o in 0..outer {
            let line = &lhs[o * inner..(o + 1) * inner];
            for (c, chunk) in line.chunks(CHUNK).enumerate() {
                // Skip all-zero chunks with one vectorisable test (±0.0 both count as zero;
                // skipping a -0.0 term cannot change a sum that starts at +0.0).
                if chunk.iter().fold(0u64, |acc, x| acc | (x.to_bits() << 1)) == 0 {
                    continue;
                }
                for (r, &v) in chunk.iter().enumerate() {
                    if v != 0.0 {
                        let q = c * CHUNK + r;
                        nnz += 1;
                        if row_major {
                            add_row(o, q, v)
                        } else {
                            add_row(q, o, v)
                        }
                    }
                }
            }
            if nnz > limit {
                return false;
            }
        }
    }
    true
}

/// Widest rhs for which [`sparse_lhs_f64`] is tried (the spiking net's 100→10, 10→2 layers).
const SPARSE_MAX_N: usize = 32;
/// Smallest lhs (elements) worth scanning for zeros.
const SPARSE_MIN_LHS: usize = 4096;
/// Largest fraction of nonzero lhs entries for the event-driven path.
const SPARSE_MAX_DENSITY: f64 = 0.1;

/// Matrix-vector products (`n == 1` or `m == 1`, one batch): the output vector is a sum of
/// scaled contiguous rows or columns of the matrix operand (in `k` order per element, like the
/// reference), or a dot product per element when the matrix is contiguous along `k`. `gemm`
/// runs such shapes at a fraction of its speed. Returns false for other shapes.
unsafe fn thin_f64(d: &MatmulDesc, a: *const f64, b: *const f64, out: *mut f64) -> bool {
    let (m, n, k) = (d.m, d.n, d.k);
    if d.batch != 1 || !(m == 1 || n == 1) {
        return false;
    }
    // Orient as `out[len] = sum_kk coef[kk] * mat(kk, :)`: for n == 1 the matrix is the lhs
    // (element (i, kk) at i*rs + kk*cs), for m == 1 the rhs (element (kk, j)).
    let (len, mat, stride_len, stride_k, coef, coef_stride) = if n == 1 {
        (m, a, d.a_rs, d.a_cs, b, d.b_rs)
    } else {
        (n, b, d.b_cs, d.b_rs, a, d.a_cs)
    };
    // SAFETY: every index stays within the logical operand matrices of the verified types.
    unsafe {
        let o = std::slice::from_raw_parts_mut(out, len);
        if stride_len == 1 {
            o.fill(0.0);
            for kk in 0..k {
                let c = *coef.offset(kk as isize * coef_stride);
                let row = std::slice::from_raw_parts(mat.offset(kk as isize * stride_k), len);
                simd::axpy(c, row, o);
            }
            true
        } else if stride_k == 1 && coef_stride == 1 {
            let cv = std::slice::from_raw_parts(coef, k);
            for (i, r) in o.iter_mut().enumerate() {
                let row = std::slice::from_raw_parts(mat.offset(i as isize * stride_len), k);
                *r = simd::dot(row, cv);
            }
            true
        } else {
            false
        }
    }
}

unsafe fn gemm_f64(
    d: &MatmulDesc,
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) {
    let (m, n, k) = (d.m, d.n, d.k);
    // SAFETY: same buffers.
    if unsafe { sparse_lhs_f64(d, a, b, out) } {
        return;
    }
    if k <= SMALL_K || m * n * k <= SMALL_MNK {
        // SAFETY: same buffers.
        unsafe { small_f64(d, a, b, out) };
        return;
    }
    // SAFETY: same buffers.
    if k > 0 && unsafe { thin_f64(d, a, b, out) } {
        return;
    }
    if d.blocks > 1 && k > 0 {
        // SAFETY: each block writes its own output rows or its own partial product.
        unsafe { gemm_blocks(d, a, b, out, scratch) };
        return;
    }
    for bt in 0..d.batch {
        // SAFETY: offsets stay within the operand buffers (batch strides from their types).
        unsafe {
            let (a, b, o) = (
                a.add(bt * d.a_batch),
                b.add(bt * d.b_batch),
                out.add(bt * m * n),
            );
            if k == 0 {
                std::ptr::write_bytes(o, 0, m * n);
                continue;
            }
            gemm_rows(d, m, a, b, o);
        }
    }
}

/// The product for `rows` output rows and a contraction range of length `k` (> 0), starting
/// at `a` (lhs), `b` (rhs) and `o` (output rows): the packing-free kernel
/// ([`super::gemm`]) for a row-contiguous rhs and at most `MAX_M` rows, else the `gemm` crate.
unsafe fn gemm_part(
    d: &MatmulDesc,
    rows: usize,
    k: usize,
    a: *const f64,
    b: *const f64,
    o: *mut f64,
) {
    // SAFETY: the caller passes buffers holding these rows and this contraction range.
    unsafe {
        if d.b_cs == 1 && rows <= super::gemm::MAX_M && super::gemm::available() {
            super::gemm::gemm_nn(rows, d.n, k, a, d.a_rs, d.a_cs, b, d.b_rs, o);
            return;
        }
        gemm::gemm(
            rows,
            d.n,
            k,
            o,
            1,
            d.n as isize,
            false,
            a,
            d.a_cs,
            d.a_rs,
            b,
            d.b_cs,
            d.b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `gemm` for `rows` output rows starting at `a` (lhs rows) and `o` (output rows).
unsafe fn gemm_rows(d: &MatmulDesc, rows: usize, a: *const f64, b: *const f64, o: *mut f64) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_part(d, rows, d.k, a, b, o) }
}

/// Pointers handed to the worker threads.
#[derive(Clone, Copy)]
struct SendPtrs(*const f64, *const f64, *mut f64, *mut f64);
// SAFETY: the blocks read shared operands and write disjoint output rows or partials.
unsafe impl Send for SendPtrs {}
// SAFETY: as above.
unsafe impl Sync for SendPtrs {}

/// A single product split into `d.blocks` blocks on the worker pool (block 0 on the calling
/// thread; serial when the pool is unavailable): output rows, or contraction ranges whose
/// partial products (block 0 in `out`, the others in `scratch`) are then added in order.
unsafe fn gemm_blocks(
    d: &MatmulDesc,
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) {
    let mn = d.m * d.n;
    let p = SendPtrs(a, b, out, scratch.as_mut_ptr());
    let block = move |i: usize| {
        let p = p;
        // SAFETY: block `i` reads its rows (or contraction range) of the operands and writes
        // its rows of `out` (or its own `m×n` partial: `out` for block 0, scratch slot i-1).
        unsafe {
            if d.split_k {
                let (k0, k1) = (d.k * i / d.blocks, d.k * (i + 1) / d.blocks);
                let o = if i == 0 { p.2 } else { p.3.add((i - 1) * mn) };
                gemm_part(
                    d,
                    d.m,
                    k1 - k0,
                    p.0.offset(k0 as isize * d.a_cs),
                    p.1.offset(k0 as isize * d.b_rs),
                    o,
                );
            } else {
                let (r0, r1) = (d.m * i / d.blocks, d.m * (i + 1) / d.blocks);
                gemm_rows(
                    d,
                    r1 - r0,
                    p.0.offset(r0 as isize * d.a_rs),
                    p.1,
                    p.2.add(r0 * d.n),
                );
            }
        }
    };
    match crate::threads::pool() {
        Some(pool) => pool.in_place_scope(|s| {
            for i in 1..d.blocks {
                s.spawn(move |_| block(i));
            }
            block(0);
        }),
        None => (0..d.blocks).for_each(block),
    }
    if d.split_k {
        // SAFETY: `out` holds m×n elements; the partials fill `(blocks-1)·m·n` of scratch.
        let o = unsafe { std::slice::from_raw_parts_mut(out, mn) };
        for part in scratch[..(d.blocks - 1) * mn].chunks_exact(mn) {
            for (x, y) in o.iter_mut().zip(part) {
                *x += y;
            }
        }
    }
}

/// Runs a matmul. `scratch` must hold at least [`MatmulDesc::scratch`] elements.
pub(crate) unsafe fn matmul(
    d: &MatmulDesc,
    a: *const u8,
    b: *const u8,
    out: *mut u8,
    scratch: &mut [f64],
) {
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return;
    }
    // SAFETY: buffer sizes follow from the verified operand types.
    unsafe {
        match d.dtype {
            DType::F64 => gemm_f64(
                d,
                a as *const f64,
                b as *const f64,
                out as *mut f64,
                scratch,
            ),
            DType::F32 => {
                let na = d.batch * d.a_batch;
                let nb = d.batch * d.b_batch;
                let (sa, rest) = scratch.split_at_mut(na);
                let (sb, so) = rest.split_at_mut(nb);
                for (i, x) in sa.iter_mut().enumerate() {
                    *x = *(a as *const f32).add(i) as f64;
                }
                for (i, x) in sb.iter_mut().enumerate() {
                    *x = *(b as *const f32).add(i) as f64;
                }
                gemm_f64(d, sa.as_ptr(), sb.as_ptr(), so.as_mut_ptr(), &mut []);
                let o = out as *mut f32;
                for (i, x) in so.iter().take(d.batch * d.m * d.n).enumerate() {
                    *o.add(i) = *x as f32;
                }
            }
            _ => {
                // i32 (wrapping), like the interpreter.
                let (a, b, o) = (a as *const i32, b as *const i32, out as *mut i32);
                for bt in 0..d.batch {
                    for i in 0..d.m {
                        for j in 0..d.n {
                            let mut acc = 0i32;
                            for kk in 0..d.k {
                                let x = *a.offset(
                                    (bt * d.a_batch) as isize
                                        + i as isize * d.a_rs
                                        + kk as isize * d.a_cs,
                                );
                                let y = *b.offset(
                                    (bt * d.b_batch) as isize
                                        + kk as isize * d.b_rs
                                        + j as isize * d.b_cs,
                                );
                                acc = acc.wrapping_add(x.wrapping_mul(y));
                            }
                            *o.add((bt * d.m + i) * d.n + j) = acc;
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions

/// A reduction over some axes, with the operand's axes collapsed into runs.
#[derive(Clone, Debug)]
pub(crate) struct ReduceDesc {
    pub op: ReduceOp,
    pub dtype: DType,
    /// `(size, input stride, output stride)` per collapsed axis (output stride 0 = reduced).
    pub dims: Vec<(usize, usize, usize)>,
    pub in_numel: usize,
    pub out_numel: usize,
}

impl ReduceDesc {
    /// From the operand type and the reduced axes.
    pub fn new(op: ReduceOp, a: &TensorType, axes: &[usize]) -> ReduceDesc {
        let in_strides = a.shape.strides();
        let kept: Vec<usize> = (0..a.rank()).filter(|i| !axes.contains(i)).collect();
        let out_dims: Vec<usize> = kept.iter().map(|&i| a.dims()[i]).collect();
        let out_strides = brainlift_ir::Shape::new(&out_dims).strides();
        let mut dims: Vec<(usize, usize, usize)> = Vec::new();
        let mut j = 0;
        for i in 0..a.rank() {
            let os = if axes.contains(&i) {
                0
            } else {
                j += 1;
                out_strides[j - 1]
            };
            let d = a.dims()[i];
            if d == 1 {
                continue;
            }
            // Merge with the previous run when it is contiguous with this axis.
            if let Some(last) = dims.last_mut()
                && last.1 == in_strides[i] * d
                && last.2 == os * d
            {
                *last = (last.0 * d, in_strides[i], os);
                continue;
            }
            dims.push((d, in_strides[i], os));
        }
        ReduceDesc {
            op,
            dtype: a.dtype,
            dims,
            in_numel: a.numel(),
            out_numel: out_dims.iter().product(),
        }
    }

    /// `f64` scratch elements needed (accumulators for non-`f64` results).
    pub fn scratch(&self) -> usize {
        if self.dtype == DType::F64 {
            0
        } else {
            self.out_numel
        }
    }
}

unsafe fn reduce_rec<T: Copy>(
    dims: &[(usize, usize, usize)],
    x: *const T,
    acc: *mut f64,
    conv: impl Fn(T) -> f64 + Copy,
    comb: impl Fn(f64, f64) -> f64 + Copy,
) {
    // SAFETY: offsets follow the collapsed shape of the operand and the result.
    unsafe {
        match dims {
            [] => *acc = comb(*acc, conv(*x)),
            [(d, is, os)] => {
                if *os == 0 {
                    let mut s = *acc;
                    for i in 0..*d {
                        s = comb(s, conv(*x.add(i * is)));
                    }
                    *acc = s;
                } else if *is == 1 && *os == 1 {
                    // Contiguous on both sides: slices let the loop vectorise (same order).
                    let acc = std::slice::from_raw_parts_mut(acc, *d);
                    let x = std::slice::from_raw_parts(x, *d);
                    for (p, v) in acc.iter_mut().zip(x) {
                        *p = comb(*p, conv(*v));
                    }
                } else {
                    for i in 0..*d {
                        let p = acc.add(i * os);
                        *p = comb(*p, conv(*x.add(i * is)));
                    }
                }
            }
            [(d, is, os), rest @ ..] => {
                for i in 0..*d {
                    reduce_rec(rest, x.add(i * is), acc.add(i * os), conv, comb);
                }
            }
        }
    }
}

/// Runs a reduction; `scratch` holds at least [`ReduceDesc::scratch`] elements.
pub(crate) unsafe fn reduce(d: &ReduceDesc, x: *const u8, out: *mut u8, scratch: &mut [f64]) {
    let init = d.op.init();
    // SAFETY: buffer sizes follow from the verified types.
    unsafe {
        if d.dtype == DType::I32 && d.op == ReduceOp::Sum {
            let o = out as *mut i32;
            for i in 0..d.out_numel {
                *o.add(i) = 0;
            }
            if d.in_numel > 0 {
                reduce_i32_sum(&d.dims, x as *const i32, o);
            }
            return;
        }
        let acc: *mut f64 = if d.dtype == DType::F64 {
            out as *mut f64
        } else {
            scratch.as_mut_ptr()
        };
        for i in 0..d.out_numel {
            *acc.add(i) = init;
        }
        if d.in_numel > 0 {
            let op = d.op;
            match (op, d.dtype) {
                (ReduceOp::Sum, DType::F64) => {
                    reduce_rec(&d.dims, x as *const f64, acc, |v| v, |a, b| a + b)
                }
                (_, DType::F64) => reduce_rec(
                    &d.dims,
                    x as *const f64,
                    acc,
                    |v| v,
                    move |a, b| op.combine(a, b),
                ),
                (_, DType::F32) => reduce_rec(
                    &d.dims,
                    x as *const f32,
                    acc,
                    |v| v as f64,
                    move |a, b| op.combine(a, b),
                ),
                _ => reduce_rec(
                    &d.dims,
                    x as *const i32,
                    acc,
                    |v| v as f64,
                    move |a, b| op.combine(a, b),
                ),
            }
        }
        if d.dtype != DType::F64 {
            for i in 0..d.out_numel {
                write(out, d.dtype, i, *acc.add(i));
            }
        }
    }
}

unsafe fn reduce_i32_sum(dims: &[(usize, usize, usize)], x: *const i32, acc: *mut i32) {
    // SAFETY: as in `reduce_rec`.
    unsafe {
        match dims {
            [] => *acc = (*acc).wrapping_add(*x),
            [(d, is, os), rest @ ..] => {
                for i in 0..*d {
                    reduce_i32_sum(rest, x.add(i * is), acc.add(i * os));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Argmax and cumsum

/// `(outer, len, inner)` around one axis.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AxisDesc {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    pub dtype: DType,
}

impl AxisDesc {
    /// Splits the operand's shape at `axis`.
    pub fn new(a: &TensorType, axis: usize) -> AxisDesc {
        let d = a.dims();
        AxisDesc {
            outer: d[..axis].iter().product(),
            len: d[axis],
            inner: d[axis + 1..].iter().product(),
            dtype: a.dtype,
        }
    }
}

/// First index of the maximum along the axis (NaN counts as largest; the first NaN wins).
pub(crate) unsafe fn argmax(d: &AxisDesc, x: *const u8, out: *mut u8) {
    let o = out as *mut i32;
    // SAFETY: sizes follow from the verified types.
    unsafe {
        for a in 0..d.outer {
            for i in 0..d.inner {
                let at = |k: usize| read(x, d.dtype, (a * d.len + k) * d.inner + i);
                let mut best = 0;
                let mut bv = at(0);
                for k in 1..d.len {
                    if bv.is_nan() {
                        break;
                    }
                    let v = at(k);
                    if v.is_nan() || v > bv {
                        best = k;
                        bv = v;
                    }
                }
                *o.add(a * d.inner + i) = best as i32;
            }
        }
    }
}

/// Inclusive cumulative sum along the axis (`f64` accumulator, each element rounded once;
/// `i32` wraps).
pub(crate) unsafe fn cumsum(d: &AxisDesc, reverse: bool, x: *const u8, out: *mut u8) {
    // SAFETY: sizes follow from the verified types.
    unsafe {
        for a in 0..d.outer {
            for i in 0..d.inner {
                let mut acc = 0.0f64;
                let mut iacc = 0i32;
                for step in 0..d.len {
                    let k = if reverse { d.len - 1 - step } else { step };
                    let at = (a * d.len + k) * d.inner + i;
                    match d.dtype {
                        DType::I32 => {
                            iacc = iacc.wrapping_add(*(x as *const i32).add(at));
                            *(out as *mut i32).add(at) = iacc;
                        }
                        dt => {
                            acc += read(x, dt, at);
                            write(out, dt, at, acc);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layout copies

/// A strided copy of a block of `dims` elements.
#[derive(Clone, Debug)]
pub(crate) struct CopyDesc {
    pub dims: Vec<usize>,
    pub src_offset: usize,
    pub src_strides: Vec<usize>,
    pub dst_offset: usize,
    pub dst_strides: Vec<usize>,
}

impl CopyDesc {
    /// Drops size-1 axes and merges axes contiguous in both source and destination.
    pub fn simplified(mut self) -> CopyDesc {
        let mut dims = Vec::new();
        let mut ss: Vec<usize> = Vec::new();
        let mut ds: Vec<usize> = Vec::new();
        for i in 0..self.dims.len() {
            let d = self.dims[i];
            if d == 1 {
                continue;
            }
            if let (Some(ld), Some(ls), Some(lds)) = (dims.last_mut(), ss.last_mut(), ds.last_mut())
                && *ls == self.src_strides[i] * d
                && *lds == self.dst_strides[i] * d
            {
                *ld *= d;
                *ls = self.src_strides[i];
                *lds = self.dst_strides[i];
                continue;
            }
            dims.push(d);
            ss.push(self.src_strides[i]);
            ds.push(self.dst_strides[i]);
        }
        self.dims = dims;
        self.src_strides = ss;
        self.dst_strides = ds;
        self
    }

    fn numel(&self) -> usize {
        self.dims.iter().product()
    }
}

unsafe fn copy_rec<T: Copy>(
    dims: &[usize],
    ss: &[usize],
    ds: &[usize],
    src: *const T,
    dst: *mut T,
) {
    // SAFETY: offsets follow the descriptor, which was derived from the verified types.
    unsafe {
        match dims.len() {
            0 => *dst = *src,
            1 => {
                if ss[0] == 1 && ds[0] == 1 {
                    std::ptr::copy_nonoverlapping(src, dst, dims[0]);
                } else {
                    for i in 0..dims[0] {
                        *dst.add(i * ds[0]) = *src.add(i * ss[0]);
                    }
                }
            }
            _ => {
                for i in 0..dims[0] {
                    copy_rec(
                        &dims[1..],
                        &ss[1..],
                        &ds[1..],
                        src.add(i * ss[0]),
                        dst.add(i * ds[0]),
                    );
                }
            }
        }
    }
}

/// Runs a strided copy of elements of `dt`.
pub(crate) unsafe fn copy(d: &CopyDesc, dt: DType, src: *const u8, dst: *mut u8) {
    if d.numel() == 0 {
        return;
    }
    // SAFETY: as in `copy_rec`.
    unsafe {
        match dt.size_bytes() {
            8 => copy_rec(
                &d.dims,
                &d.src_strides,
                &d.dst_strides,
                (src as *const u64).add(d.src_offset),
                (dst as *mut u64).add(d.dst_offset),
            ),
            4 => copy_rec(
                &d.dims,
                &d.src_strides,
                &d.dst_strides,
                (src as *const u32).add(d.src_offset),
                (dst as *mut u32).add(d.dst_offset),
            ),
            _ => copy_rec(
                &d.dims,
                &d.src_strides,
                &d.dst_strides,
                src.add(d.src_offset),
                dst.add(d.dst_offset),
            ),
        }
    }
}
