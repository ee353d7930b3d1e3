//! Built-in example functions for `brainlift ir list|dump|grad`: small, traced versions of the
//! tutorial's models, so users can inspect every stage of the pipeline on real workloads.

use crate::exec::trace_step;
use crate::nn::{Dense, Nvar};
use crate::trace::{Tensor, Tracer};
use crate::{DType, Error, Result, TensorType, trace};
use brainlift_compiler::surrogate::Surrogate;
use brainlift_ir::{Function, Op};

/// A named built-in function.
pub struct Builtin {
    /// Name used on the command line.
    pub name: &'static str,
    /// One-line description.
    pub about: &'static str,
    build: fn() -> Result<Function>,
}

impl Builtin {
    /// Traces the function.
    pub fn build(&self) -> Result<Function> {
        (self.build)()
    }
}

fn f64t(d: &[usize]) -> TensorType {
    TensorType::new(DType::F64, d)
}

/// Every built-in, in listing order.
pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin {
            name: "dense",
            about: "Dense(90, 3) readout on a batch of 4: x·W + b",
            build: dense,
        },
        Builtin {
            name: "nvar",
            about: "one step of the tutorial NVAR(3, delay 4, order 2, stride 5) with its delay buffer",
            build: nvar,
        },
        Builtin {
            name: "rnn-cell",
            about: "one step of a vanilla RNN cell (relu), hidden 16, batch 4",
            build: rnn_cell,
        },
        Builtin {
            name: "lif",
            about: "one step of the tutorial LIF layer (exp. Euler, surrogate spike, soft reset), 10 neurons, batch 4",
            build: lif,
        },
        Builtin {
            name: "rnn-loss",
            about: "vanilla RNN (hidden 16, batch 4) over 25 steps with a Dense readout and an MSE loss (scalar)",
            build: rnn_loss,
        },
        Builtin {
            name: "snn-loss",
            about: "the tutorial spiking net 100->10->2 over 20 steps (bool input spikes), cross-entropy of the max-over-time output (scalar)",
            build: snn_loss,
        },
        Builtin {
            name: "ngrc",
            about: "tutorial part 1: the ridge-fit function (NVAR features, XtX and XtY accumulated over 100 steps)",
            build: ngrc,
        },
        Builtin {
            name: "rnn",
            about: "tutorial part 2: one BPTT train step (RNN 1->100->1, batch 128, 25 steps: forward, loss, reverse scan, Adam)",
            build: rnn,
        },
        Builtin {
            name: "snn",
            about: "tutorial part 3: one training step of the spiking net (256 samples, 100 steps, bool input spikes, 100->10->2, Adam)",
            build: snn,
        },
    ]
}

/// Traces the built-in called `name`.
pub fn builtin(name: &str) -> Result<Function> {
    let all = builtins();
    match all.iter().find(|b| b.name == name) {
        Some(b) => b.build(),
        None => Err(Error::invalid(
            "ir",
            format!(
                "no built-in function '{name}'; available: {}",
                all.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn dense() -> Result<Function> {
    crate::random::seed(0);
    let layer = Dense::new(90, 3)?;
    Ok(trace_step("dense", &layer, &f64t(&[4, 90]))?.0)
}

fn nvar() -> Result<Function> {
    let layer = Nvar::new(3, 4, &[2], 5, false)?;
    Ok(trace_step("nvar", &layer, &f64t(&[1, 3]))?.0)
}

fn rnn_step(x: &Tensor, h: &Tensor, wi: &Tensor, wh: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(wi) + h.matmul(wh) + b).relu()
}

fn rnn_cell() -> Result<Function> {
    Ok(trace("rnn_cell", |tr| {
        let x = tr.input("x", f64t(&[4, 1]));
        let h = tr.input("h", f64t(&[4, 16]));
        let wi = tr.input("Wi", f64t(&[1, 16]));
        let wh = tr.input("Wh", f64t(&[16, 16]));
        let b = tr.input("b", f64t(&[16]));
        Ok(vec![("h_new".into(), rnn_step(&x, &h, &wi, &wh, &b))])
    })?)
}

/// The spike function: Heaviside forward, BrainPy's default surrogate backward.
fn spike(u: &Tensor) -> Tensor {
    let cv = Surrogate::InvSquare { alpha: 100.0 }.build(u.ty());
    u.tracer().push1(Op::CustomVjp(Box::new(cv)), &[u])
}

/// LIF step in training mode: exponential Euler, spike, soft reset (not detached).
fn lif_step(v: &Tensor, i: &Tensor, dt: f64, tau: f64, v_th: f64) -> (Tensor, Tensor) {
    let v1 = v + &((i - v) * (1.0 - (-dt / tau).exp()));
    let s = spike(&(&v1 - v_th));
    let v2 = &v1 - &(&s * v_th);
    (v2, s)
}

fn lif() -> Result<Function> {
    Ok(trace("lif", |tr| {
        let v = tr.input("V", f64t(&[4, 10]));
        let i = tr.input("I", f64t(&[4, 10]));
        let (v2, s) = lif_step(&v, &i, 1.0, 10.0, 1.0);
        Ok(vec![("V_new".into(), v2), ("spike".into(), s)])
    })?)
}

fn rnn_loss() -> Result<Function> {
    Ok(trace("rnn_loss", |tr| {
        let xs = tr.input("xs", f64t(&[25, 4, 1]));
        let target = tr.input("target", f64t(&[25, 4, 1]));
        let h0 = tr.input("h0", f64t(&[4, 16]));
        let wi = tr.input("Wi", f64t(&[1, 16]));
        let wh = tr.input("Wh", f64t(&[16, 16]));
        let b = tr.input("b", f64t(&[16]));
        let wo = tr.input("Wo", f64t(&[16, 1]));
        let bo = tr.input("bo", f64t(&[1]));
        // Wh is scaled by 1/4 (an initialiser gain) so that unit-range random weights, as
        // `ir grad --check` draws them, give a contracting recurrence over 25 steps.
        let wh = &wh * 0.25;
        let (_, ys) = tr.scan(&[h0], &[xs], None, false, |_, c, x| {
            let h = rnn_step(&x[0], &c[0], &wi, &wh, &b);
            let y = h.matmul(&wo) + &bo;
            Ok((vec![h], vec![y]))
        })?;
        let loss = (&ys[0] - &target).square().mean_all();
        Ok(vec![("loss".into(), loss)])
    })?)
}

fn snn_loss() -> Result<Function> {
    Ok(trace("snn_loss", |tr: &Tracer| {
        let (b, t) = (8, 20);
        let xs = tr.input("spikes", TensorType::new(DType::Bool, [t, b, 100]));
        let labels = tr.input("labels", TensorType::new(DType::I32, [b]));
        let w1 = tr.input("W1", f64t(&[100, 10]));
        let b1 = tr.input("b1", f64t(&[10]));
        let w2 = tr.input("W2", f64t(&[10, 2]));
        let b2 = tr.input("b2", f64t(&[2]));
        let z = |n: usize| tr.input(format!("init{n}"), f64t(&[b, [10, 10, 2, 2][n]]));
        let init = [z(0), z(1), z(2), z(3)];
        let (d10, d5) = ((-1.0f64 / 10.0).exp(), 1.0 - (-1.0f64 / 5.0).exp());
        let (_, ys) = tr.scan(&init, &[xs], None, false, |_, c, x| {
            let g1 = &c[0] * d10 + x[0].matmul(&w1) + &b1;
            let (v, s) = lif_step(&c[1], &g1, 1.0, 10.0, 1.0);
            let g2 = &c[2] * d10 + s.matmul(&w2) + &b2;
            let o = &c[3] + &((&g2 - &c[3]) * d5);
            Ok((vec![g1, v, g2, o.clone()], vec![o]))
        })?;
        let logits = ys[0].max(&[0], false);
        let classes = tr.push1(
            Op::Iota {
                ty: TensorType::new(DType::I32, [b, 2]),
                axis: 1,
            },
            &[],
        );
        let onehot = labels.expand_dims(1).eq_elem(&classes).cast(DType::F64);
        let ce = (logits.logsumexp(1, false) - (&logits * &onehot).sum(&[1], false)).mean_all();
        Ok(vec![("loss".into(), ce)])
    })?)
}

fn ngrc() -> Result<Function> {
    crate::random::seed(0);
    let model = crate::tutorial::ngrc::Ngrc::new(3, 3)?;
    let ty = f64t(&[1, 100, 3]);
    Ok(crate::offline::fit_function(&model, &ty, &ty, false)?.0)
}

fn rnn() -> Result<Function> {
    crate::random::seed(0);
    crate::tutorial::rnn::tutorial_train_step_function(128, 25, 100)
}

fn snn() -> Result<Function> {
    Ok(crate::tutorial::snn::tutorial_train_step_function(100, 256)?.0)
}
