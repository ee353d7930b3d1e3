//! Non-elementwise steps as Rust loops over raw buffers: matmul (through the `gemm` crate),
//! reductions, argmax, cumsum and layout copies (transpose, slice, pad, concat).
//!
//! Every routine takes a descriptor computed once at compile time and raw pointers to dense
//! row-major buffers of the sizes the descriptor implies. Semantics are the interpreter's:
//! compound ops accumulate in `f64` in increasing index order and round each result element
//! once; `i32` sums and products wrap. Matmul on floats uses `gemm` (a different summation
//! order, so results agree to rounding, not bit for bit); `f32` matmul is computed in `f64`
//! and rounded once per element, like the interpreter. A `bool` lhs (spike trains) is read
//! as bytes by an event-driven product that adds the rhs rows of its true entries (exactly
//! the reference sum); when it is too dense it is converted to 0.0/1.0 and multiplied densely.

use super::simd;
use brainlift_ir::{DType, ReduceOp, TensorType};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    /// The result dtype (the rhs's; the lhs's too unless `bool_lhs`).
    pub dtype: DType,
    /// The lhs is `bool` (bytes, nonzero = 1) and the rhs a float.
    pub bool_lhs: bool,
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
            dtype: b.dtype,
            bool_lhs: a.dtype == DType::Bool,
            blocks: 1,
            split_k: false,
        }
    }

    /// Splits large single products into blocks run on `threads` threads.
    ///
    /// A long contraction with a float lhs (a weight gradient summed over time × batch: `k`
    /// at least 4× the output's sides) is *always* computed as [`K_PARTS`] partial products
    /// over `k` ranges added in order — on one thread too — so its rounding is the same for
    /// every thread count (and differs from one unsplit sum only by that association). Other
    /// large products split their output rows (the event-driven lines, for a `bool` lhs) when
    /// there are threads, and every element is summed exactly as in the serial product. So
    /// no result depends on the thread count.
    pub fn parallel(mut self, threads: usize) -> MatmulDesc {
        let big = self.m * self.n * self.k >= PARALLEL_MIN_MNK;
        if !big || self.batch != 1 || self.dtype != DType::F64 {
            return self;
        }
        if !self.bool_lhs && self.k >= 4 * self.m.max(self.n) && self.k >= K_PARTS * PARALLEL_MIN_K
        {
            self.blocks = K_PARTS;
            self.split_k = true;
        } else if threads > 1 {
            self.blocks = threads.min(self.m / PARALLEL_MIN_ROWS).max(1);
        }
        self
    }

    /// `f64` scratch elements needed (for `f32`: converted operands and result; for a
    /// `bool` lhs of an `f64` product: the lhs converted for the dense path; for a split
    /// contraction: the partial products of blocks 1..).
    pub fn scratch(&self) -> usize {
        if self.dtype == DType::F32 {
            self.batch * (self.a_batch + self.b_batch + self.m * self.n)
        } else if self.bool_lhs {
            self.batch * self.a_batch
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
/// Partial products of a long contraction (fixed, so the rounding does not depend on the
/// thread count; claimed dynamically by however many threads there are).
const K_PARTS: usize = 4;

/// Below this many multiply-adds per batch (or for `k` up to [`SMALL_K`]) a plain loop beats
/// `gemm`'s packing; it also sums in the interpreter's order.
const SMALL_MNK: usize = 4096;
/// See [`SMALL_MNK`].
const SMALL_K: usize = 4;
/// Products with at most [`NARROW_N`] output columns and this many multiply-adds run as
/// plain loops too (`gemm` is slow for such narrow outputs).
const NARROW_MNK: usize = 1 << 14;
/// See [`NARROW_MNK`].
const NARROW_N: usize = 3;
/// The widest output row [`small_f64`] keeps in registers.
const NARROW_MAX_N: usize = 16;

/// `out[i, :] = sum_kk a[i, kk] * b[kk, :]`, accumulating in increasing `kk` (row by row).
unsafe fn small_f64(d: &MatmulDesc, a: *const f64, b: *const f64, out: *mut f64) {
    let (m, n, k) = (d.m, d.n, d.k);
    // Narrow products (a spiking layer's 10 -> 2 readout, its transposed cotangent) with the
    // row in registers: the same operations in the same order, without a loop over `n`.
    // (width, rows computed together): about 8 SSE registers of accumulators.
    macro_rules! narrow {
        ($(($w:literal, $r:literal))*) => {
            match n {
                $($w => return unsafe { small_narrow_f64::<$w, $r>(d, a, b, out) },)*
                _ => {}
            }
        };
    }
    narrow!((1, 8)(2, 8)(3, 4)(4, 4)(5, 2)(6, 2)(7, 2)(8, 2)(9, 1)(
        10, 1
    )(11, 1)(12, 1)(13, 1)(14, 1)(15, 1)(16, 1));
    const _: () = assert!(NARROW_MAX_N == 16);
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

/// [`small_f64`] for `n == N`: output rows accumulated in `N` locals each, `R` rows at a
/// time (independent dependency chains; each element still sums its terms in increasing
/// `kk`, starting from 0.0).
unsafe fn small_narrow_f64<const N: usize, const R: usize>(
    d: &MatmulDesc,
    a: *const f64,
    b: *const f64,
    out: *mut f64,
) {
    // `R` rows from row `i`: out[i + r, :] = sum_kk a[i + r, kk] * b[kk, :].
    #[inline(always)]
    unsafe fn rows<const N: usize, const R: usize>(
        d: &MatmulDesc,
        a: *const f64,
        b: *const f64,
        o: *mut f64,
        i: usize,
    ) {
        // SAFETY: rows i..i+R of the lhs and the output, every row of the rhs (`d.n == N`).
        unsafe {
            let mut acc = [[0.0f64; N]; R];
            for kk in 0..d.k {
                let bp = b.offset(kk as isize * d.b_rs);
                let mut br = [0.0f64; N];
                if d.b_cs == 1 {
                    br = *(bp as *const [f64; N]);
                } else {
                    for (j, y) in br.iter_mut().enumerate() {
                        *y = *bp.offset(j as isize * d.b_cs);
                    }
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = *a.offset((i + r) as isize * d.a_rs + kk as isize * d.a_cs);
                    for (s, y) in row.iter_mut().zip(&br) {
                        *s += x * y;
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                std::ptr::copy_nonoverlapping(row.as_ptr(), o.add((i + r) * N), N);
            }
        }
    }
    // SAFETY: offsets follow the operand strides within their buffers.
    unsafe {
        for bt in 0..d.batch {
            let (a, b) = (a.add(bt * d.a_batch), b.add(bt * d.b_batch));
            let o = out.add(bt * d.m * N);
            let full = d.m - d.m % R;
            for i in (0..full).step_by(R) {
                rows::<N, R>(d, a, b, o, i);
            }
            for i in full..d.m {
                rows::<N, 1>(d, a, b, o, i);
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

/// `scratch` holds the partial products of a split contraction ([`MatmulDesc::scratch`]).
unsafe fn gemm_f64(
    d: &MatmulDesc,
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) {
    // SAFETY: same buffers.
    unsafe {
        // Matrix-vector products first: the event-driven scan only pays for a sparse lhs
        // times a wider rhs, and would read part of a dense lhs before giving up.
        let thin = (d.m == 1 || d.n == 1) && d.k > SMALL_K;
        if thin || !sparse_lhs_f64(d, a, b, out) {
            dense_f64(d, a, b, out, scratch);
        }
    }
}

/// The dense products: plain loops for tiny ones, matrix-vector loops, `gemm` (in row blocks
/// on threads when [`MatmulDesc::blocks`] > 1).
unsafe fn dense_f64(
    d: &MatmulDesc,
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) {
    let (m, n, k) = (d.m, d.n, d.k);
    if k <= SMALL_K || m * n * k <= SMALL_MNK {
        // SAFETY: same buffers.
        unsafe { small_f64(d, a, b, out) };
        return;
    }
    // SAFETY: same buffers.
    if k > 0 && unsafe { thin_f64(d, a, b, out) } {
        return;
    }
    if n <= NARROW_N && m * n * k <= NARROW_MNK {
        // SAFETY: same buffers.
        unsafe { small_f64(d, a, b, out) };
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
/// ([`super::gemm`], in pieces of at most `MAX_M` rows) for a row-contiguous rhs, else the
/// `gemm` crate.
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
        if d.b_cs == 1 && super::gemm::available() {
            // In pieces of at most MAX_M rows: every row-contiguous product runs on this
            // kernel, whatever the number of rows a thread gets (the `gemm` crate's sums
            // differ in the last bits, so results would depend on the thread count).
            let mut r0 = 0;
            while r0 < rows {
                let r = super::gemm::MAX_M.min(rows - r0);
                let (a, o) = (a.offset(r0 as isize * d.a_rs), o.add(r0 * d.n));
                super::gemm::gemm_nn(r, d.n, k, a, d.a_rs, d.a_cs, b, d.b_rs, o);
                r0 += r;
            }
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

/// The product for `rows` output rows starting at `a` (lhs rows) and `o` (output rows).
unsafe fn gemm_rows(d: &MatmulDesc, rows: usize, a: *const f64, b: *const f64, o: *mut f64) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_part(d, rows, d.k, a, b, o) }
}

/// Operand pointers handed to the worker threads.
#[derive(Clone, Copy)]
struct SendPtrs<A>(*const A, *const f64, *mut f64);
// SAFETY: the blocks read shared operands and write disjoint output rows.
unsafe impl<A> Send for SendPtrs<A> {}
// SAFETY: as above.
unsafe impl<A> Sync for SendPtrs<A> {}

/// Runs `block(0..blocks)` for the product `d` on the worker pool, or serially when the pool
/// is unavailable or has been slower for this product ([`crate::threads::run_blocks_at`]).
fn run_blocks(d: &MatmulDesc, blocks: usize, block: impl Fn(usize) + Sync) {
    crate::threads::run_blocks_at(d as *const MatmulDesc as usize, blocks, &block);
}

/// Contraction range of part `i` of `parts` over `k`: boundaries on whole contraction blocks of
/// the GEMM kernel ([`super::gemm::KC`]), so the parts cut it where the unsplit product would
/// (a weight gradient's blocks then stay one time step each when the batch is `KC`).
fn split_range(k: usize, parts: usize, i: usize) -> (usize, usize) {
    let at = |p: usize| {
        if p == parts {
            k
        } else {
            ((k * p / parts + super::gemm::KC / 2) / super::gemm::KC * super::gemm::KC).min(k)
        }
    };
    (at(i), at(i + 1))
}

/// Output rows `r0..r1` of block `i` of `blocks` over `m` rows.
fn block_rows(m: usize, blocks: usize, i: usize) -> (usize, usize) {
    (m * i / blocks, m * (i + 1) / blocks)
}

/// A single product split into `d.blocks` blocks on the worker pool: output rows, or
/// contraction ranges whose partial products (block 0 in `out`, the others in `scratch`) are
/// then added in block order.
unsafe fn gemm_blocks(
    d: &MatmulDesc,
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) {
    let mn = d.m * d.n;
    let p = SendPtrs(a, b, out);
    let partials = SendPtrs(a, b, scratch.as_mut_ptr());
    run_blocks(d, d.blocks, move |i: usize| {
        let (p, partials) = (p, partials);
        // SAFETY: block `i` reads its rows (or contraction range) of the operands and writes
        // its rows of `out` (or its own m×n partial: `out` for block 0, scratch slot i-1).
        unsafe {
            if d.split_k {
                let (k0, k1) = split_range(d.k, d.blocks, i);
                let o = if i == 0 {
                    p.2
                } else {
                    partials.2.add((i - 1) * mn)
                };
                gemm_part(
                    d,
                    d.m,
                    k1 - k0,
                    p.0.offset(k0 as isize * d.a_cs),
                    p.1.offset(k0 as isize * d.b_rs),
                    o,
                );
            } else {
                let (r0, r1) = block_rows(d.m, d.blocks, i);
                gemm_rows(
                    d,
                    r1 - r0,
                    p.0.offset(r0 as isize * d.a_rs),
                    p.1,
                    p.2.add(r0 * d.n),
                );
            }
        }
    });
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

// ---------------------------------------------------------------------------------------------
// Matmul with a bool lhs

/// True when every element of `v` is finite (one vectorisable pass, no early exit): `x · 0`
/// is ±0 for a finite `x` and NaN (every exponent bit set) for an infinite or NaN one, so the
/// OR of those bits has exponent bits iff some element is not finite.
#[inline]
pub(crate) fn all_finite(v: &[f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    v.iter().fold(0u64, |acc, x| acc | (x * 0.0).to_bits()) & EXP == 0
}

/// Bit `i` set iff `b[i] != 0`, for the first 64 bytes of `b`.
#[inline(always)]
fn nonzero_mask64(b: &[u8]) -> u64 {
    assert!(b.len() >= 64);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
        };
        let mut zero_bits = 0u64;
        for j in 0..4 {
            // SAFETY: SSE2 is part of x86-64; the 16 bytes at 16·j lie within `b` (checked).
            let z = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(16 * j) as *const __m128i);
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))
            };
            zero_bits |= (z as u32 as u64) << (16 * j);
        }
        !zero_bits
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        nonzero_mask64_swar(b)
    }
}

/// [`nonzero_mask64`] with 64-bit integer operations only.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn nonzero_mask64_swar(b: &[u8]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut m = 0u64;
    for j in 0..8 {
        let w = u64::from_le_bytes(b[8 * j..8 * j + 8].try_into().expect("8 bytes"));
        // The high bit of each byte set iff the byte is nonzero (no carries between bytes);
        // the multiply gathers the 8 flags into the top byte.
        let hits = (((w & LOW7) + LOW7) | w) & HIGH;
        m |= ((hits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * j);
    }
    m
}

/// A routine for [`nonzero_mask64`]'s job, one per instruction set: the event-driven
/// products are compiled once per routine and pick the best the CPU has at run time.
trait ByteMask {
    /// Bit `i` set iff `b[i] != 0`, for the first 64 bytes of `b`.
    fn mask64(b: &[u8]) -> u64;
}

/// Any CPU: [`nonzero_mask64`] (SSE2 on x86-64).
struct PortableMask;

impl ByteMask for PortableMask {
    #[inline(always)]
    fn mask64(b: &[u8]) -> u64 {
        nonzero_mask64(b)
    }
}

/// Two 32-byte compares; only used inside functions compiled with AVX2 enabled (after
/// run-time detection), where the intrinsics inline.
#[cfg(target_arch = "x86_64")]
struct Avx2Mask;

#[cfg(target_arch = "x86_64")]
impl ByteMask for Avx2Mask {
    #[inline(always)]
    fn mask64(b: &[u8]) -> u64 {
        use std::arch::x86_64::{
            __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
            _mm256_setzero_si256,
        };
        assert!(b.len() >= 64);
        // SAFETY: callers run only after `avx2_available()`; the 64 bytes lie within `b`.
        unsafe {
            let p = b.as_ptr() as *const __m256i;
            let z = _mm256_setzero_si256();
            let lo = _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(p), z));
            let hi = _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(p.add(1)), z));
            !((lo as u32 as u64) | ((hi as u32 as u64) << 32))
        }
    }
}

/// True when the AVX2 versions of the event-driven products may run (cached by std).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx2_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Bytes scanned per batch of [`nonzero_bytes`] (its index buffer holds one batch).
const SCAN_CHUNK: usize = 4096;

/// An index buffer for [`nonzero_bytes`].
type ScanBuf = [u16; SCAN_CHUNK + 2];

/// Calls `f(i)` for every nonzero byte `i` of `bytes`, in increasing order; returns false
/// (having stopped) when they are more than `*budget` (which counts down).
///
/// A spike train has a few nonzeros in random places, so testing byte by byte (or word by
/// word) costs a mispredicted branch per nonzero. Instead each batch of [`SCAN_CHUNK`] bytes
/// is first compacted into the indices of its nonzeros without data-dependent branches
/// (64-byte masks; two indices written unconditionally per mask, a loop only for a third),
/// then `f` runs over that list.
#[inline(always)]
fn nonzero_bytes<M: ByteMask>(
    bytes: &[u8],
    buf: &mut ScanBuf,
    budget: &mut usize,
    mut f: impl FnMut(usize),
) -> bool {
    for (c, chunk) in bytes.chunks(SCAN_CHUNK).enumerate() {
        let mut cnt = 0usize;
        let mut push = |bits: u64, base: usize, cnt: &mut usize| {
            // Unused slots are overwritten later (the buffer has 2 spare entries).
            let b1 = bits & bits.wrapping_sub(1);
            buf[*cnt] = (base + bits.trailing_zeros() as usize) as u16;
            buf[*cnt + 1] = (base + b1.trailing_zeros() as usize) as u16;
            *cnt += (bits != 0) as usize + (b1 != 0) as usize;
            let mut rest = b1 & b1.wrapping_sub(1);
            while rest != 0 {
                buf[*cnt] = (base + rest.trailing_zeros() as usize) as u16;
                *cnt += 1;
                rest &= rest - 1;
            }
        };
        let mut groups = chunk.chunks_exact(64);
        for (g, group) in (&mut groups).enumerate() {
            push(M::mask64(group), 64 * g, &mut cnt);
        }
        let tail = groups.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 64];
            last[..tail.len()].copy_from_slice(tail);
            push(M::mask64(&last), chunk.len() - tail.len(), &mut cnt);
        }
        if cnt > *budget {
            return false;
        }
        *budget -= cnt;
        let base = c * SCAN_CHUNK;
        buf[..cnt].iter().for_each(|&i| f(base + i as usize));
    }
    true
}

/// The event-driven product for a `bool` lhs, output rows `r0..r1` of one batch: zeroes them,
/// then adds the rhs row `p` to output row `i` for every true `lhs(i, p)`, in `p` order per
/// output element — the reference sum (the skipped terms `0 · b` are exact zeros, the kept
/// ones `1 · b` exact). Checks the share `fin` (`(start, end)` of the flat rhs) for non-finite
/// values (`0 · inf` is NaN in the reference). Returns false when that share is not finite,
/// the block holds more than [`SPARSE_MAX_DENSITY`] nonzeros, or the lhs is column-major and
/// the block not the whole output (the caller then runs the dense product, which overwrites
/// every output row).
unsafe fn sparse_bool_rows(
    d: &MatmulDesc,
    a: *const u8,
    b: *const f64,
    out: *mut f64,
    rows: (usize, usize),
    fin: (usize, usize),
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        /// [`sparse_bool_rows_with`] compiled for AVX2 (the mask, the finiteness check and the
        /// row additions all use 256-bit vectors).
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(
            d: &MatmulDesc,
            a: *const u8,
            b: *const f64,
            out: *mut f64,
            rows: (usize, usize),
            fin: (usize, usize),
        ) -> bool {
            // SAFETY: as for the caller.
            unsafe { sparse_bool_rows_with::<Avx2Mask>(d, a, b, out, rows, fin) }
        }
        // SAFETY: AVX2 is available (checked); the caller's guarantees hold.
        return unsafe { avx2(d, a, b, out, rows, fin) };
    }
    // SAFETY: the caller's guarantees.
    unsafe { sparse_bool_rows_with::<PortableMask>(d, a, b, out, rows, fin) }
}

/// [`sparse_bool_rows`] with the byte-mask routine `M`.
#[inline(always)]
unsafe fn sparse_bool_rows_with<M: ByteMask>(
    d: &MatmulDesc,
    a: *const u8,
    b: *const f64,
    out: *mut f64,
    (r0, r1): (usize, usize),
    fin: (usize, usize),
) -> bool {
    let (m, n, k) = (d.m, d.n, d.k);
    let row_major = d.a_cs == 1 && d.a_rs == k as isize;
    // SAFETY (whole function): the lhs holds m·k contiguous bytes (row- or column-major, as
    // `bool_event_layout` checked), the rhs the logical k×n matrix of the verified operand
    // type (k·n contiguous elements in either layout) and `out` m×n elements; rows r0..r1 are
    // this block's.
    unsafe {
        if !all_finite(&std::slice::from_raw_parts(b, k * n)[fin.0..fin.1]) {
            return false;
        }
        let lhs = std::slice::from_raw_parts(a, m * k);
        std::ptr::write_bytes(out.add(r0 * n), 0, (r1 - r0) * n);
        let mut budget = (((r1 - r0) * k) as f64 * SPARSE_MAX_DENSITY) as usize;
        let (budget, buf) = (&mut budget, &mut [0u16; SCAN_CHUNK + 2]);
        if row_major {
            // Lines are output rows: rows r0..r1 are one contiguous range.
            nonzero_lines::<M>(&lhs[r0 * k..r1 * k], k, buf, budget, |i, p| {
                add_rhs_row(d, b, out, r0 + i, p)
            })
        } else {
            // Column-major (a transposed lhs, e.g. `X^T · G` over time and batch): line `p`
            // holds lhs(·, p); all of them in memory order (per output row, `p` increases).
            // Blocks of output rows would each read a part of every line: only the whole
            // product is done here ([`sparse_bool_cols_parallel`] splits the lines instead).
            (r0, r1) == (0, m)
                && nonzero_lines::<M>(lhs, m, buf, budget, |p, q| add_rhs_row(d, b, out, q, p))
        }
    }
}

/// `out[i, :] += b[p, :]` for the logical `k×n` rhs `b` and the `m×n` output.
///
/// # Safety
/// `i < m`, `p < k` and the buffers of the descriptor's sizes.
#[inline(always)]
unsafe fn add_rhs_row(d: &MatmulDesc, b: *const f64, out: *mut f64, i: usize, p: usize) {
    let n = d.n;
    // SAFETY: row `i` of the output and row `p` of the rhs lie within their buffers.
    unsafe {
        let row = out.add(i * n);
        let brow = b.offset(p as isize * d.b_rs);
        if d.b_cs == 1 {
            /// `o[..N] += x[..N]` unrolled for a width known at compile time.
            #[inline(always)]
            unsafe fn add<const N: usize>(o: *mut f64, x: *const f64) {
                // SAFETY: the caller's rows hold N elements. The rhs row is read whole before
                // the output row is written (the two may not be proven apart otherwise, which
                // kept the additions scalar).
                let (o, x) = unsafe { (&mut *(o as *mut [f64; N]), *(x as *const [f64; N])) };
                for j in 0..N {
                    o[j] += x[j];
                }
            }
            // The widths of the spiking nets' layers as straight-line code (the branch is the
            // same for every event of a product).
            match n {
                1 => add::<1>(row, brow),
                2 => add::<2>(row, brow),
                4 => add::<4>(row, brow),
                8 => add::<8>(row, brow),
                10 => add::<10>(row, brow),
                16 => add::<16>(row, brow),
                _ => {
                    let (o, br) = (
                        std::slice::from_raw_parts_mut(row, n),
                        std::slice::from_raw_parts(brow, n),
                    );
                    o.iter_mut().zip(br).for_each(|(o, x)| *o += *x);
                }
            }
        } else {
            for j in 0..n {
                *row.add(j) += *brow.offset(j as isize * d.b_cs);
            }
        }
    }
}

/// [`nonzero_bytes`] over `bytes` seen as lines of `len` bytes: calls `g(line, position)`.
#[inline(always)]
fn nonzero_lines<M: ByteMask>(
    bytes: &[u8],
    len: usize,
    buf: &mut ScanBuf,
    budget: &mut usize,
    mut g: impl FnMut(usize, usize),
) -> bool {
    let div = DivBy::new(len, bytes.len());
    nonzero_bytes::<M>(bytes, buf, budget, |idx| {
        let line = div.div(idx);
        g(line, idx - line * len);
    })
}

/// Division by a fixed `d >= 1` as a multiply-high (Lemire, Kaser and Kurz, "Faster
/// remainder by direct computation": exact for 32-bit operands), a plain division beyond.
#[derive(Clone, Copy)]
struct DivBy {
    d: usize,
    /// `ceil(2^64 / d)`, or 0 when the plain division is needed (or `d == 1`).
    magic: u64,
}

impl DivBy {
    /// For dividends below `max`.
    fn new(d: usize, max: usize) -> DivBy {
        let fast = d > 1 && (d as u64) < 1 << 32 && (max as u64) <= 1 << 32;
        DivBy {
            d: d.max(1),
            magic: if fast { u64::MAX / d as u64 + 1 } else { 0 },
        }
    }

    #[inline(always)]
    fn div(self, x: usize) -> usize {
        if self.magic != 0 {
            ((self.magic as u128 * x as u128) >> 64) as usize
        } else {
            x / self.d
        }
    }
}

/// Whether a `bool`-lhs product can take the event-driven path: one batch, the lhs dense in
/// row- or column-major order.
fn bool_event_layout(d: &MatmulDesc) -> bool {
    let (m, k) = (d.m, d.k);
    let row_major = d.a_cs == 1 && d.a_rs == k as isize;
    let col_major = d.a_rs == 1 && d.a_cs == m as isize;
    d.batch == 1 && (row_major || col_major)
}

/// `f64` product with a `bool` lhs: the event-driven path when the lhs is sparse enough and
/// the rhs finite ([`sparse_bool_rows`]; on `d.blocks` threads by output rows for a
/// row-major lhs, by lines with [`sparse_bool_cols_parallel`] for a column-major one),
/// otherwise the lhs converted to 0.0/1.0 in `scratch` and the dense path.
unsafe fn gemm_bool_f64(
    d: &MatmulDesc,
    a: *const u8,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) {
    let kn = d.k * d.n;
    // SAFETY (whole function): buffer sizes follow from the verified types; each block writes
    // its own output rows.
    unsafe {
        if bool_event_layout(d) {
            let row_major = d.a_cs == 1 && d.a_rs == d.k as isize;
            let ok = if d.blocks > 1 && row_major {
                // Lines are output rows: each block is an independent product.
                let p = SendPtrs(a, b, out);
                let ok = AtomicBool::new(true);
                let okr = &ok;
                run_blocks(d, d.blocks, move |i: usize| {
                    let p = p;
                    let fin = block_rows(kn, d.blocks, i);
                    let rows = block_rows(d.m, d.blocks, i);
                    if !sparse_bool_rows(d, p.0, p.1, p.2, rows, fin) {
                        okr.store(false, Ordering::Relaxed);
                    }
                });
                ok.into_inner()
            } else if d.blocks > 1 {
                sparse_bool_cols_parallel(d, a, b, out, scratch)
            } else {
                sparse_bool_rows(d, a, b, out, (0, d.m), (0, kn))
            };
            if ok {
                return;
            }
        }
        let sa = &mut scratch[..d.batch * d.a_batch];
        bool_to_f64(a, sa);
        // A bool lhs never splits its contraction: no partials needed.
        dense_f64(d, sa.as_ptr(), b, out, &mut []);
    }
}

/// The event-driven product of a column-major `bool` lhs on `d.blocks` threads. Every line
/// (lhs column) touches every output row, so the blocks split the lines instead: each lists
/// the flat positions of the nonzeros of its lines (in its share of `scratch`, read as `u64`)
/// and checks its share of the rhs; then the lists are applied in line order on the calling
/// thread, which adds exactly the terms of [`sparse_bool_rows`] in the same order. Returns
/// false (before writing `out`) when a block is too dense or the rhs not finite.
unsafe fn sparse_bool_cols_parallel(
    d: &MatmulDesc,
    a: *const u8,
    b: *const f64,
    out: *mut f64,
    scratch: &mut [f64],
) -> bool {
    let (m, n, k, blocks) = (d.m, d.n, d.k, d.blocks);
    // The event lists: as many u64 slots as lhs bytes (a block's lines give its share).
    let events = scratch[..m * k].as_mut_ptr() as *mut u64;
    let counts: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(usize::MAX)).collect();
    let p = SendPtrs(a, b, events as *mut f64);
    let cr = &counts;
    run_blocks(d, blocks, move |i: usize| {
        let p = p;
        let (l0, l1) = block_rows(k, blocks, i);
        let fin = block_rows(k * n, blocks, i);
        // SAFETY: lines l0..l1 are bytes l0·m..l1·m of the m·k-byte lhs; this block writes
        // only event slots l0·m..l1·m; the rhs holds k·n elements.
        unsafe {
            let rhs = &std::slice::from_raw_parts(p.1, k * n)[fin.0..fin.1];
            let bytes = std::slice::from_raw_parts(p.0.add(l0 * m), (l1 - l0) * m);
            let ev = std::slice::from_raw_parts_mut((p.2 as *mut u64).add(l0 * m), bytes.len());
            if let Some(c) = list_events(rhs, bytes, l0 * m, ev) {
                cr[i].store(c, Ordering::Relaxed);
            }
        }
    });
    if counts
        .iter()
        .any(|c| c.load(Ordering::Relaxed) == usize::MAX)
    {
        return false;
    }
    // SAFETY: `out` holds m×n elements; every event is a flat lhs position below m·k, i.e.
    // line `p < k` (an rhs row) and position `q < m` (an output row).
    unsafe {
        std::ptr::write_bytes(out, 0, m * n);
        let div = DivBy::new(m, m * k);
        for (i, c) in counts.iter().enumerate() {
            let (l0, _) = block_rows(k, blocks, i);
            let ev = std::slice::from_raw_parts(events.add(l0 * m), c.load(Ordering::Relaxed));
            for &e in ev {
                let p = div.div(e as usize);
                add_rhs_row(d, b, out, e as usize - p * m, p);
            }
        }
    }
    true
}

/// One block of [`sparse_bool_cols_parallel`]: when `rhs` is finite and `bytes` sparse
/// enough, writes `first + i` for every nonzero byte `i` into `events` (in order) and returns
/// how many.
fn list_events(rhs: &[f64], bytes: &[u8], first: usize, events: &mut [u64]) -> Option<usize> {
    #[inline(always)]
    fn with<M: ByteMask>(rhs: &[f64], bytes: &[u8], first: usize, ev: &mut [u64]) -> Option<usize> {
        if !all_finite(rhs) {
            return None;
        }
        let mut budget = (bytes.len() as f64 * SPARSE_MAX_DENSITY) as usize;
        let mut c = 0;
        let buf = &mut [0u16; SCAN_CHUNK + 2];
        nonzero_bytes::<M>(bytes, buf, &mut budget, |idx| {
            ev[c] = (first + idx) as u64;
            c += 1;
        })
        .then_some(c)
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        #[target_feature(enable = "avx2")]
        fn avx2(rhs: &[f64], bytes: &[u8], first: usize, ev: &mut [u64]) -> Option<usize> {
            with::<Avx2Mask>(rhs, bytes, first, ev)
        }
        // SAFETY: AVX2 is available (checked).
        return unsafe { avx2(rhs, bytes, first, events) };
    }
    with::<PortableMask>(rhs, bytes, first, events)
}

/// `dst[i] = (src[i] != 0) as f64` for `dst.len()` bytes of `src`.
unsafe fn bool_to_f64(src: *const u8, dst: &mut [f64]) {
    // SAFETY: the caller passes a buffer of at least `dst.len()` bytes.
    let src = unsafe { std::slice::from_raw_parts(src, dst.len()) };
    for (x, &v) in dst.iter_mut().zip(src) {
        *x = (v != 0) as u8 as f64;
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
            DType::F64 if d.bool_lhs => {
                gemm_bool_f64(d, a, b as *const f64, out as *mut f64, scratch)
            }
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
                if d.bool_lhs {
                    bool_to_f64(a, sa);
                } else {
                    for (i, x) in sa.iter_mut().enumerate() {
                        *x = *(a as *const f32).add(i) as f64;
                    }
                }
                for (i, x) in sb.iter_mut().enumerate() {
                    *x = *(b as *const f32).add(i) as f64;
                }
                // f32 products never split: no partials needed.
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
                // The op is a constant in each loop (so the combine inlines and vectorises).
                (ReduceOp::Max, DType::F64) => reduce_rec(
                    &d.dims,
                    x as *const f64,
                    acc,
                    |v| v,
                    |a, b| ReduceOp::Max.combine(a, b),
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u64, every: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Nonzero bytes of any value, not only 1.
                if s.is_multiple_of(every) {
                    (s >> 32) as u8 | 1
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn nonzero_masks_mark_every_nonzero_byte() {
        for (seed, every) in [(1, 1), (2, 2), (3, 7), (4, 64), (5, 1000)] {
            let b = bytes(64, seed, every);
            let want = b
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, &v)| m | ((v != 0) as u64) << i);
            assert_eq!(nonzero_mask64(&b), want);
            assert_eq!(nonzero_mask64_swar(&b), want);
            #[cfg(target_arch = "x86_64")]
            if avx2_available() {
                assert_eq!(Avx2Mask::mask64(&b), want);
            }
        }
        // Every byte value in every position.
        for v in 0..=255u8 {
            for i in 0..64 {
                let mut b = [0u8; 64];
                b[i] = v;
                let want = ((v != 0) as u64) << i;
                assert_eq!((nonzero_mask64(&b), nonzero_mask64_swar(&b)), (want, want));
                #[cfg(target_arch = "x86_64")]
                if avx2_available() {
                    assert_eq!(Avx2Mask::mask64(&b), want);
                }
            }
        }
    }

    #[test]
    fn nonzero_bytes_visits_in_order_and_respects_the_budget() {
        visits_in_order::<PortableMask>();
        #[cfg(target_arch = "x86_64")]
        if avx2_available() {
            visits_in_order::<Avx2Mask>();
        }
    }

    fn visits_in_order<M: ByteMask>() {
        for n in [0, 1, 7, 63, 64, 65, 4095, 4096, 4097, 9000] {
            for every in [1, 3, 50] {
                let b = bytes(n, n as u64 + every, every);
                let want: Vec<usize> = (0..n).filter(|&i| b[i] != 0).collect();
                let mut got = vec![];
                let mut budget = n;
                let buf = &mut [0u16; SCAN_CHUNK + 2];
                assert!(nonzero_bytes::<M>(&b, buf, &mut budget, |i| got.push(i)));
                assert_eq!(got, want, "n={n} every={every}");
                assert_eq!(budget, n - want.len());
                if !want.is_empty() {
                    let mut budget = want.len() - 1;
                    assert!(!nonzero_bytes::<M>(&b, buf, &mut budget, |_| ()));
                }
            }
        }
    }

    #[test]
    fn division_by_multiplication_is_exact() {
        for d in [1usize, 2, 3, 7, 10, 100, 256, 1000, 4099, (1 << 31) + 11] {
            let div = DivBy::new(d, 1 << 32);
            for x in [0usize, 1, d - 1, d, d + 1, 12345, 1 << 20, (1 << 32) - 1] {
                assert_eq!(div.div(x), x / d, "{x} / {d}");
            }
            let slow = DivBy::new(d, 1 << 40);
            assert_eq!(slow.div((1 << 40) - 3), ((1 << 40) - 3) / d);
        }
    }
}
