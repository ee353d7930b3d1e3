//! Reusable bodies of the tutorial parts (the CLI and the examples call these).

pub mod rnn;
pub mod snn;
