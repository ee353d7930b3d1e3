//! Gradient checking: reverse-mode gradients against central finite differences.
//!
//! [`check_grad`] differentiates `f` (one float scalar output) with
//! `brainlift_compiler::ad::grad`, runs the gradient function on the reference interpreter,
//! and compares every gradient element with a central difference of `f` computed in `f64`:
//!
//! `n_i = (f(x + h e_i) - f(x - h e_i)) / ((x_i + h) - (x_i - h))`, with
//! `h = 1e-6 * max(1, |x_i|)` (the denominator uses the actually representable step).
//!
//! **Error measure.** Per element `err_i = |a_i - n_i| / max(|a_i|, |n_i|, floor)` with
//! `floor = 1e-3 * max(1, |f(x)|)`. A plain relative error is meaningless for gradients near
//! zero: the central difference itself carries an error of about
//! `eps * |f| / h + h^2 * |f'''| ~ 2e-10 * max(1, |f|)`, so the floor keeps that noise at
//! ~2e-7 of the measure, five times under the usual 1e-6 tolerance, while elements of
//! ordinary size are compared relatively. The report gives the worst `err_i` per input and
//! overall, with the location and both values.
//!
//! Cost: `2 * (number of wrt elements)` evaluations of `f` plus one of the gradient.
//! [`check_grad_sampled`] bounds it for large inputs: at most `max_elements` elements per
//! input, evenly spaced over the flat index range (first and last included).
//! Inputs of type `f32` are perturbed in `f32` (expect ~1e-3 agreement at best); use `f64`.

use crate::{RuntimeError, Tensor, interpret};
use brainlift_ir::{DType, Function};

/// The worst disagreement found for one differentiated input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputCheck {
    /// Input name.
    pub name: String,
    /// Worst error measure over the input's elements (see the module doc).
    pub max_err: f64,
    /// Row-major index of the worst element.
    pub worst_index: usize,
    /// Reverse-mode gradient at that element.
    pub analytic: f64,
    /// Central difference at that element.
    pub numeric: f64,
    /// Elements compared.
    pub checked: usize,
    /// Elements of the input.
    pub total: usize,
}

/// The result of [`check_grad`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// The loss value `f(x)`.
    pub value: f64,
    /// One entry per `wrt` input, in order.
    pub inputs: Vec<InputCheck>,
    /// The worst error over all inputs (0 when nothing was differentiated).
    pub max_err: f64,
}

/// Compares `grad(f, wrt)` on the interpreter with central finite differences of `f` at
/// `inputs` (see the module doc for the step and the error measure).
///
/// Errors: `f` not a scalar-loss function or a bad `wrt` (from AD), inputs not matching `f`.
pub fn check_grad(
    f: &Function,
    wrt: &[usize],
    inputs: &[Tensor],
) -> Result<GradCheckReport, RuntimeError> {
    check_grad_sampled(f, wrt, inputs, usize::MAX)
}

/// [`check_grad`] on at most `max_elements` elements of each input (evenly spaced over the
/// flat index range, first and last included; all of them when the input is that small):
/// `2 * max_elements` evaluations per input instead of two per element.
pub fn check_grad_sampled(
    f: &Function,
    wrt: &[usize],
    inputs: &[Tensor],
    max_elements: usize,
) -> Result<GradCheckReport, RuntimeError> {
    let g = brainlift_compiler::ad::grad(f, wrt)?;
    crate::check_inputs(f, inputs)?;
    let eval = |xs: &[Tensor]| -> Result<f64, RuntimeError> {
        let out = interpret(f, xs)?;
        out[0].item().ok_or_else(|| RuntimeError::Input {
            func: f.name.clone(),
            msg: "loss is not a scalar".into(),
        })
    };
    let value = eval(inputs)?;
    let grads = interpret(&g, inputs)?;
    let floor = 1e-3 * value.abs().max(1.0);
    let mut report = GradCheckReport {
        value,
        inputs: vec![],
        max_err: 0.0,
    };
    let mut xs = inputs.to_vec();
    for (k, &i) in wrt.iter().enumerate() {
        let analytic = grads[k].to_f64_vec();
        let base = inputs[i].to_f64_vec();
        let ty = inputs[i].ty().clone();
        let picked = sample_indices(base.len(), max_elements);
        let mut worst = InputCheck {
            name: f.params[i].name.clone(),
            max_err: 0.0,
            worst_index: 0,
            analytic: 0.0,
            numeric: 0.0,
            checked: picked.len(),
            total: base.len(),
        };
        for e in picked {
            let x0 = base[e];
            let h = 1e-6 * x0.abs().max(1.0);
            let mut v = base.clone();
            let round = |x: f64| {
                if ty.dtype == DType::F32 {
                    x as f32 as f64
                } else {
                    x
                }
            };
            let (xp, xm) = (round(x0 + h), round(x0 - h));
            v[e] = xp;
            xs[i] = Tensor::from_f64_values(ty.clone(), &v)?;
            let fp = eval(&xs)?;
            v[e] = xm;
            xs[i] = Tensor::from_f64_values(ty.clone(), &v)?;
            let fm = eval(&xs)?;
            let numeric = (fp - fm) / (xp - xm);
            let a = analytic[e];
            let err = (a - numeric).abs() / a.abs().max(numeric.abs()).max(floor);
            if err > worst.max_err || err.is_nan() {
                worst = InputCheck {
                    max_err: if err.is_nan() { f64::INFINITY } else { err },
                    worst_index: e,
                    analytic: a,
                    numeric,
                    ..worst
                };
            }
        }
        xs[i] = inputs[i].clone();
        report.max_err = report.max_err.max(worst.max_err);
        report.inputs.push(worst);
    }
    Ok(report)
}

/// `min(n, max)` indices evenly spaced over `0..n`, increasing, first and last included.
fn sample_indices(n: usize, max: usize) -> Vec<usize> {
    match max {
        _ if n <= max => (0..n).collect(),
        0 => vec![],
        1 => vec![0],
        _ => (0..max)
            .map(|j| (j as u128 * (n - 1) as u128 / (max - 1) as u128) as usize)
            .collect(),
    }
}

impl std::fmt::Display for GradCheckReport {
    /// One line per input (`name: max error e at [i] (reverse a, central n)`), then the worst.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.inputs {
            writeln!(
                f,
                "{}: max error {:.3e} at [{}] (reverse-mode {:.12e}, central difference {:.12e}; {} of {} elements)",
                c.name, c.max_err, c.worst_index, c.analytic, c.numeric, c.checked, c.total
            )?;
        }
        write!(f, "worst relative error: {:.3e}", self.max_err)
    }
}

#[cfg(test)]
mod tests {
    use super::sample_indices;

    #[test]
    fn samples_are_spread_and_bounded() {
        assert_eq!(sample_indices(5, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_indices(5, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_indices(10, 4), vec![0, 3, 6, 9]);
        assert_eq!(sample_indices(10, 1), vec![0]);
        assert!(sample_indices(10, 0).is_empty());
        let s = sample_indices(1_000_000, 256);
        assert_eq!(s.len(), 256);
        assert_eq!((s[0], s[255]), (0, 999_999));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
}
