//! Worker threads of the JIT: how many, and the pool that runs row blocks of scans.
//!
//! The thread count is `BRAINLIFT_THREADS` when set (a positive integer), else the number of
//! CPUs the process may use; [`set_num_threads`] overrides both. It is read when a function
//! is compiled: a compiled function splits its scans for the thread count of that moment
//! (and the kernel cache keys on it). One thread means no worker threads at all.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// 0 = not chosen yet.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Largest accepted thread count.
pub const MAX_THREADS: usize = 256;

/// Parses a `BRAINLIFT_THREADS` value: an integer in `1..=MAX_THREADS`.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "BRAINLIFT_THREADS='{s}' is not a thread count: expected an integer from 1 to {MAX_THREADS}"
        )),
    }
}

fn default_threads() -> usize {
    if let Ok(s) = std::env::var("BRAINLIFT_THREADS")
        && let Ok(n) = parse_threads(&s)
    {
        return n;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// The thread count functions are compiled for (see the module doc).
pub fn num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = default_threads();
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// Sets the thread count for functions compiled from now on (clamped to `1..=MAX_THREADS`).
pub fn set_num_threads(n: usize) {
    THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
}

/// The worker pool (the calling thread is one more): built on first use with enough workers
/// for the thread count of that moment (a larger count later still runs correctly, some
/// blocks queued behind others). `None` when the system refuses to start threads; callers
/// then run everything on the calling thread.
pub(crate) fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(num_threads().saturating_sub(1).max(1))
            .thread_name(|i| format!("brainlift-worker-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_parse_strictly() {
        assert_eq!(parse_threads("2"), Ok(2));
        assert_eq!(parse_threads(" 1 "), Ok(1));
        for bad in ["0", "-1", "two", "", "100000"] {
            let e = parse_threads(bad).unwrap_err();
            assert!(e.contains("BRAINLIFT_THREADS"), "{e}");
        }
    }
}
