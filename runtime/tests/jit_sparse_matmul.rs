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

/// `op(a)·b` with a `bool` lhs (`a` given as 0/1 values) on the interpreter and on the JIT
/// compiled for `threads` threads.
fn run_bool(
    (m, k, n): (usize, usize, usize),
    tl: bool,
    lhs: &[f64],
    rhs: Vec<f64>,
    threads: usize,
) -> (Vec<f64>, Vec<f64>) {
    use brainlift_runtime::{CompileOptions, compile_with};
    let mut b = FunctionBuilder::new("mm");
    let a_shape = if tl { [k, m] } else { [m, k] };
    let x = b.param("a", TensorType::new(DType::Bool, a_shape));
    let w = b.param("b", TensorType::new(DType::F64, [k, n]));
    let y = b.matmul(x, w, tl, false).unwrap();
    let f = b.finish([("y".to_string(), y)]);
    let inputs = [
        Tensor::from_f64_values(TensorType::new(DType::Bool, a_shape), lhs).unwrap(),
        Tensor::from_f64([k, n], rhs).unwrap(),
    ];
    let i = compile(&f, Backend::Interp).unwrap().run(&inputs).unwrap();
    let opts = CompileOptions {
        threads,
        ..CompileOptions::default()
    };
    let mut exe = compile_with(&f, Backend::Jit, &opts).unwrap();
    let j = exe.run(&inputs).unwrap();
    // Twice: the second run starts from the first's buffers.
    let bits = |t: &Tensor| {
        t.to_f64_vec()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&exe.run(&inputs).unwrap()[0]), bits(&j[0]));
    (i[0].to_f64_vec(), j[0].to_f64_vec())
}

/// The event-driven path for a bool lhs reads its bytes and equals the interpreter bit for
/// bit: both layouts, odd sizes (chunk and 64-byte-group tails), wide rhs, one and two
/// threads (row blocks for the row-major layout, line blocks for the column-major one).
#[test]
fn bool_lhs_event_path_matches_the_interpreter_bit_for_bit() {
    for threads in [1, 2, 3] {
        for tl in [false, true] {
            for (m, k, n) in [
                (256, 100, 10),
                (100, 25600, 10),
                (4099, 67, 3),
                (63, 65, 100),
                (7, 9, 2),
                (1, 5000, 1),
                (2500, 1, 4),
            ] {
                let (i, j) = run_bool((m, k, n), tl, &spikes(m * k, 97), weights(k * n), threads);
                assert_eq!(
                    i, j,
                    "m={m} k={k} n={n} transpose_lhs={tl} threads={threads}"
                );
                assert!(i.iter().any(|&v| v != 0.0), "m={m} k={k} n={n}");
            }
        }
    }
}

/// A dense bool lhs (or one with a non-finite rhs) is converted and multiplied densely, on
/// one or several threads; the results do not depend on the thread count.
#[test]
fn bool_lhs_dense_or_non_finite_falls_back() {
    for tl in [false, true] {
        for (m, k, n) in [(512, 256, 12), (100, 25600, 10), (40, 30, 5)] {
            let dense = spikes(m * k, 2);
            let (i, one) = run_bool((m, k, n), tl, &dense, weights(k * n), 1);
            let (_, two) = run_bool((m, k, n), tl, &dense, weights(k * n), 2);
            assert_eq!(one, two, "m={m} k={k} n={n} transpose_lhs={tl}");
            for (a, b) in i.iter().zip(&one) {
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
            }
            let mut w = weights(k * n);
            w[(k * n) / 2] = f64::INFINITY;
            w[k * n - 1] = f64::NAN;
            for threads in [1, 2] {
                let (i, j) = run_bool((m, k, n), tl, &spikes(m * k, 97), w.clone(), threads);
                for (a, b) in i.iter().zip(&j) {
                    assert!(
                        a == b
                            || (a - b).abs() <= 1e-12 * a.abs().max(1.0)
                            || (a.is_nan() && b.is_nan()),
                        "{a} vs {b}"
                    );
                }
                assert!(i.iter().any(|v| v.is_nan()));
            }
        }
    }
}
