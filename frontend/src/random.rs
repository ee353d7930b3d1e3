//! Seeded random numbers: a process-wide default generator (like `bm.random.seed`) and
//! helpers to draw arrays from it. Same seed, same numbers.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(0));
}

/// Reseeds the default generator of this thread.
pub fn seed(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// Runs `f` with the default generator.
pub fn with_rng<T>(f: impl FnOnce(&mut StdRng) -> T) -> T {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// A new generator seeded from the default one (for a component that keeps its own stream).
pub fn split() -> StdRng {
    with_rng(|r| StdRng::seed_from_u64(r.random::<u64>()))
}

/// `n` samples of N(0, 1).
pub fn normal(n: usize) -> Vec<f64> {
    with_rng(|r| (0..n).map(|_| StandardNormal.sample(r)).collect())
}

/// `n` samples of U[0, 1).
pub fn uniform(n: usize) -> Vec<f64> {
    with_rng(|r| (0..n).map(|_| r.random::<f64>()).collect())
}

/// `n` samples of N(0, 1) truncated to (-2, 2) (rejection sampling).
pub fn truncated_normal(n: usize) -> Vec<f64> {
    with_rng(|r| {
        (0..n)
            .map(|_| {
                loop {
                    let z: f64 = StandardNormal.sample(r);
                    if z > -2.0 && z < 2.0 {
                        break z;
                    }
                }
            })
            .collect()
    })
}
