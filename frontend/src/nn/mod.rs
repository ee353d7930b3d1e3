//! Layers: dense readouts, NVAR, recurrent cells, composition.

pub mod dense;
pub mod nvar;
pub mod reservoir;
pub mod sequential;

pub use dense::{Dense, Linear};
pub use nvar::Nvar;
pub use reservoir::{Esn, Reservoir, ReservoirActivation, ReservoirConfig};
pub use sequential::Sequential;
