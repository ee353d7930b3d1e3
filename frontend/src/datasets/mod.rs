//! Data sets: chaotic systems generated in-process ([`chaos`]) and loading user data from
//! `.npy` / `.csv` files ([`io`]) into the batch-first `(batch, time, features)` layout the
//! trainers take.

pub mod chaos;
pub mod io;

pub use chaos::{ChaosError, ChaosSeries, lorenz, mackey_glass, rossler};
pub use io::{BatchSeries, CsvOptions, LoadError, load_csv, load_npy};
