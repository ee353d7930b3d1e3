//! Finite-difference checks of the VJP rule of every differentiable op (f64, error <= 1e-6),
//! exact checks for ties, non-differentiable paths and stop_gradient, and AD errors.

mod common;

use brainlift_compiler::ad::{AdError, grad, value_and_grad, vjp};
use brainlift_ir::{
    BinaryOp, CompareOp, DType, FunctionBuilder, Op, ReduceOp, TensorType, UnaryOp,
};
use brainlift_runtime::{Tensor, interpret};
use common::*;

const TOL: f64 = 1e-6;

#[test]
fn unary_ops() {
    for (k, u) in UnaryOp::ALL.into_iter().enumerate() {
        if u == UnaryOp::Sign {
            continue;
        }
        let mut b = FunctionBuilder::new(u.name());
        let x = b.param("x", f64t(&[3, 4]));
        let y = b.unary(u, x).unwrap();
        let l = weighted_sum(&mut b, y);
        let f = finish(b, l);
        let positive = matches!(u, UnaryOp::Log | UnaryOp::Sqrt);
        let xin = if positive {
            tensor(k as u64, &[3, 4], 0.2, 2.0)
        } else {
            tensor_nz(k as u64, &[3, 4])
        };
        assert_grad(&f, &[0], &[xin], TOL);
    }
}

#[test]
fn binary_ops() {
    for (k, o) in BinaryOp::ALL.into_iter().enumerate() {
        let mut b = FunctionBuilder::new(o.name());
        let x = b.param("x", f64t(&[2, 5]));
        let y = b.param("y", f64t(&[2, 5]));
        let z = b.binary(o, x, y).unwrap();
        let l = weighted_sum(&mut b, z);
        let f = finish(b, l);
        let s = 10 * k as u64;
        let (xin, yin) = match o {
            BinaryOp::Pow => (
                tensor(s, &[2, 5], 0.3, 2.0),
                tensor(s + 1, &[2, 5], -1.5, 1.5),
            ),
            BinaryOp::Div => (tensor(s, &[2, 5], -1.0, 1.0), tensor_nz(s + 1, &[2, 5])),
            // max/min: keep the operands apart (no ties).
            BinaryOp::Max | BinaryOp::Min => {
                let xv = vals(s, 10, -1.0, 1.0, &[], 0.0);
                let yv: Vec<f64> = xv
                    .iter()
                    .enumerate()
                    .map(|(i, x)| if i % 2 == 0 { x + 0.3 } else { x - 0.4 })
                    .collect();
                (
                    Tensor::from_f64(vec![2, 5], xv).unwrap(),
                    Tensor::from_f64(vec![2, 5], yv).unwrap(),
                )
            }
            _ => (
                tensor(s, &[2, 5], -1.0, 1.0),
                tensor(s + 1, &[2, 5], -1.0, 1.0),
            ),
        };
        assert_grad(&f, &[0, 1], &[xin, yin], TOL);
    }
}

/// `max`/`min` split the cotangent 0.5/0.5 at ties, like JAX; `max(x, x)` has gradient 1.
#[test]
fn max_min_ties_split_evenly() {
    for o in [BinaryOp::Max, BinaryOp::Min] {
        let mut b = FunctionBuilder::new("tie");
        let x = b.param("x", f64t(&[3]));
        let y = b.param("y", f64t(&[3]));
        let z = b.binary(o, x, y).unwrap();
        let zz = b.binary(o, x, x).unwrap();
        let s = b.add(z, zz).unwrap();
        let l = b.reduce(ReduceOp::Sum, s, vec![0]).unwrap();
        let g = grad(&finish(b, l), &[0, 1]).unwrap();
        let xs = Tensor::from_f64(vec![3], vec![1.0, 2.0, 3.0]).unwrap();
        let ys = Tensor::from_f64(vec![3], vec![1.0, 5.0, -3.0]).unwrap();
        let out = interpret(&g, &[xs, ys]).unwrap();
        let (gx, gy) = if o == BinaryOp::Max {
            (vec![1.5, 1.0, 2.0], vec![0.5, 1.0, 0.0])
        } else {
            (vec![1.5, 2.0, 1.0], vec![0.5, 0.0, 1.0])
        };
        assert_eq!(out[0].as_f64().unwrap(), gx.as_slice(), "{}", o.name());
        assert_eq!(out[1].as_f64().unwrap(), gy.as_slice(), "{}", o.name());
    }
}

fn layout_case(name: &str, in_shape: &[usize], op: Op) {
    let mut b = FunctionBuilder::new(name);
    let x = b.param("x", f64t(in_shape));
    let y = b.push1(op, &[x]).unwrap();
    let l = weighted_sum(&mut b, y);
    let f = finish(b, l);
    assert_grad(&f, &[0], &[tensor(7, in_shape, -1.0, 1.0)], TOL);
}

#[test]
fn layout_ops() {
    layout_case(
        "bcast_new_axis",
        &[3],
        Op::Broadcast {
            shape: [2, 3].into(),
            dims: vec![1],
        },
    );
    layout_case(
        "bcast_stretch",
        &[3, 1],
        Op::Broadcast {
            shape: [3, 4].into(),
            dims: vec![0, 1],
        },
    );
    layout_case(
        "bcast_both",
        &[1, 3],
        Op::Broadcast {
            shape: [2, 4, 3].into(),
            dims: vec![1, 2],
        },
    );
    layout_case(
        "bcast_scalar",
        &[],
        Op::Broadcast {
            shape: [2, 3].into(),
            dims: vec![],
        },
    );
    layout_case("reshape", &[2, 6], Op::Reshape([3, 2, 2].into()));
    layout_case("transpose", &[2, 3, 4], Op::Transpose(vec![2, 0, 1]));
    layout_case(
        "slice",
        &[4, 5],
        Op::Slice {
            start: vec![1, 0],
            end: vec![3, 4],
        },
    );
    layout_case(
        "pad",
        &[2, 3],
        Op::Pad {
            low: vec![1, 0],
            high: vec![0, 2],
        },
    );
    layout_case(
        "reduce_sum",
        &[2, 3, 4],
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![0, 2],
        },
    );
    layout_case(
        "reduce_max",
        &[3, 4],
        Op::Reduce {
            op: ReduceOp::Max,
            axes: vec![1],
        },
    );
    layout_case(
        "reduce_min",
        &[3, 4],
        Op::Reduce {
            op: ReduceOp::Min,
            axes: vec![0, 1],
        },
    );
    layout_case(
        "cumsum",
        &[3, 4],
        Op::Cumsum {
            axis: 1,
            reverse: false,
        },
    );
    layout_case(
        "cumsum_rev",
        &[3, 4],
        Op::Cumsum {
            axis: 0,
            reverse: true,
        },
    );
}

#[test]
fn concat_three_operands() {
    let mut b = FunctionBuilder::new("concat");
    let x = b.param("x", f64t(&[2, 1]));
    let y = b.param("y", f64t(&[2, 3]));
    let z = b.param("z", f64t(&[2, 2]));
    let c = b.push1(Op::Concat { axis: 1 }, &[x, y, z]).unwrap();
    let l = weighted_sum(&mut b, c);
    let f = finish(b, l);
    let ins = [
        tensor(1, &[2, 1], -1.0, 1.0),
        tensor(2, &[2, 3], -1.0, 1.0),
        tensor(3, &[2, 2], -1.0, 1.0),
    ];
    assert_grad(&f, &[0, 1, 2], &ins, TOL);
}

/// `reduce_max` sends the cotangent to every maximal position, divided by their count.
#[test]
fn reduce_max_ties_share() {
    let mut b = FunctionBuilder::new("rmax");
    let x = b.param("x", f64t(&[2, 3]));
    let m = b.reduce(ReduceOp::Max, x, vec![1]).unwrap();
    let l = weighted_sum(&mut b, m);
    let f = finish(b, l);
    let g = grad(&f, &[0]).unwrap();
    let xs = Tensor::from_f64(vec![2, 3], vec![2.0, 1.0, 2.0, 0.0, 3.0, -1.0]).unwrap();
    let out = interpret(&g, &[xs]).unwrap();
    let w = vals(99, 2, 0.5, 1.5, &[], 0.0);
    assert_eq!(
        out[0].as_f64().unwrap(),
        &[w[0] / 2.0, 0.0, w[0] / 2.0, 0.0, w[1], 0.0]
    );
}

#[test]
fn matmul_all_transpose_flags_and_batch() {
    for (tl, tr) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (2, 3, 4);
        let a_shape = if tl { [5, k, m] } else { [5, m, k] };
        let b_shape = if tr { [5, n, k] } else { [5, k, n] };
        let mut b = FunctionBuilder::new("mm");
        let a = b.param("a", f64t(&a_shape));
        let c = b.param("b", f64t(&b_shape));
        let p = b.matmul(a, c, tl, tr).unwrap();
        let l = weighted_sum(&mut b, p);
        let f = finish(b, l);
        assert_grad(
            &f,
            &[0, 1],
            &[
                tensor(1, &a_shape, -1.0, 1.0),
                tensor(2, &b_shape, -1.0, 1.0),
            ],
            TOL,
        );
        // No explicit transpose op: the flags carry it.
        let g = grad(&f, &[0, 1]).unwrap();
        assert!(g.insts.iter().all(|i| !matches!(i.op, Op::Transpose(_))));
    }
}

/// Spikes into weights: a `bool` lhs (0/1, not differentiable) times a float rhs, every
/// transpose layout and a batched product, w.r.t. the rhs against finite differences. The
/// rhs cotangent is again a bool-lhs product (no cast of the spikes anywhere), and asking
/// for the spikes' gradient is an error.
#[test]
fn matmul_bool_lhs_wrt_the_float_rhs() {
    let spikes = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let v: Vec<bool> = (0..n).map(|i| (i * 7 + 3) % 5 < 2).collect();
        Tensor::from_bool(shape.to_vec(), &v).unwrap()
    };
    for batch in [vec![], vec![3]] {
        for (tl, tr) in [(false, false), (true, false), (false, true), (true, true)] {
            let (m, k, n) = (4, 5, 3);
            let dims = |a: usize, b: usize| {
                let mut d = batch.clone();
                d.extend([a, b]);
                d
            };
            let a_shape = if tl { dims(k, m) } else { dims(m, k) };
            let b_shape = if tr { dims(n, k) } else { dims(k, n) };
            let mut b = FunctionBuilder::new("spike_mm");
            let s = b.param("s", TensorType::new(DType::Bool, a_shape.clone()));
            let w = b.param("w", f64t(&b_shape));
            let p = b.matmul(s, w, tl, tr).unwrap();
            let y = b.unary(UnaryOp::Tanh, p).unwrap();
            let l = weighted_sum(&mut b, y);
            let f = finish(b, l);
            let inputs = [spikes(&a_shape), tensor(5, &b_shape, -1.0, 1.0)];
            assert_grad(&f, &[1], &inputs, TOL);
            let g = grad(&f, &[1]).unwrap();
            assert!(
                g.insts.iter().all(|i| !matches!(i.op, Op::Cast(_))),
                "tl={tl} tr={tr}: {g}"
            );
            let bool_products = g
                .insts
                .iter()
                .filter(|i| {
                    matches!(i.op, Op::Matmul { .. }) && g.ty(i.args[0]).dtype == DType::Bool
                })
                .count();
            assert_eq!(bool_products, 2, "forward and rhs cotangent: {g}");
            // The gradient runs alike on the JIT (event-driven bool path).
            let want = interpret(&g, &inputs).unwrap();
            let got = brainlift_runtime::compile(&g, brainlift_runtime::Backend::Jit)
                .unwrap()
                .run(&inputs)
                .unwrap();
            for (a, b) in want[0].to_f64_vec().iter().zip(got[0].to_f64_vec()) {
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
            }
            let e = grad(&f, &[0]).unwrap_err();
            assert!(
                matches!(&e, AdError::NonFloatWrt { name, .. } if name == "s"),
                "{e}"
            );
        }
    }
}

#[test]
fn select_and_compare() {
    let mut b = FunctionBuilder::new("select");
    let x = b.param("x", f64t(&[3, 3]));
    let y = b.param("y", f64t(&[3, 3]));
    let z = b.splat(f64t(&[3, 3]), 0.0);
    let p = b.compare(CompareOp::Gt, x, z).unwrap();
    let xx = b.mul(x, x).unwrap();
    let s = b.select(p, xx, y).unwrap();
    let l = weighted_sum(&mut b, s);
    let f = finish(b, l);
    assert_grad(
        &f,
        &[0, 1],
        &[tensor_nz(4, &[3, 3]), tensor(5, &[3, 3], -1.0, 1.0)],
        TOL,
    );
}

/// f64 -> f32 -> f64 casts pass the cotangent through (cast back); casts to i32 stop it.
#[test]
fn cast_rules() {
    let mut b = FunctionBuilder::new("cast");
    let x = b.param("x", f64t(&[4]));
    let x32 = b.cast(x, DType::F32).unwrap();
    let back = b.cast(x32, DType::F64).unwrap();
    let xi = b.cast(x, DType::I32).unwrap();
    let xf = b.cast(xi, DType::F64).unwrap();
    let s = b.add(back, xf).unwrap();
    let two = b.splat(f64t(&[4]), 2.0);
    let s = b.mul(s, two).unwrap();
    let l = b.reduce(ReduceOp::Sum, s, vec![0]).unwrap();
    let g = grad(&finish(b, l), &[0]).unwrap();
    let out = interpret(&g, &[tensor(1, &[4], -3.0, 3.0)]).unwrap();
    assert_eq!(out[0].as_f64().unwrap(), &[2.0; 4]);
}

/// stop_gradient, sign, argmax, iota and comparisons give zero gradients, not errors.
#[test]
fn non_differentiable_paths_give_zero() {
    let mut b = FunctionBuilder::new("nondiff");
    let x = b.param("x", f64t(&[2, 3]));
    let w = b.param("w", f64t(&[2, 3]));
    let sg = b.push1(Op::StopGradient, &[x]).unwrap();
    let sg2 = b.mul(sg, sg).unwrap();
    let sgn = b.unary(UnaryOp::Sign, x).unwrap();
    let am = b.push1(Op::Argmax { axis: 1 }, &[x]).unwrap();
    let amf = b.cast(am, DType::F64).unwrap();
    let amb = b.broadcast(amf, [2, 3].into(), vec![0]).unwrap();
    let io = b
        .push1(
            Op::Iota {
                ty: f64t(&[2, 3]),
                axis: 1,
            },
            &[],
        )
        .unwrap();
    let s = b.add(sg2, sgn).unwrap();
    let s = b.add(s, amb).unwrap();
    let s = b.add(s, io).unwrap();
    let s = b.mul(s, w).unwrap();
    let l = b.reduce(ReduceOp::Sum, s, vec![0, 1]).unwrap();
    let f = finish(b, l);
    let g = grad(&f, &[0, 1]).unwrap();
    let (xs, ws) = (tensor_nz(3, &[2, 3]), tensor(4, &[2, 3], -1.0, 1.0));
    let out = interpret(&g, &[xs.clone(), ws]).unwrap();
    assert_eq!(out[0].as_f64().unwrap(), &[0.0; 6]);
    // d/dw = the (stopped) sum itself.
    let fv = interpret(
        &dce_value(&f),
        &[
            xs.clone(),
            Tensor::from_f64(vec![2, 3], vec![1.0; 6]).unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(out[1].as_f64().unwrap(), fv[0].as_f64().unwrap());
    // The x gradient is a constant zero: nothing is emitted for it.
    let gx = g.outputs[0].value;
    let def = g.insts.iter().find(|i| i.results.contains(&gx)).unwrap();
    assert!(
        matches!(def.op, Op::Constant(_)),
        "grad_x is computed by {}",
        def.op.name()
    );
}

/// `f` with the loss replaced by the multiplied-out sum `s / w`... (here: the summand before `* w`).
fn dce_value(f: &brainlift_ir::Function) -> brainlift_ir::Function {
    // The value multiplied by w is the 4th add result; return it instead of the loss.
    let mut g = f.clone();
    let mul = g
        .insts
        .iter()
        .rev()
        .find(|i| i.op == Op::Binary(BinaryOp::Mul))
        .unwrap();
    g.outputs[0].value = mul.args[0];
    g
}

#[test]
fn unrelated_branches_emit_nothing() {
    let mut b = FunctionBuilder::new("branches");
    let x = b.param("x", f64t(&[4]));
    let y = b.param("y", f64t(&[4]));
    let ex = b.unary(UnaryOp::Exp, x).unwrap();
    let ty = b.unary(UnaryOp::Tanh, y).unwrap();
    let s = b.add(ex, ty).unwrap();
    let l = b.reduce(ReduceOp::Sum, s, vec![0]).unwrap();
    let f = finish(b, l);
    let g = grad(&f, &[0]).unwrap();
    // Only exp and its cotangent path; nothing about tanh.
    assert!(g.insts.iter().all(|i| i.op != Op::Unary(UnaryOp::Tanh)));
    let names: Vec<&str> = g.insts.iter().map(|i| i.op.name()).collect();
    assert_eq!(names, ["exp", "constant", "broadcast", "mul"]);
}

#[test]
fn vjp_and_value_and_grad_signatures() {
    let mut b = FunctionBuilder::new("f");
    let x = b.param("x", f64t(&[3]));
    let e = b.unary(UnaryOp::Exp, x).unwrap();
    let l = b.reduce(ReduceOp::Sum, e, vec![0]).unwrap();
    let f = b.finish([("e".to_string(), e), ("l".to_string(), l)]);
    let v = vjp(&f, &[0]).unwrap();
    let ins: Vec<String> = v
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty))
        .collect();
    assert_eq!(ins, ["x: f64[3]", "ct_e: f64[3]", "ct_l: f64[]"]);
    let outs: Vec<&str> = v.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, ["e", "l", "grad_x"]);
    let xs = Tensor::from_f64(vec![3], vec![0.0, 1.0, 2.0]).unwrap();
    let out = interpret(
        &v,
        &[
            xs,
            Tensor::from_f64(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
            Tensor::scalar_f64(10.0),
        ],
    )
    .unwrap();
    let expect: Vec<f64> = [0.0f64, 1.0, 2.0]
        .iter()
        .zip([1.0, 2.0, 3.0])
        .map(|(x, c)| x.exp() * (c + 10.0))
        .collect();
    assert_eq!(out[2].as_f64().unwrap(), expect.as_slice());

    let mut b = FunctionBuilder::new("loss");
    let x = b.param("x", f64t(&[3]));
    let sq = b.mul(x, x).unwrap();
    let l = b.reduce(ReduceOp::Sum, sq, vec![0]).unwrap();
    let f = finish(b, l);
    let vg = value_and_grad(&f, &[0]).unwrap();
    let outs: Vec<&str> = vg.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, ["loss", "grad_x"]);
    let out = interpret(
        &vg,
        &[Tensor::from_f64(vec![3], vec![1.0, -2.0, 3.0]).unwrap()],
    )
    .unwrap();
    assert_eq!(out[0].item(), Some(14.0));
    assert_eq!(out[1].as_f64().unwrap(), &[2.0, -4.0, 6.0]);
}

#[test]
fn ad_errors_name_the_problem() {
    let mut b = FunctionBuilder::new("f");
    let x = b.param("x", f64t(&[3]));
    let _n = b.param("labels", TensorType::new(DType::I32, [3]));
    let l = b.reduce(ReduceOp::Sum, x, vec![0]).unwrap();
    let f = finish(b, l);
    let e = grad(&f, &[1]).unwrap_err();
    assert!(
        matches!(&e, AdError::NonFloatWrt { name, .. } if name == "labels"),
        "{e}"
    );
    assert!(
        e.to_string().contains("%labels") && e.to_string().contains("i32[3]"),
        "{e}"
    );
    assert!(matches!(
        grad(&f, &[2]).unwrap_err(),
        AdError::WrtOutOfRange {
            index: 2,
            count: 2,
            ..
        }
    ));
    assert!(matches!(
        grad(&f, &[0, 0]).unwrap_err(),
        AdError::DuplicateWrt { .. }
    ));
    assert_eq!(brainlift_compiler::ad::float_inputs(&f), [0]);
    assert_eq!(
        brainlift_compiler::ad::wrt_by_names(&f, &["x"]).unwrap(),
        [0]
    );
    let e = brainlift_compiler::ad::wrt_by_names(&f, &["h"]).unwrap_err();
    assert_eq!(e.to_string(), "@f: no input named %h (inputs: %x, %labels)");
    let e = brainlift_compiler::ad::wrt_by_names(&f, &["labels"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "@f: cannot differentiate with respect to input %labels of type i32[3]: only f32/f64 inputs have gradients"
    );
    let mut b = FunctionBuilder::new("vec_out");
    let x = b.param("x", f64t(&[3]));
    let f = b.finish([("y".to_string(), x)]);
    let e = grad(&f, &[0]).unwrap_err();
    assert!(e.to_string().contains("y: f64[3]"), "{e}");
}

/// A composition: log-softmax cross-entropy with a numerically stable logsumexp.
#[test]
fn composition_cross_entropy() {
    let mut b = FunctionBuilder::new("xent");
    let z = b.param("z", f64t(&[4, 3]));
    let t = b.param("t", f64t(&[4, 3]));
    let m = b.reduce(ReduceOp::Max, z, vec![1]).unwrap();
    let mb = b.broadcast(m, [4, 3].into(), vec![0]).unwrap();
    let zs = b.sub(z, mb).unwrap();
    let e = b.unary(UnaryOp::Exp, zs).unwrap();
    let se = b.reduce(ReduceOp::Sum, e, vec![1]).unwrap();
    let lse = b.unary(UnaryOp::Log, se).unwrap();
    let lse = b.add(lse, m).unwrap();
    let lb = b.broadcast(lse, [4, 3].into(), vec![0]).unwrap();
    let lp = b.sub(z, lb).unwrap();
    let tl = b.mul(t, lp).unwrap();
    let s = b.reduce(ReduceOp::Sum, tl, vec![0, 1]).unwrap();
    let l = b.unary(UnaryOp::Neg, s).unwrap();
    let f = finish(b, l);
    assert_grad(
        &f,
        &[0, 1],
        &[tensor(1, &[4, 3], -2.0, 2.0), tensor(2, &[4, 3], 0.0, 1.0)],
        TOL,
    );
}

/// The report names each input and the worst error; AD errors come through as `RuntimeError::Ad`.
#[test]
fn gradcheck_report_and_errors() {
    let mut b = FunctionBuilder::new("sq");
    let x = b.param("x", f64t(&[2]));
    let sq = b.mul(x, x).unwrap();
    let l = b.reduce(ReduceOp::Sum, sq, vec![0]).unwrap();
    let f = finish(b, l);
    let xs = Tensor::from_f64(vec![2], vec![1.0, -3.0]).unwrap();
    let r = brainlift_runtime::gradcheck::check_grad(&f, &[0], std::slice::from_ref(&xs)).unwrap();
    assert_eq!(r.value, 10.0);
    assert!(r.max_err < 1e-8, "{r}");
    let text = r.to_string();
    assert!(
        text.starts_with("x: max error") && text.contains("worst relative error"),
        "{text}"
    );
    let v = b_vec();
    let e = brainlift_runtime::gradcheck::check_grad(&v, &[0], &[xs]).unwrap_err();
    assert!(
        matches!(
            e,
            brainlift_runtime::RuntimeError::Ad(AdError::NotScalarLoss { .. })
        ),
        "{e}"
    );
}

fn b_vec() -> brainlift_ir::Function {
    let mut b = FunctionBuilder::new("vec");
    let x = b.param("x", f64t(&[2]));
    let e = b.unary(UnaryOp::Exp, x).unwrap();
    b.finish([("e".to_string(), e)])
}
