//! Runner monitors, for_loop, the other neuron/synapse models and bad-input errors.

use brainlift::dyn_::{Alif, AlifParams, AlphaSyn, Expon, Lif, LifParams};
use brainlift::ir::{DType, TensorType};
use brainlift::nn::{Dense, Sequential};
use brainlift::runner::{DataAxis, Runner, for_loop};
use brainlift::{Array, Backend, Error, Module, Tracer, init::Init};

fn lif(n: usize) -> Lif {
    Lif::new(
        n,
        LifParams {
            tau: 10.0,
            v_reset: 0.0,
            v_rest: 0.0,
            v_th: 1.0,
            dt: Some(1.0),
            ..Default::default()
        },
    )
    .unwrap()
    .named("r")
}

/// Constant currents into a LIF (τ 10, V_th 1, soft reset by 1, dt 1) against the
/// recurrence `V' = V + (1 − e^{−0.1})(I − V)`, `s = [V' ≥ 1]`, `V = V' − s`.
#[test]
fn monitors_have_shapes_and_values_after_the_update() {
    let (t, b, n) = (12, 3, 2);
    let mut vals = vec![0.0; t * b * n];
    for ti in 0..t {
        for bi in 0..b {
            for ni in 0..n {
                vals[(ti * b + bi) * n + ni] = 1.5 * (bi as f64) * (1.0 + ni as f64);
            }
        }
    }
    let xs = Array::from_f64([t, b, n], vals.clone()).unwrap();
    let mut r = Runner::new(lif(n))
        .backend(Backend::Interp)
        .monitor("r.V", "V")
        .monitor("r.spike", "spike")
        .dt(1.0);
    let out = r.run(&xs, true).unwrap();
    assert_eq!(out.outputs.shape(), &[t, b, n]);
    let v = out.mon("r.V").unwrap().to_f64_vec();
    let s = out.mon("r.spike").unwrap().to_f64_vec();
    assert_eq!(out.mon("r.V").unwrap().shape(), &[t, b, n]);
    assert_eq!(out.ts, (0..t).map(|i| i as f64).collect::<Vec<_>>());
    // reference recurrence
    let c = 1.0 - (-0.1f64).exp();
    let mut vr = vec![0.0; b * n];
    let mut total = 0.0;
    for ti in 0..t {
        for k in 0..b * n {
            let i = vals[ti * b * n + k];
            let vp = vr[k] + c * (i - vr[k]);
            let sp = if vp >= 1.0 { 1.0 } else { 0.0 };
            vr[k] = vp - sp;
            total += sp;
            assert_eq!(s[ti * b * n + k], sp, "spike t={ti} k={k}");
            assert!((v[ti * b * n + k] - vr[k]).abs() < 1e-12, "V t={ti} k={k}");
            assert!(v[ti * b * n + k] < 1.0, "V is recorded after the reset");
        }
    }
    assert!(total > 0.0, "some neurons spike");
    assert!(s.iter().all(|&x| x == 0.0 || x == 1.0));
    // batch 0 gets no current and never spikes
    assert!((0..t).all(|ti| s[ti * b * n] == 0.0 && s[ti * b * n + 1] == 0.0));
    // the final state is written back into the model
    for (a, b) in r.model().v.value().to_f64_vec().iter().zip(&vr) {
        assert!((a - b).abs() < 1e-12);
    }
    // without reset the run continues (ts and state), with reset it restarts
    let out2 = r.run(&xs, false).unwrap();
    assert_eq!(out2.ts[0], t as f64);
    assert_ne!(out2.mon("r.V").unwrap().to_f64_vec(), v);
    let out3 = r.run(&xs, true).unwrap();
    assert_eq!(out3.ts[0], 0.0);
    assert_eq!(out3.mon("r.V").unwrap().to_f64_vec(), v);
}

#[test]
fn batch_first_layout_transposes_inputs_and_monitors() {
    let (t, b, n) = (5, 2, 3);
    let vals: Vec<f64> = (0..t * b * n).map(|i| (i % 7) as f64 * 0.4).collect();
    let tf = Array::from_f64([t, b, n], vals.clone()).unwrap();
    let mut bf_vals = vec![0.0; t * b * n];
    for ti in 0..t {
        for bi in 0..b {
            for ni in 0..n {
                bf_vals[(bi * t + ti) * n + ni] = vals[(ti * b + bi) * n + ni];
            }
        }
    }
    let bf = Array::from_f64([b, t, n], bf_vals).unwrap();
    let mut r1 = Runner::new(Expon::new(n, 8.0).unwrap().with_dt(1.0).unwrap())
        .backend(Backend::Interp)
        .monitor("g", "g");
    let mut r2 = Runner::new(Expon::new(n, 8.0).unwrap().with_dt(1.0).unwrap())
        .backend(Backend::Interp)
        .data_first_axis(DataAxis::Batch)
        .monitor("g", "g");
    let o1 = r1.run(&tf, true).unwrap();
    let o2 = r2.run(&bf, true).unwrap();
    assert_eq!(o2.outputs.shape(), &[b, t, n]);
    assert_eq!(o2.mon("g").unwrap().shape(), &[b, t, n]);
    let a = o1.outputs.to_f64_vec();
    let c = o2.outputs.to_f64_vec();
    for ti in 0..t {
        for bi in 0..b {
            for ni in 0..n {
                assert_eq!(a[(ti * b + bi) * n + ni], c[(bi * t + ti) * n + ni]);
            }
        }
    }
}

#[test]
fn wrong_input_width_names_the_layer() {
    let mut r = Runner::new(lif(4)).backend(Backend::Interp);
    let xs = Array::zeros(TensorType::new(DType::F64, [3, 2, 5]));
    let e = r.run(&xs, true).unwrap_err().to_string();
    assert!(
        e.contains("Lif 'r'") && e.contains("4 units") && e.contains("f64[2,5]"),
        "{e}"
    );
    // a Sequential: the Expon after a Dense of the wrong size is named
    let seq = Sequential::new()
        .push(
            "comm",
            Dense::with_init(5, 3, Init::Ones, None, DType::F64).unwrap(),
        )
        .push("syn", Expon::new(4, 10.0).unwrap().named("i2r.syn"));
    let mut r = Runner::new(seq).backend(Backend::Interp);
    let e = r.run(&xs, true).unwrap_err().to_string();
    assert!(e.contains("Expon 'i2r.syn'"), "{e}");
}

#[test]
fn nan_membrane_and_unknown_monitor_are_errors() {
    let mut r = Runner::new(lif(2))
        .backend(Backend::Interp)
        .monitor("V", "V");
    let xs = Array::from_f64([2, 1, 2], vec![0.5, f64::NAN, 0.5, 0.5]).unwrap();
    let e = r.run(&xs, true).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }));
    let e = e.to_string();
    assert!(
        e.contains("'V'") && e.contains("non-finite") && e.contains("NaN"),
        "{e}"
    );
    // allowed when asked
    let mut r = Runner::new(lif(2))
        .backend(Backend::Interp)
        .check_finite(false);
    assert!(r.run(&xs, true).is_ok());
    let mut r = Runner::new(lif(2))
        .backend(Backend::Interp)
        .monitor("m", "U");
    let e = r
        .run(&Array::zeros(TensorType::new(DType::F64, [2, 1, 2])), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no variable 'U'") && e.contains("\"V\""), "{e}");
    assert!(Lif::new(0, LifParams::default()).is_err());
    assert!(
        Lif::new(
            3,
            LifParams {
                tau: 0.0,
                ..Default::default()
            }
        )
        .unwrap_err()
        .to_string()
        .contains("tau")
    );
}

/// `for_loop` carries the states and writes their final values back into the trace.
#[test]
fn for_loop_carries_states() {
    let e = Expon::new(2, 10.0).unwrap().with_dt(1.0).unwrap();
    let tr = Tracer::new("loop");
    tr.name_vars(&e, "");
    let xs = tr.input("xs", TensorType::new(DType::F64, [3, 1, 2]));
    let ys = for_loop(&e, std::slice::from_ref(&xs), |x| vec![e.update(&x[0])]).unwrap();
    let g_final = tr.read_var(&e.g);
    let f = tr
        .finish(&[("ys".into(), ys[0].clone()), ("g".into(), g_final)])
        .unwrap();
    let mut exe = brainlift::runtime::compile(&f, Backend::Interp).unwrap();
    let out = exe
        .run(&[
            Array::from_f64([3, 1, 2], vec![1.0, 0.0, 0.0, 2.0, 0.0, 0.0]).unwrap(),
            Array::zeros(TensorType::new(DType::F64, [1, 2])),
        ])
        .unwrap();
    let d = (-0.1f64).exp();
    let want = [1.0, 0.0, d, 2.0, d * d, 2.0 * d];
    for (a, b) in out[0].to_f64_vec().iter().zip(want) {
        assert!((a - b).abs() < 1e-14);
    }
    assert_eq!(out[1].to_f64_vec(), out[0].to_f64_vec()[4..].to_vec());
    assert!(for_loop(&e, &[], |_| vec![]).is_err());
}

/// Alif with β = 0 is a Lif; with β > 0 the threshold rises after spikes (fewer spikes).
#[test]
fn alif_reduces_to_lif_and_adapts() {
    let (t, n) = (40, 1);
    let xs = Array::from_f64([t, 1, n], vec![2.0; t]).unwrap();
    let base = AlifParams {
        tau: 10.0,
        v_reset: 0.0,
        v_th: 1.0,
        dt: Some(1.0),
        tau_a: 20.0,
        ..Default::default()
    };
    let mut a0 = Runner::new(
        Alif::new(
            n,
            AlifParams {
                beta: 0.0,
                ..base.clone()
            },
        )
        .unwrap(),
    )
    .backend(Backend::Interp);
    let mut l = Runner::new(lif(n)).backend(Backend::Interp);
    let s0 = a0.run(&xs, true).unwrap().outputs.to_f64_vec();
    assert_eq!(s0, l.run(&xs, true).unwrap().outputs.to_f64_vec());
    let mut a1 = Runner::new(Alif::new(n, AlifParams { beta: 0.5, ..base }).unwrap())
        .backend(Backend::Interp)
        .monitor("a", "a");
    let o1 = a1.run(&xs, true).unwrap();
    let (c0, c1): (f64, f64) = (s0.iter().sum(), o1.outputs.to_f64_vec().iter().sum());
    assert!(c1 < c0 && c1 > 0.0, "adaptation: {c1} spikes vs {c0}");
    // a decays by e^{-1/20} per step and jumps by 1 per spike
    let a = o1.mon("a").unwrap().to_f64_vec();
    let s = o1.outputs.to_f64_vec();
    let mut ar = 0.0;
    for k in 0..t {
        ar = ar * (-0.05f64).exp() + s[k];
        assert!((a[k] - ar).abs() < 1e-12);
    }
}

/// Alpha synapse: one pulse gives a rise then a decay; hand recurrence.
#[test]
fn alpha_synapse_rises_then_decays() {
    let t = 30;
    let mut x = vec![0.0; t];
    x[0] = 1.0;
    let xs = Array::from_f64([t, 1, 1], x.clone()).unwrap();
    let mut r = Runner::new(AlphaSyn::alpha(1, 5.0).unwrap().with_dt(1.0).unwrap())
        .backend(Backend::Interp);
    let g = r.run(&xs, true).unwrap().outputs.to_f64_vec();
    let (d, phi) = ((-0.2f64).exp(), 5.0 * (1.0 - (-0.2f64).exp()));
    let (mut h, mut gr) = (0.0, 0.0);
    for k in 0..t {
        h = h * d + x[k];
        gr = gr + phi * (-gr / 5.0 + h);
        assert!((g[k] - gr).abs() < 1e-12, "g[{k}] = {}, want {gr}", g[k]);
    }
    let peak = (0..t).max_by(|&a, &b| g[a].total_cmp(&g[b])).unwrap();
    assert!((3..=6).contains(&peak), "alpha peak near tau: {peak}");
}
