//! PNG plots for the tutorial (plotters with the embedded DejaVu Sans font, no system fonts).
//!
//! Contract:
//! * Every function writes one PNG file at `path` and returns `Ok(())`, or a [`PlotError`]
//!   naming the plot, the series and what was wrong. Nothing panics on bad data.
//! * Empty series, mismatched lengths and non-finite values (NaN, ±inf) are errors; a constant
//!   series is drawn with a padded axis range.
//! * The font is registered once per process as the `sans-serif` family.
//!
//! Cost: `O(points)` per plot plus PNG encoding of the bitmap.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;
use thiserror::Error;

/// Errors from the plotting functions.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlotError {
    /// A series has no points (or no series was given).
    #[error("{plot}: series {series:?} is empty")]
    EmptySeries {
        /// Plot function.
        plot: &'static str,
        /// Series name.
        series: String,
    },
    /// Two arrays that must have equal lengths do not.
    #[error("{plot}: {what} has length {got}, expected {expected}")]
    LengthMismatch {
        /// Plot function.
        plot: &'static str,
        /// Which array.
        what: String,
        /// Length given.
        got: usize,
        /// Length expected.
        expected: usize,
    },
    /// NaN or ±inf in the data.
    #[error("{plot}: series {series:?} has the non-finite value {value} at index {index}")]
    NonFinite {
        /// Plot function.
        plot: &'static str,
        /// Series name.
        series: String,
        /// Index of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A layout argument is invalid (e.g. a grid of zero rows).
    #[error("{plot}: invalid argument: {message}")]
    InvalidArgument {
        /// Plot function.
        plot: &'static str,
        /// Description.
        message: String,
    },
    /// The embedded font could not be registered.
    #[error("plot: cannot register the embedded DejaVu Sans font")]
    Font,
    /// plotters or the PNG encoder failed (e.g. the folder does not exist).
    #[error("{plot}: drawing to {path} failed: {message}")]
    Backend {
        /// Plot function.
        plot: &'static str,
        /// Output path.
        path: String,
        /// The backend's message.
        message: String,
    },
}

/// One named line: `ys[i]` against `xs[i]`.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Legend label.
    pub name: &'a str,
    /// Abscissae.
    pub xs: &'a [f64],
    /// Ordinates (same length as `xs`).
    pub ys: &'a [f64],
}

/// Most panels one figure may have (bounds the bitmap size).
pub const MAX_PANELS: usize = 64;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

fn check_finite(plot: &'static str, series: &str, v: &[f64]) -> Result<(), PlotError> {
    if v.is_empty() {
        return Err(PlotError::EmptySeries {
            plot,
            series: series.to_string(),
        });
    }
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(PlotError::NonFinite {
            plot,
            series: series.to_string(),
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}

/// `[min, max]` of finite data, padded by 5 % (or ±0.5 / ±5 % of |v| for a constant series).
fn padded_range<'a>(values: impl Iterator<Item = &'a [f64]>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        for &x in v {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    let span = hi - lo;
    if span.is_nan() || span <= 1e-12 * lo.abs().max(hi.abs()).max(1e-300) {
        let pad = (0.05 * lo.abs()).max(0.5);
        return (lo - pad, hi + pad);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Compact tick text: `1.5`, `20`, `-0.25`, `1.2e5`.
fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn backend_err<E: std::fmt::Display>(plot: &'static str, path: &Path) -> impl Fn(E) -> PlotError {
    let path = path.display().to_string();
    move |e| PlotError::Backend {
        plot,
        path: path.clone(),
        message: e.to_string(),
    }
}

fn check_parent(plot: &'static str, path: &Path) -> Result<(), PlotError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(PlotError::Backend {
            plot,
            path: path.display().to_string(),
            message: format!("folder {} does not exist", parent.display()),
        });
    }
    Ok(())
}

/// Draws `series` into one chart area (with a legend when `legend` is set).
#[allow(clippy::too_many_arguments)]
fn draw_lines(
    plot: &'static str,
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    y_range: Option<(f64, f64)>,
    legend: bool,
    ticks: usize,
) -> Result<(), PlotError> {
    let err = backend_err(plot, path);
    let (x0, x1) = padded_range(series.iter().map(|s| s.xs));
    let (y0, y1) = y_range.unwrap_or_else(|| padded_range(series.iter().map(|s| s.ys)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_labels(ticks)
        .y_labels(ticks)
        .x_label_formatter(&|v| fmt_tick(*v))
        .y_label_formatter(&|v| fmt_tick(*v))
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(&err)?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let drawn = chart
            .draw_series(LineSeries::new(
                s.xs.iter().copied().zip(s.ys.iter().copied()),
                &color,
            ))
            .map_err(&err)?;
        if legend {
            drawn
                .label(s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(&err)?;
    }
    Ok(())
}

fn validate_series(plot: &'static str, series: &[Series<'_>]) -> Result<(), PlotError> {
    if series.is_empty() {
        return Err(PlotError::EmptySeries {
            plot,
            series: "<none given>".into(),
        });
    }
    for s in series {
        if s.xs.len() != s.ys.len() {
            return Err(PlotError::LengthMismatch {
                plot,
                what: format!("ys of series {:?}", s.name),
                got: s.ys.len(),
                expected: s.xs.len(),
            });
        }
        check_finite(plot, s.name, s.xs)?;
        check_finite(plot, s.name, s.ys)?;
    }
    Ok(())
}

/// A line chart of several series with a title, axis labels and a legend (900×500 px).
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
) -> Result<(), PlotError> {
    const P: &str = "line_chart";
    let path = path.as_ref();
    validate_series(P, series)?;
    ensure_font()?;
    check_parent(P, path)?;
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(backend_err(P, path))?;
    draw_lines(
        P, path, &root, title, x_label, y_label, series, None, true, 10,
    )?;
    root.present().map_err(backend_err(P, path))
}

/// Truth against prediction, one stacked panel per dimension (`truth[d]` and `pred[d]` are the
/// series of dimension `d`, plotted against the step index; `names[d]` labels the panel).
pub fn truth_vs_prediction(
    path: impl AsRef<Path>,
    title: &str,
    truth: &[Vec<f64>],
    pred: &[Vec<f64>],
    names: &[&str],
) -> Result<(), PlotError> {
    const P: &str = "truth_vs_prediction";
    let path = path.as_ref();
    if truth.is_empty() {
        return Err(PlotError::EmptySeries {
            plot: P,
            series: "truth".into(),
        });
    }
    if pred.len() != truth.len() {
        return Err(PlotError::LengthMismatch {
            plot: P,
            what: "pred (number of dimensions)".into(),
            got: pred.len(),
            expected: truth.len(),
        });
    }
    if names.len() != truth.len() {
        return Err(PlotError::LengthMismatch {
            plot: P,
            what: "names".into(),
            got: names.len(),
            expected: truth.len(),
        });
    }
    if truth.len() > MAX_PANELS {
        return Err(PlotError::InvalidArgument {
            plot: P,
            message: format!("{} dimensions, at most {MAX_PANELS} panels", truth.len()),
        });
    }
    for d in 0..truth.len() {
        if pred[d].len() != truth[d].len() {
            return Err(PlotError::LengthMismatch {
                plot: P,
                what: format!("pred[{d}] ({})", names[d]),
                got: pred[d].len(),
                expected: truth[d].len(),
            });
        }
        check_finite(P, &format!("truth {}", names[d]), &truth[d])?;
        check_finite(P, &format!("prediction {}", names[d]), &pred[d])?;
    }
    ensure_font()?;
    check_parent(P, path)?;
    let dims = truth.len();
    let height = (60 + 260 * dims) as u32;
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    let err = backend_err(P, path);
    root.fill(&WHITE).map_err(&err)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(&err)?;
    let panels = root.split_evenly((dims, 1));
    for (d, area) in panels.iter().enumerate() {
        let xs: Vec<f64> = (0..truth[d].len()).map(|i| i as f64).collect();
        let series = [
            Series {
                name: "truth",
                xs: &xs,
                ys: &truth[d],
            },
            Series {
                name: "prediction",
                xs: &xs,
                ys: &pred[d],
            },
        ];
        draw_lines(
            P, path, area, names[d], "step", names[d], &series, None, true, 10,
        )?;
    }
    root.present().map_err(&err)
}

/// A 3-D trajectory (the Lorenz attractor), 1200×600 px: a perspective 3-D view on the left
/// and the x–z projection (the "butterfly") on the right.
pub fn attractor_3d_projection(
    path: impl AsRef<Path>,
    xs: &[f64],
    ys: &[f64],
    zs: &[f64],
) -> Result<(), PlotError> {
    const P: &str = "attractor_3d_projection";
    let path = path.as_ref();
    for (name, v) in [("y", ys), ("z", zs)] {
        if v.len() != xs.len() {
            return Err(PlotError::LengthMismatch {
                plot: P,
                what: name.into(),
                got: v.len(),
                expected: xs.len(),
            });
        }
    }
    check_finite(P, "x", xs)?;
    check_finite(P, "y", ys)?;
    check_finite(P, "z", zs)?;
    ensure_font()?;
    check_parent(P, path)?;
    let err = backend_err(P, path);
    let root = BitMapBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (left, right) = root.split_horizontally(600);
    let one = |v: &[f64]| padded_range(std::iter::once(v));
    let ((x0, x1), (y0, y1), (z0, z1)) = (one(xs), one(ys), one(zs));
    // plotters' 3-D charts put the vertical axis second: plot (x, z, y) so z points up.
    let mut chart = ChartBuilder::on(&left)
        .caption("Attractor (3-D)", ("sans-serif", 20))
        .margin(10)
        .build_cartesian_3d(x0..x1, z0..z1, y0..y1)
        .map_err(&err)?;
    chart.with_projection(|mut pb| {
        pb.yaw = -0.7;
        pb.pitch = 0.25;
        pb.scale = 0.85;
        pb.into_matrix()
    });
    chart
        .configure_axes()
        .light_grid_style(RGBColor(238, 238, 238))
        .max_light_lines(3)
        .x_formatter(&|v| fmt_tick(*v))
        .y_formatter(&|v| fmt_tick(*v))
        .z_formatter(&|v| fmt_tick(*v))
        .draw()
        .map_err(&err)?;
    chart
        .draw_series(LineSeries::new(
            (0..xs.len()).map(|i| (xs[i], zs[i], ys[i])),
            &PALETTE[0],
        ))
        .map_err(&err)?;
    let series = [Series {
        name: "trajectory",
        xs,
        ys: zs,
    }];
    draw_lines(
        P,
        path,
        &right,
        "x-z projection",
        "x",
        "z",
        &series,
        None,
        false,
        10,
    )?;
    root.present().map_err(&err)
}

/// Membrane traces on a `rows × cols` grid of panels sharing the y axis (the tutorial's
/// `plot_voltage_traces`).
///
/// `mem` and `spikes` are row-major `(T, P, K)` with `shape = [T, P, K]`: panel `p` shows the
/// `K` traces `mem[:, p, :]`. A `(T, N)` monitor is `[T, N, 1]`. Wherever `spikes > 0` the
/// trace is drawn at `spike_height`. Panels beyond `rows * cols` are not drawn.
pub fn voltage_grid(
    path: impl AsRef<Path>,
    mem: &[f64],
    spikes: Option<&[f64]>,
    shape: [usize; 3],
    rows: usize,
    cols: usize,
    spike_height: f64,
) -> Result<(), PlotError> {
    const P: &str = "voltage_grid";
    let path = path.as_ref();
    let [t, p, k] = shape;
    if rows == 0 || cols == 0 {
        return Err(PlotError::InvalidArgument {
            plot: P,
            message: format!("grid {rows}x{cols} must have at least one row and one column"),
        });
    }
    if rows > MAX_PANELS || cols > MAX_PANELS || rows * cols > MAX_PANELS {
        return Err(PlotError::InvalidArgument {
            plot: P,
            message: format!("grid {rows}x{cols} has more than {MAX_PANELS} panels"),
        });
    }
    if t == 0 || p == 0 || k == 0 {
        return Err(PlotError::EmptySeries {
            plot: P,
            series: format!("mem of shape {shape:?}"),
        });
    }
    let total = t.checked_mul(p).and_then(|v| v.checked_mul(k));
    if Some(mem.len()) != total {
        return Err(PlotError::LengthMismatch {
            plot: P,
            what: format!("mem (shape {shape:?})"),
            got: mem.len(),
            expected: total.unwrap_or(usize::MAX),
        });
    }
    if let Some(s) = spikes
        && s.len() != mem.len()
    {
        return Err(PlotError::LengthMismatch {
            plot: P,
            what: "spikes".into(),
            got: s.len(),
            expected: mem.len(),
        });
    }
    check_finite(P, "mem", mem)?;
    if let Some(s) = spikes {
        check_finite(P, "spikes", s)?;
    }
    if !spike_height.is_finite() {
        return Err(PlotError::InvalidArgument {
            plot: P,
            message: format!("spike_height = {spike_height} must be finite"),
        });
    }
    ensure_font()?;
    check_parent(P, path)?;
    let shown: Vec<f64> = match spikes {
        Some(s) => mem
            .iter()
            .zip(s)
            .map(|(&v, &sp)| if sp > 0.0 { spike_height } else { v })
            .collect(),
        None => mem.to_vec(),
    };
    let y_range = padded_range(std::iter::once(shown.as_slice()));
    let root = BitMapBackend::new(path, (300 * cols as u32, 220 * rows as u32)).into_drawing_area();
    let err = backend_err(P, path);
    root.fill(&WHITE).map_err(&err)?;
    let panels = root.split_evenly((rows, cols));
    let xs: Vec<f64> = (0..t).map(|i| i as f64).collect();
    for (panel, area) in panels.iter().enumerate().take(p) {
        let traces: Vec<Vec<f64>> = (0..k)
            .map(|j| (0..t).map(|s| shown[(s * p + panel) * k + j]).collect())
            .collect();
        let names: Vec<String> = (0..k).map(|j| format!("trace {j}")).collect();
        let series: Vec<Series<'_>> = traces
            .iter()
            .zip(&names)
            .map(|(ys, name)| Series { name, xs: &xs, ys })
            .collect();
        draw_lines(
            P,
            path,
            area,
            &format!("#{panel}"),
            "step",
            "V",
            &series,
            Some(y_range),
            false,
            4,
        )?;
    }
    root.present().map_err(&err)
}

/// Training loss per epoch against the epoch number counted from 0, as the trainers print it
/// (`Train 0 epoch, ...`), 800×450 px.
pub fn loss_curve(path: impl AsRef<Path>, losses: &[f64]) -> Result<(), PlotError> {
    loss_plot(path.as_ref(), losses, "epoch", 0)
}

/// Training loss per step against the number of steps done (1 for the loss of the first
/// step, as `Train 100 steps, ...` counts), 800×450 px.
pub fn loss_curve_steps(path: impl AsRef<Path>, losses: &[f64]) -> Result<(), PlotError> {
    loss_plot(path.as_ref(), losses, "training step", 1)
}

fn loss_plot(path: &Path, losses: &[f64], x_label: &str, first: usize) -> Result<(), PlotError> {
    const P: &str = "loss_curve";
    check_finite(P, "loss", losses)?;
    ensure_font()?;
    check_parent(P, path)?;
    let xs: Vec<f64> = (first..first + losses.len()).map(|i| i as f64).collect();
    let root = BitMapBackend::new(path, (800, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(backend_err(P, path))?;
    let series = [Series {
        name: "loss",
        xs: &xs,
        ys: losses,
    }];
    draw_lines(
        P,
        path,
        &root,
        "Training loss",
        x_label,
        "loss",
        &series,
        None,
        true,
        10,
    )?;
    root.present().map_err(backend_err(P, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_range_constant_and_normal() {
        assert_eq!(padded_range(std::iter::once(&[2.0, 2.0][..])), (1.5, 2.5));
        let (lo, hi) = padded_range(std::iter::once(&[0.0, 10.0][..]));
        assert!((lo + 0.5).abs() < 1e-12 && (hi - 10.5).abs() < 1e-12);
    }

    #[test]
    fn tick_text() {
        assert_eq!(fmt_tick(20.0), "20");
        assert_eq!(fmt_tick(-0.25), "-0.25");
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(123456.0), "1.2e5");
        assert_eq!(fmt_tick(2e-9), "2.0e-9");
    }
}
