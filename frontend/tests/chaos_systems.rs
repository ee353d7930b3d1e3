//! Rössler and Mackey–Glass generators: exact solutions where they exist, convergence in dt,
//! and attractor bounds.

use brainlift::datasets::chaos::{
    ChaosError, MackeyGlassParams, mackey_glass, mackey_glass_with, rossler,
};

#[test]
fn mackey_glass_first_delay_is_linear_ode() {
    // For t <= tau the delayed term sees the constant history x0 = 1.2, so the equation is
    // x' = c - gamma x with c = beta x0 / (1 + x0^n): x(t) = c/g + (x0 - c/g) e^{-g t}.
    let p = MackeyGlassParams::default();
    let s = mackey_glass(17.0, 0.1).unwrap();
    assert_eq!(s.len(), 170);
    assert_eq!(s.num_features, 1);
    let c = p.beta * p.x0 / (1.0 + p.x0.powf(p.n));
    let xs = s.column(0).unwrap();
    for (i, (&t, &x)) in s.ts.iter().zip(&xs).enumerate() {
        let exact = c / p.gamma + (p.x0 - c / p.gamma) * (-p.gamma * t).exp();
        assert!((x - exact).abs() < 1e-9, "step {i} t {t}: {x} vs {exact}");
    }
}

#[test]
fn mackey_glass_converges_and_stays_bounded() {
    let coarse = mackey_glass(100.0, 0.1).unwrap();
    let fine = mackey_glass(100.0, 0.05).unwrap();
    assert_eq!((coarse.len(), fine.len()), (1000, 2000));
    // Same times: coarse[i] vs fine[2i+1]. Second-order interpolation of the delay keeps
    // the two within 1e-4 over the first few delays.
    for i in 0..1000 {
        let (a, b) = (coarse.data[i], fine.data[2 * i + 1]);
        assert!((a - b).abs() < 1e-4, "t {}: {a} vs {b}", coarse.ts[i]);
    }
    let long = mackey_glass(2000.0, 0.1).unwrap();
    let xs = &long.data[2000..];
    let (lo, hi) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(lo > 0.2 && hi < 1.45, "range {lo}..{hi}");
    // Chaotic regime: the signal keeps oscillating.
    assert!(hi - lo > 0.7, "range {lo}..{hi}");
}

#[test]
fn mackey_glass_non_integer_delay_ratio() {
    let p = MackeyGlassParams {
        tau: 17.03,
        ..Default::default()
    };
    let s = mackey_glass_with(60.0, 0.1, &p).unwrap();
    let r = mackey_glass_with(60.0, 0.05, &p).unwrap();
    for i in 0..s.len() {
        assert!((s.data[i] - r.data[2 * i + 1]).abs() < 1e-3);
    }
}

#[test]
fn rossler_converges_and_stays_on_attractor() {
    let a = rossler(10.0, 0.01).unwrap();
    let b = rossler(10.0, 0.005).unwrap();
    assert_eq!(a.len(), 1000);
    assert_eq!(a.names, vec!["x", "y", "z"]);
    for j in 0..3 {
        let (x, y) = (a.row(999).unwrap()[j], b.row(1999).unwrap()[j]);
        assert!((x - y).abs() < 1e-7, "col {j}: {x} vs {y}");
    }
    let long = rossler(500.0, 0.01).unwrap();
    for i in 5000..long.len() {
        let r = long.row(i).unwrap();
        assert!(r[0].abs() < 13.0 && r[1].abs() < 13.0, "row {i}: {r:?}");
        assert!(r[2] > -0.1 && r[2] < 25.0, "row {i}: {r:?}");
    }
}

#[test]
fn unstable_step_is_an_error_not_nan() {
    let e = rossler(1000.0, 5.0).unwrap_err();
    assert!(matches!(e, ChaosError::Diverged { .. }), "{e}");
    let e = mackey_glass(10.0, f64::NAN).unwrap_err();
    assert!(
        matches!(e, ChaosError::InvalidArgument { param: "dt", .. }),
        "{e}"
    );
}
