//! The JIT-only scan passes (`scan_residuals`, then `scan_hoist`) keep interpreter semantics:
//! on gradient functions of long RNN scans (forward and reverse, f64 and f32), on every golden
//! IR file under `tests/ir/` and on their gradient functions, the interpreter gives the same
//! results on the transformed function, and `runtime::compile(.., Backend::Jit)` (which runs
//! both passes) agrees with the interpreter on the original.

use brainlift_compiler::passes::{scan_hoist::scan_hoist, scan_residuals::scan_residuals};
use brainlift_ir::{DType, Function, FunctionBuilder, Op, Scan, Shape, TensorType, UnaryOp};
use brainlift_runtime::{Backend, Tensor, compile, interpret, random::random_inputs};

fn tt(dt: DType, dims: &[usize]) -> TensorType {
    TensorType::new(dt, dims)
}

/// h' = relu(x_t @ wi + h @ w + c) ; y_t = h' @ wo ; carry h'. Loss-free: its VJP has the
/// forward scan, a reverse scan recomputing the body, and one accumulator per weight.
fn rnn(len: usize, reverse: bool, dt: DType) -> Function {
    let (bsz, hid) = (3, 5);
    let mut body = FunctionBuilder::new("body");
    let h = body.param("h", tt(dt, &[bsz, hid]));
    let x = body.param("x", tt(dt, &[bsz, 2]));
    let wi = body.param("wi", tt(dt, &[2, hid]));
    let w = body.param("w", tt(dt, &[hid, hid]));
    let c = body.param("c", tt(dt, &[hid]));
    let wo = body.param("wo", tt(dt, &[hid, 1]));
    let xi = body.matmul(x, wi, false, false).unwrap();
    let hw = body.matmul(h, w, false, false).unwrap();
    let s = body.add(xi, hw).unwrap();
    let cb = body.broadcast(c, Shape::new(&[bsz, hid]), vec![1]).unwrap();
    let s2 = body.add(s, cb).unwrap();
    let t = body.unary(UnaryOp::Tanh, s2).unwrap();
    let y = body.matmul(t, wo, false, false).unwrap();
    let bodyf = body.finish([("h".to_string(), t), ("y".to_string(), y)]);
    let mut b = FunctionBuilder::new(format!("rnn_{len}_{reverse}_{dt}"));
    let h0 = b.param("h0", tt(dt, &[bsz, hid]));
    let xs = b.param("xs", tt(dt, &[len, bsz, 2]));
    let wi = b.param("wi", tt(dt, &[2, hid]));
    let w = b.param("w", tt(dt, &[hid, hid]));
    let c = b.param("c", tt(dt, &[hid]));
    let wo = b.param("wo", tt(dt, &[hid, 1]));
    let scan = Op::Scan(Box::new(Scan {
        length: len,
        num_carry: 1,
        num_xs: 1,
        reverse,
        body: bodyf,
    }));
    let r = b.push(scan, &[h0, xs, wi, w, c, wo]).unwrap();
    b.finish([("h".to_string(), r[0]), ("ys".to_string(), r[1])])
}

fn assert_close(what: &str, got: &[Tensor], want: &[Tensor], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: output count");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.ty(), w.ty(), "{what}: output {k} type");
        for (i, (a, b)) in g.to_f64_vec().iter().zip(w.to_f64_vec()).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= rel * b.abs().max(1.0);
            assert!(ok, "{what}: output {k} element {i}: got {a} want {b}");
        }
    }
}

/// Interpreter on `f` vs interpreter on the transformed `f` vs the JIT.
fn check(f: &Function, seed: u64, rel: f64) {
    let inputs = random_inputs(f, seed);
    let want = interpret(f, &inputs).unwrap();
    let g = scan_hoist(&scan_residuals(f).unwrap()).unwrap();
    brainlift_ir::verify(&g).unwrap();
    let got = interpret(&g, &inputs).unwrap();
    assert_close(&format!("{} (passes, interp)", f.name), &got, &want, rel);
    let mut jit = compile(f, Backend::Jit).unwrap();
    let got = jit.run(&inputs).unwrap();
    assert_close(&format!("{} (jit)", f.name), &got, &want, rel);
}

fn vjp_all(f: &Function) -> Function {
    let wrt: Vec<usize> = (0..f.params.len())
        .filter(|&i| f.params[i].ty.dtype.is_float())
        .collect();
    brainlift_compiler::ad::vjp(f, &wrt).unwrap()
}

#[test]
fn rnn_gradients_keep_their_values() {
    for dt in [DType::F64, DType::F32] {
        let rel = if dt == DType::F32 { 1e-4 } else { 1e-12 };
        for len in [0, 1, 3, 12] {
            for reverse in [false, true] {
                let g = vjp_all(&rnn(len, reverse, dt));
                check(&g, 7, rel);
            }
        }
    }
}

#[test]
fn passes_remove_recomputation_and_accumulators() {
    let g = vjp_all(&rnn(12, false, DType::F64));
    let out = scan_hoist(&scan_residuals(&g).unwrap()).unwrap();
    let text = out.to_string();
    // Before: the reverse body replays both forward matmuls and carries 4 weight accumulators.
    let before = g.to_string();
    assert!(before.contains("num_carry=5"), "{before}");
    // After: the reverse scan carries only the hidden-state cotangent, reads the forward
    // pre-activation, and the weight gradients are matmuls over the merged [12*3, .] axis.
    assert!(text.contains("num_carry=1, num_xs="), "{text}");
    assert!(text.contains("f64[36,5] = reshape"), "{text}");
    assert!(
        text.contains("f64[5,5] = matmul[transpose_lhs=true]"),
        "{text}"
    );
    let body = text.split("_bwd").nth(1).unwrap();
    let body = &body[..body.find("  }").unwrap()];
    assert_eq!(body.matches("matmul").count(), 3, "{body}");
}

#[test]
fn ir_files_and_their_gradients_keep_their_values() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ir");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("ir") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let f = brainlift_ir::parse::parse_function(&src).unwrap();
        let f32ish = f.types.iter().any(|t| t.dtype == DType::F32);
        let rel = if f32ish { 1e-4 } else { 1e-12 };
        check(&f, 3, rel);
        check(&vjp_all(&f), 5, rel);
        n += 1;
    }
    assert!(n >= 5, "expected the golden IR files in {}", dir.display());
}
