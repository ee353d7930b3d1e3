//! The brainlift runtime: host tensors, the reference interpreter and (later) compiled
//! executables behind one [`Executable`] interface.

pub mod error;
pub mod gradcheck;
pub mod interp;
pub mod npy;
pub mod random;
pub mod tensor;

pub use error::RuntimeError;
pub use interp::{Interpreter, interpret};
pub use tensor::{Tensor, TensorData};

use brainlift_ir::Function;

/// A function prepared for repeated execution on some backend.
pub trait Executable: Send {
    /// Runs the function; `inputs` must match the function's inputs in order and type.
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError>;
    /// The function this executable was built from.
    fn function(&self) -> &Function;
}

/// Checks that `inputs` match the inputs of `f` (count and types), naming the first mismatch.
pub fn check_inputs(f: &Function, inputs: &[Tensor]) -> Result<(), RuntimeError> {
    if inputs.len() != f.params.len() {
        return Err(RuntimeError::Input {
            func: f.name.clone(),
            msg: format!("expected {} inputs, got {}", f.params.len(), inputs.len()),
        });
    }
    for (p, t) in f.params.iter().zip(inputs) {
        if &p.ty != t.ty() {
            return Err(RuntimeError::Input {
                func: f.name.clone(),
                msg: format!("input %{} expects {}, got {}", p.name, p.ty, t.ty()),
            });
        }
    }
    Ok(())
}
