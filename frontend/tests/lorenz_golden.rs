//! Lorenz-63 generator against BrainPy's `LorenzEq(100, dt=0.01)` (tests/data/lorenz).

mod common;
use brainlift::datasets::chaos::{ChaosError, lorenz};
use common::*;

#[test]
fn lorenz_matches_brainpy_golden() {
    let s = lorenz(100.0, 0.01).unwrap();
    let (gold, shape) = read_npy("lorenz", "lorenz_xyz.npy");
    assert_eq!(shape, vec![10000, 3]);
    assert_eq!(s.len(), 10000);
    assert_eq!(s.num_features, 3);
    // Rows 0..499: rel 1e-10; rows 500..1499: rel 1e-6.
    for i in 0..1500 {
        let eps = if i < 500 { 1e-10 } else { 1e-6 };
        for j in 0..3 {
            let (a, b) = (s.data[i * 3 + j], gold[i * 3 + j]);
            assert!(rel_close(a, b, eps), "row {i} col {j}: {a} vs {b}");
        }
    }
    // Check rows from the manifest.
    for (row, key) in [
        (0, "xyz_row_0"),
        (1, "xyz_row_1"),
        (4, "xyz_row_4"),
        (499, "xyz_row_499"),
    ] {
        let want = scalar_vec("lorenz", key);
        for (a, b) in s.row(row).unwrap().iter().zip(&want) {
            assert!(rel_close(*a, *b, 1e-10), "{key}: {a} vs {b}");
        }
    }
    // Later rows: statistics only.
    let mean = scalar_vec("lorenz", "mean_per_dim");
    let std = scalar_vec("lorenz", "std_per_dim");
    let bounds = [(-17.5, 19.6), (-23.3, 27.0), (1.1, 47.6)];
    for j in 0..3 {
        let col = s.column(j).unwrap();
        let m = col.iter().sum::<f64>() / col.len() as f64;
        let sd = (col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / col.len() as f64).sqrt();
        assert!(
            (m - mean[j]).abs() <= 0.5,
            "mean col {j}: {m} vs {}",
            mean[j]
        );
        assert!(
            (sd - std[j]).abs() <= 0.05 * std[j],
            "std col {j}: {sd} vs {}",
            std[j]
        );
        let (lo, hi) = bounds[j];
        // Later rows (after 1500) stay on the attractor (a small margin for a different
        // but equally valid trajectory).
        for (i, &v) in col.iter().enumerate().skip(1500) {
            assert!(
                v > lo - 2.0 && v < hi + 2.0,
                "row {i} col {j} = {v} off the attractor"
            );
        }
    }
}

#[test]
fn lorenz_times_match_golden() {
    let s = lorenz(100.0, 0.01).unwrap();
    let (ts, shape) = read_npy("lorenz", "lorenz_ts.npy");
    assert_eq!(shape, vec![10000]);
    for (i, (a, b)) in s.ts.iter().zip(&ts).enumerate() {
        assert!((a - b).abs() <= 1e-12, "ts[{i}]: {a} vs {b}");
    }
}

#[test]
fn lorenz_layouts_and_subset() {
    let s = lorenz(1.0, 0.01).unwrap();
    assert_eq!(s.len(), 100);
    let (btf, shape) = s.to_btf();
    assert_eq!(shape, [1, 100, 3]);
    assert_eq!(btf.len(), 300);
    let (sub, shape) = s.subset(20, 30).unwrap();
    assert_eq!(shape, [1, 10, 3]);
    assert_eq!(&sub[..], &s.data[60..90]);
    assert_eq!(s.column(1).unwrap()[20], s.data[61]);
    assert!(s.column(3).is_none());
    assert!(s.row(100).is_none());
}

#[test]
fn lorenz_bad_arguments_are_errors() {
    for (d, dt) in [
        (100.0, -0.01),
        (100.0, f64::NAN),
        (100.0, f64::INFINITY),
        (0.0, 0.01),
        (-5.0, 0.01),
    ] {
        let e = lorenz(d, dt).unwrap_err();
        assert!(
            matches!(e, ChaosError::InvalidArgument { .. }),
            "{d} {dt}: {e}"
        );
    }
    let e = lorenz(1e300, 1e-300).unwrap_err();
    assert!(e.to_string().contains("samples"), "{e}");
}
