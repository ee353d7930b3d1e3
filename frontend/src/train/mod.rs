//! Trainers: back-propagation through time ([`bptt::Bptt`]).

pub mod bptt;

pub use bptt::{Bptt, ModelView, TrainData, forward_over_time};
