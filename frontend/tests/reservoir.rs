//! The echo-state `Reservoir` layer and the `Esn` model fitted by `RidgeTrainer`: the update
//! rule against a hand-written reference, spectral-radius scaling, seeding, bad
//! configurations, a Lorenz one-step forecast, and bad input to the trainer.

use brainlift::datasets::chaos::lorenz;
use brainlift::linalg::ridge::{NormalEquations, RidgeSolver};
use brainlift::nn::reservoir::spectral_radius;
use brainlift::nn::{Esn, Reservoir, ReservoirActivation, ReservoirConfig};
use brainlift::{Array, Backend, DType, Error, Module, RidgeTrainer, TensorType, run_over_time};

fn cfg(seed: u64) -> ReservoirConfig {
    ReservoirConfig {
        seed,
        ..ReservoirConfig::default()
    }
}

fn values(v: &brainlift::Variable) -> Vec<f64> {
    v.value().to_f64_vec()
}

#[test]
fn spectral_radius_of_known_matrices() {
    // Rotation-like: eigenvalues ±2i.
    let r = spectral_radius(&[0.0, 2.0, -2.0, 0.0], 2).unwrap();
    assert!((r - 2.0).abs() < 1e-12, "{r}");
    // Triangular, non-normal: eigenvalues 1 and -3 (the norm is about 100).
    let r = spectral_radius(&[1.0, 100.0, 0.0, -3.0], 2).unwrap();
    assert!((r - 3.0).abs() < 1e-12, "{r}");
    // Nilpotent: all eigenvalues zero.
    let r = spectral_radius(&[0.0, 1.0, 0.0, 0.0], 2).unwrap();
    assert!(r.abs() < 1e-12, "{r}");
    assert!(spectral_radius(&[1.0, 2.0, 3.0], 2).is_err());
}

#[test]
fn recurrent_weights_are_scaled_to_the_spectral_radius() {
    for (rho, sparsity, n) in [(0.9, 0.9, 80), (1.25, 0.0, 40), (0.5, 0.5, 60)] {
        let c = ReservoirConfig {
            spectral_radius: rho,
            sparsity,
            ..cfg(3)
        };
        let r = Reservoir::new(2, n, c).unwrap();
        let w = values(&r.w_rec);
        assert_eq!(r.w_rec.ty().dims(), &[n, n]);
        let got = spectral_radius(&w, n).unwrap();
        assert!((got - rho).abs() < 1e-9 * rho, "radius {got} for {rho}");
        // Independent check: Gelfand's formula ||W^k v||^(1/k) -> rho (within a few %).
        let mut v = vec![1.0 / (n as f64).sqrt(); n];
        let k = 400;
        let mut log_norm = 0.0;
        for _ in 0..k {
            let mut nv = vec![0.0; n];
            for i in 0..n {
                for j in 0..n {
                    nv[j] += v[i] * w[i * n + j];
                }
            }
            let norm = nv.iter().map(|x| x * x).sum::<f64>().sqrt();
            log_norm += norm.ln();
            v = nv.iter().map(|x| x / norm).collect();
        }
        let est = (log_norm / k as f64).exp();
        assert!(
            (est - rho).abs() < 0.05 * rho,
            "power estimate {est} for {rho}"
        );
        // Sparsity: the fraction of zeros is near the requested one.
        let zeros = w.iter().filter(|x| **x == 0.0).count() as f64 / (n * n) as f64;
        assert!(
            (zeros - sparsity).abs() < 0.05,
            "zeros {zeros} for {sparsity}"
        );
    }
}

#[test]
fn input_weights_and_biases_lie_in_their_ranges() {
    let c = ReservoirConfig {
        input_scaling: 0.25,
        bias_scaling: 0.5,
        ..cfg(1)
    };
    let r = Reservoir::new(3, 50, c).unwrap();
    let w_in = values(&r.w_in);
    let b = values(&r.bias);
    assert_eq!(r.w_in.ty().dims(), &[3, 50]);
    assert_eq!(r.bias.ty().dims(), &[50]);
    assert!(w_in.iter().all(|x| x.abs() <= 0.25));
    assert!(b.iter().all(|x| x.abs() <= 0.5));
    // Uniform on the whole range, not a corner of it.
    let max = w_in.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(max > 0.2, "max |W_in| {max}");
    assert!(w_in.iter().any(|x| *x < 0.0) && w_in.iter().any(|x| *x > 0.0));
    // Weights are constants (not trained), the state is a zero state.
    assert!(!r.w_in.is_trainable() && !r.w_rec.is_trainable() && !r.bias.is_trainable());
    assert!(r.state.is_state());
    assert_eq!(values(&r.state), vec![0.0; 50]);
    let no_bias = Reservoir::new(
        3,
        10,
        ReservoirConfig {
            bias_scaling: 0.0,
            ..cfg(1)
        },
    )
    .unwrap();
    assert_eq!(values(&no_bias.bias), vec![0.0; 10]);
}

#[test]
fn same_seed_same_reservoir_other_seed_another() {
    let a = Reservoir::new(3, 40, cfg(7)).unwrap();
    let b = Reservoir::new(3, 40, cfg(7)).unwrap();
    let c = Reservoir::new(3, 40, cfg(8)).unwrap();
    // The process-wide generator does not influence the reservoir.
    brainlift::random::seed(12345);
    let d = Reservoir::new(3, 40, cfg(7)).unwrap();
    for (x, y) in [(&a, &b), (&a, &d)] {
        assert_eq!(values(&x.w_in), values(&y.w_in));
        assert_eq!(values(&x.w_rec), values(&y.w_rec));
        assert_eq!(values(&x.bias), values(&y.bias));
    }
    assert_ne!(values(&a.w_in), values(&c.w_in));
    assert_ne!(values(&a.w_rec), values(&c.w_rec));
    // Same seed, same trajectory.
    let xs = Array::from_f64([1, 5, 3], (0..15).map(|i| (i as f64 * 0.7).sin()).collect()).unwrap();
    let (mut a, mut b) = (a, b);
    let ya = run_over_time(&mut a, &xs, true, Backend::Interp).unwrap();
    let yb = run_over_time(&mut b, &xs, true, Backend::Interp).unwrap();
    assert_eq!(ya.to_f64_vec(), yb.to_f64_vec());
}

/// `h ← (1−a)h + a·tanh(x·W_in + h·W + b)` computed by hand in plain Rust.
fn reference(r: &Reservoir, xs: &[f64], batch: usize, steps: usize) -> Vec<f64> {
    let (d, n, a) = (r.num_in, r.num_units, r.config.leak_rate);
    let (w_in, w, b) = (values(&r.w_in), values(&r.w_rec), values(&r.bias));
    let mut h = vec![0.0; batch * n];
    let mut out = vec![0.0; batch * steps * n];
    for t in 0..steps {
        let mut nh = vec![0.0; batch * n];
        for bi in 0..batch {
            for u in 0..n {
                let mut s = b[u];
                for i in 0..d {
                    s += xs[(bi * steps + t) * d + i] * w_in[i * n + u];
                }
                for j in 0..n {
                    s += h[bi * n + j] * w[j * n + u];
                }
                nh[bi * n + u] = (1.0 - a) * h[bi * n + u] + a * s.tanh();
                out[(bi * steps + t) * n + u] = nh[bi * n + u];
            }
        }
        h = nh;
    }
    out
}

#[test]
fn update_matches_the_leaky_tanh_rule() {
    let c = ReservoirConfig {
        leak_rate: 0.4,
        input_scaling: 0.8,
        sparsity: 0.5,
        ..cfg(11)
    };
    let mut r = Reservoir::new(2, 6, c).unwrap();
    r.reset_state(2);
    let (batch, steps) = (2, 7);
    let xs: Vec<f64> = (0..batch * steps * 2)
        .map(|i| (i as f64 * 0.37).cos())
        .collect();
    let want = reference(&r, &xs, batch, steps);
    let x = Array::from_f64([batch, steps, 2], xs).unwrap();
    let got = run_over_time(&mut r, &x, true, Backend::Interp).unwrap();
    assert_eq!(got.shape(), &[batch, steps, 6]);
    for (k, (g, w)) in got.to_f64_vec().iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-12, "element {k}: {g} vs {w}");
    }
    // The final state is kept: it equals the last output of each batch row.
    let h = values(&r.state);
    for bi in 0..batch {
        let last = &want[(bi * steps + steps - 1) * 6..(bi * steps + steps) * 6];
        for (g, w) in h[bi * 6..bi * 6 + 6].iter().zip(last) {
            assert!((g - w).abs() < 1e-12);
        }
    }
}

#[test]
fn identity_activation_without_leak_is_linear() {
    let c = ReservoirConfig {
        leak_rate: 1.0,
        activation: ReservoirActivation::Identity,
        sparsity: 0.0,
        ..cfg(2)
    };
    let mut r = Reservoir::new(1, 4, c).unwrap();
    // One step from the zero state: h = x·W_in + b.
    let x = Array::from_f64([1, 1, 1], vec![2.0]).unwrap();
    let got = run_over_time(&mut r, &x, true, Backend::Interp)
        .unwrap()
        .to_f64_vec();
    let (w_in, b) = (values(&r.w_in), values(&r.bias));
    for u in 0..4 {
        assert!((got[u] - (2.0 * w_in[u] + b[u])).abs() < 1e-15);
    }
}

#[test]
fn f32_reservoir_runs_in_f32() {
    let c = ReservoirConfig {
        dtype: DType::F32,
        ..cfg(4)
    };
    let mut r = Reservoir::new(3, 20, c.clone()).unwrap();
    assert_eq!(r.w_rec.ty().dtype, DType::F32);
    let r64 = Reservoir::new(
        3,
        20,
        ReservoirConfig {
            dtype: DType::F64,
            ..c
        },
    )
    .unwrap();
    let xs: Vec<f64> = (0..30).map(|i| (i as f64 * 0.2).sin()).collect();
    let want = reference(&r64, &xs, 1, 10);
    let x = Array::from_f64([1, 10, 3], xs).unwrap();
    let got = run_over_time(&mut r, &x, true, Backend::Interp).unwrap();
    assert_eq!(got.dtype(), DType::F32);
    for (g, w) in got.to_f64_vec().iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

fn invalid_msg(r: Result<Reservoir, Error>) -> String {
    match r {
        Err(e @ Error::Invalid { .. }) => e.to_string(),
        Err(e) => panic!("expected Error::Invalid, got {e:?}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn bad_configurations_are_errors() {
    let cases: Vec<(ReservoirConfig, &str)> = vec![
        (
            ReservoirConfig {
                spectral_radius: 0.0,
                ..cfg(0)
            },
            "spectral_radius",
        ),
        (
            ReservoirConfig {
                spectral_radius: -1.0,
                ..cfg(0)
            },
            "spectral_radius",
        ),
        (
            ReservoirConfig {
                spectral_radius: f64::NAN,
                ..cfg(0)
            },
            "spectral_radius",
        ),
        (
            ReservoirConfig {
                leak_rate: 0.0,
                ..cfg(0)
            },
            "leak_rate",
        ),
        (
            ReservoirConfig {
                leak_rate: 1.5,
                ..cfg(0)
            },
            "leak_rate",
        ),
        (
            ReservoirConfig {
                leak_rate: f64::NAN,
                ..cfg(0)
            },
            "leak_rate",
        ),
        (
            ReservoirConfig {
                sparsity: 1.0,
                ..cfg(0)
            },
            "sparsity",
        ),
        (
            ReservoirConfig {
                sparsity: -0.1,
                ..cfg(0)
            },
            "sparsity",
        ),
        (
            ReservoirConfig {
                input_scaling: -1.0,
                ..cfg(0)
            },
            "input_scaling",
        ),
        (
            ReservoirConfig {
                bias_scaling: f64::INFINITY,
                ..cfg(0)
            },
            "bias_scaling",
        ),
        (
            ReservoirConfig {
                dtype: DType::I32,
                ..cfg(0)
            },
            "dtype",
        ),
    ];
    for (c, field) in cases {
        let msg = invalid_msg(Reservoir::new(3, 10, c.clone()));
        assert!(msg.starts_with("Reservoir:"), "{msg}");
        assert!(msg.contains(field), "{c:?}: {msg}");
    }
    let msg = invalid_msg(Reservoir::new(3, 0, cfg(0)));
    assert!(
        msg.contains("num_units") && msg.contains("positive"),
        "{msg}"
    );
    let msg = invalid_msg(Reservoir::new(0, 10, cfg(0)));
    assert!(msg.contains("num_in"), "{msg}");
    // One unit with sparsity 0.99: almost surely a zero matrix, which cannot be scaled.
    let msg = invalid_msg(Reservoir::new(
        3,
        1,
        ReservoirConfig {
            sparsity: 0.999,
            ..cfg(0)
        },
    ));
    assert!(msg.contains("spectral radius"), "{msg}");
}

fn lorenz_rows(a: usize, b: usize, data: &brainlift::datasets::chaos::ChaosSeries) -> Array {
    let (v, s) = data.subset(a, b).unwrap();
    Array::from_f64(s, v).unwrap()
}

fn lorenz_x(a: usize, b: usize, data: &brainlift::datasets::chaos::ChaosSeries) -> Array {
    let v: Vec<f64> = (a..b).map(|t| data.row(t).unwrap()[0]).collect();
    Array::from_f64([1, b - a, 1], v).unwrap()
}

fn nrmse(pred: &[f64], truth: &[f64]) -> f64 {
    let m = truth.iter().sum::<f64>() / truth.len() as f64;
    let var = truth.iter().map(|v| (v - m).powi(2)).sum::<f64>() / truth.len() as f64;
    let mse = pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / truth.len() as f64;
    (mse / var).sqrt()
}

/// A small ESN (100 units; the example uses 500 units and the full series) forecasting the Lorenz x one
/// step ahead with NRMSE below 1e-2, on the readout over the state alone and over `[x, h]`.
#[test]
fn esn_forecasts_lorenz_x_one_step_ahead() {
    let data = lorenz(50.0, 0.01).unwrap();
    let (warm, train_end, test_end) = (500, 3000, 4000);
    let truth = lorenz_x(train_end + 1, test_end + 1, &data).to_f64_vec();
    let mut eq = NormalEquations::new(3, 1);
    eq.add_rows(
        &lorenz_rows(warm, train_end, &data).to_f64_vec(),
        &lorenz_x(warm + 1, train_end + 1, &data).to_f64_vec(),
        train_end - warm,
    )
    .unwrap();
    let lin = eq.solve(1e-6, RidgeSolver::default()).unwrap();
    let lin_pred = lin
        .predict(
            &lorenz_rows(train_end, test_end, &data).to_f64_vec(),
            test_end - train_end,
        )
        .unwrap();
    let linear = nrmse(&lin_pred, &truth);
    eprintln!("linear readout on the input alone: NRMSE {linear:e}");
    assert!(linear < 1e-2 && linear > 1e-4, "{linear:e}");
    for readout_on_input in [false, true] {
        let r = Reservoir::new(3, 100, cfg(0)).unwrap();
        brainlift::random::seed(0);
        let esn = Esn::with_readout(r, 1, readout_on_input).unwrap();
        let mut t = RidgeTrainer::new(esn, 1e-6)
            .unwrap()
            .with_backend(Backend::Interp);
        t.predict(&lorenz_rows(0, warm, &data)).unwrap();
        t.fit(
            &lorenz_rows(warm, train_end, &data),
            &lorenz_x(warm + 1, train_end + 1, &data),
        )
        .unwrap();
        let pred = t.predict(&lorenz_rows(train_end, test_end, &data)).unwrap();
        assert_eq!(pred.shape(), &[1, test_end - train_end, 1]);
        let e = nrmse(&pred.to_f64_vec(), &truth);
        eprintln!("readout_on_input {readout_on_input}: NRMSE {e:e}");
        assert!(e < 1e-2, "readout_on_input {readout_on_input}: NRMSE {e:e}");
        // Not trivially zero: the target is never an input of the test window.
        assert!(e > 1e-12);
        // The reservoir earns its keep: a ridge readout on (x, y, z) alone is already below
        // 1e-2 on this easy target (dt = 0.01), the ESN must do clearly better.
        assert!(
            e < linear / 10.0,
            "NRMSE {e:e} vs linear baseline {linear:e}"
        );
    }
}

#[test]
fn bad_input_to_the_esn_trainer_is_an_error_and_the_trainer_stays_usable() {
    let data = lorenz(10.0, 0.01).unwrap();
    brainlift::random::seed(0);
    let esn = Esn::new(3, 20, 1, cfg(5)).unwrap();
    assert_eq!(esn.o.num_in, 23);
    let mut t = RidgeTrainer::new(esn, 1e-6)
        .unwrap()
        .with_backend(Backend::Interp);
    let x = lorenz_rows(0, 300, &data);
    let y = lorenz_x(1, 301, &data);
    let err = |r: Result<Array, Error>| -> String {
        match r {
            Ok(a) => panic!("expected an error, got an array of shape {:?}", a.shape()),
            Err(e) => e.to_string(),
        }
    };
    // Wrong number of input features: the reservoir names its expected shape.
    let x2 = Array::from_f64([1, 300, 2], vec![0.5; 600]).unwrap();
    let m = err(t.predict(&x2));
    assert!(m.contains("Reservoir") && m.contains("[1,3]"), "{m}");
    let m = err(t.fit(&x2, &y));
    assert!(m.contains("Reservoir"), "{m}");
    // Wrong number of target features.
    let y3 = lorenz_rows(1, 301, &data);
    let m = err(t.fit(&x, &y3));
    assert!(
        m.contains("y has 3 features") && m.contains("1 outputs"),
        "{m}"
    );
    // Different lengths.
    let m = err(t.fit(&x, &lorenz_x(1, 200, &data)));
    assert!(m.contains("share batch and time"), "{m}");
    // NaN in x and in y.
    let mut v = x.to_f64_vec();
    v[100] = f64::NAN;
    let xn = Array::from_f64([1, 300, 3], v).unwrap();
    let m = err(t.fit(&xn, &y));
    assert!(m.contains("non-finite") && m.contains("x"), "{m}");
    let m = err(t.predict(&xn));
    assert!(m.contains("non-finite"), "{m}");
    let mut v = y.to_f64_vec();
    v[7] = f64::INFINITY;
    let m = err(t.fit(&x, &Array::from_f64([1, 300, 1], v).unwrap()));
    assert!(m.contains("non-finite") && m.contains("y"), "{m}");
    // Empty series.
    let e = Array::zeros(TensorType::new(DType::F64, [1, 0, 3]));
    let m = err(t.predict(&e));
    assert!(m.contains("empty"), "{m}");
    let m = err(t.fit(&e, &Array::zeros(TensorType::new(DType::F64, [1, 0, 1]))));
    assert!(m.contains("empty"), "{m}");
    // Not batch-first 3-D.
    let m = err(t.predict(&Array::from_f64([300, 3], x.to_f64_vec()).unwrap()));
    assert!(m.contains("batch, time, features"), "{m}");
    // The failures touched nothing: the state is still zero, a fit and a prediction work.
    assert!(values(&t.model.r.state).iter().all(|v| *v == 0.0));
    assert!(t.last_fit().is_none());
    t.fit(&x, &y).unwrap();
    let p = t.predict(&lorenz_rows(300, 400, &data)).unwrap();
    let e = nrmse(&p.to_f64_vec(), &lorenz_x(301, 401, &data).to_f64_vec());
    assert!(e < 0.05, "NRMSE after the bad calls {e:e}");
    // Negative alpha is rejected up front.
    assert!(RidgeTrainer::new(Esn::new(3, 30, 1, cfg(0)).unwrap(), -1.0).is_err());
}

/// The JIT and the interpreter agree on an ESN fit and forecast (they differ only by `fma`
/// contraction and summation order, which the ill-conditioned fit amplifies a little).
#[test]
fn esn_fit_is_the_same_on_jit_and_interpreter() {
    let data = lorenz(20.0, 0.01).unwrap();
    let mut preds = vec![];
    for backend in [Backend::Jit, Backend::Interp] {
        brainlift::random::seed(0);
        let esn = Esn::new(3, 40, 1, cfg(9)).unwrap();
        let mut t = RidgeTrainer::new(esn, 1e-6).unwrap().with_backend(backend);
        t.predict(&lorenz_rows(0, 200, &data)).unwrap();
        t.fit(&lorenz_rows(200, 1200, &data), &lorenz_x(201, 1201, &data))
            .unwrap();
        let p = t.predict(&lorenz_rows(1200, 1500, &data)).unwrap();
        preds.push(p.to_f64_vec());
    }
    let truth = lorenz_x(1201, 1501, &data).to_f64_vec();
    let (ej, ei) = (nrmse(&preds[0], &truth), nrmse(&preds[1], &truth));
    let worst = preds[0]
        .iter()
        .zip(&preds[1])
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max);
    eprintln!("JIT NRMSE {ej:e}, interpreter {ei:e}, worst relative difference {worst:e}");
    assert!(ei < 1e-2, "NRMSE {ei:e}");
    // X̃ᵀX̃ + αI has a condition number near 9e11 here, so summation-order differences of
    // 1e-16 move the weights; the measured differences are 4e-7 (NRMSE) and 2.2e-7 (preds).
    assert!(
        (ej - ei).abs() <= 1e-4 * ei,
        "JIT NRMSE {ej:e}, interpreter {ei:e}"
    );
    assert!(worst <= 1e-5, "worst relative difference {worst:e}");
}

/// An f32 ESN fitted on f32 data forecasts as well as in f64: the trainer accumulates the
/// normal equations in f64.
#[test]
fn f32_esn_fits_on_f32_data() {
    let data = lorenz(20.0, 0.01).unwrap();
    let c = ReservoirConfig {
        dtype: DType::F32,
        ..cfg(9)
    };
    brainlift::random::seed(0);
    let esn = Esn::new(3, 40, 1, c).unwrap();
    assert_eq!(esn.o.w.ty().dtype, DType::F32);
    let mut t = RidgeTrainer::new(esn, 1e-6)
        .unwrap()
        .with_backend(Backend::Interp);
    let f32 = |a: Array| a.cast(DType::F32);
    t.predict(&f32(lorenz_rows(0, 200, &data))).unwrap();
    t.fit(
        &f32(lorenz_rows(200, 1200, &data)),
        &f32(lorenz_x(201, 1201, &data)),
    )
    .unwrap();
    let p = t.predict(&f32(lorenz_rows(1200, 1500, &data))).unwrap();
    assert_eq!(p.dtype(), DType::F32);
    let e = nrmse(&p.to_f64_vec(), &lorenz_x(1201, 1501, &data).to_f64_vec());
    eprintln!("f32 ESN NRMSE {e:e}");
    // 2.3e-3, as in f64 (with f32 normal equations the fit was lost: 0.8).
    assert!(e < 5e-3, "f32 NRMSE {e:e}");
}
