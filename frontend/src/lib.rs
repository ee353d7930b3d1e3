//! brainlift: train brain-dynamics models in Rust.
//!
//! Write a model with the tracing DSL ([`trace()`], [`Tensor`]), and brainlift records it into
//! the array IR ([`brainlift_ir`]), differentiates and optimises it ([`brainlift_compiler`]) and
//! runs it on the interpreter or the Cranelift JIT ([`brainlift_runtime`]).

#![warn(missing_docs)]

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod autograd;
pub mod builtins;
pub mod datasets;
pub mod dt;
pub mod dyn_;
pub mod error;
pub mod exec;
pub mod init;
pub mod linalg;
pub mod losses;
pub mod nn;
pub mod nvar_spec;
pub mod offline;
pub mod optim;
pub mod params_io;
pub mod plot;
pub mod random;
pub mod runner;
pub mod tensor_ops;
pub mod trace;
pub mod train;
pub mod tutorial;
pub mod vars;

pub use brainlift_ir::{DType, Function, Shape, TensorType};
pub use brainlift_runtime::Backend;
pub use brainlift_runtime::Tensor as Array;
pub use dt::{get_dt, set_dt};
pub use error::{Error, Result, TraceError};
pub use exec::{Binding, Bound, run_over_time, trace_over_time, trace_step};
pub use offline::{Readout, RidgeTrainer};
pub use tensor_ops::{broadcast_shapes, concat, stack};
pub use trace::{Tensor, Tracer, trace};
pub use vars::{
    Module, VarKind, VarOwner, Variable, named_vars, state_vars, train_vars, visit_child,
    visit_child_mut,
};

/// Re-export of the compiler crate.
pub use brainlift_compiler as compiler;
/// Re-export of the IR crate.
pub use brainlift_ir as ir;
/// Re-export of the runtime crate.
pub use brainlift_runtime as runtime;
