//! A packing-free f64 GEMM with a row-contiguous rhs, for the shapes of recurrent training:
//! the per-time-step products `h[B,H] · W[H,H]` and the weight gradients `H^T · dZ` summed
//! over time × batch, where the general `gemm` crate spends a tenth or more of its time
//! packing operands that already sit in cache.
//!
//! `C[m×n] = A[m×k] · B[k×n]`: `A` is read through any strides (one broadcast per element),
//! `B` row by row (unit column stride, any row stride), `C` is row-major. The contraction is
//! cut into blocks of [`KC`]; within a block, for each 8-column panel of `B` (`KC` × 64 bytes,
//! in L1), every 6-row block of `A` (12 AVX2 accumulators). Edge tiles use fewer rows and
//! masked loads and stores for the last columns, so nothing outside the operands is touched.
//!
//! Every output element is `fma(a[i,k-1], b[k-1,j], … fma(a[i,0], b[0,j], 0))`: the reference
//! summation order with one rounding per term — a later contraction block resumes the chain
//! from the stored partial — independent of the tile an element falls in (so splitting the
//! rows over threads changes nothing).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Contraction block length (measured best here among 64..256 for 100×100×3200).
const KC: usize = 128;
/// Most lhs rows this kernel takes (one contraction block of `A` stays in L2).
pub(crate) const MAX_M: usize = 512;

/// Whether [`gemm_nn`] runs on this CPU (AVX2 and FMA).
pub(crate) fn available() -> bool {
    super::simd::has_avx2_fma()
}

/// `C = A · B` (see the module doc).
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
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller (features checked by `available`).
    unsafe {
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            let g = Geom {
                k: kc,
                a_rs,
                a_cs,
                b_rs,
                ldc: n as isize,
                resume: k0 > 0,
            };
            let (a, b) = (a.offset(k0 as isize * a_cs), b.offset(k0 as isize * b_rs));
            let mut j = 0;
            while j < n {
                let cols = (n - j).min(8);
                let mut i = 0;
                while i + 6 <= m {
                    tile_rows::<6>(&g, a, b, c, i, j, cols);
                    i += 6;
                }
                match m - i {
                    1 => tile_rows::<1>(&g, a, b, c, i, j, cols),
                    2 => tile_rows::<2>(&g, a, b, c, i, j, cols),
                    3 => tile_rows::<3>(&g, a, b, c, i, j, cols),
                    4 => tile_rows::<4>(&g, a, b, c, i, j, cols),
                    5 => tile_rows::<5>(&g, a, b, c, i, j, cols),
                    _ => {}
                }
                j += 8;
            }
            k0 += kc;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k, a, a_rs, a_cs, b, b_rs, c);
        unreachable!("gemm::available() is false off x86-64");
    }
}

#[cfg(target_arch = "x86_64")]
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

/// The tile at rows `i..i+R`, columns `j..j+cols` (`cols <= 8`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<const R: usize>(
    g: &Geom,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    i: usize,
    j: usize,
    cols: usize,
) {
    // SAFETY: rows i..i+R and columns j..j+cols lie inside the operands; masked lanes are
    // neither loaded nor stored.
    unsafe {
        let a = a.offset(i as isize * g.a_rs);
        let b = b.add(j);
        let c = c.offset(i as isize * g.ldc).add(j);
        if cols == 8 {
            tile::<R, false>(g, a, b, c, _mm256_setzero_si256());
        } else {
            // Lanes of the second vector (columns 4..8) that exist; columns 0..4 always do
            // when cols > 4, else the tile is handled as a masked first vector.
            let lanes = |live: usize| {
                _mm256_setr_epi64x(
                    if live > 0 { -1 } else { 0 },
                    if live > 1 { -1 } else { 0 },
                    if live > 2 { -1 } else { 0 },
                    if live > 3 { -1 } else { 0 },
                )
            };
            if cols > 4 {
                tile::<R, true>(g, a, b, c, lanes(cols - 4));
            } else {
                tile1::<R>(g, a, b, c, lanes(cols));
            }
        }
    }
}

/// A full-height tile of two vectors (8 columns); with `MASKED` the second vector is masked.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const MASKED: bool>(
    g: &Geom,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    mask: __m256i,
) {
    // SAFETY: see `tile_rows`.
    unsafe {
        let mut acc = [[_mm256_setzero_pd(); 2]; R];
        if g.resume {
            for (r, row) in acc.iter_mut().enumerate() {
                let cp = c.offset(r as isize * g.ldc);
                row[0] = _mm256_loadu_pd(cp);
                row[1] = if MASKED {
                    _mm256_maskload_pd(cp.add(4), mask)
                } else {
                    _mm256_loadu_pd(cp.add(4))
                };
            }
        }
        let mut ap = a;
        let mut bp = b;
        for _ in 0..g.k {
            let b0 = _mm256_loadu_pd(bp);
            let b1 = if MASKED {
                _mm256_maskload_pd(bp.add(4), mask)
            } else {
                _mm256_loadu_pd(bp.add(4))
            };
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_sd(&*ap.offset(r as isize * g.a_rs));
                row[0] = _mm256_fmadd_pd(av, b0, row[0]);
                row[1] = _mm256_fmadd_pd(av, b1, row[1]);
            }
            ap = ap.offset(g.a_cs);
            bp = bp.offset(g.b_rs);
        }
        for (r, row) in acc.iter().enumerate() {
            let cp = c.offset(r as isize * g.ldc);
            _mm256_storeu_pd(cp, row[0]);
            if MASKED {
                _mm256_maskstore_pd(cp.add(4), mask, row[1]);
            } else {
                _mm256_storeu_pd(cp.add(4), row[1]);
            }
        }
    }
}

/// A tile of one masked vector (at most 4 columns).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile1<const R: usize>(
    g: &Geom,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    mask: __m256i,
) {
    // SAFETY: see `tile_rows`.
    unsafe {
        let mut acc = [_mm256_setzero_pd(); R];
        if g.resume {
            for (r, x) in acc.iter_mut().enumerate() {
                *x = _mm256_maskload_pd(c.offset(r as isize * g.ldc), mask);
            }
        }
        let mut ap = a;
        let mut bp = b;
        for _ in 0..g.k {
            let b0 = _mm256_maskload_pd(bp, mask);
            for (r, x) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_sd(&*ap.offset(r as isize * g.a_rs));
                *x = _mm256_fmadd_pd(av, b0, *x);
            }
            ap = ap.offset(g.a_cs);
            bp = bp.offset(g.b_rs);
        }
        for (r, x) in acc.iter().enumerate() {
            _mm256_maskstore_pd(c.offset(r as isize * g.ldc), mask, *x);
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
        ] {
            for tl in [false, true] {
                let a: Vec<f64> = (0..m * k)
                    .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
                    .collect();
                let b_rs = n + 3; // rows with padding between them
                let b: Vec<f64> = (0..k * b_rs)
                    .map(|i| ((i * 53 % 97) as f64 - 48.0) / 5.0)
                    .collect();
                // Poison beyond the output to catch stray stores.
                let mut c = vec![f64::NAN; m * n + 8];
                let (a_rs, a_cs) = if tl { (1, m as isize) } else { (k as isize, 1) };
                // SAFETY: AVX2+FMA checked; buffers sized for the shapes.
                unsafe {
                    gemm_nn(
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
                let want = reference(m, n, k, &a, tl, &b, b_rs);
                for idx in 0..m * n {
                    assert_eq!(
                        c[idx].to_bits(),
                        want[idx].to_bits(),
                        "{m}x{n}x{k} tl={tl} at {idx}"
                    );
                }
                assert!(
                    c[m * n..].iter().all(|x| x.is_nan()),
                    "{m}x{n}x{k}: wrote past the end"
                );
            }
        }
    }
}
