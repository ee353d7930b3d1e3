//! Layers: dense readouts, NVAR, recurrent cells, composition.

pub mod dense;
pub mod nvar;
pub mod reservoir;
pub mod rnn;
pub mod sequential;

pub use dense::{Dense, Linear};
pub use nvar::Nvar;
pub use reservoir::{Esn, Reservoir, ReservoirActivation, ReservoirConfig};
pub use rnn::{Activation, GruCell, LstmCell, RnnCell};
pub use sequential::Sequential;
