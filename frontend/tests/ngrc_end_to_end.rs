//! NG-RC on the golden Lorenz data with the tutorial protocol (spec §3 timeline), using the
//! reference NVAR stepper and the ridge accumulator: warm-up on rows 0..2000, fit inputs
//! 2000..8000 against targets shifted by h, test inputs 8000..10000-h, never resetting.

mod common;
use brainlift::linalg::ridge::{NormalEquations, RidgeSolution, RidgeSolver, SolverUsed};
use brainlift::nvar_spec::{NvarSpec, NvarState};
use common::*;

const ALPHA: f64 = 1e-6;

struct Run {
    /// Predictions on the test inputs, row-major (rows, 3).
    preds: Vec<Vec<f64>>,
    mse: Vec<f64>,
    sol: Vec<RidgeSolution>,
}

fn run(data: &[f64], h: usize, solvers: &[RidgeSolver]) -> Run {
    let spec = NvarSpec::new(3, 4, vec![2], 5, false).unwrap();
    let f = spec.num_out();
    assert_eq!(f, 90);
    let mut st = NvarState::new(spec, 1).unwrap();
    let row = |t: usize| &data[t * 3..t * 3 + 3];
    for t in 0..2000 {
        st.step(row(t)).unwrap();
    }
    let keep = solvers.contains(&RidgeSolver::Qr);
    let mut ne = if keep {
        NormalEquations::new_keeping_rows(f, 3)
    } else {
        NormalEquations::new(f, 3)
    };
    // Accumulate in blocks of 500 rows (as a streaming trainer would).
    let mut feats = Vec::new();
    let mut targets = Vec::new();
    for t in 2000..8000 {
        feats.extend(st.step(row(t)).unwrap());
        targets.extend_from_slice(row(t + h));
        if feats.len() == 500 * f {
            ne.add_rows(&feats, &targets, 500).unwrap();
            feats.clear();
            targets.clear();
        }
    }
    assert!(feats.is_empty());
    assert_eq!(ne.num_rows(), 6000);
    let mut test_feats = Vec::new();
    let mut test_targets = Vec::new();
    for t in 8000..(10000 - h) {
        test_feats.extend(st.step(row(t)).unwrap());
        test_targets.extend_from_slice(row(t + h));
    }
    let rows = 10000 - h - 8000;
    let mut out = Run {
        preds: vec![],
        mse: vec![],
        sol: vec![],
    };
    for &solver in solvers {
        let sol = ne.solve(ALPHA, solver).unwrap();
        let pred = sol.predict(&test_feats, rows).unwrap();
        out.mse.push(mse(&pred, &test_targets));
        out.preds.push(pred);
        out.sol.push(sol);
    }
    out
}

#[test]
fn ngrc_one_step_ahead_matches_tutorial() {
    let (data, shape) = read_npy("lorenz", "lorenz_xyz.npy");
    assert_eq!(shape, vec![10000, 3]);
    let solvers = [
        RidgeSolver::Cholesky,
        RidgeSolver::Qr,
        RidgeSolver::Pinv { rcond: None },
    ];
    let r = run(&data, 1, &solvers);
    eprintln!(
        "h=1 test MSE: cholesky {:e}, qr {:e}, pinv {:e}",
        r.mse[0], r.mse[1], r.mse[2]
    );
    eprintln!("condition number {:e}", r.sol[0].condition_number);
    assert_eq!(r.sol[0].solver_used, SolverUsed::Cholesky);
    // Every solver meets the golden acceptance bound; Cholesky and QR do much better.
    for (solver, m) in solvers.iter().zip(&r.mse) {
        assert!(*m <= 1e-8, "{solver:?}: test MSE {m:e} > 1e-8");
    }
    assert!(r.mse[0] <= 1e-10, "cholesky MSE {:e}", r.mse[0]);
    assert!(r.mse[1] <= 1e-10, "qr MSE {:e}", r.mse[1]);
    // The condition number of X̃ᵀX̃ + αI is about 3.5e16 (spec §3).
    let c = r.sol[0].condition_number;
    assert!(c > 1e15 && c < 1e18, "condition number {c:e}");

    // Predictions within abs 1e-3 of BrainPy's, W loosely close.
    let (gold_pred, pshape) = read_npy("ridge", "ngrc_test_pred_h1.npy");
    assert_eq!(pshape, vec![1999, 3]);
    let (gold_w, _) = read_npy("ridge", "ngrc_W.npy");
    let (gold_b, _) = read_npy("ridge", "ngrc_b.npy");
    for (s, pred) in r.preds.iter().enumerate() {
        for (k, (a, b)) in pred.iter().zip(&gold_pred).enumerate() {
            assert!((a - b).abs() <= 1e-3, "solver {s} pred {k}: {a} vs {b}");
        }
        let maxdiff = r.sol[s]
            .w
            .iter()
            .zip(&gold_w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("solver {s}: max |W - W_brainpy| = {maxdiff:e}");
        if matches!(solvers[s], RidgeSolver::Pinv { rcond: None }) {
            // BrainPy's own rule (SVD pinv, cut-off 10·n·ε) reproduces its weights closely
            // (9e-6 measured; the README quotes about 1e-5 for numpy's SVD).
            assert!(
                maxdiff < 1e-4,
                "pinv W differs from BrainPy's by {maxdiff:e}"
            );
        }
        for (k, (a, b)) in r.sol[s].w.iter().zip(&gold_w).enumerate() {
            assert!((a - b).abs() <= 0.1, "solver {s} W[{k}]: {a} vs {b}");
        }
        for (a, b) in r.sol[s].b.iter().zip(&gold_b) {
            assert!((a - b).abs() <= 0.1, "solver {s} b: {a} vs {b}");
        }
    }
}

#[test]
fn ngrc_longer_horizons() {
    let (data, _) = read_npy("lorenz", "lorenz_xyz.npy");
    let r10 = run(&data, 10, &[RidgeSolver::Cholesky]);
    let r100 = run(&data, 100, &[RidgeSolver::Cholesky]);
    eprintln!("h=10 MSE {:e}, h=100 MSE {:e}", r10.mse[0], r100.mse[0]);
    assert!(r10.mse[0] <= 0.06, "h=10 MSE {}", r10.mse[0]);
    assert!(
        r10.mse[0] > 1e-4,
        "h=10 MSE {} implausibly small",
        r10.mse[0]
    );
    assert!(
        (30.0..=50.0).contains(&r100.mse[0]),
        "h=100 MSE {}",
        r100.mse[0]
    );
    assert_eq!(r100.preds[0].len(), (10000 - 100 - 8000) * 3);
}
