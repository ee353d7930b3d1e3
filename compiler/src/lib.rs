//! brainlift compiler: IR passes (fusion, ...) and the Cranelift backend.

pub mod codegen;
pub mod passes;
