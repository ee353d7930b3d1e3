//! The pass manager: a named pipeline of stages, each a sequence of passes.
//!
//! Stages, in order:
//! 1. `traced` — the input function as given (verified first);
//! 2. `ad` — only when a gradient is requested ([`GradRequest`]): the output of
//!    [`crate::ad::vjp`], [`crate::ad::grad`] or [`crate::ad::value_and_grad`];
//! 3. `simplified` — when [`PipelineConfig::finalize`] (the result will not be differentiated
//!    again): `inline_custom_vjp` and `stop_gradient` removal; then rounds of
//!    `algebra`, `fold`, `cse`, `dce` until the op count stops falling;
//! 4. `unrolled` (scans with `length <= threshold` become straight-line code, then one more
//!    simplification round) when [`PipelineConfig::unroll_threshold`] is set, else
//!    `scanned` (loops kept as `scan`; no pass runs);
//! 5. `lowered` — when [`PipelineConfig::lower`] is set (what the JIT compiles): reverse
//!    scans read the forward scan's values instead of recomputing them (`scan_residuals`,
//!    exact); with [`Lowering::reassociate`] per-step accumulators leave the loops
//!    (`scan_hoist`) and `k = 1` matmuls become elementwise outer products
//!    (`outer_product`; the JIT then contracts them with an add into an `fma`) and divisions
//!    by constants become multiplies, chains of constant factors one factor (`const_scale`);
//!    transposed
//!    loop-invariant matmul operands are transposed once before their scan
//!    (`hoist_transpose`, exact); broadcast loop invariants enter their scan unbroadcast
//!    (`sink_broadcast`, exact: the kernel reads the row); 0/1 values stay `bool` until a
//!    product reads them (`bool_casts`: stacked spikes as bytes, `matmul` of a bool lhs;
//!    exact); then `algebra` and `dce` (which also drops the scan operands nobody reads any
//!    more).
//!
//! After every pass the result is checked with [`brainlift_ir::verify()`] (always in debug
//! builds; in release builds when [`PipelineConfig::verify`] is set); a failure is reported as
//! [`PipelineError::Broken`] naming the stage and the pass. [`run_pipeline`] returns every
//! stage's function with its op count and time, and the op count and time of every pass.

use crate::ad::{self, AdError};
use crate::passes::{
    algebra::algebra, bool_casts::bool_casts, const_scale::const_scale, cse::cse, dce::dce,
    fold::fold, hoist_transpose::hoist_transpose, inline_custom_vjp::inline_custom_vjp,
    outer_product::outer_product, scan_hoist::scan_hoist, scan_residuals::scan_residuals,
    sink_broadcast::sink_broadcast, unroll::unroll,
};
use brainlift_ir::{Function, IrError, verify};
use std::fmt::Write;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Which derivative the `ad` stage computes, and w.r.t. which inputs (by index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GradRequest {
    /// [`crate::ad::vjp`]: inputs gain output cotangents, outputs gain gradients.
    Vjp(Vec<usize>),
    /// [`crate::ad::grad`]: gradients of a scalar loss.
    Grad(Vec<usize>),
    /// [`crate::ad::value_and_grad`]: the loss, then its gradients.
    ValueAndGrad(Vec<usize>),
}

/// Pipeline options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Run the `ad` stage.
    pub grad: Option<GradRequest>,
    /// Unroll scans of at most this length (stage `unrolled`); `None` keeps every scan
    /// (stage `scanned`).
    pub unroll_threshold: Option<usize>,
    /// The result is for execution only: inline `custom_vjp` forwards and drop
    /// `stop_gradient` in `simplified`.
    pub finalize: bool,
    /// Verify after every pass in release builds too (debug builds always verify).
    pub verify: bool,
    /// Maximum number of simplification rounds.
    pub max_rounds: usize,
    /// Run the `lowered` stage (the JIT's own rewrites).
    pub lower: Option<Lowering>,
}

/// Options of the `lowered` stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lowering {
    /// Let rounding change: per-step accumulators of a scan become one GEMM or reduction
    /// after the loop (`scan_hoist`), and outer products become elementwise multiplies that
    /// the JIT contracts with a following add into an `fma` (`outer_product`), and divisions
    /// by constants become multiplies by the reciprocal (`const_scale`).
    pub reassociate: bool,
}

impl Default for PipelineConfig {
    /// No gradient, unroll scans of length <= 8, finalize, verify, at most 4 rounds.
    fn default() -> PipelineConfig {
        PipelineConfig {
            grad: None,
            unroll_threshold: Some(8),
            finalize: true,
            verify: true,
            max_rounds: 4,
            lower: None,
        }
    }
}

/// One pass execution inside a stage.
#[derive(Clone, Debug)]
pub struct PassRun {
    /// Pass name (`algebra`, `cse`, ...).
    pub pass: &'static str,
    /// Op count (nested bodies included) after the pass.
    pub op_count: usize,
    /// Wall time of the pass (verification excluded).
    pub time: Duration,
}

/// The function at the end of one stage.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Stage name: `traced`, `ad`, `simplified`, `unrolled` or `scanned`.
    pub name: &'static str,
    /// The function after the stage.
    pub function: Function,
    /// Its op count, nested bodies included.
    pub op_count: usize,
    /// Total pass time of the stage.
    pub time: Duration,
    /// Every pass run in this stage, in order.
    pub passes: Vec<PassRun>,
}

/// Every stage's function, op count and time.
#[derive(Clone, Debug)]
pub struct PipelineReport {
    /// Stages in pipeline order.
    pub stages: Vec<Stage>,
}

impl PipelineReport {
    /// The stage called `name`, if it ran.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The function after the last stage.
    pub fn output(&self) -> &Function {
        &self
            .stages
            .last()
            .expect("a report always has the traced stage")
            .function
    }

    /// A table: one line per stage with its op count and time.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for st in &self.stages {
            let _ = writeln!(
                s,
                "{:<11} {:>6} ops {:>10.3} ms",
                st.name,
                st.op_count,
                st.time.as_secs_f64() * 1e3
            );
        }
        s
    }
}

/// Why the pipeline stopped.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PipelineError {
    /// The input function is not valid IR.
    #[error("the traced function is invalid: {0}")]
    Input(IrError),
    /// The AD stage failed.
    #[error("stage ad: {0}")]
    Ad(#[from] AdError),
    /// A pass failed or produced IR the verifier rejects.
    #[error("stage {stage}, pass {pass}: {error}")]
    Broken {
        /// Stage name.
        stage: &'static str,
        /// Pass name.
        pass: &'static str,
        /// The error.
        error: IrError,
    },
}

/// The stage names, in pipeline order (`unrolled` and `scanned` are alternatives).
pub const STAGES: [&str; 6] = [
    "traced",
    "ad",
    "simplified",
    "unrolled",
    "scanned",
    "lowered",
];

struct Runner {
    verify: bool,
    stage: &'static str,
    passes: Vec<PassRun>,
}

impl Runner {
    fn run(
        &mut self,
        pass: &'static str,
        f: &Function,
        p: impl FnOnce(&Function) -> Result<Function, IrError>,
    ) -> Result<Function, PipelineError> {
        let t0 = Instant::now();
        let g = p(f).map_err(|error| PipelineError::Broken {
            stage: self.stage,
            pass,
            error,
        })?;
        let time = t0.elapsed();
        if self.verify {
            verify(&g).map_err(|error| PipelineError::Broken {
                stage: self.stage,
                pass,
                error,
            })?;
        }
        self.passes.push(PassRun {
            pass,
            op_count: g.op_count(),
            time,
        });
        Ok(g)
    }

    fn finish(&mut self, name: &'static str, f: Function, stages: &mut Vec<Stage>) {
        let passes = std::mem::take(&mut self.passes);
        let time = passes.iter().map(|p| p.time).sum();
        stages.push(Stage {
            name,
            op_count: f.op_count(),
            function: f,
            time,
            passes,
        });
    }

    fn simplify(&mut self, mut f: Function, rounds: usize) -> Result<Function, PipelineError> {
        for _ in 0..rounds.max(1) {
            let before = (f.op_count(), f.insts.len());
            f = self.run("algebra", &f, |f| algebra(f, false))?;
            f = self.run("fold", &f, fold)?;
            f = self.run("cse", &f, cse)?;
            f = self.run("dce", &f, dce)?;
            if (f.op_count(), f.insts.len()) == before {
                break;
            }
        }
        Ok(f)
    }
}

/// A named pass for [`run_passes`].
pub type NamedPass<'a> = (
    &'static str,
    &'a dyn Fn(&Function) -> Result<Function, IrError>,
);

/// Runs custom passes in order as one stage called `stage`, verifying after each pass when
/// `verify` is set (or in debug builds); a pass that fails or breaks the IR is named in
/// [`PipelineError::Broken`].
pub fn run_passes(
    stage: &'static str,
    f: &Function,
    passes: &[NamedPass<'_>],
    verify: bool,
) -> Result<Stage, PipelineError> {
    let mut r = Runner {
        verify: verify || cfg!(debug_assertions),
        stage,
        passes: vec![],
    };
    let mut cur = f.clone();
    for (name, p) in passes {
        cur = r.run(name, &cur, |f| p(f))?;
    }
    let mut stages = vec![];
    r.finish(stage, cur, &mut stages);
    Ok(stages.pop().expect("one stage"))
}

/// Runs the pipeline on `f` (see the module doc) and returns every stage.
pub fn run_pipeline(f: &Function, cfg: &PipelineConfig) -> Result<PipelineReport, PipelineError> {
    verify(f).map_err(PipelineError::Input)?;
    let mut stages = Vec::new();
    let mut r = Runner {
        verify: cfg.verify || cfg!(debug_assertions),
        stage: "traced",
        passes: vec![],
    };
    r.finish("traced", f.clone(), &mut stages);
    let mut cur = f.clone();
    if let Some(req) = &cfg.grad {
        r.stage = "ad";
        let t0 = Instant::now();
        let g = match req {
            GradRequest::Vjp(w) => ad::vjp(&cur, w)?,
            GradRequest::Grad(w) => ad::grad(&cur, w)?,
            GradRequest::ValueAndGrad(w) => ad::value_and_grad(&cur, w)?,
        };
        let time = t0.elapsed();
        if r.verify {
            verify(&g).map_err(|error| PipelineError::Broken {
                stage: "ad",
                pass: "ad",
                error,
            })?;
        }
        r.passes.push(PassRun {
            pass: "ad",
            op_count: g.op_count(),
            time,
        });
        cur = g;
        r.finish("ad", cur.clone(), &mut stages);
    }
    r.stage = "simplified";
    if cfg.finalize {
        cur = r.run("inline_custom_vjp", &cur, inline_custom_vjp)?;
        cur = r.run("drop_stop_gradient", &cur, |f| algebra(f, true))?;
    }
    cur = r.simplify(cur, cfg.max_rounds)?;
    r.finish("simplified", cur.clone(), &mut stages);
    match cfg.unroll_threshold {
        Some(t) => {
            r.stage = "unrolled";
            cur = r.run("unroll", &cur, |f| unroll(f, t))?;
            cur = r.simplify(cur, cfg.max_rounds)?;
            r.finish("unrolled", cur.clone(), &mut stages);
        }
        None => r.finish("scanned", cur.clone(), &mut stages),
    }
    if let Some(low) = cfg.lower {
        r.stage = "lowered";
        cur = r.run("scan_residuals", &cur, scan_residuals)?;
        if low.reassociate {
            cur = r.run("scan_hoist", &cur, scan_hoist)?;
            cur = r.run("outer_product", &cur, outer_product)?;
            cur = r.run("const_scale", &cur, const_scale)?;
        }
        cur = r.run("hoist_transpose", &cur, hoist_transpose)?;
        cur = r.run("sink_broadcast", &cur, sink_broadcast)?;
        cur = r.run("bool_casts", &cur, bool_casts)?;
        // `acc_init + ..` with a zero initial accumulator: drop the add.
        cur = r.run("algebra", &cur, |f| algebra(f, false))?;
        cur = r.run("dce", &cur, dce)?;
        r.finish("lowered", cur, &mut stages);
    }
    Ok(PipelineReport { stages })
}
