//! Functions: SSA values, instructions, named inputs and outputs.

use crate::{Op, TensorType};
use smallvec::SmallVec;
use std::fmt;

/// An SSA value of a function. Inputs are values `0..params.len()`; every instruction result
/// follows, numbered in definition order. Ids are local to one function (nested bodies have
/// their own numbering; nothing is captured implicitly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The id as an index into [`Function::types`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A named, typed function input.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Input name (unique in the function).
    pub name: String,
    /// Input type.
    pub ty: TensorType,
}

/// A named function output.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Output name.
    pub name: String,
    /// The returned value.
    pub value: ValueId,
}

/// One instruction: an op applied to operands, defining one or more results.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Operands.
    pub args: SmallVec<[ValueId; 3]>,
    /// Results, in order.
    pub results: SmallVec<[ValueId; 1]>,
}

/// An IR function: named typed inputs, a straight-line list of instructions in SSA form, and
/// named outputs. Control flow lives only inside ops with nested bodies (`scan`, `custom_vjp`).
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// Function name (printed `@name`).
    pub name: String,
    /// Inputs; input `i` is value `ValueId(i)`.
    pub params: Vec<Param>,
    /// Instructions in execution order.
    pub insts: Vec<Inst>,
    /// Outputs.
    pub outputs: Vec<Output>,
    /// The type of every value, indexed by [`ValueId`].
    pub types: Vec<TensorType>,
}

impl Function {
    /// The type of a value.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.types[v.index()]
    }

    /// The value of input `i`.
    pub fn param_value(&self, i: usize) -> ValueId {
        ValueId(i as u32)
    }

    /// Index of the input called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Types of the outputs, in order.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.outputs
            .iter()
            .map(|o| self.ty(o.value).clone())
            .collect()
    }

    /// Types of the inputs, in order.
    pub fn param_types(&self) -> Vec<TensorType> {
        self.params.iter().map(|p| p.ty.clone()).collect()
    }

    /// Number of instructions, counting those inside nested bodies.
    pub fn op_count(&self) -> usize {
        self.insts
            .iter()
            .map(|i| 1 + i.op.bodies().iter().map(|b| b.op_count()).sum::<usize>())
            .sum()
    }
}
