//! `tests/ir/spike_matmul.ir`: a `bool`-lhs matmul (spikes into weights) in every transpose
//! layout parses, verifies and runs on the interpreter and the JIT with the values of the
//! same product on a 0.0/1.0 float lhs; the CLI checks and runs it too.

use brainlift_ir::{DType, TensorType, parse_function, verify};
use brainlift_runtime::{Backend, Tensor, compile};

fn spike_matmul_ir() -> String {
    let path = format!("{}/tests/ir/spike_matmul.ir", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// Row-major `op(a)·op(b)` of `m×k` by `k×n` with `a(i, p)` and `b(p, j)` given as closures.
fn reference(
    m: usize,
    k: usize,
    n: usize,
    a: impl Fn(usize, usize) -> f64,
    b: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
        }
    }
    out
}

#[test]
fn bool_lhs_matmul_file_parses_verifies_and_runs() {
    let f = parse_function(&spike_matmul_ir()).unwrap();
    verify(&f).unwrap();
    let tys: Vec<String> = f.params.iter().map(|p| p.ty.to_string()).collect();
    assert_eq!(
        tys,
        ["bool[3,4]", "bool[4,3]", "f64[4,2]", "f64[2,4]", "f32[4,2]"]
    );
    let s = [
        true, false, false, true, false, true, true, false, true, true, true, true,
    ];
    // st = s^T, so `matmul[transpose_lhs] st, w` equals `matmul s, w`.
    let st: Vec<bool> = (0..12).map(|i| s[(i % 3) * 4 + i / 3]).collect();
    let w = [0.5, -1.0, 2.0, 0.25, -3.0, 1.5, 0.125, 4.0];
    let u = [1.0, -2.0, 0.5, 3.0, 0.75, 0.0, -1.25, 2.5];
    let v: Vec<f32> = w.iter().map(|&x| x as f32 * 0.5).collect();
    let inputs = [
        Tensor::from_bool([3, 4], &s).unwrap(),
        Tensor::from_bool([4, 3], &st).unwrap(),
        Tensor::from_f64([4, 2], w.to_vec()).unwrap(),
        Tensor::from_f64([2, 4], u.to_vec()).unwrap(),
        Tensor::from_f32([4, 2], v.clone()).unwrap(),
    ];
    let sv = |i: usize, p: usize| s[i * 4 + p] as u8 as f64;
    let y = reference(3, 4, 2, sv, |p, j| w[p * 2 + j]);
    let z = reference(3, 4, 2, sv, |p, j| u[j * 4 + p]);
    let iv = reference(3, 4, 2, sv, |p, j| v[p * 2 + j] as f64);
    let back = reference(4, 3, 2, |i, p| sv(p, i), |p, j| y[p * 2 + j]);
    for backend in [Backend::Interp, Backend::Jit] {
        let out = compile(&f, backend).unwrap().run(&inputs).unwrap();
        let types: Vec<&TensorType> = out.iter().map(|t| t.ty()).collect();
        assert_eq!(types[3].dtype, DType::F32, "{backend:?}");
        assert_eq!(out[0].to_f64_vec(), y, "{backend:?}: y");
        assert_eq!(out[1].to_f64_vec(), y, "{backend:?}: yt");
        assert_eq!(out[2].to_f64_vec(), z, "{backend:?}: z");
        let i: Vec<f64> = iv.iter().map(|&x| x as f32 as f64).collect();
        assert_eq!(out[3].to_f64_vec(), i, "{backend:?}: i");
        assert_eq!(out[4].to_f64_vec(), back, "{backend:?}: back");
    }
}

#[test]
fn cli_checks_and_runs_the_bool_lhs_file() {
    let path = format!("{}/tests/ir/spike_matmul.ir", env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_brainlift"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&["ir", "check", &path]);
    let a = run(&["ir", "run", &path, "--json", "--backend", "interp"]);
    let b = run(&["ir", "run", &path, "--json", "--backend", "jit"]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&a).unwrap(),
        serde_json::from_str(&b).unwrap(),
    );
    assert_eq!(a["outputs"], b["outputs"]);
    assert_eq!(a["outputs"].as_array().unwrap().len(), 5);
}
