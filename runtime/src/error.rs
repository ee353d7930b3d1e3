//! Runtime errors.

use brainlift_ir::IrError;
use thiserror::Error;

/// Errors raised while preparing or running a function.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A tensor's storage does not match its type.
    #[error("bad tensor: {0}")]
    BadTensor(String),
    /// The inputs passed do not match the function's inputs.
    #[error("input mismatch for @{func}: {msg}")]
    Input {
        /// Function name.
        func: String,
        /// What differs (name, expected and actual type).
        msg: String,
    },
    /// A value of the function would need more memory than one tensor may have.
    #[error("@{func} is too large to run: {msg}")]
    TooLarge {
        /// Function name.
        func: String,
        /// Which value, its type and the size it needs.
        msg: String,
    },
    /// The function is not valid IR.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// Differentiating the function failed (bad `wrt`, non-scalar loss, ...).
    #[error(transparent)]
    Ad(#[from] brainlift_compiler::ad::AdError),
    /// The backend cannot run this op (names the op and why).
    #[error("{backend}: cannot execute {op}: {msg}")]
    Unsupported {
        /// Backend name.
        backend: String,
        /// Op mnemonic.
        op: String,
        /// Why.
        msg: String,
    },
    /// A configuration value (backend name, environment variable) is not valid.
    #[error("{0}")]
    Config(String),
    /// Code generation failed.
    #[error("codegen: {0}")]
    Codegen(String),
    /// Reading or writing a file failed.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
}
