//! Row-parallel execution: scans whose bodies never mix batch rows run as row blocks on
//! worker threads, large products as row blocks. Results must not depend on the thread count
//! (bit for bit) and must match the interpreter; scans that mix rows must stay whole.

use brainlift_compiler::codegen::CodegenOptions;
use brainlift_ir::{DType, Function, FunctionBuilder, Op, Scan, Shape, TensorType, UnaryOp};
use brainlift_runtime::{Executable, JitExecutable, Tensor, interpret};

fn tt(dims: &[usize]) -> TensorType {
    TensorType::new(DType::F64, dims)
}

fn inputs(f: &Function, seed: u64) -> Vec<Tensor> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    f.params
        .iter()
        .map(|p| {
            let v: Vec<f64> = (0..p.ty.numel())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
                .collect();
            Tensor::from_f64_values(p.ty.clone(), &v).unwrap()
        })
        .collect()
}

/// A tanh RNN over `len` steps with batch `bsz`: carries `h` (saved as a residual: `ys[0]`
/// is the carry entering each step) and `c` (stacked again as `ys[1]`, the carry leaving each
/// step), an `x_t`, a weight, and a per-row invariant `bias: [bsz, hid]`.
fn row_wise_rnn(len: usize, bsz: usize, hid: usize, reverse: bool) -> Function {
    let mut body = FunctionBuilder::new("body");
    let h = body.param("h", tt(&[bsz, hid]));
    let c = body.param("c", tt(&[bsz, hid]));
    let x = body.param("x", tt(&[bsz, 1]));
    let w = body.param("w", tt(&[hid, hid]));
    let bias = body.param("bias", tt(&[bsz, hid]));
    let wx = body.param("wx", tt(&[1, hid]));
    let hw = body.matmul(h, w, false, false).unwrap();
    let xw = body.matmul(x, wx, false, false).unwrap();
    let s = body.add(hw, xw).unwrap();
    let s = body.add(s, bias).unwrap();
    let hn = body.unary(UnaryOp::Tanh, s).unwrap();
    let cn = body.add(c, hn).unwrap();
    let rowsum = body
        .reduce(brainlift_ir::ReduceOp::Sum, cn, vec![1])
        .unwrap();
    let rs = body
        .broadcast(rowsum, Shape::new(&[bsz, hid]), vec![0])
        .unwrap();
    let scale = body.splat(tt(&[bsz, hid]), 1e-2);
    let rs = body.mul(rs, scale).unwrap();
    let cn = body.sub(cn, rs).unwrap();
    let bodyf = body.finish([
        ("h".to_string(), hn),
        ("c".to_string(), cn),
        ("h_in".to_string(), h),
        ("c_out".to_string(), cn),
    ]);
    let mut b = FunctionBuilder::new("row_wise_rnn");
    let h0 = b.param("h0", tt(&[bsz, hid]));
    let c0 = b.param("c0", tt(&[bsz, hid]));
    let xs = b.param("xs", tt(&[len, bsz, 1]));
    let w = b.param("w", tt(&[hid, hid]));
    let bias = b.param("bias", tt(&[bsz, hid]));
    let wx = b.param("wx", tt(&[1, hid]));
    let scan = Op::Scan(Box::new(Scan {
        length: len,
        num_carry: 2,
        num_xs: 1,
        reverse,
        body: bodyf,
    }));
    let r = b.push(scan, &[h0, c0, xs, w, bias, wx]).unwrap();
    b.finish([
        ("h".to_string(), r[0]),
        ("c".to_string(), r[1]),
        ("h_in".to_string(), r[2]),
        ("c_out".to_string(), r[3]),
    ])
}

fn run(f: &Function, threads: usize, ins: &[Tensor]) -> (Vec<Tensor>, Vec<usize>) {
    let mut exe = JitExecutable::compile_threads(f, &CodegenOptions::default(), threads).unwrap();
    let blocks = exe.compiled().scan_row_blocks();
    let a = exe.run(ins).unwrap();
    let b = exe.run(ins).unwrap();
    assert_eq!(a, b, "{}: a second run differs", f.name);
    (a, blocks)
}

fn assert_bitwise(what: &str, a: &[Tensor], b: &[Tensor]) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let (xv, yv) = (x.to_f64_vec(), y.to_f64_vec());
        for (i, (p, q)) in xv.iter().zip(&yv).enumerate() {
            assert!(
                p.to_bits() == q.to_bits(),
                "{what}: output {k} element {i}: {p:?} vs {q:?}"
            );
        }
    }
}

fn assert_close(what: &str, got: &[Tensor], want: &[Tensor], rel: f64) {
    for (k, (x, y)) in got.iter().zip(want).enumerate() {
        for (i, (p, q)) in x.to_f64_vec().iter().zip(y.to_f64_vec()).enumerate() {
            assert!(
                (p - q).abs() <= rel * q.abs().max(1.0),
                "{what}: output {k} element {i}: jit {p:?} vs interpreter {q:?}"
            );
        }
    }
}

#[test]
fn row_wise_scans_split_and_match_one_thread_bit_for_bit() {
    // Odd batch: blocks of 18 and 19 rows (two block bodies); 3 threads: 12, 12, 13.
    // (Batches of at least 32 rows per block get two blocks per thread.)
    for reverse in [false, true] {
        let f = row_wise_rnn(40, 37, 24, reverse);
        let ins = inputs(&f, 7);
        let want = interpret(&f, &ins).unwrap();
        let (one, b1) = run(&f, 1, &ins);
        assert_eq!(b1, vec![0], "one thread never splits");
        assert_close("1 thread", &one, &want, 1e-12);
        for threads in [2, 3] {
            let (many, bn) = run(&f, threads, &ins);
            assert!(
                bn[0] >= threads,
                "{threads} threads: the scan splits: {bn:?}"
            );
            assert_bitwise(
                &format!("{threads} threads, reverse={reverse}"),
                &many,
                &one,
            );
        }
    }
}

#[test]
fn small_batches_and_short_scans_stay_whole() {
    // 12 rows cannot make two blocks of at least 8 rows; 2 steps are too little work.
    for (len, bsz) in [(40, 12), (2, 64)] {
        let f = row_wise_rnn(len, bsz, 24, false);
        let ins = inputs(&f, 3);
        let (got, blocks) = run(&f, 2, &ins);
        assert_eq!(blocks, vec![0], "len {len}, batch {bsz}");
        assert_close("whole", &got, &interpret(&f, &ins).unwrap(), 1e-12);
    }
}

#[test]
fn scans_that_mix_rows_stay_whole() {
    // acc += h^T h contracts the batch axis: not row-wise.
    let (len, bsz, hid) = (50, 64, 16);
    let mut body = FunctionBuilder::new("body");
    let h = body.param("h", tt(&[bsz, hid]));
    let acc = body.param("acc", tt(&[hid, hid]));
    let w = body.param("w", tt(&[hid, hid]));
    let hw = body.matmul(h, w, false, false).unwrap();
    let hn = body.unary(UnaryOp::Tanh, hw).unwrap();
    let g = body.matmul(hn, hn, true, false).unwrap();
    let acc2 = body.add(acc, g).unwrap();
    let bodyf = body.finish([("h".to_string(), hn), ("acc".to_string(), acc2)]);
    let mut b = FunctionBuilder::new("mixing");
    let h0 = b.param("h0", tt(&[bsz, hid]));
    let a0 = b.param("a0", tt(&[hid, hid]));
    let w = b.param("w", tt(&[hid, hid]));
    let scan = Op::Scan(Box::new(Scan {
        length: len,
        num_carry: 2,
        num_xs: 0,
        reverse: false,
        body: bodyf,
    }));
    let r = b.push(scan, &[h0, a0, w]).unwrap();
    let f = b.finish([("h".to_string(), r[0]), ("acc".to_string(), r[1])]);
    let ins = inputs(&f, 5);
    let (got, blocks) = run(&f, 2, &ins);
    assert_eq!(blocks, vec![0]);
    assert_close("mixing", &got, &interpret(&f, &ins).unwrap(), 1e-11);
}

#[test]
fn large_products_split_by_rows_bit_for_bit() {
    // More than 512 rows (the packing-free kernel's limit per call) with a long contraction:
    // one thread must still take the same kernel as the row blocks of two.
    for (m, k, n, tl) in [
        (301, 200, 100, false),
        (300, 400, 90, true),
        (513, 2000, 33, false),
        (700, 1100, 40, true),
    ] {
        let mut b = FunctionBuilder::new("mm");
        let a = b.param("a", if tl { tt(&[k, m]) } else { tt(&[m, k]) });
        let w = b.param("w", tt(&[k, n]));
        let p = b.matmul(a, w, tl, false).unwrap();
        let f = b.finish([("p".to_string(), p)]);
        let ins = inputs(&f, 11);
        let (one, _) = run(&f, 1, &ins);
        let (two, _) = run(&f, 2, &ins);
        assert_bitwise(&format!("{m}x{k}x{n}"), &two, &one);
        assert_close("matmul", &two, &interpret(&f, &ins).unwrap(), 1e-12);
    }
}

/// A weight gradient summed over time × batch (`k` much larger than the output) is split
/// into contraction ranges: deterministic, close to the serial sum (not bit for bit).
#[test]
fn long_contractions_split_by_k_deterministically() {
    for (m, k, n) in [(100, 3200, 100), (37, 9001, 41)] {
        let mut b = FunctionBuilder::new("grad");
        let h = b.param("h", tt(&[k, m]));
        let g = b.param("g", tt(&[k, n]));
        let p = b.matmul(h, g, true, false).unwrap();
        let f = b.finish([("p".to_string(), p)]);
        let ins = inputs(&f, 13);
        let (two, _) = run(&f, 2, &ins);
        let (again, _) = run(&f, 2, &ins);
        assert_bitwise("same thread count", &two, &again);
        let (one, _) = run(&f, 1, &ins);
        assert_close("2 vs 1 threads", &two, &one, 1e-12);
        assert_close("vs interpreter", &two, &interpret(&f, &ins).unwrap(), 1e-12);
    }
}
