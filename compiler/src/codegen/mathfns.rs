//! Host math functions called from generated code.
//!
//! Each is an `extern "C"` wrapper around the reference semantics in the op table
//! ([`UnaryOp::eval`], [`BinaryOp::eval`]), so JIT results are bit-identical to the
//! interpreter for transcendentals. They are registered with `JITBuilder::symbol` under the
//! names in [`SYMBOLS`].

use brainlift_ir::{BinaryOp, UnaryOp};

extern "C" fn bl_exp(x: f64) -> f64 {
    UnaryOp::Exp.eval(x)
}

extern "C" fn bl_log(x: f64) -> f64 {
    UnaryOp::Log.eval(x)
}

extern "C" fn bl_tanh(x: f64) -> f64 {
    UnaryOp::Tanh.eval(x)
}

extern "C" fn bl_sigmoid(x: f64) -> f64 {
    UnaryOp::Sigmoid.eval(x)
}

extern "C" fn bl_pow(a: f64, b: f64) -> f64 {
    BinaryOp::Pow.eval(a, b)
}

/// A host function generated code may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MathFn {
    /// `exp(f64) -> f64`
    Exp,
    /// `ln(f64) -> f64`
    Log,
    /// `tanh(f64) -> f64`
    Tanh,
    /// `sigmoid(f64) -> f64`
    Sigmoid,
    /// `pow(f64, f64) -> f64`
    Pow,
}

impl MathFn {
    /// All functions, in symbol-table order.
    pub const ALL: [MathFn; 5] = [
        MathFn::Exp,
        MathFn::Log,
        MathFn::Tanh,
        MathFn::Sigmoid,
        MathFn::Pow,
    ];

    /// The symbol name registered with the JIT.
    pub fn symbol(self) -> &'static str {
        match self {
            MathFn::Exp => "brainlift_exp",
            MathFn::Log => "brainlift_log",
            MathFn::Tanh => "brainlift_tanh",
            MathFn::Sigmoid => "brainlift_sigmoid",
            MathFn::Pow => "brainlift_pow",
        }
    }

    /// Number of `f64` arguments.
    pub fn arity(self) -> usize {
        if self == MathFn::Pow { 2 } else { 1 }
    }

    /// The host address.
    pub fn address(self) -> *const u8 {
        match self {
            MathFn::Exp => bl_exp as *const u8,
            MathFn::Log => bl_log as *const u8,
            MathFn::Tanh => bl_tanh as *const u8,
            MathFn::Sigmoid => bl_sigmoid as *const u8,
            MathFn::Pow => bl_pow as *const u8,
        }
    }

    /// The function implementing a unary op, if it needs a call.
    pub fn for_unary(u: UnaryOp) -> Option<MathFn> {
        match u {
            UnaryOp::Exp => Some(MathFn::Exp),
            UnaryOp::Log => Some(MathFn::Log),
            UnaryOp::Tanh => Some(MathFn::Tanh),
            UnaryOp::Sigmoid => Some(MathFn::Sigmoid),
            _ => None,
        }
    }
}

/// `(symbol, address)` pairs for `JITBuilder::symbols`.
pub const SYMBOLS: [MathFn; 5] = MathFn::ALL;
