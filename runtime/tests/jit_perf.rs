//! Rough timings of the JIT (ignored by default; run with
//! `cargo test -p brainlift-runtime --test jit_perf -- --ignored --nocapture`).
//! The real benchmark is `brainlift bench`; this only helps tuning.

use brainlift_ir::{
    BinaryOp, DType, Function, FunctionBuilder, Op, Scan, Shape, TensorType, UnaryOp,
};
use brainlift_runtime::{Executable, Interpreter, JitExecutable, Tensor};
use std::time::Instant;

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn tt(dims: &[usize]) -> TensorType {
    TensorType::new(DType::F64, dims)
}

fn ramp(n: usize, k: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64) * k).sin()).collect()
}

#[test]
#[ignore]
fn perf_elementwise_chain() {
    let n = 1_000_000;
    let mut b = FunctionBuilder::new("chain");
    let x = b.param("x", tt(&[n]));
    let y = b.param("y", tt(&[n]));
    let a = b.splat(tt(&[n]), 0.7);
    let c = b.splat(tt(&[n]), -1.3);
    let ax = b.mul(a, x).unwrap();
    let cy = b.mul(c, y).unwrap();
    let s = b.add(ax, cy).unwrap();
    let z = b.splat(tt(&[n]), 0.0);
    let r = b.binary(BinaryOp::Max, s, z).unwrap();
    let f = b.finish([("r".to_string(), r)]);
    let xs = Tensor::from_f64([n], ramp(n, 0.001)).unwrap();
    let ys = Tensor::from_f64([n], ramp(n, 0.0007)).unwrap();
    let inputs = [xs.clone(), ys.clone()];
    let mut exe = JitExecutable::compile(&f).unwrap();
    let t_jit = best_of(20, || {
        exe.run(&inputs).unwrap();
    });
    let (xv, yv) = (xs.as_f64().unwrap(), ys.as_f64().unwrap());
    let t_rust = best_of(20, || {
        let out: Vec<f64> = xv
            .iter()
            .zip(yv)
            .map(|(x, y)| (0.7 * x + -1.3 * y).max(0.0))
            .collect();
        std::hint::black_box(out);
    });
    let mut it = Interpreter::new(f.clone()).unwrap();
    let t_int = best_of(2, || {
        it.run(&inputs).unwrap();
    });
    println!(
        "elementwise 1e6: jit {:.3} ms, rust loop {:.3} ms, interp {:.3} ms, jit/rust {:.2}",
        t_jit * 1e3,
        t_rust * 1e3,
        t_int * 1e3,
        t_jit / t_rust
    );
}

#[test]
#[ignore]
fn perf_matmul_128() {
    let n = 128;
    let mut b = FunctionBuilder::new("mm");
    let x = b.param("x", tt(&[n, n]));
    let y = b.param("y", tt(&[n, n]));
    let r = b.matmul(x, y, false, false).unwrap();
    let f = b.finish([("r".to_string(), r)]);
    let xs = Tensor::from_f64([n, n], ramp(n * n, 0.01)).unwrap();
    let ys = Tensor::from_f64([n, n], ramp(n * n, 0.013)).unwrap();
    let inputs = [xs.clone(), ys.clone()];
    let mut exe = JitExecutable::compile(&f).unwrap();
    let t_jit = best_of(50, || {
        exe.run(&inputs).unwrap();
    });
    let mut out = vec![0.0; n * n];
    let (a, bb) = (xs.as_f64().unwrap(), ys.as_f64().unwrap());
    let t_gemm = best_of(50, || unsafe {
        gemm::gemm(
            n,
            n,
            n,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            n as isize,
            bb.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    });
    println!(
        "matmul 128^3: jit {:.1} us, gemm {:.1} us, ratio gemm/jit {:.2}",
        t_jit * 1e6,
        t_gemm * 1e6,
        t_gemm / t_jit
    );
}

/// A BPTT-like forward: scan over T steps of h = tanh(h W + x_t U + b), then a loss.
fn rnn(t: usize, batch: usize, hid: usize, inp: usize) -> Function {
    let mut body = FunctionBuilder::new("cell");
    let h = body.param("h", tt(&[batch, hid]));
    let x = body.param("x", tt(&[batch, inp]));
    let w = body.param("w", tt(&[hid, hid]));
    let u = body.param("u", tt(&[inp, hid]));
    let bb = body.param("b", tt(&[hid]));
    let hw = body.matmul(h, w, false, false).unwrap();
    let xu = body.matmul(x, u, false, false).unwrap();
    let s = body.add(hw, xu).unwrap();
    let bv = body
        .broadcast(bb, Shape::new(&[batch, hid]), vec![1])
        .unwrap();
    let s = body.add(s, bv).unwrap();
    let hn = body.unary(UnaryOp::Tanh, s).unwrap();
    let body = body.finish([("h".to_string(), hn), ("y".to_string(), hn)]);
    let mut b = FunctionBuilder::new("rnn");
    let h0 = b.param("h0", tt(&[batch, hid]));
    let xs = b.param("xs", tt(&[t, batch, inp]));
    let w = b.param("w", tt(&[hid, hid]));
    let u = b.param("u", tt(&[inp, hid]));
    let bb = b.param("b", tt(&[hid]));
    let r = b
        .push(
            Op::Scan(Box::new(Scan {
                length: t,
                num_carry: 1,
                num_xs: 1,
                reverse: false,
                body,
            })),
            &[h0, xs, w, u, bb],
        )
        .unwrap();
    let sq = b.mul(r[1], r[1]).unwrap();
    let l = b
        .reduce(brainlift_ir::ReduceOp::Sum, sq, vec![0, 1, 2])
        .unwrap();
    b.finish([("loss".to_string(), l), ("h".to_string(), r[0])])
}

#[test]
#[ignore]
fn perf_rnn_scan() {
    let f = rnn(25, 128, 100, 1);
    let inputs = brainlift_runtime::random::random_inputs(&f, 7);
    let t0 = Instant::now();
    let mut exe = JitExecutable::compile(&f).unwrap();
    let tc = t0.elapsed().as_secs_f64();
    let t_jit = best_of(20, || {
        exe.run(&inputs).unwrap();
    });
    let mut it = Interpreter::new(f.clone()).unwrap();
    let t_int = best_of(2, || {
        it.run(&inputs).unwrap();
    });
    println!(
        "rnn T=25 B=128 H=100: compile {:.2} ms, jit {:.3} ms, interp {:.3} ms, speedup {:.1}",
        tc * 1e3,
        t_jit * 1e3,
        t_int * 1e3,
        t_int / t_jit
    );
}

#[test]
#[ignore]
fn perf_pieces() {
    let (bt, h) = (128, 100);
    let mk = |name: &str, build: &dyn Fn(&mut FunctionBuilder) -> brainlift_ir::ValueId| {
        let mut b = FunctionBuilder::new(name);
        let v = build(&mut b);
        b.finish([("r".to_string(), v)])
    };
    let fs = vec![
        mk("mm_128x100x100", &|b| {
            let x = b.param("x", tt(&[bt, h]));
            let w = b.param("w", tt(&[h, h]));
            b.matmul(x, w, false, false).unwrap()
        }),
        mk("mm_128x1x100", &|b| {
            let x = b.param("x", tt(&[bt, 1]));
            let w = b.param("w", tt(&[1, h]));
            b.matmul(x, w, false, false).unwrap()
        }),
        mk("tanh_12800", &|b| {
            let x = b.param("x", tt(&[bt, h]));
            b.unary(UnaryOp::Tanh, x).unwrap()
        }),
        mk("add_bcast_12800", &|b| {
            let x = b.param("x", tt(&[bt, h]));
            let c = b.param("c", tt(&[h]));
            let cb = b.broadcast(c, Shape::new(&[bt, h]), vec![1]).unwrap();
            b.add(x, cb).unwrap()
        }),
        mk("sum_25x128x100", &|b| {
            let x = b.param("x", tt(&[25, bt, h]));
            b.reduce(brainlift_ir::ReduceOp::Sum, x, vec![0, 1, 2])
                .unwrap()
        }),
    ];
    for f in fs {
        let inputs = brainlift_runtime::random::random_inputs(&f, 3);
        let mut exe = JitExecutable::compile(&f).unwrap();
        let t = best_of(50, || {
            exe.run(&inputs).unwrap();
        });
        println!("{}: {:.1} us", f.name, t * 1e6);
    }
}

#[test]
#[ignore]
fn perf_rnn_scan_jit_only() {
    let f = rnn(25, 128, 100, 1);
    let inputs = brainlift_runtime::random::random_inputs(&f, 7);
    let mut exe = JitExecutable::compile(&f).unwrap();
    let t = best_of(100, || {
        exe.run(&inputs).unwrap();
    });
    println!("rnn jit: {:.3} ms", t * 1e3);
}
