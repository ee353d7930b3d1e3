//! Layers: dense readouts, NVAR, recurrent cells, composition.

pub mod dense;
pub mod nvar;
pub mod reservoir;
pub mod rnn;
pub mod sequential;

pub use dense::{Dense, Linear};
pub use nvar::Nvar;
pub use reservoir::{Esn, Reservoir, ReservoirActivation, ReservoirConfig};
pub use rnn::{Activation, GruCell, LstmCell, RnnCell};
pub use sequential::Sequential;

/// Records a clear trace error naming `layer` unless `x` has `num_in` features on its last
/// axis (and, for `batch = Some(b)`, the shape `[b, num_in]` of a recurrent cell's input, `b`
/// the batch of its state). Returns whether `x` fits; a layer that gets `false` returns any
/// value of the right type (the trace is failed already).
pub(crate) fn check_input(
    layer: &str,
    x: &crate::trace::Tensor,
    batch: Option<usize>,
    num_in: usize,
) -> bool {
    let d = x.shape();
    let ok = match batch {
        Some(b) => d == [b, num_in],
        None => d.last() == Some(&num_in),
    };
    if !ok {
        let want = match batch {
            Some(b) => format!("shape [{b},{num_in}] (batch, num_in; the batch of its state)"),
            None => format!("{num_in} features on the last axis"),
        };
        x.tracer().fail(crate::TraceError::Op {
            op: layer.into(),
            msg: format!("expected an input with {want}, got {}", x.ty()),
        });
    }
    ok
}
