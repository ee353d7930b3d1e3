//! The traced NVAR layer against BrainPy's golden features (rel 1e-12).

use brainlift::nn::Nvar;
use brainlift::runtime::npy::read_npy;
use brainlift::{Backend, Module, run_over_time};
use std::path::PathBuf;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(p)
}

fn check(input: &str, output: &str, layer: &mut Nvar) {
    let x = read_npy(data(input)).unwrap();
    let want = read_npy(data(output)).unwrap();
    layer.reset_state(1);
    let got = run_over_time(layer, &x, true, Backend::Interp).unwrap();
    assert_eq!(got.shape(), want.shape());
    for (i, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "element {i}: {a} vs {b}"
        );
    }
}

#[test]
fn tutorial_nvar_matches_brainpy() {
    let mut l = Nvar::new(3, 4, &[2], 5, false).unwrap();
    assert_eq!(l.num_out(), 90);
    check(
        "nvar/tutorial_input.npy",
        "nvar/tutorial_output.npy",
        &mut l,
    );
}

#[test]
fn constant_nvar_matches_brainpy() {
    let mut l = Nvar::new(2, 2, &[2], 1, true).unwrap();
    assert_eq!(l.num_out(), 15);
    check(
        "nvar/small_const_input.npy",
        "nvar/small_const_output.npy",
        &mut l,
    );
}

#[test]
fn state_carries_over_between_calls() {
    // Running 40 steps at once equals 25 then 15 steps without a reset.
    let x = read_npy(data("nvar/tutorial_input.npy"))
        .unwrap()
        .to_f64_vec();
    let mut a = Nvar::new(3, 4, &[2], 5, false).unwrap();
    let whole = run_over_time(
        &mut a,
        &brainlift::Array::from_f64([1, 40, 3], x.clone()).unwrap(),
        true,
        Backend::Interp,
    )
    .unwrap();
    let mut b = Nvar::new(3, 4, &[2], 5, false).unwrap();
    let p1 = run_over_time(
        &mut b,
        &brainlift::Array::from_f64([1, 25, 3], x[..75].to_vec()).unwrap(),
        true,
        Backend::Interp,
    )
    .unwrap();
    let p2 = run_over_time(
        &mut b,
        &brainlift::Array::from_f64([1, 15, 3], x[75..].to_vec()).unwrap(),
        true,
        Backend::Interp,
    )
    .unwrap();
    let mut joined = p1.to_f64_vec();
    joined.extend(p2.to_f64_vec());
    assert_eq!(joined, whole.to_f64_vec());
}

#[test]
fn wrong_input_width_is_an_error_naming_the_layer() {
    let mut l = Nvar::new(3, 2, &[2], 1, false).unwrap();
    let x = brainlift::Array::from_f64([1, 4, 2], vec![0.0; 8]).unwrap();
    let e = run_over_time(&mut l, &x, true, Backend::Interp)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Nvar") && e.contains("[1,3]"), "{e}");
    assert!(Nvar::new(3, 0, &[2], 1, false).is_err());
}
