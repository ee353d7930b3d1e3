//! Gradients through `scan`: finite-difference checks for lengths 1, 2 and 50 with carries of
//! several shapes, reverse and nested scans, non-float carries, a vanilla-RNN MSE loss, the
//! golden BrainPy RNN gradients, and the structure of the scan VJP (one forward + one reverse
//! scan, O(T x state) residuals).

mod common;

use brainlift_compiler::ad::grad;
use brainlift_ir::{
    DType, Function, FunctionBuilder, Op, ReduceOp, Scan, TensorType, UnaryOp, ValueId,
};
use brainlift_runtime::npy::read_npy;
use brainlift_runtime::{Tensor, interpret};
use common::*;

fn scan(
    b: &mut FunctionBuilder,
    body: Function,
    length: usize,
    nc: usize,
    nx: usize,
    reverse: bool,
    args: &[ValueId],
) -> Vec<ValueId> {
    let s = Scan {
        length,
        num_carry: nc,
        num_xs: nx,
        reverse,
        body,
    };
    b.push(Op::Scan(Box::new(s)), args).unwrap().to_vec()
}

/// Body with carries h: [2,3], c: [3], s: [] ; xs x_t: [2,3]; consts W: [3,3], v: [3].
fn rich_body() -> Function {
    let mut b = FunctionBuilder::new("body");
    let h = b.param("h", f64t(&[2, 3]));
    let c = b.param("c", f64t(&[3]));
    let s = b.param("s", f64t(&[]));
    let x = b.param("x", f64t(&[2, 3]));
    let w = b.param("W", f64t(&[3, 3]));
    let v = b.param("v", f64t(&[3]));
    let hw = b.matmul(h, w, false, false).unwrap();
    let cb = b.broadcast(c, [2, 3].into(), vec![1]).unwrap();
    let pre = b.add(hw, x).unwrap();
    let pre = b.add(pre, cb).unwrap();
    let h2 = b.unary(UnaryOp::Tanh, pre).unwrap();
    let decay = b.splat(f64t(&[3]), 0.9);
    let cd = b.mul(c, decay).unwrap();
    let hs = b.reduce(ReduceOp::Sum, h2, vec![0]).unwrap();
    let hv = b.mul(hs, v).unwrap();
    let c2 = b.add(cd, hv).unwrap();
    let c2 = b.unary(UnaryOp::Tanh, c2).unwrap();
    let hh = b.mul(h2, h2).unwrap();
    let e = b.reduce(ReduceOp::Sum, hh, vec![0, 1]).unwrap();
    let k = b.splat(f64t(&[]), 0.01);
    let e = b.mul(e, k).unwrap();
    let s2 = b.add(s, e).unwrap();
    let y = b.unary(UnaryOp::Sigmoid, h2).unwrap();
    b.finish(
        [("h", h2), ("c", c2), ("s", s2), ("y", y), ("ys", s2)].map(|(n, v)| (n.to_string(), v)),
    )
}

fn rich_loss(t: usize, reverse: bool) -> Function {
    let mut b = FunctionBuilder::new(format!("rich_t{t}"));
    let h0 = b.param("h0", f64t(&[2, 3]));
    let c0 = b.param("c0", f64t(&[3]));
    let s0 = b.param("s0", f64t(&[]));
    let xs = b.param("xs", f64t(&[t, 2, 3]));
    let w = b.param("W", f64t(&[3, 3]));
    let v = b.param("v", f64t(&[3]));
    let r = scan(
        &mut b,
        rich_body(),
        t,
        3,
        1,
        reverse,
        &[h0, c0, s0, xs, w, v],
    );
    let parts: Vec<ValueId> = r.iter().map(|&x| weighted_sum(&mut b, x)).collect();
    let mut l = parts[0];
    for p in &parts[1..] {
        l = b.add(l, *p).unwrap();
    }
    finish(b, l)
}

fn rich_inputs(t: usize) -> Vec<Tensor> {
    vec![
        tensor(1, &[2, 3], -1.0, 1.0),
        tensor(2, &[3], -1.0, 1.0),
        Tensor::scalar_f64(0.3),
        tensor(3, &[t, 2, 3], -1.0, 1.0),
        tensor(4, &[3, 3], -0.6, 0.6),
        tensor(5, &[3], -1.0, 1.0),
    ]
}

#[test]
fn scan_lengths_1_2_50_with_nested_carries() {
    for t in [1, 2, 50] {
        for reverse in [false, true] {
            let f = rich_loss(t, reverse);
            assert_grad(&f, &[0, 1, 2, 3, 4, 5], &rich_inputs(t), 1e-6);
        }
    }
}

/// BPTT is one forward and one reverse scan; the residuals are stacked carries [T, ..].
#[test]
fn scan_vjp_is_one_forward_and_one_reverse_scan() {
    let t = 50;
    let g = grad(&rich_loss(t, false), &[0, 1, 2, 3, 4, 5]).unwrap();
    let scans: Vec<&Scan> = g
        .insts
        .iter()
        .filter_map(|i| {
            if let Op::Scan(s) = &i.op {
                Some(&**s)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(scans.len(), 2);
    let (fwd, bwd) = (scans[0], scans[1]);
    assert!(!fwd.reverse && bwd.reverse);
    // Forward: the carries, the ys the gradient does not need are pruned, plus the saved
    // carries h and c (s is never read backwards).
    let outs: Vec<String> = fwd
        .body
        .outputs
        .iter()
        .map(|o| format!("{}: {}", o.name, fwd.body.ty(o.value)))
        .collect();
    assert_eq!(
        outs,
        [
            "h: f64[2,3]",
            "c: f64[3]",
            "s: f64[]",
            "res_h: f64[2,3]",
            "res_c: f64[3]"
        ]
    );
    let fwd_inst = g
        .insts
        .iter()
        .find(|i| matches!(&i.op, Op::Scan(s) if !s.reverse))
        .unwrap();
    assert_eq!(g.ty(fwd_inst.results[3]).to_string(), "f64[50,2,3]");
    // Backward: carries ct_h, ct_c, ct_s, acc_W, acc_v; ys: grad of x_t.
    let carries: Vec<String> = bwd.body.params[..bwd.num_carry]
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(carries, ["ct_h", "ct_c", "ct_s", "acc_W", "acc_v"]);
    assert_eq!(bwd.body.outputs.len() - bwd.num_carry, 1);
    // No body is copied per step: the whole gradient is small.
    assert!(g.op_count() < 150, "{} ops", g.op_count());
}

/// A scan inside a scan body (a two-level time loop).
#[test]
fn nested_scan() {
    // inner: carry a: [2], x: [2] -> a' = tanh(a * w + x), y = a'
    let mut ib = FunctionBuilder::new("inner");
    let a = ib.param("a", f64t(&[2]));
    let x = ib.param("x", f64t(&[2]));
    let w = ib.param("w", f64t(&[2]));
    let aw = ib.mul(a, w).unwrap();
    let p = ib.add(aw, x).unwrap();
    let a2 = ib.unary(UnaryOp::Tanh, p).unwrap();
    let inner = ib.finish([("a".to_string(), a2), ("y".to_string(), a2)]);
    // outer: carry h: [2]; xs: [3, 2] per outer step; const w
    let mut ob = FunctionBuilder::new("outer");
    let h = ob.param("h", f64t(&[2]));
    let xs = ob.param("xs", f64t(&[3, 2]));
    let w = ob.param("w", f64t(&[2]));
    let r = scan(&mut ob, inner, 3, 1, 1, false, &[h, xs, w]);
    let ysum = ob.reduce(ReduceOp::Sum, r[1], vec![0]).unwrap();
    let outer = ob.finish([("h".to_string(), r[0]), ("y".to_string(), ysum)]);
    let mut b = FunctionBuilder::new("nested");
    let h0 = b.param("h0", f64t(&[2]));
    let xss = b.param("xss", f64t(&[4, 3, 2]));
    let w = b.param("w", f64t(&[2]));
    let r = scan(&mut b, outer, 4, 1, 1, true, &[h0, xss, w]);
    let l1 = weighted_sum(&mut b, r[0]);
    let l2 = weighted_sum(&mut b, r[1]);
    let l = b.add(l1, l2).unwrap();
    let f = finish(b, l);
    let ins = [
        tensor(1, &[2], -1.0, 1.0),
        tensor(2, &[4, 3, 2], -1.0, 1.0),
        tensor(3, &[2], -1.0, 1.0),
    ];
    assert_grad(&f, &[0, 1, 2], &ins, 1e-6);
}

/// An i32 step counter and a carry that does not depend on the parameters are fine: they get
/// no cotangent carry and the gradient is still right.
#[test]
fn scan_with_integer_and_inactive_carries() {
    let mut bb = FunctionBuilder::new("body");
    let n = bb.param("n", TensorType::new(DType::I32, [0usize; 0]));
    let z = bb.param("z", f64t(&[3]));
    let h = bb.param("h", f64t(&[3]));
    let x = bb.param("x", f64t(&[3]));
    let w = bb.param("w", f64t(&[3]));
    let one = bb.scalar(DType::I32, 1.0);
    let n2 = bb.add(n, one).unwrap();
    let nf = bb.cast(n2, DType::F64).unwrap();
    let nb = bb.broadcast(nf, [3].into(), vec![]).unwrap();
    let z2 = bb.add(z, x).unwrap(); // independent of w and h
    let hw = bb.mul(h, w).unwrap();
    let hz = bb.mul(hw, z2).unwrap();
    let k = bb.splat(f64t(&[3]), 0.1);
    let hz = bb.mul(hz, k).unwrap();
    let h2 = bb.add(hz, nb).unwrap();
    let h2 = bb.unary(UnaryOp::Tanh, h2).unwrap();
    let body =
        bb.finish([("n", n2), ("z", z2), ("h", h2), ("y", z2)].map(|(a, v)| (a.to_string(), v)));
    let mut b = FunctionBuilder::new("counters");
    let h0 = b.param("h0", f64t(&[3]));
    let xs = b.param("xs", f64t(&[6, 3]));
    let w = b.param("w", f64t(&[3]));
    let n0 = b.scalar(DType::I32, 0.0);
    let z0 = b.splat(f64t(&[3]), 0.5);
    let r = scan(&mut b, body, 6, 3, 1, false, &[n0, z0, h0, xs, w]);
    let l = weighted_sum(&mut b, r[2]);
    let f = finish(b, l);
    let ins = [
        tensor(1, &[3], -1.0, 1.0),
        tensor(2, &[6, 3], -0.3, 0.3),
        tensor(3, &[3], -1.0, 1.0),
    ];
    assert_grad(&f, &[0, 1, 2], &ins, 1e-6);
    let g = grad(&f, &[0, 2]).unwrap();
    let bwd = g
        .insts
        .iter()
        .find_map(|i| match &i.op {
            Op::Scan(s) if s.reverse => Some(s),
            _ => None,
        })
        .unwrap();
    let carries: Vec<&str> = bwd.body.params[..bwd.num_carry]
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(carries, ["ct_h", "acc_w"]);
}

/// Vanilla RNN, relu, MSE over all steps: `h_t = relu(x_t Wi + h_{t-1} Wh + b)`.
fn rnn_loss(batch: usize, t: usize, n_in: usize, hidden: usize, batch_first: bool) -> Function {
    let mut bb = FunctionBuilder::new("rnn_cell");
    let h = bb.param("h", f64t(&[batch, hidden]));
    let x = bb.param("x", f64t(&[batch, n_in]));
    let tg = bb.param("target", f64t(&[batch, hidden]));
    let wi = bb.param("Wi", f64t(&[n_in, hidden]));
    let wh = bb.param("Wh", f64t(&[hidden, hidden]));
    let bias = bb.param("b", f64t(&[hidden]));
    let a = bb.matmul(x, wi, false, false).unwrap();
    let c = bb.matmul(h, wh, false, false).unwrap();
    let s = bb.add(a, c).unwrap();
    let bb2 = bb.broadcast(bias, [batch, hidden].into(), vec![1]).unwrap();
    let s = bb.add(s, bb2).unwrap();
    let zero = bb.splat(f64t(&[batch, hidden]), 0.0);
    let h2 = bb.binary(brainlift_ir::BinaryOp::Max, s, zero).unwrap();
    let d = bb.sub(h2, tg).unwrap();
    let sq = bb.mul(d, d).unwrap();
    let e = bb.reduce(ReduceOp::Sum, sq, vec![0, 1]).unwrap();
    let body = bb.finish([("h".to_string(), h2), ("err".to_string(), e)]);

    let mut b = FunctionBuilder::new("rnn_loss");
    let (xs_shape, tg_shape) = if batch_first {
        (vec![batch, t, n_in], vec![batch, t, hidden])
    } else {
        (vec![t, batch, n_in], vec![t, batch, hidden])
    };
    let xs = b.param("x", f64t(&xs_shape));
    let tgs = b.param("target", f64t(&tg_shape));
    let wi = b.param("Wi", f64t(&[n_in, hidden]));
    let wh = b.param("Wh", f64t(&[hidden, hidden]));
    let bias = b.param("b", f64t(&[hidden]));
    let h0 = b.param("h0", f64t(&[batch, hidden]));
    let (xs, tgs) = if batch_first {
        (
            b.push1(Op::Transpose(vec![1, 0, 2]), &[xs]).unwrap(),
            b.push1(Op::Transpose(vec![1, 0, 2]), &[tgs]).unwrap(),
        )
    } else {
        (xs, tgs)
    };
    let r = scan(&mut b, body, t, 1, 2, false, &[h0, xs, tgs, wi, wh, bias]);
    let tot = b.reduce(ReduceOp::Sum, r[1], vec![0]).unwrap();
    let n = b.scalar(DType::F64, (batch * t * hidden) as f64);
    let l = b.div(tot, n).unwrap();
    finish(b, l)
}

#[test]
fn rnn_mse_gradient_matches_finite_differences() {
    let (batch, t, hidden) = (4, 25, 16);
    let f = rnn_loss(batch, t, 1, hidden, false);
    let ins = vec![
        tensor(1, &[t, batch, 1], -1.0, 1.0),
        tensor(2, &[t, batch, hidden], -0.5, 0.5),
        tensor(3, &[1, hidden], -0.8, 0.8),
        tensor(4, &[hidden, hidden], -0.2, 0.2),
        tensor(5, &[hidden], -0.1, 0.2),
        tensor(6, &[batch, hidden], 0.0, 1.0),
    ];
    assert_grad(&f, &[2, 3, 4, 5], &ins, 1e-6);
}

fn golden(name: &str) -> Tensor {
    read_npy(format!(
        "{}/tests/data/rnn/{name}.npy",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The BrainPy RNNCell(1, 8) golden: hidden states, loss and d loss / d (Wi, Wh, b).
#[test]
fn golden_rnn_gradients() {
    let f = rnn_loss(2, 25, 1, 8, true);
    let ins = vec![
        golden("x"),
        golden("target"),
        golden("Wi"),
        golden("Wh"),
        golden("b"),
        Tensor::zeros(f64t(&[2, 8])),
    ];
    let vg = brainlift_compiler::ad::value_and_grad(&f, &[2, 3, 4]).unwrap();
    let out = interpret(&vg, &ins).unwrap();
    let loss = out[0].item().unwrap();
    assert!(
        (loss - 2.8118580623089575).abs() <= 1e-12 * 2.8118580623089575,
        "loss {loss}"
    );
    for (k, name) in ["grad_Wi", "grad_Wh", "grad_b"].iter().enumerate() {
        let want = golden(name).to_f64_vec();
        let got = out[k + 1].to_f64_vec();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-10 * b.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
}

/// A spiking layer over time: bool input spikes `xs: [T, B, I]` into weights `W: [I, N]`,
/// `g' = 0.9 g + x_t W`, `y = tanh(g')`. The gradient w.r.t. `W` and `g0` matches finite
/// differences; lowered for the JIT, the per-step weight-gradient accumulator
/// `acc += x_t^T dg` becomes ONE bool-lhs product over the merged `[T*B]` axis that reads the
/// stacked spikes themselves (no f64 copy, no cast), and the JIT agrees with the interpreter.
#[test]
fn bool_spike_scan_gradient_and_hoisted_weight_gradient() {
    use brainlift_compiler::pipeline::{GradRequest, Lowering, PipelineConfig, run_pipeline};
    let (t, bsz, ni, nn) = (7, 6, 9, 4);
    let bool_t = |d: &[usize]| TensorType::new(DType::Bool, d);
    let mut bb = FunctionBuilder::new("body");
    let g = bb.param("g", f64t(&[bsz, nn]));
    let x = bb.param("x", bool_t(&[bsz, ni]));
    let w = bb.param("W", f64t(&[ni, nn]));
    let decay = bb.splat(f64t(&[bsz, nn]), 0.9);
    let gd = bb.mul(g, decay).unwrap();
    let xw = bb.matmul(x, w, false, false).unwrap();
    let g2 = bb.add(gd, xw).unwrap();
    let y = bb.unary(UnaryOp::Tanh, g2).unwrap();
    let body = bb.finish([("g".to_string(), g2), ("y".to_string(), y)]);
    let mut b = FunctionBuilder::new("spike_layer");
    let g0 = b.param("g0", f64t(&[bsz, nn]));
    let xs = b.param("xs", bool_t(&[t, bsz, ni]));
    let w = b.param("W", f64t(&[ni, nn]));
    let r = scan(&mut b, body, t, 1, 1, false, &[g0, xs, w]);
    let l = weighted_sum(&mut b, r[1]);
    let f = finish(b, l);
    let spikes: Vec<bool> = (0..t * bsz * ni).map(|i| (i * 13 + 5) % 11 < 2).collect();
    let inputs = [
        tensor(1, &[bsz, nn], -0.5, 0.5),
        Tensor::from_bool([t, bsz, ni], &spikes).unwrap(),
        tensor(2, &[ni, nn], -0.5, 0.5),
    ];
    assert_grad(&f, &[0, 2], &inputs, 1e-6);

    let cfg = PipelineConfig {
        grad: Some(GradRequest::ValueAndGrad(vec![0, 2])),
        lower: Some(Lowering { reassociate: true }),
        unroll_threshold: None,
        ..Default::default()
    };
    let lowered = run_pipeline(&f, &cfg).unwrap().output().clone();
    let text = lowered.to_string();
    // One reverse scan without the W accumulator; the hoisted product reads reshaped xs.
    let merged = format!("bool[{},{ni}] = reshape %xs", t * bsz);
    assert!(text.contains(&merged), "{text}");
    let hoisted = lowered.insts.iter().find(|i| {
        matches!(
            i.op,
            Op::Matmul {
                transpose_lhs: true,
                ..
            }
        ) && lowered.ty(i.args[0]).dtype == DType::Bool
            && lowered.ty(i.args[0]).dims() == [t * bsz, ni]
    });
    assert!(hoisted.is_some(), "no hoisted bool product: {text}");
    assert!(!text.contains("cast"), "{text}");
    assert!(!text.contains(&format!("f64[{t},{bsz},{ni}]")), "{text}");
    for i in &lowered.insts {
        if let Op::Scan(s) = &i.op {
            assert!(
                s.body.params[..s.num_carry]
                    .iter()
                    .all(|p| p.ty.dims() != [ni, nn]),
                "a W-shaped carry is left: {text}"
            );
        }
    }
    let want = interpret(&lowered, &inputs).unwrap();
    let jit = brainlift_runtime::compile(&lowered, brainlift_runtime::Backend::Jit)
        .unwrap()
        .run(&inputs)
        .unwrap();
    let reference = interpret(
        &brainlift_compiler::ad::value_and_grad(&f, &[0, 2]).unwrap(),
        &inputs,
    )
    .unwrap();
    for ((a, b), c) in want.iter().zip(&jit).zip(&reference) {
        for ((x, y), z) in a
            .to_f64_vec()
            .iter()
            .zip(b.to_f64_vec())
            .zip(c.to_f64_vec())
        {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} vs jit {y}");
            assert!(
                (x - z).abs() <= 1e-12 * x.abs().max(1.0),
                "{x} vs unlowered {z}"
            );
        }
    }
}
