//! Layers: dense readouts, NVAR, recurrent cells, composition.

pub mod dense;
pub mod sequential;

pub use dense::Dense;
pub use sequential::Sequential;
