//! NVAR feature layout and reference stepper against BrainPy (tests/data/nvar), spec §1.

mod common;
use brainlift::nvar_spec::{NvarSpec, NvarState};
use common::*;

fn names(key: &str) -> Vec<String> {
    manifest("nvar")["scalars"][key]["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn check_golden(spec: NvarSpec, input: &str, output: &str) {
    let (x, xs) = read_npy("nvar", input);
    let (y, ys) = read_npy("nvar", output);
    assert_eq!(ys[2], spec.num_out());
    let mut st = NvarState::new(spec.clone(), xs[0]).unwrap();
    // Step by step through the public `step` API.
    let (t, d, f) = (xs[1], xs[2], ys[2]);
    for step in 0..t {
        let out = st.step(&x[step * d..(step + 1) * d]).unwrap();
        for k in 0..f {
            let (a, b) = (out[k], y[step * f + k]);
            assert!(
                rel_close(a, b, 1e-12),
                "{output} step {step} feature {k}: {a} vs {b}"
            );
        }
    }
    // The whole-sequence form gives the same result from a fresh state.
    let mut st = NvarState::new(spec, xs[0]).unwrap();
    let all = st.run(&x, [xs[0], xs[1], xs[2]]).unwrap();
    assert_eq!(all.len(), y.len());
    for (k, (a, b)) in all.iter().zip(&y).enumerate() {
        assert!(rel_close(*a, *b, 1e-12), "{output} flat {k}: {a} vs {b}");
    }
}

#[test]
fn tutorial_config_matches_golden() {
    let spec = NvarSpec::new(3, 4, vec![2], 5, false).unwrap();
    assert_eq!(spec.buffer_len(), 16);
    assert_eq!(spec.linear_dim(), 12);
    assert_eq!(spec.num_out(), 90);
    assert_eq!(spec.feature_names(), names("tutorial_feature_names"));
    check_golden(spec, "tutorial_input.npy", "tutorial_output.npy");
}

#[test]
fn small_constant_config_matches_golden() {
    let spec = NvarSpec::new(2, 2, vec![2], 1, true).unwrap();
    assert_eq!(spec.num_out(), 15);
    assert_eq!(spec.feature_names(), names("small_const_feature_names"));
    check_golden(spec, "small_const_input.npy", "small_const_output.npy");
}

#[test]
fn tutorial_warmup_is_zero_filled() {
    // Before step 15 the delay-15 block (indices 9..12) reads the zero-filled buffer.
    let spec = NvarSpec::new(3, 4, vec![2], 5, false).unwrap();
    let mut st = NvarState::new(spec, 1).unwrap();
    for step in 0..16 {
        let v = (step + 1) as f64;
        let out = st.step(&[v, 2.0 * v, 3.0 * v]).unwrap();
        let delayed15 = &out[9..12];
        if step < 15 {
            assert_eq!(delayed15, &[0.0, 0.0, 0.0], "step {step}");
        } else {
            assert_eq!(delayed15, &[1.0, 2.0, 3.0]);
            // x0(t-5) at step 15 is input 11.
            assert_eq!(out[3], 11.0);
            // Last quadratic feature is x2(t-15)^2 = 9.
            assert_eq!(out[89], 9.0);
        }
    }
}

#[test]
fn batched_rows_are_independent() {
    let spec = NvarSpec::new(2, 2, vec![2], 1, false).unwrap();
    let mut two = NvarState::new(spec.clone(), 2).unwrap();
    let mut a = NvarState::new(spec.clone(), 1).unwrap();
    let mut b = NvarState::new(spec, 1).unwrap();
    for s in 0..5 {
        let xa = [s as f64, 1.0 - s as f64];
        let xb = [0.5 * s as f64, 3.0];
        let both = two.step(&[xa[0], xa[1], xb[0], xb[1]]).unwrap();
        let ya = a.step(&xa).unwrap();
        let yb = b.step(&xb).unwrap();
        assert_eq!(&both[..14], &ya[..]);
        assert_eq!(&both[14..], &yb[..]);
    }
    // reset zeroes the buffer and can change the batch size.
    two.reset(3).unwrap();
    assert_eq!(two.batch(), 3);
    let out = two.step(&[1.0; 6]).unwrap();
    assert_eq!(out.len(), 3 * 14);
    assert_eq!(&out[2..4], &[0.0, 0.0]);
}
