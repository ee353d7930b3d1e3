//! Errors of the user-facing crate.

use brainlift_ir::IrError;
use brainlift_runtime::RuntimeError;
use thiserror::Error;

/// An error found while tracing a model: names the op and the shapes involved.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TraceError {
    /// A DSL-level problem (shapes that do not broadcast, a tensor from another trace, ...).
    #[error("{op}: {msg}")]
    Op {
        /// The op or DSL method.
        op: String,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// An IR type rule failed.
    #[error(transparent)]
    Ir(#[from] IrError),
}

/// Any error of the `brainlift` crate.
#[derive(Debug, Error)]
pub enum Error {
    /// Tracing failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Compiling or running failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// An IR error outside tracing (e.g. in a pass).
    #[error(transparent)]
    Ir(#[from] IrError),
    /// Bad user input to a layer, trainer or dataset, naming the component.
    #[error("{component}: {msg}")]
    Invalid {
        /// The layer, trainer or function that rejected the input.
        component: String,
        /// What was wrong and what was expected.
        msg: String,
    },
}

impl Error {
    /// A bad-input error for `component`.
    pub fn invalid(component: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Invalid {
            component: component.into(),
            msg: msg.into(),
        }
    }
}

/// Result with the crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
