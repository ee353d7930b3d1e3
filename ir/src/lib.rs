//! The brainlift array IR.
//!
//! A [`Function`] has named, typed inputs, a list of SSA instructions and named outputs.
//! Every value has a static [`TensorType`] (element type and shape). Every op is declared once
//! in [`op`] together with its type rule ([`Op::infer`]); the [`verify()`] function checks a
//! whole function against those rules, and the text format ([`mod@print`], [`mod@parse`]) writes and
//! reads functions losslessly.

#![warn(missing_docs)]

pub mod builder;
pub mod dot;
pub mod dtype;
pub mod error;
pub mod function;
pub mod op;
pub mod parse;
pub mod print;
pub mod shape;
pub mod verify;

pub use builder::FunctionBuilder;
pub use dot::to_dot;
pub use dtype::DType;
pub use error::IrError;
pub use function::{Function, Inst, Output, Param, ValueId};
pub use op::{BinaryOp, CompareOp, Constant, CustomVjp, Op, OpCategory, ReduceOp, Scan, UnaryOp};
pub use parse::parse_function;
pub use print::print_function;
pub use shape::{Shape, TensorType};
pub use verify::verify;
