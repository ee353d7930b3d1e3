//! Worker threads of the JIT: how many, and the pool that runs row blocks of scans and of
//! large products.
//!
//! The thread count is `BRAINLIFT_THREADS` when set (a positive integer), else the number of
//! CPUs the process may use; [`set_num_threads`] overrides both. It is read when a function
//! is compiled: a compiled function splits its scans for the thread count of that moment
//! (and the kernel cache keys on it). One thread means no worker threads at all.
//!
//! The pool ([`run_blocks`]) keeps `threads - 1` workers that, after a block, spin for
//! [`SPIN`] waiting for the next one before they sleep: a train step hands out a few parallel
//! regions a few hundred microseconds apart, and waking a sleeping thread costs 20–40 µs on
//! this kind of machine (measured), a tenth of a region. The calling thread and the workers
//! claim blocks one at a time from a shared counter (a thread slowed down by the host simply
//! takes fewer), and the caller returns when all are done: a scoped fork/join. When the pool is
//! busy (another thread of the program is inside a region) or the caller is itself a worker,
//! the blocks run one after another on the calling thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// 0 = not chosen yet.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Largest accepted thread count.
pub const MAX_THREADS: usize = 256;

/// How long an idle worker spins before it sleeps.
pub const SPIN: Duration = Duration::from_micros(500);

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

/// A region's work as the workers see it: the closure (lifetime erased; the caller waits
/// until every block is done before its frame ends) and the number of blocks.
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    blocks: usize,
    /// The next unclaimed block (shared by the caller and the workers of the region).
    next: *const AtomicUsize,
}

// SAFETY: the closure is `Sync` and outlives every use (see `run_blocks`).
unsafe impl Send for Job {}

/// One worker's mailbox.
struct Slot {
    /// Sequence number of the last posted job (0: none yet).
    posted: AtomicU64,
    /// Sequence number of the last finished job.
    finished: AtomicU64,
    job: Mutex<Option<Job>>,
    sleeping: AtomicBool,
    /// A block of the last job panicked.
    panicked: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

struct Pool {
    slots: Vec<Arc<Slot>>,
    /// Held by the thread inside a region.
    busy: Mutex<()>,
    seq: AtomicU64,
}

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

fn worker_loop(slot: Arc<Slot>, index: usize) {
    IS_WORKER.with(|w| w.set(true));
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let seq = loop {
            let s = slot.posted.load(Ordering::Acquire);
            if s != seen {
                break s;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            slot.sleeping.store(true, Ordering::SeqCst);
            if slot.posted.load(Ordering::SeqCst) == seen {
                std::thread::park_timeout(Duration::from_millis(100));
            }
            slot.sleeping.store(false, Ordering::SeqCst);
        };
        seen = seq;
        let job = *slot.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = job {
            // SAFETY: the caller keeps the closure and the counter alive until `finished`
            // reaches `seq`.
            let (f, next) = unsafe { (&*job.f, &*job.next) };
            let _ = index;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= job.blocks {
                    break;
                }
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).is_err() {
                    slot.panicked.store(true, Ordering::Relaxed);
                }
            }
        }
        slot.finished.store(seq, Ordering::Release);
    }
}

/// Workers used for a job of `blocks` blocks (the caller runs block 0).
fn job_workers(blocks: usize) -> usize {
    blocks.saturating_sub(1).min(pool_size())
}

fn pool_size() -> usize {
    pool().map_or(0, |p| p.slots.len())
}

/// The pool, started on first use with `num_threads() - 1` workers (`None` when one thread
/// is configured or the system refuses to start threads).
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = num_threads().saturating_sub(1);
        if n == 0 {
            return None;
        }
        let mut slots = Vec::with_capacity(n);
        for i in 0..n {
            let slot = Arc::new(Slot {
                posted: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                job: Mutex::new(None),
                sleeping: AtomicBool::new(false),
                panicked: AtomicBool::new(false),
                thread: OnceLock::new(),
            });
            let s = slot.clone();
            let handle = std::thread::Builder::new()
                .name(format!("brainlift-worker-{i}"))
                .spawn(move || worker_loop(s, i))
                .ok()?;
            let _ = slot.thread.set(handle.thread().clone());
            slots.push(slot);
        }
        Some(Pool {
            slots,
            busy: Mutex::new(()),
            seq: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Runs `block(i)` for every `i` in `0..blocks` in parallel (block 0 on the calling thread)
/// and returns when all are done. Blocks must not depend on each other's order. Falls back to
/// running them in order on the calling thread (see the module doc). A panicking block is
/// re-raised on the calling thread after the region.
pub fn run_blocks(blocks: usize, block: &(dyn Fn(usize) + Sync)) {
    let serial = || (0..blocks).for_each(block);
    if blocks <= 1 || IS_WORKER.with(|w| w.get()) {
        return serial();
    }
    let Some(pool) = pool() else {
        return serial();
    };
    // A guard poisoned by an earlier panicking region is still a free pool.
    let _guard = match pool.busy.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return serial(),
    };
    let workers = job_workers(blocks);
    // SAFETY (lifetime erasure): this function does not return before every worker has
    // finished this job (`finished == seq` below), so the closure outlives its uses.
    let f: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(block) };
    let next = AtomicUsize::new(0);
    let job = Job {
        f,
        blocks,
        next: &next,
    };
    let seq = pool.seq.fetch_add(1, Ordering::Relaxed) + 1;
    for slot in &pool.slots[..workers] {
        *slot.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        slot.panicked.store(false, Ordering::Relaxed);
        slot.posted.store(seq, Ordering::SeqCst);
        if slot.sleeping.load(Ordering::SeqCst)
            && let Some(t) = slot.thread.get()
        {
            t.unpark();
        }
    }
    // Every participant claims the next block until none is left, so a thread that runs
    // slower (a busy host core) simply takes fewer blocks.
    // A panicking block must not unwind past the workers still using `block`: catch it,
    // wait for them, then re-raise.
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= blocks {
                break;
            }
            block(i);
        }
    }));
    let mut spins = 0u32;
    for slot in &pool.slots[..workers] {
        while slot.finished.load(Ordering::Acquire) != seq {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
    if let Err(payload) = mine {
        std::panic::resume_unwind(payload);
    }
    if pool.slots[..workers]
        .iter()
        .any(|s| s.panicked.load(Ordering::Relaxed))
    {
        panic!("a parallel block of a JIT step panicked");
    }
}

/// [`run_blocks`] for the region of one compiled operation, identified by `site` (a stable
/// address, e.g. of the operation's step in its plan): runs the region on the workers or on
/// the calling thread alone, whichever has recently been faster for this site.
///
/// Parallel regions lose when a worker's core is busy with something else (another program,
/// or a host that runs the virtual CPUs on shared hardware): the caller then waits for the
/// worker far longer than running every block itself would take — measured here, a whole
/// spiking-net training part took 3.7–4.7 s on two threads with a busy loop on the second
/// core against 1.8–2.1 s on one. Every site keeps a moving average of both modes' times:
/// it starts parallel, tries serial once, then takes the faster mode and re-measures the
/// other every [`adaptive::EXPLORE`]-th call. Results do not depend on the mode (a block
/// computes the same values on any thread).
pub fn run_blocks_at(site: usize, blocks: usize, block: &(dyn Fn(usize) + Sync)) {
    if blocks <= 1 || pool_size() == 0 || IS_WORKER.with(|w| w.get()) {
        return run_blocks(blocks, block);
    }
    let serial = adaptive::choose_serial(site);
    let start = Instant::now();
    if serial {
        (0..blocks).for_each(block);
    } else {
        run_blocks(blocks, block);
    }
    adaptive::record(site, serial, start.elapsed());
}

/// The per-site timing behind [`run_blocks_at`].
mod adaptive {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Every this many calls a site runs its slower mode once, to notice a change.
    pub const EXPLORE: u64 = 32;
    /// Sites remembered; beyond this the table starts afresh (sites of dropped functions).
    const MAX_SITES: usize = 4096;

    #[derive(Default)]
    struct Site {
        calls: u64,
        /// Moving averages in seconds (0: not measured yet).
        parallel: f64,
        serial: f64,
    }

    static SITES: Mutex<Option<HashMap<usize, Site>>> = Mutex::new(None);

    fn with_site<R>(site: usize, f: impl FnOnce(&mut Site) -> R) -> R {
        let mut guard = SITES.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        if map.len() >= MAX_SITES && !map.contains_key(&site) {
            map.clear();
        }
        f(map.entry(site).or_default())
    }

    /// Whether the next call at `site` runs serially.
    pub fn choose_serial(site: usize) -> bool {
        with_site(site, |s| {
            s.calls += 1;
            if s.calls <= 2 {
                false
            } else if s.serial == 0.0 {
                true
            } else {
                let prefer_serial = s.serial < s.parallel;
                prefer_serial != s.calls.is_multiple_of(EXPLORE)
            }
        })
    }

    /// Records one call's time.
    pub fn record(site: usize, serial: bool, t: Duration) {
        let t = t.as_secs_f64();
        with_site(site, |s| {
            let avg = if serial {
                &mut s.serial
            } else {
                &mut s.parallel
            };
            *avg = if *avg == 0.0 {
                t
            } else {
                0.75 * *avg + 0.25 * t
            };
        })
    }
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

    #[test]
    fn every_block_runs_exactly_once() {
        for blocks in [0usize, 1, 2, 3, 7] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
                run_blocks(blocks, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "{blocks}"
                );
            }
        }
    }

    #[test]
    fn a_panicking_block_is_re_raised_after_the_region() {
        let done = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_blocks(4, &|i| {
                if i == 0 {
                    panic!("block 0 fails");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err());
        // The pool still works afterwards, in parallel.
        let before = done.load(Ordering::Relaxed);
        let workers = std::sync::Mutex::new(std::collections::HashSet::new());
        run_blocks(2, &|_| {
            done.fetch_add(1, Ordering::Relaxed);
            workers.lock().unwrap().insert(std::thread::current().id());
        });
        assert_eq!(done.load(Ordering::Relaxed), before + 2);
    }

    #[test]
    fn regions_from_several_threads_at_once_all_complete() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        run_blocks(3, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 100 * 3);
    }

    #[test]
    fn adaptive_regions_run_every_block_once_in_either_mode() {
        let site = 0x5eed;
        for call in 0..100 {
            let hits: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            run_blocks_at(site, 4, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "call {call}"
            );
        }
    }

    #[test]
    fn adaptive_choice_follows_the_faster_mode() {
        let site = 0xfa57;
        // Warm-up: two parallel calls, then one serial probe.
        assert!(!adaptive::choose_serial(site));
        adaptive::record(site, false, Duration::from_millis(4));
        assert!(!adaptive::choose_serial(site));
        adaptive::record(site, false, Duration::from_millis(4));
        assert!(adaptive::choose_serial(site));
        adaptive::record(site, true, Duration::from_millis(1));
        // Serial is faster: chosen, except on every EXPLORE-th call.
        let mut parallel_calls = 0;
        for _ in 0..2 * adaptive::EXPLORE {
            if !adaptive::choose_serial(site) {
                parallel_calls += 1;
                adaptive::record(site, false, Duration::from_millis(4));
            } else {
                adaptive::record(site, true, Duration::from_millis(1));
            }
        }
        assert_eq!(parallel_calls, 2);
    }
}
