//! The event-driven matmul path (sparse 0/1 lhs, narrow rhs) equals the interpreter exactly,
//! in both lhs layouts, and falls back to dense GEMM for dense or non-finite operands.

use brainlift_ir::{DType, FunctionBuilder, TensorType};
use brainlift_runtime::{Backend, Tensor, compile};

fn run(
    m: usize,
    k: usize,
    n: usize,
    tl: bool,
    lhs: Vec<f64>,
    rhs: Vec<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let mut b = FunctionBuilder::new("mm");
    let a_shape = if tl { [k, m] } else { [m, k] };
    let x = b.param("a", TensorType::new(DType::F64, a_shape));
    let w = b.param("b", TensorType::new(DType::F64, [k, n]));
    let y = b.matmul(x, w, tl, false).unwrap();
    let f = b.finish([("y".to_string(), y)]);
    let inputs = [
        Tensor::from_f64(a_shape, lhs).unwrap(),
        Tensor::from_f64([k, n], rhs).unwrap(),
    ];
    let i = compile(&f, Backend::Interp).unwrap().run(&inputs).unwrap();
    let j = compile(&f, Backend::Jit).unwrap().run(&inputs).unwrap();
    (i[0].to_f64_vec(), j[0].to_f64_vec())
}

fn spikes(len: usize, every: usize) -> Vec<f64> {
    (0..len)
        .map(|i| if (i * 7919) % every == 0 { 1.0 } else { 0.0 })
        .collect()
}

fn weights(len: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) * 0.013)
        .collect()
}

#[test]
fn sparse_lhs_matches_the_interpreter_bit_for_bit() {
    for tl in [false, true] {
        for (m, k, n) in [(256, 100, 10), (100, 256, 10), (64, 129, 3), (300, 17, 32)] {
            let (i, j) = run(m, k, n, tl, spikes(m * k, 97), weights(k * n));
            assert_eq!(i, j, "m={m} k={k} n={n} transpose_lhs={tl}");
            assert!(i.iter().any(|&v| v != 0.0));
        }
    }
}

#[test]
fn dense_or_non_finite_operands_fall_back_to_gemm() {
    let (m, k, n) = (128, 64, 8);
    let (i, j) = run(m, k, n, false, weights(m * k), weights(k * n));
    for (a, b) in i.iter().zip(&j) {
        assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0));
    }
    let mut w = weights(k * n);
    w[5] = f64::INFINITY;
    let (i, j) = run(m, k, n, false, spikes(m * k, 97), w);
    for (a, b) in i.iter().zip(&j) {
        assert!(a == b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
    }
}
