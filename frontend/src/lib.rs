//! placeholder
pub mod datasets;
pub mod linalg;
pub mod nvar_spec;
pub mod plot;
