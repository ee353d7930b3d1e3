//! Optimisers against BrainPy golden trajectories (tests/data/adam, rel 1e-13) and
//! hand-computed SGD / schedule / clipping values. The update runs as a compiled kernel
//! (`ApplyGradients`) on the interpreter.

mod common;

use brainlift::autograd::ApplyGradients;
use brainlift::optim::{Adam, AdamW, BiasCorrection, LrSchedule, Optimizer, Sgd};
use brainlift::{Array, Backend, VarOwner, Variable, named_vars};
use common::{read_npy, rel_close};

/// A bag holding one parameter `p`.
struct P {
    p: Variable,
}
impl VarOwner for P {
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable)) {
        f("p", &self.p);
    }
    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        f("p", &mut self.p);
    }
}

fn run_traj(
    opt: &mut dyn Optimizer,
    p0: &[f64],
    grads: &[Vec<f64>],
    epoch_per_update: bool,
) -> Vec<Vec<f64>> {
    let n = p0.len();
    let mut m = P {
        p: Variable::param(Array::from_f64([n], p0.to_vec()).unwrap()),
    };
    let params = named_vars(&m);
    let mut step = ApplyGradients::new(&m, &params, opt, Backend::Interp).unwrap();
    let mut traj = vec![p0.to_vec()];
    for g in grads {
        step.apply(&mut m, opt, &[Array::from_f64([n], g.clone()).unwrap()])
            .unwrap();
        if epoch_per_update {
            opt.step_epoch();
        }
        traj.push(m.p.value().to_f64_vec());
    }
    traj
}

fn golden_inputs() -> (Vec<f64>, Vec<Vec<f64>>) {
    let (p0, _) = read_npy("adam", "p0.npy");
    let (g, s) = read_npy("adam", "grads.npy");
    (p0, g.chunks(s[1]).map(|c| c.to_vec()).collect())
}

fn check(traj: &[Vec<f64>], file: &str) {
    let (want, _) = read_npy("adam", file);
    let got: Vec<f64> = traj.concat();
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(rel_close(*a, *b, 1e-13), "{file}[{i}]: got {a}, want {b}");
    }
}

#[test]
fn adam_per_update_matches_efficient_form() {
    let (p0, g) = golden_inputs();
    let mut opt = Adam::new(0.025).eps(0.1);
    check(
        &run_traj(&mut opt, &p0, &g, false),
        "efficient_form_traj.npy",
    );
    assert_eq!(opt.num_updates(), 3);
}

#[test]
fn adam_per_epoch_counter_not_stepped_matches_brainpy() {
    let (p0, g) = golden_inputs();
    let mut opt = Adam::new(0.025)
        .eps(0.1)
        .bias_correction(BiasCorrection::PerEpoch);
    check(&run_traj(&mut opt, &p0, &g, false), "brainpy_traj.npy");
}

#[test]
fn adam_per_epoch_stepped_every_update_equals_efficient_form() {
    let (p0, g) = golden_inputs();
    let mut opt = Adam::new(0.025)
        .eps(0.1)
        .bias_correction(BiasCorrection::PerEpoch);
    check(
        &run_traj(&mut opt, &p0, &g, true),
        "efficient_form_traj.npy",
    );
}

#[test]
fn adam_moments_are_optimizer_variables() {
    let (p0, g) = golden_inputs();
    let mut opt = Adam::new(0.025).eps(0.1);
    run_traj(&mut opt, &p0, &g[..1], false);
    let vars = named_vars(&opt);
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["m.p", "v.p"]);
    // after one update m = 0.1 g, v = 0.001 g^2
    let m = vars[0].1.value().to_f64_vec();
    let v = vars[1].1.value().to_f64_vec();
    for k in 0..p0.len() {
        assert!(rel_close(m[k], (1.0 - 0.9) * g[0][k], 1e-15));
        assert!(rel_close(v[k], (1.0 - 0.999) * g[0][k] * g[0][k], 1e-15));
    }
}

#[test]
fn sgd_plain_and_momentum_hand_computed() {
    let mut opt = Sgd::new(0.1);
    let t = run_traj(
        &mut opt,
        &[1.0, 2.0],
        &[vec![1.0, -2.0], vec![1.0, -2.0]],
        false,
    );
    assert_eq!(t[2], vec![1.0 - 0.1 - 0.1, 2.0 + 0.2 + 0.2]);
    // v1 = 0.1 g, v2 = 0.9 v1 + 0.1 g = 0.19 g
    let mut opt = Sgd::with_momentum(0.1, 0.9);
    let t = run_traj(&mut opt, &[1.0], &[vec![1.0], vec![1.0]], false);
    assert!(rel_close(t[1][0], 0.9, 1e-15));
    assert!(rel_close(t[2][0], 0.9 - 0.19, 1e-15), "{}", t[2][0]);
}

#[test]
fn exponential_decay_is_continuous_per_call() {
    let s = LrSchedule::ExponentialDecay {
        lr: 0.025,
        decay_steps: 2.0,
        decay_rate: 0.5,
    };
    assert_eq!(s.lr_at(0), 0.025);
    assert!(rel_close(s.lr_at(1), 0.025 * 0.5f64.sqrt(), 1e-15));
    assert_eq!(s.lr_at(2), 0.0125);
    // SGD applies the schedule per update: steps 0.025, 0.025/sqrt(2)
    let mut opt = Sgd::new(s);
    let t = run_traj(&mut opt, &[0.0], &[vec![1.0], vec![1.0]], false);
    assert!(rel_close(t[2][0], -0.025 - 0.025 * 0.5f64.sqrt(), 1e-15));
}

#[test]
fn gradient_clipping_by_global_norm() {
    // grads (3, 4) have norm 5; clipped to norm 1 -> (0.6, 0.8)
    let mut opt = Sgd::new(1.0).clip_grad_norm(1.0);
    let t = run_traj(&mut opt, &[0.0, 0.0], &[vec![3.0, 4.0]], false);
    assert!(
        rel_close(t[1][0], -0.6, 1e-12) && rel_close(t[1][1], -0.8, 1e-12),
        "{:?}",
        t[1]
    );
    // under the limit: unchanged
    let mut opt = Sgd::new(1.0).clip_grad_norm(10.0);
    let t = run_traj(&mut opt, &[0.0, 0.0], &[vec![3.0, 4.0]], false);
    assert!(
        rel_close(t[1][0], -3.0, 1e-12) && rel_close(t[1][1], -4.0, 1e-12),
        "{:?}",
        t[1]
    );
}

#[test]
fn adamw_decays_weights_decoupled() {
    // zero gradient: m = v = 0, update 0, p <- p * (1 - lr * wd)
    let mut opt = AdamW::new(0.1, 0.5);
    let t = run_traj(&mut opt, &[2.0], &[vec![0.0]], false);
    assert!(rel_close(t[1][0], 2.0 * (1.0 - 0.05), 1e-15), "{}", t[1][0]);
}

#[test]
fn bad_hyper_parameters_are_rejected() {
    let mut opt = Adam::new(0.1).betas(1.5, 0.999);
    let err = opt.register(&[]).unwrap_err().to_string();
    assert!(err.contains("beta1") && err.contains("1.5"), "{err}");
    let mut opt = Sgd::new(LrSchedule::ExponentialDecay {
        lr: 0.1,
        decay_steps: 0.0,
        decay_rate: 0.9,
    });
    assert!(opt.register(&[]).is_err());
}
