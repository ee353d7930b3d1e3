//! Errors of the IR crate.

use crate::TensorType;
use thiserror::Error;

/// Everything that can be wrong with IR: a type rule violated, a verifier failure, a parse error.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    /// An op's operands do not satisfy its type rule.
    #[error("{op}: {msg} (operands: {operands})")]
    Type {
        /// Op mnemonic.
        op: String,
        /// Operand types, comma-separated.
        operands: String,
        /// What was expected.
        msg: String,
    },
    /// A structural problem found by the verifier (undefined value, wrong recorded type, ...).
    #[error("verifier: in @{func}: {msg}")]
    Verify {
        /// Function (or nested body) name.
        func: String,
        /// What is wrong, naming the instruction.
        msg: String,
    },
    /// The text format could not be read.
    #[error("parse error at line {line}, column {col}: {msg}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What was expected.
        msg: String,
    },
}

impl IrError {
    /// A type-rule error for `op` with the given operand types.
    pub fn type_error(op: &str, operands: &[TensorType], msg: String) -> IrError {
        IrError::Type {
            op: op.to_string(),
            operands: if operands.is_empty() {
                "none".to_string()
            } else {
                crate::op::list(operands.iter())
            },
            msg,
        }
    }
}
