//! The PNG plots: valid files of a sensible size, and typed errors on bad data.

use brainlift::datasets::chaos::lorenz;
use brainlift::plot::{
    PlotError, Series, attractor_3d_projection, line_chart, loss_curve, truth_vs_prediction,
    voltage_grid,
};
use std::path::PathBuf;

fn out_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("brainlift-plot-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the test's folder unless `BRAINLIFT_KEEP_PLOTS` is set (to look at the images).
fn cleanup(dir: &PathBuf) {
    if std::env::var_os("BRAINLIFT_KEEP_PLOTS").is_none() {
        std::fs::remove_dir_all(dir).unwrap();
    } else {
        eprintln!("plots kept in {}", dir.display());
    }
}

/// Checks the PNG signature, the IHDR size and that the file is not trivially small.
fn assert_png(path: &PathBuf, width: u32, height: u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (width, height), "{}", path.display());
    // Text, axes and lines make the image far from blank.
    assert!(
        bytes.len() > 5_000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
}

#[test]
fn every_plot_writes_a_png() {
    let dir = out_dir("every_plot_writes_a_png");
    let s = lorenz(20.0, 0.01).unwrap();
    let (x, y, z) = (
        s.column(0).unwrap(),
        s.column(1).unwrap(),
        s.column(2).unwrap(),
    );

    let p = dir.join("line.png");
    line_chart(
        &p,
        "Lorenz x and y",
        "t",
        "value",
        &[
            Series {
                name: "x",
                xs: &s.ts,
                ys: &x,
            },
            Series {
                name: "y",
                xs: &s.ts,
                ys: &y,
            },
        ],
    )
    .unwrap();
    assert_png(&p, 900, 500);

    let p = dir.join("tvp.png");
    let pred: Vec<Vec<f64>> = [&x, &y, &z]
        .iter()
        .map(|c| c.iter().map(|v| v + 0.1).collect())
        .collect();
    truth_vs_prediction(
        &p,
        "1 step ahead",
        &[x.clone(), y.clone(), z.clone()],
        &pred,
        &["x", "y", "z"],
    )
    .unwrap();
    assert_png(&p, 1000, 60 + 3 * 260);

    let p = dir.join("attractor.png");
    attractor_3d_projection(&p, &x, &y, &z).unwrap();
    assert_png(&p, 1200, 600);

    let p = dir.join("loss.png");
    let losses: Vec<f64> = (0..30).map(|i| 1.0 / (1.0 + i as f64)).collect();
    loss_curve(&p, &losses).unwrap();
    assert_png(&p, 800, 450);

    // 15 neurons, 100 steps: a ramp with a spike every 20 steps.
    let (t, n) = (100, 15);
    let mem: Vec<f64> = (0..t * n)
        .map(|k| ((k / n) % 20) as f64 / 20.0 + (k % n) as f64 * 0.01)
        .collect();
    let spikes: Vec<f64> = (0..t * n)
        .map(|k| if (k / n) % 20 == 19 { 1.0 } else { 0.0 })
        .collect();
    let p = dir.join("voltages.png");
    voltage_grid(&p, &mem, Some(&spikes), [t, n, 1], 3, 5, 5.0).unwrap();
    assert_png(&p, 1500, 660);
    cleanup(&dir);
}

#[test]
fn constant_and_single_point_series_are_fine() {
    let dir = out_dir("constant_and_single_point_series_are_fine");
    let p = dir.join("const.png");
    line_chart(
        &p,
        "constant",
        "x",
        "y",
        &[Series {
            name: "c",
            xs: &[0.0, 1.0, 2.0],
            ys: &[3.0; 3],
        }],
    )
    .unwrap();
    assert_png(&p, 900, 500);
    let p = dir.join("one.png");
    loss_curve(&p, &[0.5]).unwrap();
    assert_png(&p, 800, 450);
    cleanup(&dir);
}

#[test]
fn bad_data_gives_typed_errors() {
    let dir = out_dir("bad_data_gives_typed_errors");
    let p = dir.join("bad.png");
    assert!(matches!(
        line_chart(&p, "t", "x", "y", &[]),
        Err(PlotError::EmptySeries { .. })
    ));
    let e = line_chart(
        &p,
        "t",
        "x",
        "y",
        &[Series {
            name: "s",
            xs: &[0.0, 1.0],
            ys: &[1.0],
        }],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            PlotError::LengthMismatch {
                got: 1,
                expected: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = loss_curve(&p, &[1.0, f64::NAN]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "loss_curve: series \"loss\" has the non-finite value NaN at index 1"
    );
    assert!(matches!(
        loss_curve(&p, &[]),
        Err(PlotError::EmptySeries { .. })
    ));
    let e = truth_vs_prediction(&p, "t", &[vec![1.0, 2.0]], &[vec![1.0]], &["x"]).unwrap_err();
    assert!(matches!(e, PlotError::LengthMismatch { .. }), "{e}");
    let e = truth_vs_prediction(&p, "t", &[vec![1.0]], &[vec![1.0]], &[]).unwrap_err();
    assert!(matches!(e, PlotError::LengthMismatch { .. }), "{e}");
    let e = attractor_3d_projection(&p, &[1.0, 2.0], &[1.0], &[1.0, 2.0]).unwrap_err();
    assert!(matches!(e, PlotError::LengthMismatch { .. }), "{e}");
    let e = voltage_grid(&p, &[0.0; 10], None, [5, 2, 1], 0, 5, 1.0).unwrap_err();
    assert!(matches!(e, PlotError::InvalidArgument { .. }), "{e}");
    let e = voltage_grid(&p, &[0.0; 10], None, [5, 2, 1], usize::MAX, usize::MAX, 1.0).unwrap_err();
    assert!(matches!(e, PlotError::InvalidArgument { .. }), "{e}");
    let e = voltage_grid(&p, &[0.0; 10], None, [5, 2, 1], 3, 5, f64::NAN).unwrap_err();
    assert!(matches!(e, PlotError::InvalidArgument { .. }), "{e}");
    let e = voltage_grid(&p, &[0.0; 9], None, [5, 2, 1], 3, 5, 1.0).unwrap_err();
    assert!(matches!(e, PlotError::LengthMismatch { .. }), "{e}");
    let e = loss_curve(dir.join("no-such-folder").join("x.png"), &[1.0]).unwrap_err();
    assert!(matches!(e, PlotError::Backend { .. }), "{e}");
    assert!(!p.exists());
    cleanup(&dir);
}
