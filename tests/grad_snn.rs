//! Custom VJPs inside time loops: a LIF neuron with the surrogate spike function matches a
//! hand-written BPTT reference, a smooth custom_vjp inside a scan matches finite differences,
//! and f32 gradients agree with f64 ones.

mod common;

use brainlift_compiler::ad::grad;
use brainlift_compiler::surrogate::Surrogate;
use brainlift_ir::{
    CustomVjp, DType, Function, FunctionBuilder, Op, ReduceOp, Scan, TensorType, UnaryOp,
};
use brainlift_runtime::{Tensor, interpret};
use common::*;

/// LIF with soft reset (spec §6, tutorial parameters): `V' = V + k (I_t - V)`,
/// `s = H(V' - 1)` (surrogate `sur`), `V <- V' - s`; loss = `sum_t <w_t, s_t>`.
fn lif_loss(t: usize, n: usize, sur: Surrogate) -> Function {
    let ty = f64t(&[n]);
    let k = 1.0 - (-0.1f64).exp();
    let mut bb = FunctionBuilder::new("lif_step");
    let v = bb.param("V", ty.clone());
    let i = bb.param("I", ty.clone());
    let kc = bb.splat(ty.clone(), k);
    let d = bb.sub(i, v).unwrap();
    let kd = bb.mul(kc, d).unwrap();
    let v1 = bb.add(v, kd).unwrap();
    let one = bb.splat(ty.clone(), 1.0);
    let u = bb.sub(v1, one).unwrap();
    let s = bb
        .push1(Op::CustomVjp(Box::new(sur.build(&ty))), &[u])
        .unwrap();
    let v2 = bb.sub(v1, s).unwrap();
    let body = bb.finish([("V".to_string(), v2), ("s".to_string(), s)]);
    let mut b = FunctionBuilder::new("lif_loss");
    let cur = b.param("I", f64t(&[t, n]));
    let w = b.param("w", f64t(&[t, n]));
    let v0 = b.splat(ty, 0.0);
    let scan = Scan {
        length: t,
        num_carry: 1,
        num_xs: 1,
        reverse: false,
        body,
    };
    let r = b.push(Op::Scan(Box::new(scan)), &[v0, cur]).unwrap();
    let sw = b.mul(r[1], w).unwrap();
    let l = b.reduce(ReduceOp::Sum, sw, vec![0, 1]).unwrap();
    finish(b, l)
}

/// Hand-written BPTT for [`lif_loss`] (d loss / d I).
fn lif_reference(cur: &[f64], w: &[f64], t: usize, n: usize, sur: Surrogate) -> Vec<f64> {
    let k = 1.0 - (-0.1f64).exp();
    let mut v = vec![0.0; n];
    let mut v1s = vec![0.0; t * n];
    for s in 0..t {
        for j in 0..n {
            let v1 = v[j] + k * (cur[s * n + j] - v[j]);
            v1s[s * n + j] = v1;
            v[j] = v1 - if v1 - 1.0 >= 0.0 { 1.0 } else { 0.0 };
        }
    }
    let mut g_v = vec![0.0; n];
    let mut g_i = vec![0.0; t * n];
    for s in (0..t).rev() {
        for j in 0..n {
            let gs = w[s * n + j] - g_v[j];
            let gv1 = g_v[j] + gs * sur.derivative(v1s[s * n + j] - 1.0);
            g_i[s * n + j] = k * gv1;
            g_v[j] = (1.0 - k) * gv1;
        }
    }
    g_i
}

#[test]
fn lif_surrogate_gradient_matches_hand_written_bptt() {
    let (t, n) = (20, 5);
    for sur in [
        Surrogate::default(),
        Surrogate::Sigmoid { alpha: 4.0 },
        Surrogate::PiecewiseLinear { width: 0.5 },
        Surrogate::Arctan { alpha: 2.0 },
        Surrogate::FastSigmoid { alpha: 10.0 },
    ] {
        let f = lif_loss(t, n, sur);
        let cur = tensor(1, &[t, n], 0.0, 3.0);
        let w = tensor(2, &[t, n], -1.0, 1.0);
        let g = grad(&f, &[0]).unwrap();
        let out = interpret(&g, &[cur.clone(), w.clone()]).unwrap();
        let want = lif_reference(&cur.to_f64_vec(), &w.to_f64_vec(), t, n, sur);
        let spikes: f64 = {
            let fwd = interpret(
                &f,
                &[
                    cur.clone(),
                    Tensor::from_f64(vec![t, n], vec![1.0; t * n]).unwrap(),
                ],
            )
            .unwrap();
            fwd[0].item().unwrap()
        };
        assert!(spikes > 5.0, "the test must actually spike ({spikes})");
        for (a, b) in out[0].to_f64_vec().iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{sur:?}: {a} vs {b}"
            );
        }
    }
}

/// A custom_vjp whose backward is the true derivative (softplus, backward g*sigmoid) inside
/// a scan: the gradient must match finite differences.
#[test]
fn smooth_custom_vjp_in_scan_matches_finite_differences() {
    let ty = f64t(&[3]);
    let mut fb = FunctionBuilder::new("forward");
    let u = fb.param("u", ty.clone());
    let e = fb.unary(UnaryOp::Exp, u).unwrap();
    let one = fb.splat(ty.clone(), 1.0);
    let p = fb.add(one, e).unwrap();
    let sp = fb.unary(UnaryOp::Log, p).unwrap();
    let forward = fb.finish([("y".to_string(), sp)]);
    let mut bw = FunctionBuilder::new("backward");
    let u = bw.param("u", ty.clone());
    let g = bw.param("g", ty.clone());
    let s = bw.unary(UnaryOp::Sigmoid, u).unwrap();
    let du = bw.mul(g, s).unwrap();
    let backward = bw.finish([("du".to_string(), du)]);
    let softplus = CustomVjp {
        name: "softplus".into(),
        forward,
        backward,
    };

    let mut bb = FunctionBuilder::new("body");
    let h = bb.param("h", ty.clone());
    let x = bb.param("x", ty.clone());
    let w = bb.param("w", ty.clone());
    let hw = bb.mul(h, w).unwrap();
    let a = bb.add(hw, x).unwrap();
    let y = bb.push1(Op::CustomVjp(Box::new(softplus)), &[a]).unwrap();
    let half = bb.splat(ty.clone(), 0.5);
    let y = bb.mul(y, half).unwrap();
    let body = bb.finish([("h".to_string(), y), ("y".to_string(), y)]);
    let mut b = FunctionBuilder::new("softplus_rnn");
    let h0 = b.param("h0", ty.clone());
    let xs = b.param("xs", f64t(&[7, 3]));
    let w = b.param("w", ty);
    let scan = Scan {
        length: 7,
        num_carry: 1,
        num_xs: 1,
        reverse: false,
        body,
    };
    let r = b.push(Op::Scan(Box::new(scan)), &[h0, xs, w]).unwrap();
    let l = weighted_sum(&mut b, r[1]);
    let f = finish(b, l);
    let ins = [
        tensor(1, &[3], -1.0, 1.0),
        tensor(2, &[7, 3], -1.0, 1.0),
        tensor(3, &[3], -1.0, 1.0),
    ];
    assert_grad(&f, &[0, 1, 2], &ins, 1e-6);
}

/// f32 functions differentiate to f32 gradients that agree with the f64 gradient.
#[test]
fn f32_gradient_agrees_with_f64() {
    let build = |dt: DType| {
        let ty = TensorType::new(dt, [6]);
        let mut b = FunctionBuilder::new("chain");
        let x = b.param("x", ty.clone());
        let e = b.unary(UnaryOp::Exp, x).unwrap();
        let m = b.mul(e, x).unwrap();
        let t = b.unary(UnaryOp::Tanh, m).unwrap();
        let l = b.reduce(ReduceOp::Sum, t, vec![0]).unwrap();
        b.finish([("l".to_string(), l)])
    };
    let x = vals(4, 6, -1.0, 1.0, &[], 0.0);
    let g64 = interpret(
        &grad(&build(DType::F64), &[0]).unwrap(),
        &[Tensor::from_f64(vec![6], x.clone()).unwrap()],
    )
    .unwrap();
    let x32 = Tensor::from_f32(vec![6], x.iter().map(|&v| v as f32).collect()).unwrap();
    let g32 = interpret(&grad(&build(DType::F32), &[0]).unwrap(), &[x32]).unwrap();
    assert_eq!(g32[0].dtype(), DType::F32);
    for (a, b) in g32[0].to_f64_vec().iter().zip(g64[0].to_f64_vec()) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}
