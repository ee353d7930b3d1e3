//! The three parts of the tutorial as reusable functions (called by `brainlift tutorial`,
//! the examples and the end-to-end tests).

pub mod ngrc;
pub mod rnn;
pub mod snn;

/// Creates the plot folder `dir` of tutorial part `part` (and its parents), naming the folder
/// in the error. The parts call it before their work, so an unusable folder is reported
/// before training, and again before plotting.
pub(crate) fn create_out_dir(part: &str, dir: &std::path::Path) -> crate::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::Error::invalid(part, format!("cannot create {}: {e}", dir.display())))
}
