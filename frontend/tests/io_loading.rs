//! Loading `.npy` and `.csv` user data into the batch-first layout.

use brainlift::datasets::io::{
    CsvDelimiter, CsvHeader, CsvOptions, LoadError, NpyOptions, load_csv, load_npy, parse_npy,
};
use npyz::WriterBuilder;
use std::path::PathBuf;

/// A file path in a per-process, per-test temporary folder.
fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("brainlift-io-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cleanup(file: &std::path::Path) {
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

fn npy_bytes_f64(shape: &[u64], data: &[f64], fortran: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let opts = npyz::WriteOptions::new().default_dtype().shape(shape);
    let opts = if fortran {
        opts.order(npyz::Order::Fortran)
    } else {
        opts
    };
    let mut w = opts.writer(&mut buf).begin_nd().unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    buf
}

#[test]
fn npy_2d_becomes_batch_first() {
    let path = tmp("a.npy");
    let data: Vec<f64> = (0..12).map(f64::from).collect();
    std::fs::write(&path, npy_bytes_f64(&[4, 3], &data, false)).unwrap();
    let s = load_npy(&path, &NpyOptions::default()).unwrap();
    assert_eq!(s.shape, [1, 4, 3]);
    assert_eq!((s.batch(), s.time(), s.features()), (1, 4, 3));
    assert_eq!(s.data, data);
    cleanup(&path);
}

#[test]
fn npy_3d_kept_and_fortran_transposed() {
    let data: Vec<f64> = (0..24).map(f64::from).collect();
    let s = parse_npy(
        &npy_bytes_f64(&[2, 3, 4], &data, false),
        "m",
        &NpyOptions::default(),
    )
    .unwrap();
    assert_eq!(s.shape, [2, 3, 4]);
    assert_eq!(s.data, data);
    // A Fortran-order (2, 3) file holding the column-major stream 0..6: element [i, j] = i + 2j.
    let f: Vec<f64> = (0..6).map(f64::from).collect();
    let s = parse_npy(
        &npy_bytes_f64(&[2, 3], &f, true),
        "f",
        &NpyOptions::default(),
    )
    .unwrap();
    assert_eq!(s.shape, [1, 2, 3]);
    assert_eq!(s.data, vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
}

#[test]
fn npy_f32_and_int_are_converted() {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[2, 2])
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend([1.5f32, 2.0, -3.25, 4.0]).unwrap();
    w.finish().unwrap();
    let s = parse_npy(&buf, "f32", &NpyOptions::default()).unwrap();
    assert_eq!(s.data, vec![1.5, 2.0, -3.25, 4.0]);
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[1, 3])
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend([7i64, -8, 9]).unwrap();
    w.finish().unwrap();
    let s = parse_npy(&buf, "i64", &NpyOptions::default()).unwrap();
    assert_eq!(s.data, vec![7.0, -8.0, 9.0]);
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[1, 2])
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend([1u8, 2]).unwrap();
    w.finish().unwrap();
    let e = parse_npy(&buf, "u8", &NpyOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::UnsupportedDtype { .. }), "{e}");
}

#[test]
fn npy_errors() {
    let o = NpyOptions::default();
    let e = parse_npy(&npy_bytes_f64(&[5], &[1.0; 5], false), "r1.npy", &o).unwrap_err();
    assert_eq!(
        e.to_string(),
        "r1.npy: array of shape [5] (rank 1) cannot be used as a time series: expected (time, features) or (batch, time, features)"
    );
    let e = parse_npy(&npy_bytes_f64(&[1, 1, 1, 2], &[1.0; 2], false), "r4", &o).unwrap_err();
    assert!(matches!(e, LoadError::Rank { rank: 4, .. }));
    let e = parse_npy(&npy_bytes_f64(&[0, 3], &[], false), "z", &o).unwrap_err();
    assert!(matches!(e, LoadError::Empty { .. }), "{e}");
    let e = parse_npy(
        &npy_bytes_f64(&[2, 2], &[1.0, 2.0, f64::NAN, 4.0], false),
        "n",
        &o,
    )
    .unwrap_err();
    assert!(e.to_string().contains("index [1, 0]"), "{e}");
    let ok = parse_npy(
        &npy_bytes_f64(&[2, 2], &[1.0, 2.0, f64::NAN, 4.0], false),
        "n",
        &NpyOptions { allow_nan: true },
    )
    .unwrap();
    assert!(ok.data[2].is_nan());
    let e = parse_npy(b"not an npy file at all", "junk", &o).unwrap_err();
    assert!(matches!(e, LoadError::Npy { .. }), "{e}");
    let e = load_npy(tmp("does-not-exist.npy"), &o).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e}");
    cleanup(&tmp("does-not-exist.npy"));
}

#[test]
fn csv_files() {
    let path = tmp("a.csv");
    std::fs::write(&path, "# lorenz\nx, y, z\n1,2,3\n4,5,6e-1\n\n").unwrap();
    let s = load_csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(s.shape, [1, 2, 3]);
    assert_eq!(s.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.6]);
    std::fs::write(&path, "1 2\n3 4\n").unwrap();
    let opts = CsvOptions {
        header: CsvHeader::Present,
        delimiter: CsvDelimiter::Whitespace,
        allow_nan: false,
    };
    let s = load_csv(&path, &opts).unwrap();
    assert_eq!(s.shape, [1, 1, 2]);
    assert_eq!(s.data, vec![3.0, 4.0]);
    std::fs::write(&path, "").unwrap();
    assert!(matches!(
        load_csv(&path, &CsvOptions::default()),
        Err(LoadError::Empty { .. })
    ));
    std::fs::write(&path, "1,2,3\n4,5\n").unwrap();
    let e = load_csv(&path, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Ragged {
                line: 2,
                got: 2,
                expected: 3,
                ..
            }
        ),
        "{e}"
    );
    std::fs::write(&path, "1,,3\n").unwrap();
    let e = load_csv(
        &path,
        &CsvOptions {
            header: CsvHeader::Absent,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Parse {
                line: 1,
                column: 2,
                ..
            }
        ),
        "{e}"
    );
    std::fs::write(&path, "1,2\ninf,3\n").unwrap();
    let e = load_csv(&path, &CsvOptions::default()).unwrap_err();
    assert!(e.to_string().contains("line 2, column 1"), "{e}");
    cleanup(&path);
}
