//! Dense linear algebra used by the trainers, on top of faer: ridge regression
//! ([`ridge`]) with a choice of solver and condition-number reporting.

pub mod ridge;

pub use ridge::{NormalEquations, RidgeError, RidgeSolution, RidgeSolver, SolverUsed, ridge_fit};
