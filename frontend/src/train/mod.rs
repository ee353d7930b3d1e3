//! Trainers: back-propagation through time ([`bptt::Bptt`]).

pub mod bptt;


