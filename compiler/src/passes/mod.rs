//! Simplification passes over the IR, one concept per file. Every pass takes a verified
//! function and returns an equivalent verified function with the same inputs and outputs,
//! recursing into nested bodies (scan bodies, custom_vjp forward/backward). [`fusion`] is the
//! exception: it turns a function into a [`fusion::KernelPlan`] for the JIT.

pub mod algebra;
pub mod bool_casts;
pub mod const_scale;
pub mod cse;
pub mod dce;
pub mod fold;
pub mod fusion;
pub mod hoist_transpose;
pub mod inline_custom_vjp;
pub mod outer_product;
pub mod row_split;
pub mod scan_hoist;
pub mod scan_residuals;
pub mod sink_broadcast;
pub mod unroll;

use brainlift_ir::{Function, IrError};

/// A function-to-function transform with a name (for pipeline reports).
pub trait Pass {
    /// Short name shown in reports (`dce`, `cse`, ...).
    fn name(&self) -> &'static str;
    /// Runs the pass.
    fn run(&self, f: &Function) -> Result<Function, IrError>;
}
