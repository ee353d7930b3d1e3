//! Every op of the reference interpreter against hand-computed values, in f64 and f32.
#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tables of cases

use brainlift_ir::{
    BinaryOp, CompareOp, Constant, CustomVjp, DType, Function, FunctionBuilder, Op, ReduceOp, Scan,
    Shape, TensorType, UnaryOp, ValueId,
};
use brainlift_runtime::{Executable, Interpreter, RuntimeError, Tensor, interpret};
use std::f64::consts::E;
const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

const FLOATS: [DType; 2] = [DType::F64, DType::F32];
const MAX: f64 = i32::MAX as f64;
const MIN: f64 = i32::MIN as f64;

// ---------------------------------------------------------------- helpers

/// A tensor of `dtype` from `f64` values (rounded with `DType::round`).
fn t(dtype: DType, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_f64_values(TensorType::new(dtype, shape), v).unwrap()
}

fn f64t(shape: &[usize], v: &[f64]) -> Tensor {
    t(DType::F64, shape, v)
}

/// One-op function over parameters typed like `inputs`, returning all of the op's results.
fn one_op(op: Op, inputs: &[TensorType]) -> Function {
    let mut b = FunctionBuilder::new("t");
    let args: Vec<ValueId> = inputs
        .iter()
        .enumerate()
        .map(|(i, ty)| b.param(format!("x{i}"), ty.clone()))
        .collect();
    let rs = b.push(op, &args).unwrap();
    b.finish(rs.iter().enumerate().map(|(i, &r)| (format!("y{i}"), r)))
}

fn run(op: Op, inputs: &[Tensor]) -> Vec<Tensor> {
    let tys: Vec<TensorType> = inputs.iter().map(|x| x.ty().clone()).collect();
    interpret(&one_op(op, &tys), inputs).unwrap()
}

/// Same type and bitwise-equal values (NaN equals NaN); with `tol > 0`, values may also differ
/// by `tol * max(1, |want|)`.
fn assert_tensor(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.ty(), want.ty(), "{what}: type");
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = a.to_bits() == b.to_bits()
            || (a.is_nan() && b.is_nan())
            || (tol > 0.0 && (a - b).abs() <= tol * b.abs().max(1.0));
        assert!(
            ok,
            "{what}: element {i}: got {a:?}, want {b:?}\n got  {g:?}\n want {w:?}"
        );
    }
}

/// Runs `op` on `inputs` and compares every result with `expected`.
fn check(op: Op, inputs: &[Tensor], expected: &[Tensor]) {
    let what = format!("{op:?}");
    let got = run(op, inputs);
    assert_eq!(got.len(), expected.len(), "{what}: number of results");
    for (g, w) in got.iter().zip(expected) {
        assert_tensor(g, w, 0.0, &what);
    }
}

/// Runs `op` in f64 and in f32: float inputs `(shape, values)`, one result of dtype `out`
/// (`None`: the input float type), compared within `tol` (0: exact).
fn check_ft(
    op: Op,
    ins: &[(&[usize], &[f64])],
    out: Option<DType>,
    want: (&[usize], &[f64]),
    tol: f64,
) {
    for d in FLOATS {
        let inputs: Vec<Tensor> = ins.iter().map(|(s, v)| t(d, s, v)).collect();
        let expected = t(out.unwrap_or(d), want.0, want.1);
        let got = run(op.clone(), &inputs);
        assert_eq!(got.len(), 1);
        // f32 results of transcendental ops are within one f32 ulp of the rounded f64 value.
        let tol = if d == DType::F32 && tol > 0.0 {
            tol.max(2e-7)
        } else {
            tol
        };
        assert_tensor(&got[0], &expected, tol, &format!("{op:?} in {d}"));
    }
}

/// [`check_ft`], exact, result of the input float type.
fn check_f(op: Op, ins: &[(&[usize], &[f64])], want: (&[usize], &[f64])) {
    check_ft(op, ins, None, want, 0.0);
}

fn i32t(shape: &[usize], v: &[f64]) -> Tensor {
    t(DType::I32, shape, v)
}

fn boolt(shape: &[usize], v: &[f64]) -> Tensor {
    t(DType::Bool, shape, v)
}

// ---------------------------------------------------------------- sources

#[test]
fn constant_splat_and_values() {
    for d in FLOATS {
        let ty = TensorType::new(d, [2, 2]);
        check(
            Op::Constant(Constant::splat(ty.clone(), 1.5)),
            &[],
            &[t(d, &[2, 2], &[1.5; 4])],
        );
        let c = Constant::from_values(ty, vec![1.0, -2.0, 0.25, NAN]);
        check(
            Op::Constant(c),
            &[],
            &[t(d, &[2, 2], &[1.0, -2.0, 0.25, NAN])],
        );
    }
    // An f32 constant is stored rounded.
    let c = Constant::splat(TensorType::scalar(DType::F32), 0.1);
    assert_eq!(
        run(Op::Constant(c), &[])[0].to_f64_vec(),
        vec![0.1f32 as f64]
    );
    let c = Constant::from_values(TensorType::new(DType::I32, [3]), vec![1.9, -1.9, 7.0]);
    check(Op::Constant(c), &[], &[i32t(&[3], &[1.0, -1.0, 7.0])]);
}

#[test]
fn iota_each_axis() {
    for d in [DType::F64, DType::F32, DType::I32] {
        let ty = TensorType::new(d, [2, 3]);
        check(
            Op::Iota {
                ty: ty.clone(),
                axis: 0,
            },
            &[],
            &[t(d, &[2, 3], &[0., 0., 0., 1., 1., 1.])],
        );
        check(
            Op::Iota { ty, axis: 1 },
            &[],
            &[t(d, &[2, 3], &[0., 1., 2., 0., 1., 2.])],
        );
    }
    let ty = TensorType::new(DType::F64, [0, 4]);
    check(Op::Iota { ty, axis: 1 }, &[], &[f64t(&[0, 4], &[])]);
}

// ---------------------------------------------------------------- elementwise

#[test]
fn unary_ops() {
    let u = |op| Op::Unary(op);
    let s: &[usize] = &[5];
    check_f(
        u(UnaryOp::Neg),
        &[(s, &[1.5, -2.0, 0.0, INF, NAN])],
        (s, &[-1.5, 2.0, -0.0, -INF, NAN]),
    );
    check_f(
        u(UnaryOp::Abs),
        &[(s, &[1.5, -2.0, -0.0, -INF, NAN])],
        (s, &[1.5, 2.0, 0.0, INF, NAN]),
    );
    check_f(
        u(UnaryOp::Sign),
        &[(s, &[3.0, -0.5, -0.0, 0.0, NAN])],
        (s, &[1.0, -1.0, -0.0, 0.0, NAN]),
    );
    check_f(
        u(UnaryOp::Sqrt),
        &[(s, &[4.0, 0.25, 0.0, -1.0, INF])],
        (s, &[2.0, 0.5, 0.0, NAN, INF]),
    );
    let tol = 1e-15;
    check_ft(
        u(UnaryOp::Exp),
        &[(s, &[0.0, 1.0, -1.0, -INF, INF])],
        None,
        (s, &[1.0, E, 1.0 / E, 0.0, INF]),
        tol,
    );
    check_ft(
        u(UnaryOp::Log),
        &[(s, &[1.0, 4.0, 0.0, -1.0, INF])],
        None,
        (s, &[0.0, 2.0 * 2f64.ln(), -INF, NAN, INF]),
        tol,
    );
    // tanh(ln 3) = (3 - 1/3) / (3 + 1/3) = 0.8
    let l3 = 3f64.ln();
    check_ft(
        u(UnaryOp::Tanh),
        &[(s, &[0.0, l3, -l3, 40.0, -INF])],
        None,
        (s, &[0.0, 0.8, -0.8, 1.0, -1.0]),
        tol,
    );
    // sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; both tails saturate without NaN.
    check_ft(
        u(UnaryOp::Sigmoid),
        &[(s, &[0.0, l3, -l3, 1000.0, -1000.0])],
        None,
        (s, &[0.5, 0.75, 0.25, 1.0, 0.0]),
        tol,
    );
}

#[test]
fn unary_i32() {
    let x = i32t(&[4], &[-3.0, 0.0, 7.0, MIN]);
    check(
        Op::Unary(UnaryOp::Neg),
        &[x.clone()],
        &[i32t(&[4], &[3.0, 0.0, -7.0, MIN])],
    );
    check(
        Op::Unary(UnaryOp::Abs),
        &[x.clone()],
        &[i32t(&[4], &[3.0, 0.0, 7.0, MIN])],
    );
    check(
        Op::Unary(UnaryOp::Sign),
        &[x],
        &[i32t(&[4], &[-1.0, 0.0, 1.0, -1.0])],
    );
}

#[test]
fn binary_ops() {
    let b = |op| Op::Binary(op);
    let s: &[usize] = &[4];
    let (x, y): (&[f64], &[f64]) = (&[1.5, -2.0, 3.0, NAN], &[0.5, 4.0, 0.0, 1.0]);
    check_f(
        b(BinaryOp::Add),
        &[(s, x), (s, y)],
        (s, &[2.0, 2.0, 3.0, NAN]),
    );
    check_f(
        b(BinaryOp::Sub),
        &[(s, x), (s, y)],
        (s, &[1.0, -6.0, 3.0, NAN]),
    );
    check_f(
        b(BinaryOp::Mul),
        &[(s, x), (s, y)],
        (s, &[0.75, -8.0, 0.0, NAN]),
    );
    check_f(
        b(BinaryOp::Div),
        &[(s, x), (s, y)],
        (s, &[3.0, -0.5, INF, NAN]),
    );
    check_f(
        b(BinaryOp::Max),
        &[(s, x), (s, y)],
        (s, &[1.5, 4.0, 3.0, NAN]),
    );
    check_f(
        b(BinaryOp::Min),
        &[(s, x), (s, y)],
        (s, &[0.5, -2.0, 0.0, NAN]),
    );
    // NaN on the right propagates too.
    check_f(
        b(BinaryOp::Max),
        &[(&[1], &[1.0]), (&[1], &[NAN])],
        (&[1], &[NAN]),
    );
    check_f(
        b(BinaryOp::Min),
        &[(&[1], &[1.0]), (&[1], &[NAN])],
        (&[1], &[NAN]),
    );
    check_f(
        b(BinaryOp::Pow),
        &[(s, &[2.0, 4.0, 9.0, -8.0]), (s, &[3.0, 0.5, -1.0, 0.5])],
        (s, &[8.0, 2.0, 1.0 / 9.0, NAN]),
    );
    // 0 / 0 and inf - inf are NaN.
    check_f(
        b(BinaryOp::Div),
        &[(&[1], &[0.0]), (&[1], &[0.0])],
        (&[1], &[NAN]),
    );
    check_f(
        b(BinaryOp::Sub),
        &[(&[1], &[INF]), (&[1], &[INF])],
        (&[1], &[NAN]),
    );
}

#[test]
fn f32_rounds_every_op() {
    let tiny = 2f64.powi(-30);
    let add = Op::Binary(BinaryOp::Add);
    check(
        add.clone(),
        &[f64t(&[1], &[1.0]), f64t(&[1], &[tiny])],
        &[f64t(&[1], &[1.0 + tiny])],
    );
    let one32 = t(DType::F32, &[1], &[1.0]);
    let tiny32 = t(DType::F32, &[1], &[tiny]);
    check(add, &[one32, tiny32], &[t(DType::F32, &[1], &[1.0])]);
    // 0.1f32 * 3 is rounded to f32, not the f64 product.
    let got = run(
        Op::Binary(BinaryOp::Mul),
        &[t(DType::F32, &[1], &[0.1]), t(DType::F32, &[1], &[3.0])],
    );
    assert_eq!(got[0].to_f64_vec(), vec![(0.1f32 * 3.0f32) as f64]);
    // f32 overflow gives inf.
    let big = t(DType::F32, &[1], &[3e38]);
    let got = run(Op::Binary(BinaryOp::Add), &[big.clone(), big]);
    assert_eq!(got[0].to_f64_vec(), vec![INF]);
}

#[test]
fn binary_i32() {
    let s: &[usize] = &[6];
    let x = i32t(s, &[7.0, -7.0, 7.0, MAX, MIN, 5.0]);
    let y = i32t(s, &[2.0, 2.0, 0.0, 1.0, -1.0, -3.0]);
    let c = |op, want: &[f64]| check(Op::Binary(op), &[x.clone(), y.clone()], &[i32t(s, want)]);
    c(BinaryOp::Add, &[9.0, -5.0, 7.0, MIN, MAX, 2.0]);
    c(BinaryOp::Sub, &[5.0, -9.0, 7.0, MAX - 1.0, MIN + 1.0, 8.0]);
    c(BinaryOp::Mul, &[14.0, -14.0, 0.0, MAX, MIN, -15.0]);
    c(BinaryOp::Div, &[3.0, -3.0, 0.0, MAX, MIN, -1.0]);
    c(BinaryOp::Max, &[7.0, 2.0, 7.0, MAX, -1.0, 5.0]);
    c(BinaryOp::Min, &[2.0, -7.0, 0.0, 1.0, MIN, -3.0]);
    // Multiplication wraps: 65536 * 65536 = 2^32 = 0 mod 2^32; 65536 * 32768 = 2^31 -> MIN.
    let x = i32t(&[2], &[65536.0, 65536.0]);
    let y = i32t(&[2], &[65536.0, 32768.0]);
    check(
        Op::Binary(BinaryOp::Mul),
        &[x, y],
        &[i32t(&[2], &[0.0, MIN])],
    );
}

#[test]
fn compare_ops() {
    let s: &[usize] = &[4];
    let x: &[f64] = &[1.0, 2.0, 3.0, NAN];
    let y: &[f64] = &[2.0, 2.0, 2.0, NAN];
    let c = |op, want: &[f64]| {
        check_ft(
            Op::Compare(op),
            &[(s, x), (s, y)],
            Some(DType::Bool),
            (s, want),
            0.0,
        )
    };
    c(CompareOp::Lt, &[1.0, 0.0, 0.0, 0.0]);
    c(CompareOp::Le, &[1.0, 1.0, 0.0, 0.0]);
    c(CompareOp::Gt, &[0.0, 0.0, 1.0, 0.0]);
    c(CompareOp::Ge, &[0.0, 1.0, 1.0, 0.0]);
    c(CompareOp::Eq, &[0.0, 1.0, 0.0, 0.0]);
    c(CompareOp::Ne, &[1.0, 0.0, 1.0, 1.0]);
    // i32 and bool operands.
    let (a, b) = (i32t(&[3], &[-1.0, 0.0, 5.0]), i32t(&[3], &[0.0, 0.0, 4.0]));
    check(
        Op::Compare(CompareOp::Lt),
        &[a, b],
        &[boolt(&[3], &[1.0, 0.0, 0.0])],
    );
    let (a, b) = (boolt(&[2], &[1.0, 0.0]), boolt(&[2], &[1.0, 1.0]));
    check(
        Op::Compare(CompareOp::Eq),
        &[a, b],
        &[boolt(&[2], &[1.0, 0.0])],
    );
}

#[test]
fn select_picks_by_predicate() {
    for d in [DType::F64, DType::F32, DType::I32, DType::Bool] {
        let p = boolt(&[2, 2], &[1.0, 0.0, 0.0, 1.0]);
        let a = t(d, &[2, 2], &[1.0, 1.0, 1.0, 0.0]);
        let b = t(d, &[2, 2], &[0.0, 0.0, 1.0, 1.0]);
        check(
            Op::Select,
            &[p, a, b],
            &[t(d, &[2, 2], &[1.0, 0.0, 1.0, 0.0])],
        );
    }
    let p = boolt(&[3], &[1.0, 0.0, 1.0]);
    check(
        Op::Select,
        &[
            p,
            f64t(&[3], &[1.5, 2.5, NAN]),
            f64t(&[3], &[-1.0, -2.0, -3.0]),
        ],
        &[f64t(&[3], &[1.5, -2.0, NAN])],
    );
}

#[test]
fn casts() {
    let x: &[f64] = &[NAN, -1.7, 1.7, -0.5, 3e9, -3e9, INF, -INF, 2147483647.5];
    let s: &[usize] = &[9];
    for d in FLOATS {
        // Float -> i32 truncates toward zero and saturates; NaN -> 0. (In f32, 2147483647.5
        // rounds to 2^31, which saturates too.)
        let want = i32t(s, &[0.0, -1.0, 1.0, 0.0, MAX, MIN, MAX, MIN, MAX]);
        check(Op::Cast(DType::I32), &[t(d, s, x)], &[want]);
        // -> bool is x != 0: NaN is true, -0.0 is false.
        let b = t(d, &[5], &[0.0, -0.0, 0.5, NAN, -2.0]);
        check(
            Op::Cast(DType::Bool),
            &[b],
            &[boolt(&[5], &[0.0, 0.0, 1.0, 1.0, 1.0])],
        );
    }
    // i32 -> f32 rounds to nearest (2^24 + 1 is not representable); i32 -> f64 is exact.
    let i = i32t(&[3], &[16777217.0, -5.0, MIN]);
    check(
        Op::Cast(DType::F32),
        &[i.clone()],
        &[t(DType::F32, &[3], &[16777216.0, -5.0, MIN])],
    );
    check(
        Op::Cast(DType::F64),
        &[i.clone()],
        &[f64t(&[3], &[16777217.0, -5.0, MIN])],
    );
    check(
        Op::Cast(DType::Bool),
        &[i],
        &[boolt(&[3], &[1.0, 1.0, 1.0])],
    );
    // f64 -> f32 -> f64.
    let got = run(Op::Cast(DType::F32), &[f64t(&[2], &[0.1, 1e40])]);
    assert_eq!(got[0].to_f64_vec(), vec![0.1f32 as f64, INF]);
    // bool -> numbers.
    let b = boolt(&[2], &[1.0, 0.0]);
    check(
        Op::Cast(DType::F64),
        &[b.clone()],
        &[f64t(&[2], &[1.0, 0.0])],
    );
    check(Op::Cast(DType::I32), &[b], &[i32t(&[2], &[1.0, 0.0])]);
}

#[test]
fn stop_gradient_is_identity() {
    check_f(
        Op::StopGradient,
        &[(&[3], &[1.0, NAN, -2.5])],
        (&[3], &[1.0, NAN, -2.5]),
    );
}

#[test]
fn size_zero_through_every_elementwise_op() {
    let s: &[usize] = &[0, 3];
    for d in FLOATS {
        let z = t(d, s, &[]);
        for u in UnaryOp::ALL {
            check(Op::Unary(u), &[z.clone()], &[z.clone()]);
        }
        for b in BinaryOp::ALL {
            check(Op::Binary(b), &[z.clone(), z.clone()], &[z.clone()]);
        }
        for c in CompareOp::ALL {
            check(Op::Compare(c), &[z.clone(), z.clone()], &[boolt(s, &[])]);
        }
        check(
            Op::Select,
            &[boolt(s, &[]), z.clone(), z.clone()],
            &[z.clone()],
        );
        for to in DType::ALL {
            check(Op::Cast(to), &[z.clone()], &[t(to, s, &[])]);
        }
        check(Op::StopGradient, &[z.clone()], &[z.clone()]);
    }
    let zi = i32t(s, &[]);
    for b in BinaryOp::ALL.into_iter().filter(|b| b.allows_int()) {
        check(Op::Binary(b), &[zi.clone(), zi.clone()], &[zi.clone()]);
    }
}

// ---------------------------------------------------------------- layout

fn bcast(shape: &[usize], dims: &[usize]) -> Op {
    Op::Broadcast {
        shape: Shape::new(shape),
        dims: dims.to_vec(),
    }
}

#[test]
fn broadcast_in_dim() {
    // scalar -> matrix
    check_f(bcast(&[2, 3], &[]), &[(&[], &[2.5])], (&[2, 3], &[2.5; 6]));
    // row vector along the last axis
    check_f(
        bcast(&[2, 3], &[1]),
        &[(&[3], &[1.0, 2.0, 3.0])],
        (&[2, 3], &[1., 2., 3., 1., 2., 3.]),
    );
    // column vector along the first axis
    check_f(
        bcast(&[2, 3], &[0]),
        &[(&[2], &[1.0, 2.0])],
        (&[2, 3], &[1., 1., 1., 2., 2., 2.]),
    );
    // size-1 axis expanded in place
    check_f(
        bcast(&[2, 3], &[0, 1]),
        &[(&[2, 1], &[1.0, 2.0])],
        (&[2, 3], &[1., 1., 1., 2., 2., 2.]),
    );
    check_f(
        bcast(&[2, 3], &[0, 1]),
        &[(&[1, 3], &[1.0, 2.0, 3.0])],
        (&[2, 3], &[1., 2., 3., 1., 2., 3.]),
    );
    // a new middle axis: [2,2] -> [2,3,2] with operand axes at 0 and 2
    check_f(
        bcast(&[2, 3, 2], &[0, 2]),
        &[(&[2, 2], &[1.0, 2.0, 3.0, 4.0])],
        (
            &[2, 3, 2],
            &[1., 2., 1., 2., 1., 2., 3., 4., 3., 4., 3., 4.],
        ),
    );
    // identity
    check_f(
        bcast(&[2], &[0]),
        &[(&[2], &[5.0, 6.0])],
        (&[2], &[5.0, 6.0]),
    );
    // to a size-0 result
    check_f(
        bcast(&[0, 3], &[1]),
        &[(&[3], &[1.0, 2.0, 3.0])],
        (&[0, 3], &[]),
    );
}

#[test]
fn reshape_keeps_row_major_order() {
    let v: &[f64] = &[1., 2., 3., 4., 5., 6.];
    check_f(
        Op::Reshape(Shape::new(&[3, 2])),
        &[(&[2, 3], v)],
        (&[3, 2], v),
    );
    check_f(Op::Reshape(Shape::new(&[6])), &[(&[2, 3], v)], (&[6], v));
    check_f(
        Op::Reshape(Shape::new(&[])),
        &[(&[1, 1], &[7.0])],
        (&[], &[7.0]),
    );
}

#[test]
fn transpose() {
    check_f(
        Op::Transpose(vec![1, 0]),
        &[(&[2, 3], &[1., 2., 3., 4., 5., 6.])],
        (&[3, 2], &[1., 4., 2., 5., 3., 6.]),
    );
    // x[i,j,k] = 100i + 10j + k with shape [2,3,2]; perm [2,0,1]: y[k,i,j] = x[i,j,k].
    let x: Vec<f64> = (0..2)
        .flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| (100 * i + 10 * j + k) as f64)))
        .collect();
    let want = [
        0., 10., 20., 100., 110., 120., 1., 11., 21., 101., 111., 121.,
    ];
    check_f(
        Op::Transpose(vec![2, 0, 1]),
        &[(&[2, 3, 2], &x)],
        (&[2, 2, 3], &want),
    );
}

fn slice(start: &[usize], end: &[usize]) -> Op {
    Op::Slice {
        start: start.to_vec(),
        end: end.to_vec(),
    }
}

#[test]
fn slicing() {
    let x: &[f64] = &[1., 2., 3., 4., 5., 6.];
    let s: &[usize] = &[2, 3];
    check_f(slice(&[0, 0], &[2, 3]), &[(s, x)], (s, x)); // full range
    check_f(
        slice(&[0, 1], &[2, 3]),
        &[(s, x)],
        (&[2, 2], &[2., 3., 5., 6.]),
    );
    check_f(slice(&[1, 2], &[2, 3]), &[(s, x)], (&[1, 1], &[6.])); // last element
    check_f(slice(&[1, 0], &[2, 3]), &[(s, x)], (&[1, 3], &[4., 5., 6.])); // last row
    check_f(slice(&[0, 1], &[2, 2]), &[(s, x)], (&[2, 1], &[2., 5.])); // middle column
    check_f(slice(&[1, 1], &[1, 3]), &[(s, x)], (&[0, 2], &[])); // empty
    check_f(slice(&[0, 3], &[2, 3]), &[(s, x)], (&[2, 0], &[])); // empty at the end
    check_f(slice(&[2], &[5]), &[(&[6], x)], (&[3], &[3., 4., 5.]));
}

#[test]
fn pad_with_zeros() {
    let p = |low: &[usize], high: &[usize]| Op::Pad {
        low: low.to_vec(),
        high: high.to_vec(),
    };
    check_f(
        p(&[1, 0], &[0, 2]),
        &[(&[2, 2], &[1., 2., 3., 4.])],
        (&[3, 4], &[0., 0., 0., 0., 1., 2., 0., 0., 3., 4., 0., 0.]),
    );
    check_f(p(&[2], &[1]), &[(&[1], &[5.0])], (&[4], &[0., 0., 5., 0.]));
    check_f(
        p(&[0, 0], &[0, 0]),
        &[(&[1, 2], &[1., 2.])],
        (&[1, 2], &[1., 2.]),
    );
    check_f(p(&[1], &[1]), &[(&[0], &[])], (&[2], &[0., 0.]));
}

#[test]
fn concat_three_along_each_axis() {
    let a: (&[usize], &[f64]) = (&[2, 2], &[1., 2., 3., 4.]);
    let b: (&[usize], &[f64]) = (&[2, 2], &[5., 6., 7., 8.]);
    let c: (&[usize], &[f64]) = (&[2, 2], &[9., 10., 11., 12.]);
    check_f(
        Op::Concat { axis: 0 },
        &[a, b, c],
        (
            &[6, 2],
            &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.],
        ),
    );
    check_f(
        Op::Concat { axis: 1 },
        &[a, b, c],
        (
            &[2, 6],
            &[1., 2., 5., 6., 9., 10., 3., 4., 7., 8., 11., 12.],
        ),
    );
    // Unequal sizes along the joined axis, including an empty operand.
    let e: (&[usize], &[f64]) = (&[2, 0], &[]);
    let col: (&[usize], &[f64]) = (&[2, 1], &[0., -1.]);
    check_f(
        Op::Concat { axis: 1 },
        &[a, e, col],
        (&[2, 3], &[1., 2., 0., 3., 4., -1.]),
    );
    let e0: (&[usize], &[f64]) = (&[0, 2], &[]);
    check_f(Op::Concat { axis: 0 }, &[e0, a, e0], a);
    // A single operand.
    check_f(Op::Concat { axis: 0 }, &[a], a);
}

// ---------------------------------------------------------------- reductions

/// x[i,j,k] = 12i + 4j + k, shape [2,3,4] (the values 0..24).
fn iota24() -> Vec<f64> {
    (0..24).map(|v| v as f64).collect()
}

fn red(op: ReduceOp, axes: &[usize]) -> Op {
    Op::Reduce {
        op,
        axes: axes.to_vec(),
    }
}

#[test]
fn reduce_sum_each_axis_and_several() {
    let x = iota24();
    let s: &[usize] = &[2, 3, 4];
    let sum = |axes: &[usize]| red(ReduceOp::Sum, axes);
    check_f(
        sum(&[0]),
        &[(s, &x)],
        (
            &[3, 4],
            &[12., 14., 16., 18., 20., 22., 24., 26., 28., 30., 32., 34.],
        ),
    );
    check_f(
        sum(&[1]),
        &[(s, &x)],
        (&[2, 4], &[12., 15., 18., 21., 48., 51., 54., 57.]),
    );
    check_f(
        sum(&[2]),
        &[(s, &x)],
        (&[2, 3], &[6., 22., 38., 54., 70., 86.]),
    );
    check_f(sum(&[0, 2]), &[(s, &x)], (&[3], &[60., 92., 124.]));
    check_f(sum(&[0, 1, 2]), &[(s, &x)], (&[], &[276.]));
    check_f(sum(&[]), &[(s, &x)], (s, &x));
    // i32 sums too.
    let xi = i32t(s, &x);
    check(sum(&[1, 2]), &[xi], &[i32t(&[2], &[66., 210.])]);
}

#[test]
fn reduce_max_min() {
    let x = iota24();
    let s: &[usize] = &[2, 3, 4];
    check_f(
        red(ReduceOp::Max, &[1]),
        &[(s, &x)],
        (&[2, 4], &[8., 9., 10., 11., 20., 21., 22., 23.]),
    );
    check_f(
        red(ReduceOp::Min, &[2]),
        &[(s, &x)],
        (&[2, 3], &[0., 4., 8., 12., 16., 20.]),
    );
    check_f(
        red(ReduceOp::Max, &[0, 1]),
        &[(s, &x)],
        (&[4], &[20., 21., 22., 23.]),
    );
    check_f(
        red(ReduceOp::Min, &[0, 2]),
        &[(s, &x)],
        (&[3], &[0., 4., 8.]),
    );
    check_f(red(ReduceOp::Max, &[0]), &[(s, &x)], (&[3, 4], &x[12..]));
    // NaN propagates through max and min.
    check_f(
        red(ReduceOp::Max, &[1]),
        &[(&[2, 2], &[1., NAN, 3., 2.])],
        (&[2], &[NAN, 3.]),
    );
    check_f(
        red(ReduceOp::Min, &[0]),
        &[(&[2, 2], &[1., NAN, 3., 2.])],
        (&[2], &[1., NAN]),
    );
    check(
        red(ReduceOp::Max, &[0]),
        &[i32t(&[3], &[-5., 7., 2.])],
        &[i32t(&[], &[7.])],
    );
}

#[test]
fn empty_reduction_gives_identity() {
    let s: &[usize] = &[0, 3];
    check_f(red(ReduceOp::Sum, &[0]), &[(s, &[])], (&[3], &[0.; 3]));
    check_f(red(ReduceOp::Max, &[0]), &[(s, &[])], (&[3], &[-INF; 3]));
    check_f(red(ReduceOp::Min, &[0]), &[(s, &[])], (&[3], &[INF; 3]));
    check_f(red(ReduceOp::Sum, &[1]), &[(s, &[])], (&[0], &[]));
    check(
        red(ReduceOp::Max, &[0]),
        &[i32t(s, &[])],
        &[i32t(&[3], &[MIN; 3])],
    );
    check(
        red(ReduceOp::Min, &[0]),
        &[i32t(s, &[])],
        &[i32t(&[3], &[MAX; 3])],
    );
}

#[test]
fn argmax_first_max_and_nan() {
    let x: &[f64] = &[1., 3., 3., NAN, 5., NAN, 2., 1., 0.];
    let i = Some(DType::I32);
    // Ties give the first index; the first NaN wins.
    check_ft(
        Op::Argmax { axis: 1 },
        &[(&[3, 3], x)],
        i,
        (&[3], &[1., 0., 0.]),
        0.0,
    );
    check_ft(
        Op::Argmax { axis: 0 },
        &[(&[3, 3], x)],
        i,
        (&[3], &[1., 1., 1.]),
        0.0,
    );
    check_ft(
        Op::Argmax { axis: 0 },
        &[(&[3], &[5., NAN, NAN])],
        i,
        (&[], &[1.]),
        0.0,
    );
    check_ft(
        Op::Argmax { axis: 0 },
        &[(&[2], &[-INF, -INF])],
        i,
        (&[], &[0.]),
        0.0,
    );
    check_ft(
        Op::Argmax { axis: 0 },
        &[(&[3], &[-1., -0.5, -2.])],
        i,
        (&[], &[1.]),
        0.0,
    );
    // Rank 3, middle axis.
    check_ft(
        Op::Argmax { axis: 1 },
        &[(&[2, 3, 4], &iota24())],
        i,
        (&[2, 4], &[2.; 8]),
        0.0,
    );
    check(
        Op::Argmax { axis: 0 },
        &[i32t(&[4], &[0., 9., 9., 1.])],
        &[i32t(&[], &[1.])],
    );
}

#[test]
fn cumsum_both_directions() {
    let x: &[f64] = &[1., 2., 3., 4., 5., 6.];
    let s: &[usize] = &[2, 3];
    let cs = |axis, reverse| Op::Cumsum { axis, reverse };
    check_f(cs(1, false), &[(s, x)], (s, &[1., 3., 6., 4., 9., 15.]));
    check_f(cs(1, true), &[(s, x)], (s, &[6., 5., 3., 15., 11., 6.]));
    check_f(cs(0, false), &[(s, x)], (s, &[1., 2., 3., 5., 7., 9.]));
    check_f(cs(0, true), &[(s, x)], (s, &[5., 7., 9., 4., 5., 6.]));
    check_f(cs(0, false), &[(&[0], &[])], (&[0], &[]));
    check(
        cs(0, false),
        &[i32t(&[3], &[MAX, 1., 1.])],
        &[i32t(&[3], &[MAX, MIN, MIN + 1.])],
    );
}

// ---------------------------------------------------------------- matmul

fn mm(tl: bool, tr: bool) -> Op {
    Op::Matmul {
        transpose_lhs: tl,
        transpose_rhs: tr,
    }
}

#[test]
fn batched_matmul_all_transpose_flags() {
    // A[0] = [[1,2,3],[4,5,6]], A[1] = [[1,0,-1],[2,1,0]]  (2 x 2x3)
    // B[0] = [[1,0],[0,1],[1,1]], B[1] = [[2,1],[0,3],[1,-1]]  (2 x 3x2)
    // A[0]B[0] = [[4,5],[10,11]], A[1]B[1] = [[1,2],[4,5]]
    let a: &[f64] = &[1., 2., 3., 4., 5., 6., 1., 0., -1., 2., 1., 0.];
    let b: &[f64] = &[1., 0., 0., 1., 1., 1., 2., 1., 0., 3., 1., -1.];
    let at: &[f64] = &[1., 4., 2., 5., 3., 6., 1., 2., 0., 1., -1., 0.]; // A^T per batch, 2 x 3x2
    let bt: &[f64] = &[1., 0., 1., 0., 1., 1., 2., 0., 1., 1., 3., -1.]; // B^T per batch, 2 x 2x3
    let want: (&[usize], &[f64]) = (&[2, 2, 2], &[4., 5., 10., 11., 1., 2., 4., 5.]);
    let (s23, s32): (&[usize], &[usize]) = (&[2, 2, 3], &[2, 3, 2]);
    check_f(mm(false, false), &[(s23, a), (s32, b)], want);
    check_f(mm(true, false), &[(s32, at), (s32, b)], want);
    check_f(mm(false, true), &[(s23, a), (s23, bt)], want);
    check_f(mm(true, true), &[(s32, at), (s23, bt)], want);
    // B A: [3x2][2x3] per batch. B[0]A[0] = [[1,2,3],[4,5,6],[5,7,9]],
    // B[1]A[1] = [[4,1,-2],[6,3,0],[-1,-1,-1]].
    check_f(
        mm(false, false),
        &[(s32, b), (s23, a)],
        (
            &[2, 3, 3],
            &[
                1., 2., 3., 4., 5., 6., 5., 7., 9., 4., 1., -2., 6., 3., 0., -1., -1., -1.,
            ],
        ),
    );
}

#[test]
fn matmul_rank2_i32_and_empty() {
    check_f(
        mm(false, false),
        &[(&[1, 2], &[1., 2.]), (&[2, 1], &[3., 4.])],
        (&[1, 1], &[11.]),
    );
    check(
        mm(false, true),
        &[i32t(&[2, 2], &[1., 2., 3., 4.]), i32t(&[1, 2], &[5., -1.])],
        &[i32t(&[2, 1], &[3., 11.])],
    );
    // Contracting over 0 gives zeros; an empty batch gives an empty result.
    check_f(
        mm(false, false),
        &[(&[2, 0], &[]), (&[0, 3], &[])],
        (&[2, 3], &[0.; 6]),
    );
    check_f(
        mm(false, false),
        &[(&[0, 2, 2], &[]), (&[0, 2, 2], &[])],
        (&[0, 2, 2], &[]),
    );
}

// ---------------------------------------------------------------- control

/// Scan body `(h, x, w) -> (h*w + x, h*w + x, h)` on `d[2]` values.
fn scan_body(d: DType) -> Function {
    let ty = TensorType::new(d, [2]);
    let mut b = FunctionBuilder::new("body");
    let h = b.param("h", ty.clone());
    let x = b.param("x", ty.clone());
    let w = b.param("w", ty);
    let hw = b.mul(h, w).unwrap();
    let hn = b.add(hw, x).unwrap();
    b.finish([
        ("h".to_string(), hn),
        ("y".to_string(), hn),
        ("h_old".to_string(), h),
    ])
}

fn scan_op(d: DType, length: usize, reverse: bool) -> Op {
    Op::Scan(Box::new(Scan {
        length,
        num_carry: 1,
        num_xs: 1,
        reverse,
        body: scan_body(d),
    }))
}

#[test]
fn scan_forward_reverse_and_lengths() {
    for d in FLOATS {
        let h0 = t(d, &[2], &[1., 2.]);
        let w = t(d, &[2], &[2., 1.]);
        let xs = t(d, &[3, 2], &[1., 0., 0., 1., 2., 2.]);
        // forward: h = [3,2], [6,3], [14,5]
        check(
            scan_op(d, 3, false),
            &[h0.clone(), xs.clone(), w.clone()],
            &[
                t(d, &[2], &[14., 5.]),
                t(d, &[3, 2], &[3., 2., 6., 3., 14., 5.]),
                t(d, &[3, 2], &[1., 2., 3., 2., 6., 3.]),
            ],
        );
        // reverse: t=2: [4,4]; t=1: [8,5]; t=0: [17,5]; ys[t] is step t's output.
        check(
            scan_op(d, 3, true),
            &[h0.clone(), xs, w.clone()],
            &[
                t(d, &[2], &[17., 5.]),
                t(d, &[3, 2], &[17., 5., 8., 5., 4., 4.]),
                t(d, &[3, 2], &[8., 5., 4., 4., 1., 2.]),
            ],
        );
        // length 1
        let xs1 = t(d, &[1, 2], &[1., 0.]);
        check(
            scan_op(d, 1, false),
            &[h0.clone(), xs1, w.clone()],
            &[
                t(d, &[2], &[3., 2.]),
                t(d, &[1, 2], &[3., 2.]),
                t(d, &[1, 2], &[1., 2.]),
            ],
        );
        // length 0: the initial carry and empty ys
        let xs0 = t(d, &[0, 2], &[]);
        for reverse in [false, true] {
            check(
                scan_op(d, 0, reverse),
                &[h0.clone(), xs0.clone(), w.clone()],
                &[h0.clone(), t(d, &[0, 2], &[]), t(d, &[0, 2], &[])],
            );
        }
    }
}

#[test]
fn scan_without_xs_and_without_carry() {
    // Counter: carry c, const one; body (c, one) -> (c + one, c). Length 4.
    let s = TensorType::scalar(DType::I32);
    let mut b = FunctionBuilder::new("count");
    let c = b.param("c", s.clone());
    let one = b.param("one", s.clone());
    let c1 = b.add(c, one).unwrap();
    let body = b.finish([("c".to_string(), c1), ("y".to_string(), c)]);
    let op = Op::Scan(Box::new(Scan {
        length: 4,
        num_carry: 1,
        num_xs: 0,
        reverse: false,
        body,
    }));
    check(
        op,
        &[i32t(&[], &[10.]), i32t(&[], &[1.])],
        &[i32t(&[], &[14.]), i32t(&[4], &[10., 11., 12., 13.])],
    );

    // Map without carry: y_t = 2 * x_t, reversed order of evaluation still stacks ys[t] at t.
    let mut b = FunctionBuilder::new("dbl");
    let x = b.param("x", TensorType::scalar(DType::F64));
    let y = b.add(x, x).unwrap();
    let body = b.finish([("y".to_string(), y)]);
    let op = Op::Scan(Box::new(Scan {
        length: 3,
        num_carry: 0,
        num_xs: 1,
        reverse: true,
        body,
    }));
    check(
        op,
        &[f64t(&[3], &[1., 2., 3.])],
        &[f64t(&[3], &[2., 4., 6.])],
    );
}

#[test]
fn nested_scan() {
    // Outer scan over rows of a [2,3] matrix, inner scan sums each row: carry s, x -> s + x.
    let sc = TensorType::scalar(DType::F64);
    let mut b = FunctionBuilder::new("inner");
    let s = b.param("s", sc.clone());
    let x = b.param("x", sc.clone());
    let s1 = b.add(s, x).unwrap();
    let inner = b.finish([("s".to_string(), s1)]);
    let mut b = FunctionBuilder::new("outer");
    let acc = b.param("acc", sc.clone());
    let row = b.param("row", TensorType::new(DType::F64, [3]));
    let zero = b.scalar(DType::F64, 0.0);
    let op = Op::Scan(Box::new(Scan {
        length: 3,
        num_carry: 1,
        num_xs: 1,
        reverse: false,
        body: inner,
    }));
    let rsum = b.push1(op, &[zero, row]).unwrap();
    let acc1 = b.add(acc, rsum).unwrap();
    let outer = b.finish([("acc".to_string(), acc1), ("rsum".to_string(), rsum)]);
    let op = Op::Scan(Box::new(Scan {
        length: 2,
        num_carry: 1,
        num_xs: 1,
        reverse: false,
        body: outer,
    }));
    check(
        op,
        &[f64t(&[], &[0.5]), f64t(&[2, 3], &[1., 2., 3., 4., 5., 6.])],
        &[f64t(&[], &[21.5]), f64t(&[2], &[6., 15.])],
    );
}

#[test]
fn custom_vjp_runs_forward() {
    for d in FLOATS {
        let ty = TensorType::new(d, [3]);
        let mut b = FunctionBuilder::new("forward");
        let u = b.param("u", ty.clone());
        let sq = b.mul(u, u).unwrap();
        let forward = b.finish([("s".to_string(), sq)]);
        let mut b = FunctionBuilder::new("backward");
        let u = b.param("u", ty.clone());
        let g = b.param("g", ty.clone());
        let two = b.splat(ty.clone(), 2.0);
        let du = b.mul(u, two).unwrap();
        let du = b.mul(du, g).unwrap();
        let backward = b.finish([("du".to_string(), du)]);
        let op = Op::CustomVjp(Box::new(CustomVjp {
            name: "square".into(),
            forward,
            backward,
        }));
        check(
            op,
            &[t(d, &[3], &[1.5, -2., 0.])],
            &[t(d, &[3], &[2.25, 4., 0.])],
        );
    }
}

// ---------------------------------------------------------------- whole functions and errors

/// `relu(x @ w + b)` with the bias broadcast, and the input `x` also returned unchanged.
fn dense_relu() -> Function {
    let mut b = FunctionBuilder::new("dense");
    let x = b.param("x", TensorType::new(DType::F64, [2, 2]));
    let w = b.param("w", TensorType::new(DType::F64, [2, 1]));
    let bias = b.param("b", TensorType::new(DType::F64, [1]));
    let xw = b.matmul(x, w, false, false).unwrap();
    let bb = b.broadcast(bias, Shape::new(&[2, 1]), vec![1]).unwrap();
    let z = b.add(xw, bb).unwrap();
    let zero = b.zeros_like(z);
    let r = b.binary(BinaryOp::Max, z, zero).unwrap();
    b.finish([("y".to_string(), r), ("x".to_string(), x)])
}

#[test]
fn whole_function_and_executable() {
    let f = dense_relu();
    let x = f64t(&[2, 2], &[1., 2., -3., 1.]);
    let inputs = [x.clone(), f64t(&[2, 1], &[1., 1.]), f64t(&[1], &[0.5])];
    // x @ w = [3, -2]; + 0.5 = [3.5, -1.5]; relu = [3.5, 0]
    let want = [f64t(&[2, 1], &[3.5, 0.]), x];
    let got = interpret(&f, &inputs).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_tensor(g, w, 0.0, "interpret");
    }
    let mut exe = Interpreter::new(f.clone()).unwrap();
    assert_eq!(exe.function(), &f);
    for _ in 0..2 {
        let got = exe.run(&inputs).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_tensor(g, w, 0.0, "Interpreter::run");
        }
    }
}

#[test]
fn input_mismatch_errors() {
    let f = dense_relu();
    let w = f64t(&[2, 1], &[1., 1.]);
    let b = f64t(&[1], &[0.5]);
    let x = f64t(&[2, 2], &[0.; 4]);
    let msg = |r: Result<Vec<Tensor>, RuntimeError>| match r {
        Err(e @ RuntimeError::Input { .. }) => e.to_string(),
        other => panic!("expected an input error, got {other:?}"),
    };
    let m = msg(interpret(&f, &[x.clone(), w.clone()]));
    assert!(m.contains("expected 3 inputs, got 2"), "{m}");
    let m = msg(interpret(&f, &[x.clone(), w.clone(), b.clone(), b.clone()]));
    assert!(m.contains("expected 3 inputs, got 4"), "{m}");
    let m = msg(interpret(
        &f,
        &[f64t(&[2, 3], &[0.; 6]), w.clone(), b.clone()],
    ));
    assert!(
        m.contains("%x") && m.contains("f64[2,2]") && m.contains("f64[2,3]"),
        "{m}"
    );
    let m = msg(interpret(
        &f,
        &[x.clone(), w.clone(), t(DType::F32, &[1], &[0.5])],
    ));
    assert!(
        m.contains("%b") && m.contains("f64[1]") && m.contains("f32[1]"),
        "{m}"
    );
    let mut exe = Interpreter::new(f).unwrap();
    let m = msg(exe.run(&[x, w]));
    assert!(m.contains("@dense"), "{m}");
}

#[test]
fn invalid_function_is_rejected() {
    let mut f = dense_relu();
    // Record a wrong result type for the matmul.
    f.types[3] = TensorType::new(DType::F64, [2, 2]);
    let inputs = [
        f64t(&[2, 2], &[0.; 4]),
        f64t(&[2, 1], &[0.; 2]),
        f64t(&[1], &[0.]),
    ];
    assert!(matches!(interpret(&f, &inputs), Err(RuntimeError::Ir(_))));
    assert!(matches!(Interpreter::new(f), Err(RuntimeError::Ir(_))));
}

#[test]
fn parsed_every_op_agrees_between_f64_and_f32() {
    // tests/ir/every_op{,_f32}.ir hold every op once; the f32 run on the f32-rounded inputs
    // must track the f64 run (continuous outputs to f32 accuracy, discrete ones exactly).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/ir/");
    let load = |name: &str| {
        let src = std::fs::read_to_string(format!("{dir}{name}")).unwrap();
        brainlift_ir::parse::parse_function(&src).unwrap()
    };
    let (f64f, f32f) = (load("every_op.ir"), load("every_op_f32.ir"));
    let inputs = brainlift_runtime::random::random_inputs(&f64f, 3);
    let inputs32: Vec<Tensor> = inputs.iter().map(|t| t.cast(DType::F32)).collect();
    let (a, b) = (
        interpret(&f64f, &inputs).unwrap(),
        interpret(&f32f, &inputs32).unwrap(),
    );
    assert_eq!(a.len(), 11);
    for ((x, y), o) in a.iter().zip(&b).zip(&f64f.outputs) {
        assert_eq!(y.dtype(), DType::F32, "{}", o.name);
        let exact = o.name == "idx" || o.name == "spikes";
        assert_tensor(
            &y.cast(DType::F64),
            x,
            if exact { 0.0 } else { 1e-4 },
            &o.name,
        );
    }
    // Hand-checkable outputs: `total` is the sum of `flat`; `rows` and `cols` are the row
    // maxima and column minima of `mix`; `run` is its running sum along the rows.
    let v = |i: usize| a[i].to_f64_vec();
    let (mix, flat) = (v(0), v(1));
    assert!((v(2)[0] - flat.iter().sum::<f64>()).abs() < 1e-12);
    assert_eq!(
        v(3),
        vec![
            mix[0].max(mix[1]).max(mix[2]),
            mix[3].max(mix[4]).max(mix[5])
        ]
    );
    assert_eq!(
        v(4),
        vec![mix[0].min(mix[3]), mix[1].min(mix[4]), mix[2].min(mix[5])]
    );
    let run = v(6);
    assert_eq!(run[2], mix[0] + mix[1] + mix[2]);
    assert_eq!(run[3], mix[3]);
}
