//! Helpers shared by the integration tests: golden-data paths and `.npy` reading (npyz).
#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/data/<group>` at the repository root.
pub fn data_dir(group: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("data")
        .join(group)
}

/// Reads a float64 `.npy` file into (values, shape), C order.
pub fn read_npy(group: &str, file: &str) -> (Vec<f64>, Vec<usize>) {
    let path = data_dir(group).join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    assert_eq!(npy.order(), npyz::Order::C, "{file} must be C order");
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (npy.into_vec::<f64>().expect("f64 data"), shape)
}

/// The manifest of a golden group.
pub fn manifest(group: &str) -> serde_json::Value {
    let path = data_dir(group).join("manifest.json");
    let text = std::fs::read_to_string(&path).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// A scalar (or array of numbers) from `scalars.<key>.value`.
pub fn scalar_vec(group: &str, key: &str) -> Vec<f64> {
    let m = manifest(group);
    let v = &m["scalars"][key]["value"];
    match v {
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap()).collect(),
        other => vec![
            other
                .as_f64()
                .unwrap_or_else(|| panic!("{key} not a number")),
        ],
    }
}

/// `|a - b| <= eps * max(1, |b|)` (the golden README's "rel").
pub fn rel_close(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() <= eps * b.abs().max(1.0)
}

/// Mean of squared differences.
pub fn mse(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64
}
