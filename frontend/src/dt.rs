//! The global integration time step (BrainPy's `bm.get_dt` / `bm.set_dt`, default 0.1).

use std::sync::atomic::{AtomicU64, Ordering};

static DT_BITS: AtomicU64 = AtomicU64::new(0x3FB9_9999_9999_999A); // 0.1

/// The global time step used by neurons and synapses (default 0.1).
pub fn get_dt() -> f64 {
    f64::from_bits(DT_BITS.load(Ordering::Relaxed))
}

/// Sets the global time step; must be finite and positive.
pub fn set_dt(dt: f64) -> crate::Result<()> {
    if !(dt.is_finite() && dt > 0.0) {
        return Err(crate::Error::invalid(
            "set_dt",
            format!("dt must be finite and > 0, got {dt}"),
        ));
    }
    DT_BITS.store(dt.to_bits(), Ordering::Relaxed);
    Ok(())
}
