//! Ridge regression against BrainPy's RidgeTrainer solution (tests/data/ridge/small_*).

mod common;
use brainlift::linalg::ridge::{NormalEquations, RidgeError, RidgeSolver, SolverUsed, ridge_fit};
use common::*;

const SOLVERS: [RidgeSolver; 4] = [
    RidgeSolver::Cholesky,
    RidgeSolver::Qr,
    RidgeSolver::Pinv { rcond: None },
    RidgeSolver::Pinv { rcond: Some(1e-15) },
];

#[test]
fn small_problem_every_solver() {
    let (x, xs) = read_npy("ridge", "small_X.npy");
    let (y, ys) = read_npy("ridge", "small_Y.npy");
    let (w, _) = read_npy("ridge", "small_W.npy");
    let (b, _) = read_npy("ridge", "small_b.npy");
    let alpha = scalar_vec("ridge", "small_alpha")[0];
    let train_mse = scalar_vec("ridge", "small_train_mse")[0];
    assert_eq!((xs[0], xs[1], ys[1]), (200, 5, 2));
    for solver in SOLVERS {
        let s = ridge_fit(&x, &y, 200, alpha, solver).unwrap();
        assert_eq!((s.num_in, s.num_out), (5, 2));
        for (k, (a, g)) in s.w.iter().zip(&w).enumerate() {
            assert!((a - g).abs() <= 1e-9, "{solver:?} W[{k}]: {a} vs {g}");
        }
        for (k, (a, g)) in s.b.iter().zip(&b).enumerate() {
            assert!((a - g).abs() <= 1e-9, "{solver:?} b[{k}]: {a} vs {g}");
        }
        let pred = s.predict(&x, 200).unwrap();
        let m = mse(&pred, &y);
        assert!(
            rel_close(m, train_mse, 1e-9),
            "{solver:?} mse {m} vs {train_mse}"
        );
        assert!(
            s.condition_number > 1.0 && s.condition_number < 1e3,
            "{}",
            s.condition_number
        );
        assert_eq!(s.rank, 6);
    }
}

#[test]
fn accumulating_in_blocks_equals_one_shot() {
    let (x, _) = read_npy("ridge", "small_X.npy");
    let (y, _) = read_npy("ridge", "small_Y.npy");
    let mut ne = NormalEquations::new_keeping_rows(5, 2);
    // Uneven blocks, including an empty one.
    let cuts = [0, 7, 7, 90, 151, 200];
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        ne.add_rows(&x[a * 5..b * 5], &y[a * 2..b * 2], b - a)
            .unwrap();
    }
    assert_eq!(ne.num_rows(), 200);
    // X̃ᵀX̃[0][0] counts the rows; X̃ᵀY[0] sums the targets.
    assert_eq!(ne.xtx()[0], 200.0);
    let ysum: f64 = y.iter().step_by(2).sum();
    assert!((ne.xty()[0] - ysum).abs() < 1e-10);
    let one = ridge_fit(&x, &y, 200, 1e-3, RidgeSolver::Cholesky).unwrap();
    for solver in [RidgeSolver::Cholesky, RidgeSolver::Qr] {
        let s = ne.solve(1e-3, solver).unwrap();
        for (a, b) in s.w.iter().zip(&one.w) {
            assert!((a - b).abs() < 1e-11);
        }
    }
    let s = ne.solve(1e-3, RidgeSolver::Cholesky).unwrap();
    assert_eq!(s.solver_used, SolverUsed::Cholesky);
    ne.reset();
    assert_eq!(ne.num_rows(), 0);
    assert!(matches!(
        ne.solve(1e-3, RidgeSolver::Cholesky),
        Err(RidgeError::Empty)
    ));
}

#[test]
fn bad_inputs_give_errors_and_keep_accumulator_usable() {
    let (x, _) = read_npy("ridge", "small_X.npy");
    let (y, _) = read_npy("ridge", "small_Y.npy");
    let mut ne = NormalEquations::new(5, 2);
    ne.add_rows(&x[..50], &y[..20], 10).unwrap();
    // x / y row mismatch.
    let e = ne.add_rows(&x[..50], &y[..18], 10).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ridge add_rows: y has 18 values, expected rows 10 x num_out 2 = 20"
    );
    // Wrong feature count.
    assert!(matches!(
        ne.add_rows(&x[..40], &y[..20], 10),
        Err(RidgeError::Shape { what: "x", .. })
    ));
    // NaN and inf.
    let mut bad = x[..50].to_vec();
    bad[13] = f64::NAN;
    let e = ne.add_rows(&bad, &y[..20], 10).unwrap_err();
    assert!(
        matches!(
            e,
            RidgeError::NonFinite {
                what: "x",
                row: 2,
                col: 3,
                ..
            }
        ),
        "{e}"
    );
    let mut bady = y[..20].to_vec();
    bady[5] = f64::INFINITY;
    assert!(matches!(
        ne.add_rows(&x[..50], &bady, 10),
        Err(RidgeError::NonFinite { what: "y", .. })
    ));
    // Negative / NaN alpha, bad rcond.
    assert!(matches!(
        ne.solve(-1e-3, RidgeSolver::Cholesky),
        Err(RidgeError::InvalidAlpha { .. })
    ));
    assert!(matches!(
        ne.solve(f64::NAN, RidgeSolver::Pinv { rcond: None }),
        Err(RidgeError::InvalidAlpha { .. })
    ));
    assert!(matches!(
        ne.solve(1e-3, RidgeSolver::Pinv { rcond: Some(-1.0) }),
        Err(RidgeError::InvalidRcond { .. })
    ));
    // Still usable: only the first 10 rows were added.
    assert_eq!(ne.num_rows(), 10);
    let s = ne.solve(1e-3, RidgeSolver::Cholesky).unwrap();
    let direct = ridge_fit(&x[..50], &y[..20], 10, 1e-3, RidgeSolver::Cholesky).unwrap();
    assert_eq!(s.w.len(), 10);
    for (a, b) in s.w.iter().zip(&direct.w) {
        assert!((a - b).abs() < 1e-12);
    }
    // Fewer rows than unknowns with alpha = 0 is singular, never NaN weights.
    let mut tiny = NormalEquations::new_keeping_rows(5, 2);
    tiny.add_rows(&x[..15], &y[..6], 3).unwrap();
    for solver in [RidgeSolver::Cholesky, RidgeSolver::Qr] {
        let e = tiny.solve(0.0, solver).unwrap_err();
        assert!(
            matches!(e, RidgeError::Singular { n: 6, .. }),
            "{solver:?}: {e}"
        );
    }
    // The pseudo-inverse is the documented answer for singular systems.
    let s = tiny.solve(0.0, RidgeSolver::Pinv { rcond: None }).unwrap();
    assert_eq!(s.rank, 3);
    assert!(s.w.iter().all(|v| v.is_finite()));
    assert!(s.condition_number.is_infinite() || s.condition_number > 1e12);
    // The minimum-norm solution interpolates the 3 rows.
    let pred = s.predict(&x[..15], 3).unwrap();
    for (p, t) in pred.iter().zip(&y[..6]) {
        assert!((p - t).abs() < 1e-8, "{p} vs {t}");
    }
}
