//! The spike function's custom VJP: Heaviside forward, surrogate derivative backward.

use brainlift_compiler::ad::{grad, vjp};
use brainlift_compiler::surrogate::Surrogate;
use brainlift_ir::{DType, FunctionBuilder, Op, ReduceOp, TensorType};
use brainlift_runtime::npy::read_npy;
use brainlift_runtime::{Tensor, interpret};

fn lif(name: &str) -> Tensor {
    read_npy(format!(
        "{}/tests/data/lif/{name}.npy",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// `spike(u)` as a function with one output, differentiated with a unit cotangent.
fn spike_vjp(s: Surrogate, ty: TensorType) -> brainlift_ir::Function {
    let mut b = FunctionBuilder::new("spike");
    let u = b.param("u", ty.clone());
    let y = b
        .push1(Op::CustomVjp(Box::new(s.build(&ty))), &[u])
        .unwrap();
    vjp(&b.finish([("s".to_string(), y)]), &[0]).unwrap()
}

#[test]
fn inv_square_matches_brainpy_golden() {
    let u = lif("surrogate_u");
    let n = u.numel();
    let f = spike_vjp(Surrogate::default(), u.ty().clone());
    let ones = Tensor::from_f64(vec![n], vec![1.0; n]).unwrap();
    let out = interpret(&f, &[u.clone(), ones]).unwrap();
    let fwd = out[0].to_f64_vec();
    let grad = out[1].to_f64_vec();
    for (i, x) in u.to_f64_vec().iter().enumerate() {
        // Forward: H(u) with H(0) = 1 (u = 0 is in the grid).
        assert_eq!(fwd[i], if *x >= 0.0 { 1.0 } else { 0.0 }, "u = {x}");
    }
    let want = lif("surrogate_grad").to_f64_vec();
    for (a, b) in grad.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-14 * b.abs(), "{a} vs {b}");
    }
    assert_eq!(grad[10], 1.0); // u = 0
}

#[test]
fn every_surrogate_has_its_documented_derivative() {
    let cases = [
        (Surrogate::InvSquare { alpha: 100.0 }, 0.1, 1.0 / 121.0),
        (Surrogate::Sigmoid { alpha: 4.0 }, 0.0, 1.0),
        (Surrogate::PiecewiseLinear { width: 0.5 }, 0.25, 1.0),
        (Surrogate::PiecewiseLinear { width: 0.5 }, -0.6, 0.0),
        (Surrogate::Arctan { alpha: 2.0 }, 0.0, 1.0),
        (Surrogate::FastSigmoid { alpha: 10.0 }, 0.1, 1.25),
    ];
    for (s, u, want) in cases {
        assert!((s.derivative(u) - want).abs() < 1e-15, "{s:?} at {u}");
        // The IR backward, scaled by a cotangent of 3, through grad of sum(3 * spike(u)).
        let ty = TensorType::new(DType::F64, [1]);
        let mut b = FunctionBuilder::new("l");
        let x = b.param("u", ty.clone());
        let y = b
            .push1(Op::CustomVjp(Box::new(s.build(&ty))), &[x])
            .unwrap();
        let three = b.splat(ty.clone(), 3.0);
        let y3 = b.mul(y, three).unwrap();
        let l = b.reduce(ReduceOp::Sum, y3, vec![0]).unwrap();
        let g = grad(&b.finish([("l".to_string(), l)]), &[0]).unwrap();
        let out = interpret(&g, &[Tensor::from_f64(vec![1], vec![u]).unwrap()]).unwrap();
        let got = out[0].to_f64_vec()[0];
        assert!((got - 3.0 * want).abs() <= 1e-14, "{s:?} at {u}: {got}");
    }
}

/// The surrogate also builds for f32: the forward spike is f32 and the gradient f32.
#[test]
fn f32_spike() {
    let ty = TensorType::new(DType::F32, [3]);
    let f = spike_vjp(Surrogate::Sigmoid { alpha: 4.0 }, ty);
    let u = Tensor::from_f32(vec![3], vec![-0.5, 0.0, 2.0]).unwrap();
    let g = Tensor::from_f32(vec![3], vec![1.0, 1.0, 1.0]).unwrap();
    let out = interpret(&f, &[u, g]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![0.0, 1.0, 1.0]);
    assert_eq!(out[1].dtype(), DType::F32);
    assert_eq!(out[1].to_f64_vec()[1], 1.0);
}
