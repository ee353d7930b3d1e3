//! RidgeTrainer on the tutorial protocol with BrainPy's Lorenz series, and its error handling.

use brainlift::runtime::npy::read_npy;
use brainlift::tutorial::ngrc::Ngrc;
use brainlift::{Array, Backend, RidgeTrainer};
use std::path::PathBuf;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(p)
}

fn rows(xyz: &[f64], a: usize, b: usize) -> Array {
    Array::from_f64([1, b - a, 3], xyz[a * 3..b * 3].to_vec()).unwrap()
}

fn mse(a: &Array, b: &Array) -> f64 {
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
}

#[test]
fn tutorial_protocol_on_golden_lorenz_meets_the_tolerances() {
    let xyz = read_npy(data("lorenz/lorenz_xyz.npy"))
        .unwrap()
        .to_f64_vec();
    let golden = read_npy(data("ridge/ngrc_test_pred_h1.npy"))
        .unwrap()
        .to_f64_vec();
    brainlift::random::seed(0);
    let mut t = RidgeTrainer::new(Ngrc::new(3, 3).unwrap(), 1e-6)
        .unwrap()
        .with_backend(Backend::Interp);
    let warm = t.predict(&rows(&xyz, 0, 2000)).unwrap();
    assert_eq!(warm.shape(), &[1, 2000, 3]);
    let old = t
        .fit(&rows(&xyz, 2000, 8000), &rows(&xyz, 2001, 8001))
        .unwrap();
    assert_eq!(old.shape(), &[1, 6000, 3]);
    let cond = t.last_fit().unwrap().condition_number;
    assert!(cond > 1e14, "condition number {cond:e}");
    let pred = t.predict(&rows(&xyz, 8000, 9999)).unwrap();
    let e = mse(&pred, &rows(&xyz, 8001, 10000));
    assert!(e <= 1e-8, "h=1 test MSE {e:e}");
    let worst = pred
        .to_f64_vec()
        .iter()
        .zip(&golden)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-3,
        "predictions differ from BrainPy's by {worst:e}"
    );
    let w = read_npy(data("ridge/ngrc_W.npy")).unwrap().to_f64_vec();
    let got = t.model.o.w.value().to_f64_vec();
    let dw = got
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(dw <= 0.1, "W differs from BrainPy's by {dw}");
}

#[test]
fn bad_input_is_rejected_and_leaves_the_trainer_usable() {
    let mut t = RidgeTrainer::new(Ngrc::new(3, 3).unwrap(), 1e-6)
        .unwrap()
        .with_backend(Backend::Interp);
    let x = Array::from_f64(
        [1, 50, 3],
        (0..150).map(|i| (i as f64 * 0.1).sin()).collect(),
    )
    .unwrap();
    let y_short = Array::from_f64([1, 40, 3], vec![0.0; 120]).unwrap();
    let e = t.fit(&x, &y_short).unwrap_err().to_string();
    assert!(e.contains("share batch and time"), "{e}");
    let y_wide = Array::from_f64([1, 50, 2], vec![0.0; 100]).unwrap();
    assert!(
        t.fit(&x, &y_wide)
            .unwrap_err()
            .to_string()
            .contains("readout has 3 outputs")
    );
    let x4 = Array::from_f64([1, 50, 4], vec![0.0; 200]).unwrap();
    let e = t.predict(&x4).unwrap_err().to_string();
    assert!(e.contains("Nvar"), "{e}");
    let mut nan = x.to_f64_vec();
    nan[7] = f64::NAN;
    let e = t
        .predict(&Array::from_f64([1, 50, 3], nan).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-finite"), "{e}");
    let empty = Array::from_f64([1, 0, 3], vec![]).unwrap();
    assert!(t.predict(&empty).unwrap_err().to_string().contains("empty"));
    assert!(RidgeTrainer::new(Ngrc::new(3, 3).unwrap(), -1.0).is_err());
    assert!(RidgeTrainer::new(Ngrc::new(3, 3).unwrap(), f64::NAN).is_err());
    // Still usable: a valid fit works and gives finite weights.
    t.fit(&x, &x).unwrap();
    assert!(
        t.model
            .o
            .w
            .value()
            .to_f64_vec()
            .iter()
            .all(|v| v.is_finite())
    );
}
