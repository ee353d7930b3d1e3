//! Layers: dense readouts, NVAR, recurrent cells, composition.

pub mod dense;
pub mod rnn;
pub mod sequential;

pub use dense::Dense;
pub use rnn::{Activation, GruCell, LstmCell, RnnCell};
pub use sequential::Sequential;
