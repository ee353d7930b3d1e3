//! A packing-free f64 GEMM with a row-contiguous rhs, for the shapes of recurrent training:
//! the per-time-step products `h[B,H] · W[H,H]` and the weight gradients `H^T · dZ` summed
//! over time × batch, where the general `gemm` crate spends a tenth or more of its time
//! packing operands that already sit in cache.
//!
//! `C[m×n] = A[m×k] · B[k×n]`: `A` is read through any strides (one broadcast per element),
//! `B` row by row (unit column stride, any row stride), `C` is row-major. The contraction is
//! cut into blocks of [`KC`]; within a block, for each panel of two vectors' width of `B`
//! (`KC` rows, in L1), every 6-row block of `A` (12 vector accumulators). Edge tiles use fewer
//! rows and masked loads and stores for the last columns, so nothing outside the operands is
//! touched. The kernels are written once over a vector type ([`Simd`]) and compiled twice:
//! AVX2 (4 lanes, 8-column panels) and, where the CPU has it, AVX-512 (8 lanes, 16-column
//! panels: twice the FMA throughput on cores with two 512-bit FMA units, the same on cores
//! that split 512-bit operations). `BRAINLIFT_GEMM=avx2` keeps the AVX2 kernels (the results
//! are the same bits).
//!
//! Every output element is `fma(a[i,k-1], b[k-1,j], … fma(a[i,0], b[0,j], 0))`: the reference
//! summation order with one rounding per term — a later contraction block resumes the chain
//! from the stored partial — independent of the tile an element falls in and of the vector
//! width (so splitting the rows over threads or the CPU's AVX-512 change nothing).
//!
//! Zero terms are skipped where a ReLU network makes them common (a trained tutorial RNN has
//! about 60% of its hidden state at exactly 0, whole units off for a whole batch): for a
//! row-major `A` (the state times the recurrent weight, forward and backward) each 6-row block
//! runs only over the `k` where one of its rows is nonzero ([`ActiveK`]); for a column-major
//! `A` (a weight gradient `Hᵀ·D`) each contraction block computes only the output rows and
//! columns that gain a nonzero term ([`compact_block`]). Either is used only when it drops
//! enough work, and never past a non-finite operand entry (`0 · inf` must stay NaN). The
//! results are bit-identical to the dense kernel's. A skipped term `±0 · b` adds a signed zero,
//! which changes a chain only when the chain is -0 (to +0); and a chain from +0 turns -0 only
//! when a product underflows. Step by step the skipping chain then equals the dense one, or is
//! -0 where the dense one is +0 (an fma of a nonzero product ignores the zero's sign, so the
//! two meet again) — so the results differ at most where the skipping product ends at -0.
//! A product that ends with a -0 anywhere is therefore computed again, dense (rare: it takes a
//! product below 2^-1074 in magnitude).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Contraction block length (measured best here among 64..256 for 100×100×3200).
pub(crate) const KC: usize = 128;
/// Most lhs rows this kernel takes (one contraction block of `A` stays in L2).
pub(crate) const MAX_M: usize = 512;

/// Whether [`gemm_nn`] runs on this CPU (AVX2 and FMA).
pub(crate) fn available() -> bool {
    super::simd::has_avx2_fma()
}

/// The vector width of the GEMM kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 4 lanes (AVX2 + FMA).
    Avx2,
    /// 8 lanes (AVX-512F).
    Avx512,
}

impl Width {
    /// The widest this CPU runs, or what `BRAINLIFT_GEMM` asks for (`avx2`, `avx512`, `auto`;
    /// checked once, a warning on stderr for a value it cannot follow).
    pub(crate) fn best() -> Width {
        static BEST: std::sync::OnceLock<Width> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let widest = if Width::Avx512.available() {
                Width::Avx512
            } else {
                Width::Avx2
            };
            let asked = std::env::var("BRAINLIFT_GEMM").unwrap_or_default();
            match asked.to_ascii_lowercase().as_str() {
                "" | "auto" => widest,
                "avx2" => Width::Avx2,
                "avx512" if widest == Width::Avx512 => Width::Avx512,
                "avx512" => {
                    eprintln!("brainlift: BRAINLIFT_GEMM=avx512 but this CPU has no AVX-512F; using AVX2");
                    Width::Avx2
                }
                other => {
                    eprintln!(
                        "brainlift: BRAINLIFT_GEMM='{other}' is not avx2, avx512 or auto; using {widest:?}"
                    );
                    widest
                }
            }
        })
    }

    /// Whether this CPU runs kernels of this width.
    pub(crate) fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            available() && (self == Width::Avx2 || std::is_x86_feature_detected!("avx512f"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }
}

/// `C = A · B` (see the module doc), with the kernels of [`Width::best`].
///
/// # Safety
/// [`available`] must be true; `a` must address `m×k` elements through `(a_rs, a_cs)`, `b`
/// `k` rows of `n` contiguous elements `b_rs` apart, `c` `m×n` contiguous elements.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_nn(
    m: usize,
    n: usize,
    k: usize,
    a: *const f64,
    a_rs: isize,
    a_cs: isize,
    b: *const f64,
    b_rs: isize,
    c: *mut f64,
) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_with(Width::best(), m, n, k, a, a_rs, a_cs, b, b_rs, c) }
}

/// [`gemm_nn`] with the kernels of `width`.
///
/// # Safety
/// As [`gemm_nn`], and `width.available()`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_with(
    width: Width,
    m: usize,
    n: usize,
    k: usize,
    a: *const f64,
    a_rs: isize,
    a_cs: isize,
    b: *const f64,
    b_rs: isize,
    c: *mut f64,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller (features checked by `Width::available`).
    unsafe {
        let big = n >= SKIP_MIN_N && m * n * k >= SKIP_MIN_MNK;
        let g = Geom {
            k,
            a_rs,
            a_cs,
            b_rs,
            ldc: n as isize,
            resume: false,
        };
        // The per-thread scratch is taken out for the call (no borrow across the kernels).
        let mut lists =
            (big && a_cs == 1).then(|| ACTIVE_K.take().unwrap_or_else(|| Box::new(ActiveK::EMPTY)));
        let mut compact = (big && a_rs == 1).then(|| COMPACT.take());
        let (l, s) = (lists.as_deref_mut(), compact.as_mut());
        match width {
            Width::Avx2 => blocks_avx2(&g, m, n, a, b, c, l, s),
            Width::Avx512 => blocks_avx512(&g, m, n, a, b, c, l, s),
        }
        if let Some(l) = lists {
            ACTIVE_K.set(Some(l));
        }
        if let Some(s) = compact {
            COMPACT.set(s);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (width, m, n, k, a, a_rs, a_cs, b, b_rs, c);
        unreachable!("gemm::available() is false off x86-64");
    }
}

/// The AVX2 instance of [`contraction_blocks`].
///
/// # Safety
/// As [`contraction_blocks`], on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn blocks_avx2(
    g: &Geom,
    m: usize,
    n: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    lists: Option<&mut ActiveK>,
    compact: Option<&mut Compact>,
) {
    // SAFETY: forwarded.
    unsafe { contraction_blocks::<__m256d>(g, m, n, a, b, c, lists, compact) }
}

/// The AVX-512 instance of [`contraction_blocks`].
///
/// # Safety
/// As [`contraction_blocks`], on a CPU with AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn blocks_avx512(
    g: &Geom,
    m: usize,
    n: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    lists: Option<&mut ActiveK>,
    compact: Option<&mut Compact>,
) {
    // SAFETY: forwarded.
    unsafe { contraction_blocks::<__m512d>(g, m, n, a, b, c, lists, compact) }
}

/// `C = A · B` by contraction blocks (see [`blocks_once`]); when a block skipped zero terms and
/// `C` ends with a -0, once more, dense (see the module doc).
///
/// # Safety
/// As [`gemm_nn`]; inlined into a function with `V`'s target features.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn contraction_blocks<V: Simd>(
    whole: &Geom,
    m: usize,
    n: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    lists: Option<&mut ActiveK>,
    compact: Option<&mut Compact>,
) {
    // SAFETY: forwarded; `C` holds m×n elements.
    unsafe {
        if blocks_once::<V>(whole, m, n, a, b, c, lists, compact)
            && has_negative_zero(std::slice::from_raw_parts(c, m * n))
        {
            blocks_once::<V>(whole, m, n, a, b, c, None, None);
        }
    }
}

/// Whether `c` holds a -0.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn has_negative_zero(c: &[f64]) -> bool {
    const NEG_ZERO: u64 = 1 << 63;
    c.iter()
        .fold(0u64, |acc, x| acc | (x.to_bits() == NEG_ZERO) as u64)
        != 0
}

/// The contraction blocks of `C = A · B` (`whole.k` the whole contraction): each with the
/// zero-term lists `lists` when given (and worth it), compacted with `compact` (when given and
/// worth it), else dense. Returns whether some block skipped zero terms.
///
/// # Safety
/// As [`gemm_nn`]; inlined into a function with `V`'s target features.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn blocks_once<V: Simd>(
    whole: &Geom,
    m: usize,
    n: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    mut lists: Option<&mut ActiveK>,
    mut compact: Option<&mut Compact>,
) -> bool {
    // SAFETY: forwarded from `gemm_nn`; every block lies within the operands.
    unsafe {
        let mut skipped = false;
        let mut k0 = 0;
        while k0 < whole.k {
            let g = Geom {
                k: KC.min(whole.k - k0),
                resume: k0 > 0,
                ..*whole
            };
            let (a, b) = (
                a.offset(k0 as isize * g.a_cs),
                b.offset(k0 as isize * g.b_rs),
            );
            k0 += g.k;
            if let Some(s) = compact.as_deref_mut()
                && compact_block::<V>(s, &g, m, n, a, b, c)
            {
                skipped = true;
                continue;
            }
            let built = match lists.as_deref_mut() {
                Some(l) => l.build(&g, m, n, a, b),
                None => false,
            };
            skipped |= built;
            match lists.as_deref() {
                Some(l) if built => panels::<V, true>(&g, m, n, a, b, c, Some(l)),
                _ => panels::<V, false>(&g, m, n, a, b, c, None),
            }
        }
        skipped
    }
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// [`ActiveK`] lists, one set per thread (about 11 KiB, allocated once).
    static ACTIVE_K: std::cell::Cell<Option<Box<ActiveK>>> = const { std::cell::Cell::new(None) };
    /// [`compact_block`]'s scratch, one per thread.
    static COMPACT: std::cell::Cell<Compact> = std::cell::Cell::default();
}

/// One SIMD vector of f64 and the operations the tiles use (AVX2: 4 lanes, AVX-512: 8).
/// Every method is inlined into the kernels of a function compiled for the vector's features.
#[cfg(target_arch = "x86_64")]
trait Simd: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// Which lanes a masked load or store touches.
    type Mask: Copy;
    /// The first `live` lanes (`live <= LANES`).
    unsafe fn mask(live: usize) -> Self::Mask;
    unsafe fn zero() -> Self;
    unsafe fn load(p: *const f64) -> Self;
    unsafe fn load_masked(p: *const f64, m: Self::Mask) -> Self;
    unsafe fn store(p: *mut f64, v: Self);
    unsafe fn store_masked(p: *mut f64, m: Self::Mask, v: Self);
    /// Every lane `*p`.
    unsafe fn splat(p: *const f64) -> Self;
    /// Lane `q` is `f(q)` (built in registers: no store-forwarding stall).
    unsafe fn from_fn(f: impl Fn(usize) -> f64) -> Self;
    /// `a * b + c`, one rounding.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
}

#[cfg(target_arch = "x86_64")]
impl Simd for __m256d {
    const LANES: usize = 4;
    type Mask = __m256i;
    #[inline(always)]
    unsafe fn mask(live: usize) -> __m256i {
        let on = |q: usize| if live > q { -1 } else { 0 };
        unsafe { _mm256_setr_epi64x(on(0), on(1), on(2), on(3)) }
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { _mm256_setzero_pd() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        unsafe { _mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f64, m: __m256i) -> Self {
        unsafe { _mm256_maskload_pd(p, m) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: Self) {
        unsafe { _mm256_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f64, m: __m256i, v: Self) {
        unsafe { _mm256_maskstore_pd(p, m, v) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f64) -> Self {
        unsafe { _mm256_broadcast_sd(&*p) }
    }
    #[inline(always)]
    unsafe fn from_fn(f: impl Fn(usize) -> f64) -> Self {
        unsafe { _mm256_setr_pd(f(0), f(1), f(2), f(3)) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        unsafe { _mm256_fmadd_pd(a, b, c) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Simd for __m512d {
    const LANES: usize = 8;
    type Mask = __mmask8;
    #[inline(always)]
    unsafe fn mask(live: usize) -> __mmask8 {
        ((1u16 << live) - 1) as u8
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { _mm512_setzero_pd() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        unsafe { _mm512_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f64, m: __mmask8) -> Self {
        unsafe { _mm512_maskz_loadu_pd(m, p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: Self) {
        unsafe { _mm512_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f64, m: __mmask8, v: Self) {
        unsafe { _mm512_mask_storeu_pd(p, m, v) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f64) -> Self {
        unsafe { _mm512_set1_pd(*p) }
    }
    #[inline(always)]
    unsafe fn from_fn(f: impl Fn(usize) -> f64) -> Self {
        unsafe { _mm512_setr_pd(f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        unsafe { _mm512_fmadd_pd(a, b, c) }
    }
}

/// Rows per full tile.
const MR: usize = 6;
/// Row blocks of at most [`MAX_M`] rows.
const MAX_BLOCKS: usize = MAX_M.div_ceil(MR);
/// Only a row-major `A` is scanned for zeros (one vector pass per row); products with fewer
/// columns never skip: the zero scan of `A` would cost more than it saves.
const SKIP_MIN_N: usize = 16;
/// Smaller products never skip (the lists' set-up would not pay).
const SKIP_MIN_MNK: usize = 1 << 16;
/// Skip only when at most this share of the (row block, k) pairs is active; above it the dense
/// loop's simpler addressing wins.
const SKIP_MAX_ACTIVE: f64 = 0.85;

/// Per row block of one contraction block, the `k` whose terms are not all zero: the indices
/// where some row of the block has a nonzero `A` entry or where the `B` row holds a non-finite
/// value (`0 · inf` is NaN, so such terms are kept). Skipping the other terms leaves every
/// output element's fma chain unchanged (a ReLU output as `A` is the case this is for: about
/// half of it is zero, whole columns of it per row block).
#[cfg(target_arch = "x86_64")]
struct ActiveK {
    /// Block `r`'s indices at `idx[r * KC..][..len[r]]`, increasing.
    idx: [u8; MAX_BLOCKS * KC],
    len: [u8; MAX_BLOCKS],
    /// Per `k`, whether the `B` row is finite.
    finite: [bool; KC],
}

#[cfg(target_arch = "x86_64")]
impl ActiveK {
    const EMPTY: ActiveK = ActiveK {
        idx: [0; MAX_BLOCKS * KC],
        len: [0; MAX_BLOCKS],
        finite: [true; KC],
    };

    /// Block `r`'s active indices.
    #[inline(always)]
    fn list(&self, r: usize) -> &[u8] {
        &self.idx[r * KC..r * KC + self.len[r] as usize]
    }

    /// Fills the lists for the contraction block `g`; false (lists unusable) when skipping
    /// would not pay.
    ///
    /// # Safety
    /// As [`gemm_nn`] for this block, and `g.a_cs == 1`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn build(&mut self, g: &Geom, m: usize, n: usize, a: *const f64, b: *const f64) -> bool {
        // KC <= 256: indices fit u8, and KC itself fits the u8 lengths only below 256.
        const _: () = assert!(KC < 256);
        let kc = g.k;
        let blocks = m.div_ceil(MR);
        let mut zero_terms = 0usize;
        // SAFETY: rows 0..m and columns 0..kc of `A` exist.
        unsafe {
            let magnitude = _mm256_set1_epi64x(i64::MAX);
            for blk in 0..blocks {
                let rows = MR.min(m - blk * MR);
                let base = a.offset((blk * MR) as isize * g.a_rs);
                let row = |r: usize| base.offset(r as isize * g.a_rs);
                let idx = &mut self.idx[blk * KC..(blk + 1) * KC];
                let mut len = 0;
                let mut kk = 0;
                // Four `k` at a time: the OR of the rows' entries without the sign, against 0.
                while kk + 4 <= kc {
                    let mut v = _mm256_setzero_si256();
                    for r in 0..rows {
                        let x = _mm256_loadu_si256(row(r).add(kk) as *const __m256i);
                        v = _mm256_or_si256(v, x);
                    }
                    let v = _mm256_and_si256(v, magnitude);
                    let zero = _mm256_cmpeq_epi64(v, _mm256_setzero_si256());
                    let mut live = !_mm256_movemask_pd(_mm256_castsi256_pd(zero)) as u32 & 0xf;
                    while live != 0 {
                        idx[len] = (kk + live.trailing_zeros() as usize) as u8;
                        len += 1;
                        live &= live - 1;
                    }
                    kk += 4;
                }
                for kk in kk..kc {
                    if (0..rows).any(|r| *row(r).add(kk) != 0.0) {
                        idx[len] = kk as u8;
                        len += 1;
                    }
                }
                zero_terms += kc - len;
                self.len[blk] = len as u8;
            }
            if (blocks * kc - zero_terms) as f64 > SKIP_MAX_ACTIVE * (blocks * kc) as f64 {
                return false;
            }
            // Keep the terms with a non-finite `B` row: add them back in order.
            let finite = |kk: usize| {
                super::ops::all_finite(std::slice::from_raw_parts(
                    b.offset(kk as isize * g.b_rs),
                    n,
                ))
            };
            if !(0..kc).all(finite) {
                for kk in 0..kc {
                    self.finite[kk] = finite(kk);
                }
                for blk in 0..blocks {
                    let rows = MR.min(m - blk * MR);
                    let mut len = 0;
                    for kk in 0..kc {
                        let live = !self.finite[kk]
                            || (0..rows).any(|r| {
                                *a.offset((blk * MR + r) as isize * g.a_rs + kk as isize) != 0.0
                            });
                        if live {
                            self.idx[blk * KC + len] = kk as u8;
                            len += 1;
                        }
                    }
                    self.len[blk] = len as u8;
                }
            }
        }
        true
    }
}

/// Largest share of the `m×n` output a compacted block may keep (above it the dense block wins).
const COMPACT_MAX_LIVE: f64 = 0.8;

/// The live rows, live columns and packed rhs of [`compact_block`], kept per thread.
#[cfg(target_arch = "x86_64")]
#[derive(Default)]
struct Compact {
    row_bits: Vec<u64>,
    col_bits: Vec<u64>,
    rows: Vec<u32>,
    cols: Vec<u32>,
    packed: Vec<f64>,
}

#[cfg(target_arch = "x86_64")]
impl Compact {
    /// Finds the block's live output rows (`i` with a nonzero `A[i, k]`) and columns (`j` with
    /// a nonzero `B[k, j]`); false when the block has a non-finite entry or too little to drop.
    ///
    /// # Safety
    /// As [`compact_block`].
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scan(&mut self, g: &Geom, m: usize, n: usize, a: *const f64, b: *const f64) -> bool {
        const EXP: u64 = 0x7ff0_0000_0000_0000;
        // SAFETY: the block's `A` columns are `m` contiguous elements `a_cs` apart, its `B`
        // rows `n` contiguous elements `b_rs` apart.
        unsafe {
            self.row_bits.clear();
            self.row_bits.resize(m, 0);
            self.col_bits.clear();
            self.col_bits.resize(n, 0);
            let mut non_finite = 0u64;
            for kk in 0..g.k {
                let col = std::slice::from_raw_parts(a.offset(kk as isize * g.a_cs), m);
                for (x, v) in self.row_bits.iter_mut().zip(col) {
                    let bits = v.to_bits();
                    *x |= bits << 1;
                    non_finite |= ((!bits & EXP) == 0) as u64;
                }
                let row = std::slice::from_raw_parts(b.offset(kk as isize * g.b_rs), n);
                for (x, v) in self.col_bits.iter_mut().zip(row) {
                    let bits = v.to_bits();
                    *x |= bits << 1;
                    non_finite |= ((!bits & EXP) == 0) as u64;
                }
            }
            if non_finite != 0 {
                return false;
            }
            self.rows.clear();
            let row_bits = &self.row_bits;
            self.rows
                .extend((0..m as u32).filter(|&i| row_bits[i as usize] != 0));
            self.cols.clear();
            let col_bits = &self.col_bits;
            self.cols
                .extend((0..n as u32).filter(|&j| col_bits[j as usize] != 0));
            (self.rows.len() * self.cols.len()) as f64 <= COMPACT_MAX_LIVE * (m * n) as f64
        }
    }

    /// Packs the live columns of the block's `B`, padded with zeros to whole panels of
    /// `panel` columns; returns the packed row length.
    ///
    /// # Safety
    /// As [`compact_block`], after [`Compact::scan`] of the same block.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pack(&mut self, g: &Geom, b: *const f64, panel: usize) -> usize {
        let width = self.cols.len().next_multiple_of(panel);
        self.packed.clear();
        self.packed.resize(g.k * width, 0.0);
        for kk in 0..g.k {
            // SAFETY: the live columns index the block's `B` rows.
            let row = unsafe { b.offset(kk as isize * g.b_rs) };
            let dst = &mut self.packed[kk * width..kk * width + self.cols.len()];
            for (d, &j) in dst.iter_mut().zip(&self.cols) {
                // SAFETY: as above.
                *d = unsafe { *row.add(j as usize) };
            }
        }
        width
    }
}

/// One contraction block for a column-major `A` (the transposed lhs of a weight gradient
/// `Hᵀ·D`), computed on its live part only: output rows `i` with a nonzero `A[i, k]` in the
/// block and columns `j` with a nonzero `B[k, j]` (the other outputs gain only zero terms, as
/// for a ReLU layer's units that are off for the whole block). The live columns of `B` are
/// packed; each output element keeps its fma chain in `k` order. Returns false (nothing done)
/// when the block has a non-finite entry or too little to drop.
///
/// # Safety
/// As [`gemm_nn`] for this block, with `g.a_rs == 1`; inlined into a function with `V`'s
/// target features.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn compact_block<V: Simd>(
    s: &mut Compact,
    g: &Geom,
    m: usize,
    n: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
) -> bool {
    // SAFETY: forwarded; rows and columns index the operands, `C` holds m×n elements.
    unsafe {
        if !s.scan(g, m, n, a, b) {
            return false;
        }
        if !g.resume {
            std::ptr::write_bytes(c, 0, m * n);
        }
        if s.rows.is_empty() || s.cols.is_empty() {
            return true;
        }
        let panel = 2 * V::LANES;
        let width = s.pack(g, b, panel);
        for (p, cols) in s.cols.chunks(panel).enumerate() {
            let bp = s.packed.as_ptr().add(p * panel);
            for rows in s.rows.chunks(MR) {
                let t = Gathered {
                    kc: g.k,
                    a,
                    a_cs: g.a_cs,
                    bp,
                    width,
                    c,
                    ldc: n,
                    rows,
                    cols,
                };
                match (rows.len(), cols.len() > V::LANES) {
                    (1, false) => t.run::<V, 1, 1>(),
                    (2, false) => t.run::<V, 2, 1>(),
                    (3, false) => t.run::<V, 3, 1>(),
                    (4, false) => t.run::<V, 4, 1>(),
                    (5, false) => t.run::<V, 5, 1>(),
                    (_, false) => t.run::<V, MR, 1>(),
                    (1, true) => t.run::<V, 1, 2>(),
                    (2, true) => t.run::<V, 2, 2>(),
                    (3, true) => t.run::<V, 3, 2>(),
                    (4, true) => t.run::<V, 4, 2>(),
                    (5, true) => t.run::<V, 5, 2>(),
                    (_, true) => t.run::<V, MR, 2>(),
                }
            }
        }
        true
    }
}

/// A tile of [`compact_block`]: up to [`MR`] live rows × up to two vectors of live columns
/// (one packed panel).
#[cfg(target_arch = "x86_64")]
struct Gathered<'a> {
    kc: usize,
    a: *const f64,
    a_cs: isize,
    /// The panel's first packed column; rows `width` apart.
    bp: *const f64,
    width: usize,
    c: *mut f64,
    ldc: usize,
    rows: &'a [u32],
    cols: &'a [u32],
}

#[cfg(target_arch = "x86_64")]
impl Gathered<'_> {
    /// Resumes each element's chain from `C`, adds the block's terms, stores the live columns;
    /// `NV` vectors of columns (1 when the panel has at most `V::LANES`).
    ///
    /// # Safety
    /// As [`compact_block`]; `rows.len() == R`, `cols.len() <= NV * V::LANES`.
    #[inline(always)]
    unsafe fn run<V: Simd, const R: usize, const NV: usize>(&self) {
        // SAFETY: rows and columns index the output; the packed panel holds kc × panel values.
        unsafe {
            let c_rows: [*mut f64; R] =
                std::array::from_fn(|r| self.c.add(self.rows[r] as usize * self.ldc));
            let a_rows: [*const f64; R] =
                std::array::from_fn(|r| self.a.add(self.rows[r] as usize));
            let col = |q: usize| self.cols.get(q).map(|&j| j as usize);
            let mut acc = [[V::zero(); NV]; R];
            for (r, row) in acc.iter_mut().enumerate() {
                let get = |q: usize| col(q).map_or(0.0, |j| *c_rows[r].add(j));
                for (v, x) in row.iter_mut().enumerate() {
                    *x = V::from_fn(|q| get(v * V::LANES + q));
                }
            }
            for kk in 0..self.kc {
                let bp = self.bp.add(kk * self.width);
                let mut bv = [V::zero(); NV];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = V::load(bp.add(v * V::LANES));
                }
                let off = kk as isize * self.a_cs;
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = V::splat(a_rows[r].offset(off));
                    for (x, b) in row.iter_mut().zip(&bv) {
                        *x = V::fmadd(av, *b, *x);
                    }
                }
            }
            let mut tmp = [0.0f64; 16];
            for (r, row) in acc.iter().enumerate() {
                for (v, x) in row.iter().enumerate() {
                    V::store(tmp.as_mut_ptr().add(v * V::LANES), *x);
                }
                for (t, &j) in tmp.iter().zip(self.cols) {
                    *c_rows[r].add(j as usize) = *t;
                }
            }
        }
    }
}

/// One contraction block: for each panel of `B` (two vectors wide), every row block of `A`
/// (with `SKIP`, only the terms of the block's list in `lists`).
///
/// # Safety
/// As [`gemm_nn`]; inlined into a function with `V`'s target features.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn panels<V: Simd, const SKIP: bool>(
    g: &Geom,
    m: usize,
    n: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    lists: Option<&ActiveK>,
) {
    // SAFETY: forwarded from `gemm_nn`.
    unsafe {
        let panel = 2 * V::LANES;
        let mut j = 0;
        while j < n {
            let cols = (n - j).min(panel);
            let mut i = 0;
            while i < m {
                let ks = match lists {
                    Some(l) if SKIP => l.list(i / MR),
                    _ => &[],
                };
                if SKIP && ks.is_empty() && g.resume {
                    // Nothing to add to the stored partial sums.
                } else {
                    match m - i {
                        1 => tile_rows::<V, 1, SKIP>(g, a, b, c, i, j, cols, ks),
                        2 => tile_rows::<V, 2, SKIP>(g, a, b, c, i, j, cols, ks),
                        3 => tile_rows::<V, 3, SKIP>(g, a, b, c, i, j, cols, ks),
                        4 => tile_rows::<V, 4, SKIP>(g, a, b, c, i, j, cols, ks),
                        5 => tile_rows::<V, 5, SKIP>(g, a, b, c, i, j, cols, ks),
                        _ => tile_rows::<V, MR, SKIP>(g, a, b, c, i, j, cols, ks),
                    }
                }
                i += MR;
            }
            j += panel;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Geom {
    /// Length of this contraction block.
    k: usize,
    a_rs: isize,
    a_cs: isize,
    b_rs: isize,
    ldc: isize,
    /// Start the accumulators from `C` (a later contraction block) instead of zero.
    resume: bool,
}

/// The tile at rows `i..i+R`, columns `j..j+cols` (`cols` at most two vectors); with `SKIP`
/// only the terms `ks` of the contraction block.
///
/// # Safety
/// Rows `i..i+R` and columns `j..j+cols` lie inside the operands; inlined into a function with
/// `V`'s target features.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<V: Simd, const R: usize, const SKIP: bool>(
    g: &Geom,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    i: usize,
    j: usize,
    cols: usize,
    ks: &[u8],
) {
    // SAFETY: masked lanes are neither loaded nor stored.
    unsafe {
        let a = a.offset(i as isize * g.a_rs);
        let b = b.add(j);
        let c = c.offset(i as isize * g.ldc).add(j);
        if cols == 2 * V::LANES {
            tile::<V, R, false, SKIP>(g, a, b, c, V::mask(V::LANES), ks);
        } else if cols > V::LANES {
            // The first vector's columns all exist; the second is masked.
            tile::<V, R, true, SKIP>(g, a, b, c, V::mask(cols - V::LANES), ks);
        } else {
            tile1::<V, R, SKIP>(g, a, b, c, V::mask(cols), ks);
        }
    }
}

/// A full-height tile of two vectors; with `MASKED` the second vector is masked.
///
/// # Safety
/// As [`tile_rows`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<V: Simd, const R: usize, const MASKED: bool, const SKIP: bool>(
    g: &Geom,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    mask: V::Mask,
    ks: &[u8],
) {
    // SAFETY: see `tile_rows`.
    unsafe {
        let l = V::LANES;
        let mut acc = [[V::zero(); 2]; R];
        if g.resume {
            for (r, row) in acc.iter_mut().enumerate() {
                let cp = c.offset(r as isize * g.ldc);
                row[0] = V::load(cp);
                row[1] = if MASKED {
                    V::load_masked(cp.add(l), mask)
                } else {
                    V::load(cp.add(l))
                };
            }
        }
        let steps = if SKIP { ks.len() } else { g.k };
        for t in 0..steps {
            let kk = if SKIP {
                *ks.get_unchecked(t) as isize
            } else {
                t as isize
            };
            let (ap, bp) = (a.offset(kk * g.a_cs), b.offset(kk * g.b_rs));
            let b0 = V::load(bp);
            let b1 = if MASKED {
                V::load_masked(bp.add(l), mask)
            } else {
                V::load(bp.add(l))
            };
            for (r, row) in acc.iter_mut().enumerate() {
                let av = V::splat(ap.offset(r as isize * g.a_rs));
                row[0] = V::fmadd(av, b0, row[0]);
                row[1] = V::fmadd(av, b1, row[1]);
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let cp = c.offset(r as isize * g.ldc);
            V::store(cp, row[0]);
            if MASKED {
                V::store_masked(cp.add(l), mask, row[1]);
            } else {
                V::store(cp.add(l), row[1]);
            }
        }
    }
}

/// A tile of one masked vector (at most `V::LANES` columns).
///
/// # Safety
/// As [`tile_rows`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile1<V: Simd, const R: usize, const SKIP: bool>(
    g: &Geom,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    mask: V::Mask,
    ks: &[u8],
) {
    // SAFETY: see `tile_rows`.
    unsafe {
        let mut acc = [V::zero(); R];
        if g.resume {
            for (r, x) in acc.iter_mut().enumerate() {
                *x = V::load_masked(c.offset(r as isize * g.ldc), mask);
            }
        }
        let steps = if SKIP { ks.len() } else { g.k };
        for t in 0..steps {
            let kk = if SKIP {
                *ks.get_unchecked(t) as isize
            } else {
                t as isize
            };
            let (ap, bp) = (a.offset(kk * g.a_cs), b.offset(kk * g.b_rs));
            let b0 = V::load_masked(bp, mask);
            for (r, x) in acc.iter_mut().enumerate() {
                let av = V::splat(ap.offset(r as isize * g.a_rs));
                *x = V::fmadd(av, b0, *x);
            }
        }
        for (r, x) in acc.iter().enumerate() {
            V::store_masked(c.offset(r as isize * g.ldc), mask, *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: fma in increasing k order from 0, per element.
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        a: &[f64],
        tl: bool,
        b: &[f64],
        b_rs: usize,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for kk in 0..k {
                    let x = if tl { a[kk * m + i] } else { a[i * k + kk] };
                    s = x.mul_add(b[kk * b_rs + j], s);
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    /// Runs the kernels of every width this CPU has on `a` (row-major `m×k`, or column-major
    /// with `tl`) and `b` (rows of `n` values `b_rs` apart), checks they agree bit for bit and
    /// returns the result; the 16 NaN elements past each output must stay.
    fn run(m: usize, n: usize, k: usize, a: &[f64], tl: bool, b: &[f64], b_rs: usize) -> Vec<f64> {
        let (a_rs, a_cs) = if tl { (1, m as isize) } else { (k as isize, 1) };
        let mut results: Vec<Vec<f64>> = vec![];
        for width in [Width::Avx2, Width::Avx512] {
            if !width.available() {
                continue;
            }
            let mut c = vec![f64::NAN; m * n + 16];
            // SAFETY: the width runs here; buffers sized for the shapes.
            unsafe {
                gemm_with(
                    width,
                    m,
                    n,
                    k,
                    a.as_ptr(),
                    a_rs,
                    a_cs,
                    b.as_ptr(),
                    b_rs as isize,
                    c.as_mut_ptr(),
                )
            };
            assert!(
                c[m * n..].iter().all(|x| x.is_nan()),
                "{m}x{n}x{k} {width:?}: wrote past the end"
            );
            c.truncate(m * n);
            if let Some(first) = results.first() {
                assert_same(&c, first, &format!("{m}x{n}x{k} {width:?} vs AVX2"));
            }
            results.push(c);
        }
        results.swap_remove(0)
    }

    /// The same bits (zeros included), NaN where NaN.
    fn assert_same(got: &[f64], want: &[f64], what: &str) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{what} at {i}: {g:?} vs {w:?}"
            );
        }
    }

    /// A ReLU-like operand: whole "units" (rows with `tl`, else columns of the logical lhs)
    /// off per contraction block, and scattered zeros elsewhere.
    fn relu_like(m: usize, k: usize, tl: bool) -> Vec<f64> {
        let mut a = vec![0.0; m * k];
        for i in 0..m {
            for kk in 0..k {
                let unit_off = if tl {
                    (i * 7 + kk / KC).is_multiple_of(3)
                } else {
                    (kk * 5 + i / 6) % 3 == 0
                };
                let v = ((i * 31 + kk * 17) % 23) as f64 - 11.0;
                // Both signed zeros: skipping a -0 term must not change a bit either.
                let val = if unit_off {
                    -0.0
                } else if v < 0.0 {
                    0.0
                } else {
                    v / 3.0
                };
                a[if tl { kk * m + i } else { i * k + kk }] = val;
            }
        }
        a
    }

    #[test]
    fn skipping_zero_terms_matches_the_dense_reference() {
        if !available() {
            return;
        }
        for &(m, n, k) in &[
            (128, 100, 100),
            (100, 100, 3200),
            (37, 20, 300),
            (64, 100, 130),
            (50, 27, 260),
        ] {
            for tl in [false, true] {
                let a = relu_like(m, k, tl);
                let mut b: Vec<f64> = (0..k * n)
                    .map(|i| ((i * 53 % 97) as f64 - 48.0) / 5.0)
                    .collect();
                if tl {
                    // Whole columns of the rhs off per block, as a ReLU gradient's.
                    for kk in 0..k {
                        for j in 0..n {
                            if (j + kk / KC).is_multiple_of(4) {
                                b[kk * n + j] = 0.0;
                            }
                        }
                    }
                }
                let check = |a: &[f64], b: &[f64], what: &str| {
                    let want = reference(m, n, k, a, tl, b, n);
                    assert_same(
                        &run(m, n, k, a, tl, b, n),
                        &want,
                        &format!("{m}x{n}x{k} tl={tl} {what}"),
                    );
                    want.iter().any(|x| x.is_nan())
                };
                assert!(!check(&a, &b, "finite"));
                // A non-finite rhs value times a skipped zero is NaN, as in the dense product.
                for col in [3, n - 1] {
                    let mut b_inf = b.clone();
                    b_inf[(k / 2) * n + col] = f64::INFINITY;
                    assert!(
                        check(&a, &b_inf, "inf in the rhs"),
                        "the case must produce NaN"
                    );
                }
                // And a non-finite lhs value times a zero rhs column.
                let mut a_inf = a.clone();
                a_inf[if tl { (k / 2) * m + 5 } else { 5 * k + k / 2 }] = f64::NEG_INFINITY;
                check(&a_inf, &b, "inf in the lhs");
                // A product that underflows to -0 in a row block that is zero otherwise (so the
                // later terms of its rows are skipped or, with `tl`, its rows are dead in later
                // contraction blocks): the dense chain's next +0 terms turn it back into +0 (so
                // 1/c is +inf, not -inf).
                let (mut a_tiny, mut b_tiny) = (a.clone(), b.clone());
                let at = |i: usize, kk: usize| if tl { kk * m + i } else { i * k + kk };
                for i in 0..MR {
                    for kk in 0..k {
                        a_tiny[at(i, kk)] = 0.0;
                    }
                }
                // The last term of the first contraction block, so the next (dense) term is in
                // the next block.
                let kt = if k > KC { KC - 1 } else { 0 };
                a_tiny[at(5, kt)] = -1e-200;
                for j in 0..n {
                    b_tiny[kt * n + j] = 1e-200;
                    b_tiny[(kt + 1) * n + j] = 1.0;
                }
                let want = reference(m, n, k, &a_tiny, tl, &b_tiny, n);
                assert!(want[5 * n..6 * n].iter().all(|x| x.to_bits() == 0));
                check(&a_tiny, &b_tiny, "underflowing product");
            }
        }
    }

    #[test]
    fn matches_the_fma_reference_bit_for_bit_on_odd_shapes() {
        if !available() {
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (6, 8, 3),
            (7, 9, 5),
            (5, 3, 17),
            (13, 12, 100),
            (128, 100, 100),
            (64, 100, 100),
            (3, 20, 512),
            (100, 100, 3200),
            (9, 5, 300),
            (7, 13, 5),
            (6, 16, 40),
            (11, 17, 9),
            (5, 31, 130),
        ] {
            for tl in [false, true] {
                let a: Vec<f64> = (0..m * k)
                    .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
                    .collect();
                let b_rs = n + 3; // rows with padding between them
                let b: Vec<f64> = (0..k * b_rs)
                    .map(|i| ((i * 53 % 97) as f64 - 48.0) / 5.0)
                    .collect();
                let c = run(m, n, k, &a, tl, &b, b_rs);
                let want = reference(m, n, k, &a, tl, &b, b_rs);
                for idx in 0..m * n {
                    assert_eq!(
                        c[idx].to_bits(),
                        want[idx].to_bits(),
                        "{m}x{n}x{k} tl={tl} at {idx}"
                    );
                }
            }
        }
    }
}
