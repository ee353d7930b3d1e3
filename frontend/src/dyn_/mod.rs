//! Neurons and synapses (BrainPy's `bp.dyn`): [`Lif`], [`Alif`], [`Expon`], [`AlphaSyn`],
//! [`Integrator`], in training mode (float spikes, batch axis first).
//!
//! Contract shared by every model here:
//! - states are `(B, N)` arrays of the layer's dtype, zeros after [`Module::reset_state`](crate::Module::reset_state)`(B)`
//!   (batch 1 at construction, as BrainPy's `TrainingMode(batch_size=1)`);
//! - `update(x)` takes `x` of shape `(B, N)`, equal to the state shape; any other shape
//!   records a [`TraceError::Op`] whose op names the layer (`Lif 'r'`) and states the
//!   expected shape;
//! - linear ODEs are integrated with BrainPy's exponential Euler (`exp_auto`): for
//!   `dy/dt = f(y)` with `A = ∂f/∂y`, `y' = y + (dt·φ)·f(y)` and `dt·φ = (e^{dt·A} − 1)/A`
//!   (exact for the linear equations here);
//! - `dt` is the layer's explicit `dt` if set, otherwise [`crate::get_dt`] read at trace time
//!   (it is baked into the traced function as a constant).
//!
//! Host-side validation helpers ([`check_spikes`], [`check_labels`], [`check_finite_states`])
//! turn bad data (non-0/1 spikes, out-of-range labels, NaN membranes) into errors naming the
//! component or the variable path (`r.V`).

pub mod alif;
pub mod alpha;
pub mod expon;
pub mod integrator;
pub mod lif;

pub use alif::{Alif, AlifParams};
pub use alpha::AlphaSyn;
pub use brainlift_compiler::surrogate::Surrogate;
pub use expon::Expon;
pub use integrator::Integrator;
pub use lif::{Lif, LifParams, SpikeReset};

use crate::trace::Tensor;
use crate::vars::{VarOwner, Variable};
use crate::{Array, Error, Result, TraceError};
use brainlift_ir::{DType, Op, TensorType};

/// `dt·φ` of exponential Euler for the linear ODE `dy/dt = -y/tau + ...`, i.e. `A = -1/tau`:
/// `(e^{-dt/tau} − 1)/(-1/tau) = tau·(1 − e^{-dt/tau})`, computed as BrainPy does
/// (`(exp(dt·A) − 1)/A`).
pub fn exp_euler_dt_phi(dt: f64, tau: f64) -> f64 {
    let a = -1.0 / tau;
    (dt * a).exp_m1() / a
}

/// The spike function `H(u)` (`H(0) = 1`) with `surrogate`'s derivative as its gradient,
/// inserted as a `custom_vjp` op into `u`'s trace. `u` must be a float tensor.
pub fn spike_fn(u: &Tensor, surrogate: &Surrogate) -> Tensor {
    if !u.dtype().is_float() {
        u.tracer().fail(TraceError::Op {
            op: "spike_fn".into(),
            msg: format!("the spike function needs a float input, got {}", u.ty()),
        });
        return u.clone();
    }
    let op = Op::CustomVjp(Box::new(surrogate.build(u.ty())));
    u.tracer().push1(op, &[u])
}

/// The forward pass of the spike function.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum SpikeForward {
    /// The Heaviside step `H(u)` with `H(0) = 1` (BrainPy; the only choice for real spiking).
    #[default]
    Heaviside,
    /// A smooth stand-in `sigmoid(alpha·u)` whose backward is the [`Surrogate::Sigmoid`]
    /// derivative with the same `alpha`, i.e. the *exact* derivative of this forward. The
    /// layer's surrogate setting is ignored. For gradient checks against finite differences
    /// (the network becomes a smooth function of its parameters) and for analysis.
    SmoothSigmoid {
        /// Sharpness.
        alpha: f64,
    },
}

/// Like [`spike_fn`] with a selectable forward: [`SpikeForward::Heaviside`] uses `surrogate`
/// as the gradient; [`SpikeForward::SmoothSigmoid`] ignores it.
pub fn spike_fn_with(u: &Tensor, surrogate: &Surrogate, forward: SpikeForward) -> Tensor {
    match forward {
        SpikeForward::Heaviside => spike_fn(u, surrogate),
        SpikeForward::SmoothSigmoid { alpha } => {
            if !u.dtype().is_float() {
                return spike_fn(u, surrogate); // records the dtype error
            }
            let backward = Surrogate::Sigmoid { alpha }.build(u.ty()).backward;
            let mut b = brainlift_ir::FunctionBuilder::new("forward");
            let x = b.param("u", u.ty().clone());
            let fwd = (|| {
                let a = b.splat(u.ty().clone(), alpha);
                let au = b.mul(a, x)?;
                let s = b.unary(brainlift_ir::UnaryOp::Sigmoid, au)?;
                Ok::<_, brainlift_ir::IrError>(s)
            })();
            match fwd {
                Ok(s) => {
                    let forward = b.finish([("s".to_string(), s)]);
                    let op = Op::CustomVjp(Box::new(brainlift_ir::CustomVjp {
                        name: "spike_smooth_sigmoid".into(),
                        forward,
                        backward,
                    }));
                    u.tracer().push1(op, &[u])
                }
                Err(e) => {
                    u.tracer().fail(TraceError::Ir(e));
                    u.clone()
                }
            }
        }
    }
}

/// Validates a layer's constructor arguments: positive size, positive finite time constants.
pub(crate) fn check_size_tau(component: &str, size: usize, taus: &[(&str, f64)]) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid(component, "size must be positive, got 0"));
    }
    for (name, tau) in taus {
        if !(tau.is_finite() && *tau > 0.0) {
            return Err(Error::invalid(
                component,
                format!("{name} must be finite and > 0, got {tau}"),
            ));
        }
    }
    Ok(())
}

/// Validates that `dt` is finite and positive.
pub(crate) fn check_dt(component: &str, dt: f64) -> Result<()> {
    if !(dt.is_finite() && dt > 0.0) {
        return Err(Error::invalid(
            component,
            format!("dt must be finite and > 0, got {dt}"),
        ));
    }
    Ok(())
}

/// A zero `(1, size)` state of `dtype` (batch 1 until `reset_state`).
pub(crate) fn zero_state(dtype: DType, size: usize) -> Variable {
    Variable::state(Array::zeros(TensorType::new(dtype, [1, size])))
}

/// Records an error on `x`'s tracer unless `x` has the shape and dtype of `state`
/// (`(B, N)`). Returns false when the input is rejected.
pub(crate) fn check_input(component: &str, x: &Tensor, state: &Variable) -> bool {
    let want = state.ty();
    if x.ty() == want {
        return true;
    }
    let n = want.dims().get(1).copied().unwrap_or(0);
    let msg = if x.rank() != 2 || x.shape()[1] != n {
        format!(
            "input has type {}, expected (batch, {n}) = {want}: the layer has {n} units",
            x.ty()
        )
    } else if x.dtype() != want.dtype {
        format!(
            "input has dtype {}, the layer's states are {}",
            x.dtype(),
            want.dtype
        )
    } else {
        format!(
            "input has batch {}, but the states have batch {} (call reset_state({}) first)",
            x.shape()[0],
            want.dims()[0],
            x.shape()[0]
        )
    };
    x.tracer().fail(TraceError::Op {
        op: component.into(),
        msg,
    });
    false
}

/// The display name used in errors: `Kind 'name'`.
pub(crate) fn display_name(kind: &str, name: &str) -> String {
    format!("{kind} '{name}'")
}

/// Checks that `x` is a spike train: a `bool` array (always valid), or a float array holding
/// only 0.0 and 1.0; the error names `component`, the first offending flat index and value.
pub fn check_spikes(component: &str, x: &Array) -> Result<()> {
    if x.dtype() == DType::Bool {
        return Ok(());
    }
    if !x.dtype().is_float() {
        return Err(Error::invalid(
            component,
            format!("spikes must be a bool or float array, got {}", x.ty()),
        ));
    }
    let v = x.to_f64_vec();
    if let Some((i, s)) = v.iter().enumerate().find(|(_, s)| **s != 0.0 && **s != 1.0) {
        return Err(Error::invalid(
            component,
            format!(
                "spike input {} must contain only 0 and 1, found {s} at flat index {i}",
                x.ty()
            ),
        ));
    }
    Ok(())
}

/// Checks class labels (float or integer values) are integers in `0..num_classes`; the error
/// names `component`, the index and the value.
pub fn check_labels(component: &str, labels: &Array, num_classes: usize) -> Result<()> {
    for (i, y) in labels.to_f64_vec().iter().enumerate() {
        if !(y.fract() == 0.0 && *y >= 0.0 && *y < num_classes as f64) {
            return Err(Error::invalid(
                component,
                format!("label {y} at index {i} is not a class index in 0..{num_classes}"),
            ));
        }
    }
    Ok(())
}

/// Checks every state variable of `model` is finite; the error names `component` and the
/// variable's path (e.g. `r.V`), the first bad flat index and value.
pub fn check_finite_states(component: &str, model: &dyn VarOwner) -> Result<()> {
    let mut err = None;
    model.visit_vars(&mut |path, v| {
        if err.is_some() || !v.is_state() {
            return;
        }
        if let Some((i, x)) = v.value().to_f64_vec().iter().enumerate().find(|(_, x)| !x.is_finite()) {
            err = Some(Error::invalid(
                component,
                format!("state '{path}' {} became non-finite ({x} at flat index {i}): the membrane/state diverged", v.ty()),
            ));
        }
    });
    err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dt_phi_matches_closed_form() {
        for (dt, tau) in [(1.0f64, 10.0f64), (0.1, 5.0), (1.0, 8.0)] {
            let want = tau * (1.0 - (-dt / tau).exp());
            assert!((exp_euler_dt_phi(dt, tau) - want).abs() < 1e-14);
        }
    }

    #[test]
    fn labels_and_spikes_are_validated() {
        let s = Array::from_f64([3], vec![0.0, 1.0, 0.5]).unwrap();
        let e = check_spikes("input", &s).unwrap_err().to_string();
        assert!(e.contains("0.5") && e.contains("index 2"), "{e}");
        check_spikes("input", &Array::from_f64([2], vec![0.0, 1.0]).unwrap()).unwrap();
        check_spikes("input", &Array::from_bool([2], &[false, true]).unwrap()).unwrap();
        let i = Array::zeros(TensorType::new(DType::I32, [2]));
        let e = check_spikes("input", &i).unwrap_err().to_string();
        assert!(e.contains("bool or float"), "{e}");
        let y = Array::from_f64([3], vec![0.0, 1.0, 2.0]).unwrap();
        let e = check_labels("loss", &y, 2).unwrap_err().to_string();
        assert!(e.contains("label 2") && e.contains("0..2"), "{e}");
        check_labels("loss", &y, 3).unwrap();
    }
}
