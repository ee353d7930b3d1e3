//! The process-wide kernel cache.
//!
//! Compiled functions are keyed by a structural fingerprint: the function's instructions,
//! attributes, constants, shapes and dtypes, and its nested bodies, ignoring every name
//! (function, input and output names do not change the code), plus the code generation
//! options and the thread count ([`crate::threads`]) the scans were split for. A hash selects the bucket and full structural equality confirms the hit, so
//! different functions never share code. Compiling a function already in the cache costs the
//! fingerprint and a comparison; [`cache_stats`] counts hits, misses and compile time.
//!
//! Entries are shared through `Arc`: an entry lives while the cache or any executable holds it,
//! and its machine code is freed (`JITModule::free_memory`) when the last holder drops. The
//! cache keeps at most [`CAPACITY`] entries; beyond that the oldest are evicted (executables
//! that still use them keep them alive).

use crate::RuntimeError;
use crate::jit::CompiledFunction;
use brainlift_compiler::codegen::CodegenOptions;
use brainlift_ir::{Function, Op};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Maximum number of cached compiled functions.
pub const CAPACITY: usize = 256;

/// Counters of the kernel cache since process start (or the last [`reset_cache_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Compilations answered from the cache.
    pub hits: u64,
    /// Compilations that ran the compiler.
    pub misses: u64,
    /// Total wall time spent compiling (fusion, Cranelift, layout) on misses.
    pub compile_time: Duration,
    /// Entries currently cached.
    pub entries: usize,
}

struct Entry {
    key: Function,
    opts: CodegenOptions,
    /// The thread count the scans were split for.
    threads: usize,
    compiled: Arc<CompiledFunction>,
}

#[derive(Default)]
struct Cache {
    map: HashMap<u64, Vec<Entry>>,
    order: VecDeque<u64>,
    stats: CacheStats,
}

fn cache() -> &'static Mutex<Cache> {
    static C: OnceLock<Mutex<Cache>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(Cache::default()))
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // A panic while holding the lock cannot leave the map inconsistent (single inserts).
    cache().lock().unwrap_or_else(|e| e.into_inner())
}

/// The cache counters.
pub fn cache_stats() -> CacheStats {
    let c = lock();
    CacheStats {
        entries: c.map.values().map(|v| v.len()).sum(),
        ..c.stats
    }
}

/// Resets the counters (not the entries).
pub fn reset_cache_stats() {
    lock().stats = CacheStats::default();
}

/// Drops every cached entry (executables keep theirs alive).
pub fn clear_cache() {
    let mut c = lock();
    c.map.clear();
    c.order.clear();
}

/// The function with every name removed (the structural key).
pub fn normalize(f: &Function) -> Function {
    let mut g = f.clone();
    strip(&mut g);
    g
}

fn strip(f: &mut Function) {
    f.name.clear();
    for p in &mut f.params {
        p.name.clear();
    }
    for o in &mut f.outputs {
        o.name.clear();
    }
    for inst in &mut f.insts {
        if let Op::CustomVjp(c) = &mut inst.op {
            c.name.clear();
        }
        for b in inst.op.bodies_mut() {
            strip(b);
        }
    }
}

/// A structural fingerprint of `f`: equal for functions equal up to names.
pub fn fingerprint(f: &Function) -> u64 {
    let mut h = DefaultHasher::new();
    hash_function(f, &mut h);
    h.finish()
}

fn hash_function(f: &Function, h: &mut DefaultHasher) {
    f.types.len().hash(h);
    for t in &f.types {
        t.hash(h);
    }
    f.params.len().hash(h);
    for inst in &f.insts {
        inst.op.name().hash(h);
        match &inst.op {
            Op::Constant(c) => {
                c.ty.hash(h);
                for x in c.data.iter() {
                    x.to_bits().hash(h);
                }
            }
            Op::Scan(s) => {
                (s.length, s.num_carry, s.num_xs, s.reverse).hash(h);
                hash_function(&s.body, h);
            }
            Op::CustomVjp(c) => {
                hash_function(&c.forward, h);
                hash_function(&c.backward, h);
            }
            // Every other op's attributes are integers, shapes and flags: Debug is canonical.
            op => format!("{op:?}").hash(h),
        }
        for a in &inst.args {
            a.hash(h);
        }
        for r in &inst.results {
            r.hash(h);
        }
    }
    for o in &f.outputs {
        o.value.hash(h);
    }
}

/// The compiled form of `f` from the cache, compiling on a miss. Returns whether it was a hit.
pub(crate) fn get_or_compile(
    f: &Function,
    opts: &CodegenOptions,
    threads: usize,
) -> Result<(Arc<CompiledFunction>, bool), RuntimeError> {
    let key = normalize(f);
    let mut hasher = DefaultHasher::new();
    hash_function(&key, &mut hasher);
    opts.hash(&mut hasher);
    threads.hash(&mut hasher);
    let fp = hasher.finish();
    {
        let mut c = lock();
        let found = c
            .map
            .get(&fp)
            .and_then(|v| {
                v.iter()
                    .find(|e| e.opts == *opts && e.threads == threads && e.key == key)
            })
            .map(|e| e.compiled.clone());
        if let Some(compiled) = found {
            c.stats.hits += 1;
            return Ok((compiled, true));
        }
    }
    // Compile outside the lock (other threads may compile other functions meanwhile).
    let compiled = Arc::new(CompiledFunction::build(f, opts, threads)?);
    let mut c = lock();
    c.stats.misses += 1;
    c.stats.compile_time += compiled.compile_time();
    let bucket = c.map.entry(fp).or_default();
    if let Some(e) = bucket
        .iter()
        .find(|e| e.opts == *opts && e.threads == threads && e.key == key)
    {
        // Another thread compiled it first: use theirs (ours is freed on drop).
        return Ok((e.compiled.clone(), false));
    }
    bucket.push(Entry {
        key,
        opts: opts.clone(),
        threads,
        compiled: compiled.clone(),
    });
    c.order.push_back(fp);
    while c.order.len() > CAPACITY {
        if let Some(old) = c.order.pop_front()
            && let Some(v) = c.map.get_mut(&old)
        {
            if !v.is_empty() {
                v.remove(0);
            }
            if v.is_empty() {
                c.map.remove(&old);
            }
        }
    }
    Ok((compiled, false))
}
