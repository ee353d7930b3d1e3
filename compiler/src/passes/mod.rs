//! IR-to-IR passes, one file each.

pub mod fusion;
