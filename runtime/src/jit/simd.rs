//! Vector loops for the JIT's Rust routines, compiled for AVX2+FMA when the CPU has them
//! (checked once at run time) and for the baseline target otherwise.
//!
//! The AVX2 versions use `f64::mul_add` (one rounding per term); the baseline versions
//! multiply and add (two roundings). Either way each routine sums in the documented order.

use std::sync::OnceLock;

/// Whether this CPU runs the AVX2+FMA variants.
pub(crate) fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// A multiply-add: fused where the variant has FMA, else multiply then add.
macro_rules! madd {
    (fused, $a:expr, $b:expr, $c:expr) => {
        $a.mul_add($b, $c)
    };
    (plain, $a:expr, $b:expr, $c:expr) => {
        $a * $b + $c
    };
}

/// Defines the loops once, for both variants.
macro_rules! loops {
    ($axpy:ident, $dot:ident, $mode:ident $(, #[$attr:meta])*) => {
        /// `y[i] += a * x[i]` for every `i` (lengths must match; extra elements are ignored).
        $(#[$attr])*
        #[allow(unused_unsafe, clippy::assign_op_pattern)]
        unsafe fn $axpy(a: f64, x: &[f64], y: &mut [f64]) {
            for (y, x) in y.iter_mut().zip(x) {
                *y = madd!($mode, a, *x, *y);
            }
        }

        /// `sum x[i] * y[i]` over eight interleaved partial sums (lane `i % 8`), added
        /// pairwise.
        $(#[$attr])*
        #[allow(unused_unsafe, clippy::assign_op_pattern)]
        unsafe fn $dot(x: &[f64], y: &[f64]) -> f64 {
            let mut acc = [0.0f64; 8];
            let n = x.len().min(y.len());
            let (xc, yc) = (x[..n].chunks_exact(8), y[..n].chunks_exact(8));
            let (xr, yr) = (xc.remainder(), yc.remainder());
            for (xs, ys) in xc.zip(yc) {
                for l in 0..8 {
                    acc[l] = madd!($mode, xs[l], ys[l], acc[l]);
                }
            }
            for (l, (a, b)) in xr.iter().zip(yr).enumerate() {
                acc[l] = madd!($mode, *a, *b, acc[l]);
            }
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
        }
    };
}

loops!(axpy_base, dot_base, plain, #[inline(always)]);
#[cfg(target_arch = "x86_64")]
loops!(axpy_avx2, dot_avx2, fused, #[target_feature(enable = "avx2,fma")]);

/// See [`axpy_base`] (the AVX2+FMA variant when the CPU has it).
#[inline]
pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports the features the variant is compiled for.
        return unsafe { axpy_avx2(a, x, y) };
    }
    // SAFETY: the baseline variant has no requirements.
    unsafe { axpy_base(a, x, y) }
}

/// See [`dot_base`] (the AVX2+FMA variant when the CPU has it).
#[inline]
pub(crate) fn dot(x: &[f64], y: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports the features the variant is compiled for.
        return unsafe { dot_avx2(x, y) };
    }
    // SAFETY: the baseline variant has no requirements.
    unsafe { dot_base(x, y) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axpy_and_dot_match_plain_loops() {
        for n in [0usize, 1, 3, 7, 8, 9, 100, 1001] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let y0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let mut y = y0.clone();
            axpy(1.5, &x, &mut y);
            for i in 0..n {
                assert!(
                    (y[i] - (y0[i] + 1.5 * x[i])).abs() <= 1e-15,
                    "axpy n={n} i={i}"
                );
            }
            let want: f64 = x.iter().zip(&y0).map(|(a, b)| a * b).sum();
            let got = dot(&x, &y0);
            assert!(
                (got - want).abs() <= 1e-13 * (1.0 + want.abs()),
                "dot n={n}"
            );
        }
    }
}
