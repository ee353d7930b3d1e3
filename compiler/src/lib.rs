//! brainlift compiler: transforms over the IR.
//!
//! - [`ad`]: reverse-mode automatic differentiation (`vjp`, `grad`, `value_and_grad`);
//! - [`passes`]: simplification (DCE, CSE, constant folding, algebraic identities), scan
//!   unrolling, custom_vjp inlining;
//! - [`surrogate`]: spike functions with surrogate gradients as `custom_vjp` ops;
//! - [`pipeline`]: the named-stage pass manager with per-stage dumps and reports.

pub mod ad;
pub mod passes;
pub mod pipeline;
pub mod rewrite;
pub mod surrogate;
