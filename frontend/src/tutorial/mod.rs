//! The three parts of the tutorial as reusable functions (called by `brainlift tutorial`,
//! the examples and the end-to-end tests).

pub mod ngrc;
pub mod rnn;
