//! Golden tests for the neurons and synapses (`tests/data/lif`, `tests/data/expon_integrator`,
//! BrainPy 2.4.3 float64) and the LIF surrogate gradient against the spec's formula.

mod common;

use brainlift::compiler::ad;
use brainlift::dyn_::{Expon, Integrator, Lif, LifParams, SpikeReset, Surrogate, spike_fn};
use brainlift::ir::{DType, TensorType};
use brainlift::runner::Runner;
use brainlift::{Array, Backend, Module, Tracer, trace};
use common::{read_npy, rel_close};

fn tutorial_lif(n: usize) -> Lif {
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

fn time_first(vals: Vec<f64>, shape: &[usize]) -> Array {
    Array::from_f64([shape[0], 1, shape[1]], vals).unwrap()
}

#[test]
fn lif_matches_brainpy_trace() {
    let (i, shape) = read_npy("lif", "input_current.npy");
    let (v_ref, _) = read_npy("lif", "V.npy");
    let (s_ref, _) = read_npy("lif", "spike.npy");
    assert_eq!(shape, vec![60, 4]);
    let mut runner = Runner::new(tutorial_lif(4))
        .backend(Backend::Interp)
        .monitor("V", "V")
        .monitor("spike", "spike");
    let out = runner.run(&time_first(i, &shape), true).unwrap();
    let v = out.mon("V").unwrap();
    assert_eq!(v.shape(), &[60, 1, 4]);
    for (k, (a, b)) in v.to_f64_vec().iter().zip(&v_ref).enumerate() {
        assert!((a - b).abs() <= 1e-12, "V[{k}] = {a}, golden {b}");
    }
    let s = out.mon("spike").unwrap().to_f64_vec();
    assert_eq!(s, s_ref, "spikes must match exactly");
    assert_eq!(out.outputs.to_f64_vec(), s_ref, "Lif returns its spikes");
    let counts: Vec<f64> = (0..4).map(|n| s.iter().skip(n).step_by(4).sum()).collect();
    assert_eq!(counts, vec![5.0, 0.0, 8.0, 8.0]);
}

#[test]
fn expon_and_integrator_match_brainpy() {
    let (x, shape) = read_npy("expon_integrator", "input.npy");
    let (g_ref, _) = read_npy("expon_integrator", "expon_g.npy");
    let (x_ref, _) = read_npy("expon_integrator", "integrator_x.npy");
    let xs = time_first(x, &shape);
    let e = Expon::new(3, 10.0).unwrap().with_dt(1.0).unwrap();
    let mut r = Runner::new(e).backend(Backend::Interp).monitor("g", "g");
    let out = r.run(&xs, true).unwrap();
    for (k, (a, b)) in out.outputs.to_f64_vec().iter().zip(&g_ref).enumerate() {
        assert!((a - b).abs() <= 1e-12, "g[{k}] = {a}, golden {b}");
    }
    assert_eq!(out.mon("g").unwrap().to_f64_vec(), out.outputs.to_f64_vec());
    // Integrator reads the global dt when none is given: set 1.0 for this process's tests.
    let it = Integrator::new(3, 5.0).unwrap().with_dt(1.0).unwrap();
    let mut r = Runner::new(it).backend(Backend::Interp);
    let out = r.run(&xs, true).unwrap();
    for (k, (a, b)) in out.outputs.to_f64_vec().iter().zip(&x_ref).enumerate() {
        assert!((a - b).abs() <= 1e-12, "x[{k}] = {a}, golden {b}");
    }
}

/// Forward and gradient of the spike function against the golden surrogate arrays.
#[test]
fn surrogate_forward_and_grad_match_golden() {
    let (u, _) = read_npy("lif", "surrogate_u.npy");
    let (fwd_ref, _) = read_npy("lif", "surrogate_forward.npy");
    let (grad_ref, _) = read_npy("lif", "surrogate_grad.npy");
    let n = u.len();
    let ty = TensorType::new(DType::F64, [n]);
    let f = trace("spike_sum", |tr| {
        let u = tr.input("u", ty.clone());
        Ok(vec![(
            "loss".into(),
            spike_fn(&u, &Surrogate::default()).sum_all(),
        )])
    })
    .unwrap();
    let g = ad::value_and_grad(&f, &[0]).unwrap();
    let fwd = trace("spike", |tr| {
        let u = tr.input("u", ty.clone());
        Ok(vec![("s".into(), spike_fn(&u, &Surrogate::default()))])
    })
    .unwrap();
    let ua = Array::from_f64([n], u.clone()).unwrap();
    let s = brainlift::runtime::compile(&fwd, Backend::Interp)
        .unwrap()
        .run(std::slice::from_ref(&ua))
        .unwrap();
    for (k, (a, b)) in s[0].to_f64_vec().iter().zip(&fwd_ref).enumerate() {
        assert!(rel_close(*a, *b, 1e-14), "H(u[{k}]) = {a}, golden {b}");
    }
    let out = brainlift::runtime::compile(&g, Backend::Interp)
        .unwrap()
        .run(&[ua])
        .unwrap();
    assert_eq!(out[0].item().unwrap(), fwd_ref.iter().sum::<f64>());
    for (k, (a, b)) in out[1].to_f64_vec().iter().zip(&grad_ref).enumerate() {
        assert!(
            rel_close(*a, *b, 1e-14),
            "h(u[{k}] = {}) = {a}, golden {b}",
            u[k]
        );
    }
}

/// Gradients of one LIF step (soft reset, not detached) against the closed forms:
/// `V' = V + c(I − V)`, `c = 1 − e^{−dt/τ}`, `u = V' − V_th`, `s = H(u)`,
/// `V_out = V' − (V_th − V_reset)·s`; with `h(u) = 1/(α|u| + 1)²`:
/// `∂Σs/∂I = c·h(u)`, `∂ΣV_out/∂I = c·(1 − (V_th − V_reset)·h(u))`,
/// `∂ΣV_out/∂V = (1 − c)·(1 − (V_th − V_reset)·h(u))`.
#[test]
fn one_lif_step_gradient_matches_formula() {
    for (reset, detach) in [
        (SpikeReset::Soft, false),
        (SpikeReset::Soft, true),
        (SpikeReset::Hard, false),
    ] {
        let p = LifParams {
            tau: 10.0,
            v_reset: -0.5,
            v_th: 1.0,
            dt: Some(1.0),
            spk_reset: reset,
            detach_spk: detach,
            ..Default::default()
        };
        let lif = Lif::new(5, p.clone()).unwrap();
        let tr = Tracer::new("lif_step");
        tr.name_vars(&lif, "");
        let i = tr.input("I", TensorType::new(DType::F64, [1, 5]));
        let s = lif.update(&i);
        let v_out = tr.read_var(&lif.v);
        let loss = s.sum_all() * 3.0 + v_out.sum_all();
        let f = tr.finish(&[("loss".into(), loss)]).unwrap();
        assert_eq!(f.params.len(), 2, "inputs: I and V");
        let g = ad::grad(&f, &[0, 1]).unwrap();
        let iv = vec![1.2, 0.5, 11.0, 0.99, 10.0];
        let v0 = vec![0.8, 1.5, 0.0, 0.9, -3.0];
        let out = brainlift::runtime::compile(&g, Backend::Interp)
            .unwrap()
            .run(&[
                Array::from_f64([1, 5], iv.clone()).unwrap(),
                Array::from_f64([1, 5], v0.clone()).unwrap(),
            ])
            .unwrap();
        let (gi, gv) = (out[0].to_f64_vec(), out[1].to_f64_vec());
        let c = 1.0 - (-0.1f64).exp();
        for k in 0..5 {
            let vp = v0[k] + c * (iv[k] - v0[k]);
            let u = vp - 1.0;
            let s = if u >= 0.0 { 1.0 } else { 0.0 };
            let h = 1.0 / (100.0 * u.abs() + 1.0).powi(2);
            let ds = if detach { 0.0 } else { h };
            // d V_out / d V'
            let dvout = match reset {
                SpikeReset::Soft => 1.0 - 1.5 * ds,
                SpikeReset::Hard => (1.0 - s) + (-0.5 - vp) * ds,
            };
            let d_vp = 3.0 * h + dvout;
            let (want_i, want_v) = (c * d_vp, (1.0 - c) * d_vp);
            assert!(
                rel_close(gi[k], want_i, 1e-13),
                "{reset:?} detach={detach} dI[{k}] = {}, formula {want_i}",
                gi[k]
            );
            assert!(
                rel_close(gv[k], want_v, 1e-13),
                "{reset:?} detach={detach} dV[{k}] = {}, formula {want_v}",
                gv[k]
            );
        }
    }
}

/// f32 layers follow the f64 golden trace to f32 accuracy.
#[test]
fn lif_f32_follows_the_golden_trace() {
    let (i, shape) = read_npy("lif", "input_current.npy");
    let (v_ref, _) = read_npy("lif", "V.npy");
    let (s_ref, _) = read_npy("lif", "spike.npy");
    let p = LifParams {
        tau: 10.0,
        v_reset: 0.0,
        v_rest: 0.0,
        v_th: 1.0,
        dt: Some(1.0),
        dtype: DType::F32,
        ..Default::default()
    };
    let xs = Array::from_f32(
        [shape[0], 1, shape[1]],
        i.iter().map(|&x| x as f32).collect(),
    )
    .unwrap();
    let mut r = Runner::new(Lif::new(4, p).unwrap())
        .backend(Backend::Interp)
        .monitor("V", "V");
    let out = r.run(&xs, true).unwrap();
    assert_eq!(out.outputs.dtype(), DType::F32);
    let v = out.mon("V").unwrap().to_f64_vec();
    let s = out.outputs.to_f64_vec();
    assert_eq!(s, s_ref, "f32 spikes equal the f64 golden ones");
    for k in 0..v.len() {
        assert!(
            (v[k] - v_ref[k]).abs() < 1e-4,
            "V[{k}] = {}, golden {}",
            v[k],
            v_ref[k]
        );
    }
}
