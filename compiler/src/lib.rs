//! brainlift compiler: transforms over the IR and the Cranelift backend.
//!
//! - [`ad`]: reverse-mode automatic differentiation (`vjp`, `grad`, `value_and_grad`);
//! - [`passes`]: simplification (DCE, CSE, constant folding, algebraic identities), scan
//!   unrolling, custom_vjp inlining, and fusion of elementwise chains into kernels;
//! - [`surrogate`]: spike functions with surrogate gradients as `custom_vjp` ops;
//! - `pipeline`: the named-stage pass manager with per-stage dumps and reports;
//! - [`codegen`]: Cranelift code generation of fused kernels.

#![warn(missing_docs)]

pub mod ad;
pub mod codegen;
pub mod passes;
pub mod pipeline;
pub mod rewrite;
pub mod surrogate;
