//! The JIT backend agrees with the reference interpreter on every op, dtype and odd size.
//!
//! With `fma` contraction off, elementwise kernels must match the interpreter bit for bit
//! (NaN matches NaN); with it on (the default) within 1e-12 (f64) / 1e-4 (f32) relative to
//! max(1, |expected|).
//! Matmul goes through `gemm` (another summation order) and is compared with a tolerance.

use brainlift_compiler::codegen::CodegenOptions;
use brainlift_ir::{
    BinaryOp, CompareOp, Constant, CustomVjp, DType, Function, FunctionBuilder, Op, ReduceOp, Scan,
    Shape, TensorType, UnaryOp, ValueId,
};
use brainlift_runtime::{Executable, JitExecutable, Tensor, interpret};

const SIZES: [usize; 5] = [0, 1, 3, 17, 1023];

/// Deterministic test values with special cases sprinkled in.
fn values(n: usize, dt: DType, seed: u64, special: bool) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (s >> 11) as f64 / (1u64 << 53) as f64; // [0,1)
        let x = match dt {
            DType::F64 | DType::F32 => {
                if special && i % 13 == 5 {
                    [
                        0.0,
                        -0.0,
                        f64::NAN,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        1.0,
                        -1.0,
                    ][(i / 13) % 7]
                } else {
                    (u * 6.0 - 3.0) * if i % 7 == 3 { 40.0 } else { 1.0 }
                }
            }
            DType::I32 => {
                if special && i % 11 == 4 {
                    [0.0, -1.0, i32::MIN as f64, i32::MAX as f64][(i / 11) % 4]
                } else {
                    (u * 200.0 - 100.0).floor()
                }
            }
            DType::Bool => (u < 0.5) as u8 as f64,
        };
        out.push(dt.round(x));
    }
    out
}

fn inputs_for(f: &Function, seed: u64, special: bool) -> Vec<Tensor> {
    f.params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Tensor::from_f64_values(
                p.ty.clone(),
                &values(p.ty.numel(), p.ty.dtype, seed + i as u64 * 977, special),
            )
            .unwrap()
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Tol {
    /// Bitwise (NaN == NaN) with fma off; `rel` with fma on.
    Exact(f64),
    /// Relative tolerance for both settings.
    Rel(f64),
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= rel * b.abs().max(1.0)
}

fn compare(what: &str, got: &[Tensor], want: &[Tensor], exact: bool, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: number of outputs");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.ty(), w.ty(), "{what}: output {k} type");
        let (gv, wv) = (g.to_f64_vec(), w.to_f64_vec());
        for (i, (a, b)) in gv.iter().zip(&wv).enumerate() {
            let ok = if exact {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            } else {
                close(*a, *b, rel)
            };
            assert!(
                ok,
                "{what}: output {k} element {i}: jit {a:?} vs interp {b:?} (exact={exact})"
            );
        }
    }
}

/// Runs `f` on the interpreter and on the JIT (fma on and off), twice each (steady state).
fn check_with(f: &Function, inputs: &[Tensor], tol: Tol) {
    let want =
        interpret(f, inputs).unwrap_or_else(|e| panic!("{}: interpreter failed: {e}", f.name));
    for fma in [false, true] {
        let opts = CodegenOptions {
            fma,
            ..CodegenOptions::default()
        };
        let mut exe = JitExecutable::compile_with(f, &opts)
            .unwrap_or_else(|e| panic!("{}: jit compile failed: {e}", f.name));
        for run in 0..2 {
            let got = exe
                .run(inputs)
                .unwrap_or_else(|e| panic!("{}: jit run failed: {e}", f.name));
            let what = format!("{} (fma={fma}, run {run})", f.name);
            match tol {
                Tol::Exact(rel) => compare(&what, &got, &want, !fma, rel),
                Tol::Rel(rel) => compare(&what, &got, &want, false, rel),
            }
        }
    }
}

fn check(f: &Function, tol: Tol) {
    for (seed, special) in [(1, true), (2, false)] {
        check_with(f, &inputs_for(f, seed, special), tol);
    }
}

fn tt(dt: DType, dims: &[usize]) -> TensorType {
    TensorType::new(dt, dims)
}

/// Tolerance with fma contraction on, relative to max(1, |expected|): one rounding of a product
/// of operands up to a few hundred in magnitude.
fn rel_for(dt: DType) -> f64 {
    if dt == DType::F32 { 1e-4 } else { 1e-12 }
}

fn one_op(name: &str, op: Op, arg_tys: &[TensorType]) -> Function {
    let mut b = FunctionBuilder::new(name);
    let args: Vec<ValueId> = arg_tys
        .iter()
        .enumerate()
        .map(|(i, t)| b.param(format!("a{i}"), t.clone()))
        .collect();
    let r = b.push(op, &args).unwrap();
    b.finish(r.iter().enumerate().map(|(i, v)| (format!("r{i}"), *v)))
}

#[test]
fn unary_ops_all_dtypes_and_sizes() {
    for n in SIZES {
        for dt in [DType::F64, DType::F32, DType::I32] {
            for u in UnaryOp::ALL {
                if dt == DType::I32 && !u.allows_int() {
                    continue;
                }
                let f = one_op(
                    &format!("{}_{dt}_{n}", u.name()),
                    Op::Unary(u),
                    &[tt(dt, &[n])],
                );
                check(&f, Tol::Exact(rel_for(dt)));
            }
        }
    }
}

#[test]
fn binary_ops_all_dtypes_and_sizes() {
    for n in SIZES {
        for dt in [DType::F64, DType::F32, DType::I32] {
            for bo in BinaryOp::ALL {
                if dt == DType::I32 && !bo.allows_int() {
                    continue;
                }
                let f = one_op(
                    &format!("{}_{dt}_{n}", bo.name()),
                    Op::Binary(bo),
                    &[tt(dt, &[n]), tt(dt, &[n])],
                );
                check(&f, Tol::Exact(rel_for(dt)));
            }
        }
    }
}

#[test]
fn compare_select_cast_all_dtypes() {
    for n in [1, 3, 17, 1023] {
        for dt in DType::ALL {
            for c in CompareOp::ALL {
                let f = one_op(
                    &format!("{}_{dt}_{n}", c.name()),
                    Op::Compare(c),
                    &[tt(dt, &[n]), tt(dt, &[n])],
                );
                check(&f, Tol::Exact(0.0));
            }
            let f = one_op(
                &format!("select_{dt}_{n}"),
                Op::Select,
                &[tt(DType::Bool, &[n]), tt(dt, &[n]), tt(dt, &[n])],
            );
            check(&f, Tol::Exact(0.0));
            for to in DType::ALL {
                let f = one_op(
                    &format!("cast_{dt}_{to}_{n}"),
                    Op::Cast(to),
                    &[tt(dt, &[n])],
                );
                check(&f, Tol::Exact(0.0));
            }
            let f = one_op(
                &format!("stop_gradient_{dt}_{n}"),
                Op::StopGradient,
                &[tt(dt, &[n])],
            );
            check(&f, Tol::Exact(0.0));
        }
    }
}

/// relu(a*x + b*y) with a broadcast scalar and a broadcast row: one fused kernel.
fn fused_chain(dt: DType, rows: usize, cols: usize) -> Function {
    let mut b = FunctionBuilder::new(format!("chain_{dt}_{rows}x{cols}"));
    let x = b.param("x", tt(dt, &[rows, cols]));
    let y = b.param("y", tt(dt, &[rows, cols]));
    let a = b.param("a", tt(dt, &[]));
    let w = b.param("w", tt(dt, &[cols]));
    let sh = Shape::new(&[rows, cols]);
    let ab = b.broadcast(a, sh.clone(), vec![]).unwrap();
    let wb = b.broadcast(w, sh.clone(), vec![1]).unwrap();
    let ax = b.mul(ab, x).unwrap();
    let wy = b.mul(wb, y).unwrap();
    let s = b.add(ax, wy).unwrap();
    let zero = b.splat(tt(dt, &[rows, cols]), 0.0);
    let r = b.binary(BinaryOp::Max, s, zero).unwrap();
    let e = b.unary(UnaryOp::Tanh, r).unwrap();
    let d = b.sub(e, ax).unwrap();
    b.finish([("r".to_string(), r), ("d".to_string(), d)])
}

#[test]
fn fused_chain_with_broadcasts_is_one_kernel_and_matches() {
    for dt in [DType::F64, DType::F32] {
        for (r, c) in [(1, 1), (3, 17), (5, 1023), (0, 4), (4, 0), (2, 3)] {
            let f = fused_chain(dt, r, c);
            let exe = JitExecutable::compile(&f).unwrap();
            let plan = exe.compiled().plan();
            assert_eq!(plan.report.fused_kernels, 1, "{}:\n{plan}", f.name);
            assert_eq!(plan.steps.len(), 1, "{}:\n{plan}", f.name);
            check(&f, Tol::Exact(rel_for(dt)));
        }
    }
}

#[test]
fn broadcast_patterns() {
    // (operand dims, dims map, result dims)
    let cases: Vec<(Vec<usize>, Vec<usize>, Vec<usize>)> = vec![
        (vec![], vec![], vec![3, 17]),
        (vec![17], vec![1], vec![3, 17]),
        (vec![3], vec![0], vec![3, 17]),
        (vec![3, 1], vec![0, 1], vec![3, 17]),
        (vec![1, 17], vec![0, 1], vec![5, 17]),
        (vec![2, 1, 5], vec![0, 1, 2], vec![2, 3, 5]),
        (vec![2, 5], vec![0, 2], vec![2, 3, 5]),
        (vec![3], vec![1], vec![2, 3, 5]),
        (vec![1], vec![0], vec![1023]),
        (vec![4], vec![0], vec![4]),
    ];
    for dt in [DType::F64, DType::F32, DType::I32, DType::Bool] {
        for (od, dims, rd) in &cases {
            let mut b = FunctionBuilder::new(format!("bcast_{dt}_{od:?}_{rd:?}"));
            let x = b.param("x", tt(dt, od));
            let y = b.param("y", tt(dt, rd));
            let xb = b.broadcast(x, Shape::new(rd), dims.clone()).unwrap();
            // Consume it elementwise (fused) and also return it raw (materialised).
            let c = if dt == DType::Bool {
                b.compare(CompareOp::Ne, xb, y).unwrap()
            } else {
                b.add(xb, y).unwrap()
            };
            let f = b.finish([("c".to_string(), c), ("xb".to_string(), xb)]);
            check(&f, Tol::Exact(rel_for(dt)));
        }
    }
}

#[test]
fn matmul_shapes_transposes_dtypes() {
    let cases: Vec<(Vec<usize>, Vec<usize>, bool, bool)> = vec![
        (vec![3, 4], vec![4, 5], false, false),
        (vec![4, 3], vec![4, 5], true, false),
        (vec![3, 4], vec![5, 4], false, true),
        (vec![4, 3], vec![5, 4], true, true),
        (vec![2, 3, 4], vec![2, 4, 17], false, false),
        (vec![1, 1], vec![1, 1], false, false),
        (vec![3, 0], vec![0, 5], false, false),
        (vec![0, 4], vec![4, 5], false, false),
        (vec![17, 33], vec![33, 9], false, false),
    ];
    for dt in [DType::F64, DType::F32, DType::I32] {
        for (a, bdims, tl, tr) in &cases {
            let f = one_op(
                &format!("matmul_{dt}_{a:?}_{bdims:?}_{tl}_{tr}"),
                Op::Matmul {
                    transpose_lhs: *tl,
                    transpose_rhs: *tr,
                },
                &[tt(dt, a), tt(dt, bdims)],
            );
            let tol = if dt == DType::I32 {
                Tol::Exact(0.0)
            } else {
                Tol::Rel(1e-12)
            };
            let inputs = inputs_for(&f, 3, false);
            check_with(&f, &inputs, tol);
        }
    }
}

/// Narrow f64 products (every width up to 17, row counts around the kernels' row groups,
/// transposed operands, batches) run as plain loops in the interpreter's summation order:
/// bit for bit equal to it, special values included.
#[test]
fn narrow_matmuls_are_bit_exact() {
    for n in 1..=17 {
        for (m, k) in [(1, 3), (7, 10), (9, 1), (33, 4), (17, 0)] {
            for (tl, tr) in [(false, false), (true, false), (false, true), (true, true)] {
                for batch in [vec![], vec![2]] {
                    let dims = |a: usize, b: usize| {
                        let mut d = batch.clone();
                        d.extend([a, b]);
                        d
                    };
                    let a = if tl { dims(k, m) } else { dims(m, k) };
                    let b = if tr { dims(n, k) } else { dims(k, n) };
                    let f = one_op(
                        &format!("narrow_{m}x{k}x{n}_{tl}_{tr}_{batch:?}"),
                        Op::Matmul {
                            transpose_lhs: tl,
                            transpose_rhs: tr,
                        },
                        &[tt(DType::F64, &a), tt(DType::F64, &b)],
                    );
                    for (seed, special) in [(1, true), (2, false)] {
                        let inputs = inputs_for(&f, seed, special);
                        let want = interpret(&f, &inputs).unwrap();
                        let got = JitExecutable::compile(&f).unwrap().run(&inputs).unwrap();
                        compare(&f.name, &got, &want, true, 0.0);
                    }
                }
            }
        }
    }
    // Wider row counts with up to 3 columns stay on the plain loops up to 2^14 products.
    for (m, k, n) in [(512, 8, 2), (1023, 5, 3), (2047, 8, 1)] {
        let f = one_op(
            &format!("narrow_{m}x{k}x{n}"),
            Op::Matmul {
                transpose_lhs: false,
                transpose_rhs: false,
            },
            &[tt(DType::F64, &[m, k]), tt(DType::F64, &[k, n])],
        );
        let inputs = inputs_for(&f, 3, true);
        let want = interpret(&f, &inputs).unwrap();
        let got = JitExecutable::compile(&f).unwrap().run(&inputs).unwrap();
        let exact = n > 1; // n == 1 is a matrix-vector product (dot products)
        compare(&f.name, &got, &want, exact, 1e-12);
    }
}

/// Bool spikes with about `density` ones (deterministic).
fn spike_values(n: usize, seed: u64, density: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            (u < density) as u8 as f64
        })
        .collect()
}

/// A `bool` lhs times a float rhs: odd sizes, every transpose layout, batched, sparse (the
/// event-driven path) and dense (converted to f64), f64 and f32 rhs, non-finite rhs values.
#[test]
fn matmul_bool_lhs_shapes_layouts_densities() {
    let cases: Vec<(Vec<usize>, Vec<usize>, bool, bool)> = vec![
        (vec![3, 4], vec![4, 5], false, false),
        (vec![4, 3], vec![4, 5], true, false),
        (vec![3, 4], vec![5, 4], false, true),
        (vec![4, 3], vec![5, 4], true, true),
        (vec![2, 3, 4], vec![2, 4, 17], false, false),
        (vec![1, 1], vec![1, 1], false, false),
        (vec![3, 0], vec![0, 5], false, false),
        (vec![0, 4], vec![4, 5], false, false),
        (vec![67, 33], vec![33, 9], false, false),
        (vec![33, 67], vec![33, 9], true, false),
        (vec![257, 101], vec![101, 10], false, false),
        (vec![1031, 97], vec![1031, 3], true, false),
        (vec![71, 131], vec![40, 131], false, true),
        (vec![129, 71], vec![40, 129], true, true),
    ];
    for rhs_dt in [DType::F64, DType::F32] {
        for (a, bdims, tl, tr) in &cases {
            let f = one_op(
                &format!("matmul_bool_{rhs_dt}_{a:?}_{bdims:?}_{tl}_{tr}"),
                Op::Matmul {
                    transpose_lhs: *tl,
                    transpose_rhs: *tr,
                },
                &[tt(DType::Bool, a), tt(rhs_dt, bdims)],
            );
            assert_eq!(f.ty(f.outputs[0].value).dtype, rhs_dt);
            let na: usize = a.iter().product();
            for (density, special) in [(0.02, false), (0.5, false), (0.02, true), (0.0, false)] {
                let lhs = spike_values(na, 7 + na as u64, density);
                let inputs = [
                    Tensor::from_f64_values(tt(DType::Bool, a), &lhs).unwrap(),
                    Tensor::from_f64_values(
                        tt(rhs_dt, bdims),
                        &values(bdims.iter().product(), rhs_dt, 5, special),
                    )
                    .unwrap(),
                ];
                check_with(&f, &inputs, Tol::Rel(rel_for(rhs_dt)));
            }
        }
    }
}

/// A bool lhs computed by a fused kernel (a comparison) and read by a matmul, and a bool
/// scan input multiplied in the body: the bool operands are materialised like any other.
#[test]
fn matmul_bool_lhs_from_kernels_and_scans() {
    // Thresholds giving a dense (~35%) and a sparse (< 10%) mask.
    for threshold in [0.9, 2.95] {
        let mut b = FunctionBuilder::new("mask_mm");
        let x = b.param("x", tt(DType::F64, &[37, 21]));
        let w = b.param("w", tt(DType::F64, &[21, 5]));
        let c = b.splat(tt(DType::F64, &[37, 21]), threshold);
        let m = b.compare(CompareOp::Gt, x, c).unwrap();
        let y = b.matmul(m, w, false, false).unwrap();
        let z = b.unary(UnaryOp::Tanh, y).unwrap();
        let f = b.finish([("z".to_string(), z), ("m".to_string(), m)]);
        check(&f, Tol::Rel(1e-12));
    }

    let mut bb = FunctionBuilder::new("body");
    let h = bb.param("h", tt(DType::F64, &[9, 4]));
    let s = bb.param("s", tt(DType::Bool, &[9, 13]));
    let w = bb.param("w", tt(DType::F64, &[13, 4]));
    let sw = bb.matmul(s, w, false, false).unwrap();
    let h2 = bb.add(h, sw).unwrap();
    let body = bb.finish([("h".to_string(), h2), ("y".to_string(), sw)]);
    let mut b = FunctionBuilder::new("spike_scan");
    let h0 = b.param("h0", tt(DType::F64, &[9, 4]));
    let xs = b.param("xs", tt(DType::Bool, &[6, 9, 13]));
    let w = b.param("w", tt(DType::F64, &[13, 4]));
    let r = b
        .push(
            Op::Scan(Box::new(Scan {
                length: 6,
                num_carry: 1,
                num_xs: 1,
                reverse: false,
                body,
            })),
            &[h0, xs, w],
        )
        .unwrap();
    let f = b.finish([("h".to_string(), r[0]), ("ys".to_string(), r[1])]);
    check(&f, Tol::Rel(1e-12));
}

#[test]
fn reductions_argmax_cumsum() {
    let shapes: Vec<Vec<usize>> = vec![
        vec![17],
        vec![3, 17],
        vec![2, 3, 5],
        vec![0, 4],
        vec![4, 0],
        vec![1, 1],
    ];
    for dt in [DType::F64, DType::F32, DType::I32] {
        for sh in &shapes {
            let r = sh.len();
            // Every non-empty subset of axes (strictly increasing).
            for mask in 1..(1usize << r) {
                let axes: Vec<usize> = (0..r).filter(|i| mask & (1 << i) != 0).collect();
                for op in ReduceOp::ALL {
                    let f = one_op(
                        &format!("{}_{dt}_{sh:?}_{axes:?}", op.name()),
                        Op::Reduce {
                            op,
                            axes: axes.clone(),
                        },
                        &[tt(dt, sh)],
                    );
                    check(&f, Tol::Exact(0.0));
                }
            }
            for axis in 0..r {
                if sh[axis] > 0 {
                    let f = one_op(
                        &format!("argmax_{dt}_{sh:?}_{axis}"),
                        Op::Argmax { axis },
                        &[tt(dt, sh)],
                    );
                    check(&f, Tol::Exact(0.0));
                }
                for reverse in [false, true] {
                    let f = one_op(
                        &format!("cumsum_{dt}_{sh:?}_{axis}_{reverse}"),
                        Op::Cumsum { axis, reverse },
                        &[tt(dt, sh)],
                    );
                    check(&f, Tol::Exact(0.0));
                }
            }
        }
    }
}

#[test]
fn layout_ops() {
    for dt in DType::ALL {
        let x = tt(dt, &[2, 3, 5]);
        let fs = vec![
            one_op(
                "transpose",
                Op::Transpose(vec![2, 0, 1]),
                std::slice::from_ref(&x),
            ),
            one_op(
                "transpose_id",
                Op::Transpose(vec![0, 1, 2]),
                std::slice::from_ref(&x),
            ),
            one_op(
                "slice",
                Op::Slice {
                    start: vec![1, 0, 2],
                    end: vec![2, 3, 5],
                },
                std::slice::from_ref(&x),
            ),
            one_op(
                "slice_empty",
                Op::Slice {
                    start: vec![1, 1, 2],
                    end: vec![2, 1, 5],
                },
                std::slice::from_ref(&x),
            ),
            one_op(
                "pad",
                Op::Pad {
                    low: vec![1, 0, 2],
                    high: vec![0, 2, 1],
                },
                std::slice::from_ref(&x),
            ),
            one_op(
                "concat",
                Op::Concat { axis: 1 },
                &[x.clone(), tt(dt, &[2, 4, 5]), x.clone()],
            ),
            one_op("concat0", Op::Concat { axis: 0 }, &[x.clone(), x.clone()]),
            one_op(
                "reshape",
                Op::Reshape(Shape::new(&[5, 6])),
                std::slice::from_ref(&x),
            ),
        ];
        for f in fs {
            let f = Function {
                name: format!("{}_{dt}", f.name),
                ..f
            };
            check(&f, Tol::Exact(0.0));
        }
        // iota and constants (splat, values) feeding a kernel and returned directly.
        if dt != DType::Bool {
            let mut b = FunctionBuilder::new(format!("sources_{dt}"));
            let p = b.param("p", tt(dt, &[3, 4]));
            let io = b
                .push1(
                    Op::Iota {
                        ty: tt(dt, &[3, 4]),
                        axis: 1,
                    },
                    &[],
                )
                .unwrap();
            let c = b
                .push1(
                    Op::Constant(Constant::from_values(
                        tt(dt, &[3, 4]),
                        (0..12).map(|i| i as f64 * 1.5 - 4.0).collect(),
                    )),
                    &[],
                )
                .unwrap();
            let s = b.splat(tt(dt, &[3, 4]), 2.5);
            let a1 = b.add(p, io).unwrap();
            let a2 = b.mul(a1, c).unwrap();
            let a3 = b.sub(a2, s).unwrap();
            let r = b.reshape(a3, Shape::new(&[12])).unwrap();
            let r2 = b.reshape(s, Shape::new(&[2, 6])).unwrap();
            let f = b.finish([
                ("a".to_string(), r),
                ("io".to_string(), io),
                ("c".to_string(), c),
                ("s".to_string(), s),
                ("r2".to_string(), r2),
            ]);
            check(&f, Tol::Exact(rel_for(dt)));
        }
    }
}

/// h' = tanh(h @ w + x_t + c) ; y_t = h' * 2 ; carry h', also a counter carry.
fn rnn_scan(len: usize, reverse: bool, dt: DType) -> Function {
    let (bsz, hid) = (3, 5);
    let mut body = FunctionBuilder::new("body");
    let h = body.param("h", tt(dt, &[bsz, hid]));
    let k = body.param("k", tt(dt, &[]));
    let x = body.param("x", tt(dt, &[bsz, hid]));
    let w = body.param("w", tt(dt, &[hid, hid]));
    let c = body.param("c", tt(dt, &[hid]));
    let hw = body.matmul(h, w, false, false).unwrap();
    let s = body.add(hw, x).unwrap();
    let cb = body.broadcast(c, Shape::new(&[bsz, hid]), vec![1]).unwrap();
    let s2 = body.add(s, cb).unwrap();
    let hn = body.unary(UnaryOp::Tanh, s2).unwrap();
    let two = body.splat(tt(dt, &[bsz, hid]), 2.0);
    let y = body.mul(hn, two).unwrap();
    let one = body.splat(tt(dt, &[]), 1.0);
    let k2 = body.add(k, one).unwrap();
    let bodyf = body.finish([
        ("h".to_string(), hn),
        ("k".to_string(), k2),
        ("y".to_string(), y),
        ("k_t".to_string(), k),
    ]);
    let mut b = FunctionBuilder::new(format!("rnn_scan_{len}_{reverse}_{dt}"));
    let h0 = b.param("h0", tt(dt, &[bsz, hid]));
    let k0 = b.param("k0", tt(dt, &[]));
    let xs = b.param("xs", tt(dt, &[len, bsz, hid]));
    let w = b.param("w", tt(dt, &[hid, hid]));
    let c = b.param("c", tt(dt, &[hid]));
    let scan = Op::Scan(Box::new(Scan {
        length: len,
        num_carry: 2,
        num_xs: 1,
        reverse,
        body: bodyf,
    }));
    let r = b.push(scan, &[h0, k0, xs, w, c]).unwrap();
    // Use the scan results in a following kernel too.
    let ys2 = b.unary(UnaryOp::Neg, r[2]).unwrap();
    b.finish([
        ("h".to_string(), r[0]),
        ("k".to_string(), r[1]),
        ("ys".to_string(), ys2),
        ("kt".to_string(), r[3]),
    ])
}

#[test]
fn scans_forward_reverse_lengths() {
    for dt in [DType::F64, DType::F32] {
        for len in [0, 1, 5] {
            for reverse in [false, true] {
                let f = rnn_scan(len, reverse, dt);
                let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
                check_with(&f, &inputs_for(&f, 4, false), Tol::Rel(tol));
            }
        }
    }
}

#[test]
fn nested_scan_and_carry_swap() {
    // Inner body swaps its two carries (needs ping-pong buffers) and adds x_t.
    let dt = DType::F64;
    let mut ib = FunctionBuilder::new("inner");
    let a = ib.param("a", tt(dt, &[4]));
    let bb = ib.param("b", tt(dt, &[4]));
    let x = ib.param("x", tt(dt, &[4]));
    let s = ib.add(a, x).unwrap();
    let inner = ib.finish([
        ("a".to_string(), bb),
        ("b".to_string(), s),
        ("y".to_string(), a),
    ]);
    let mut ob = FunctionBuilder::new("outer_body");
    let a = ob.param("a", tt(dt, &[4]));
    let bb = ob.param("b", tt(dt, &[4]));
    let xs = ob.param("xs", tt(dt, &[3, 4]));
    let r = ob
        .push(
            Op::Scan(Box::new(Scan {
                length: 3,
                num_carry: 2,
                num_xs: 1,
                reverse: false,
                body: inner,
            })),
            &[a, bb, xs],
        )
        .unwrap();
    let outer_body = ob.finish([
        ("a".to_string(), r[0]),
        ("b".to_string(), r[1]),
        ("y".to_string(), r[2]),
    ]);
    let mut b = FunctionBuilder::new("nested");
    let a = b.param("a", tt(dt, &[4]));
    let bb = b.param("b", tt(dt, &[4]));
    let xs = b.param("xs", tt(dt, &[3, 4]));
    let r = b
        .push(
            Op::Scan(Box::new(Scan {
                length: 2,
                num_carry: 2,
                num_xs: 0,
                reverse: true,
                body: outer_body,
            })),
            &[a, bb, xs],
        )
        .unwrap();
    let f = b.finish([
        ("a".to_string(), r[0]),
        ("b".to_string(), r[1]),
        ("ys".to_string(), r[2]),
    ]);
    check(&f, Tol::Exact(1e-12));
}

#[test]
fn custom_vjp_runs_forward() {
    let dt = DType::F64;
    let n = 17;
    let mut fw = FunctionBuilder::new("forward");
    let u = fw.param("u", tt(dt, &[n]));
    let z = fw.splat(tt(dt, &[n]), 0.0);
    let p = fw.compare(CompareOp::Ge, u, z).unwrap();
    let s = fw.cast(p, dt).unwrap();
    let forward = fw.finish([("s".to_string(), s)]);
    let mut bw = FunctionBuilder::new("backward");
    let u = bw.param("u", tt(dt, &[n]));
    let g = bw.param("g", tt(dt, &[n]));
    let gu = bw.mul(g, u).unwrap();
    let backward = bw.finish([("du".to_string(), gu)]);
    let mut b = FunctionBuilder::new("spiking");
    let v = b.param("v", tt(dt, &[n]));
    let th = b.param("th", tt(dt, &[n]));
    let d = b.sub(v, th).unwrap();
    let s = b
        .push1(
            Op::CustomVjp(Box::new(CustomVjp {
                name: "spike".into(),
                forward,
                backward,
            })),
            &[d],
        )
        .unwrap();
    let v2 = b.mul(v, s).unwrap();
    let f = b.finish([("s".to_string(), s), ("v2".to_string(), v2)]);
    check(&f, Tol::Exact(1e-12));
    // The spike function fuses with its neighbours.
    let exe = JitExecutable::compile(&f).unwrap();
    assert_eq!(
        exe.compiled().plan().steps.len(),
        1,
        "{}",
        exe.compiled().plan()
    );
}

#[test]
fn fma_contraction_is_used_and_close() {
    // a*b + c with fma on differs from the interpreter by at most one rounding.
    let f = {
        let mut b = FunctionBuilder::new("muladd");
        let x = b.param("x", tt(DType::F64, &[1023]));
        let y = b.param("y", tt(DType::F64, &[1023]));
        let z = b.param("z", tt(DType::F64, &[1023]));
        let m = b.mul(x, y).unwrap();
        let s = b.add(m, z).unwrap();
        let m2 = b.mul(x, z).unwrap();
        let d = b.sub(y, m2).unwrap();
        b.finish([("s".to_string(), s), ("d".to_string(), d)])
    };
    let clif =
        brainlift_compiler::codegen::clif_text(exe_plan(&f).as_ref(), &CodegenOptions::default())
            .unwrap();
    assert!(clif.contains("fma"), "no fma in\n{clif}");
    check(&f, Tol::Exact(1e-12));
}

fn exe_plan(f: &Function) -> Box<brainlift_compiler::passes::fusion::KernelPlan> {
    Box::new(brainlift_compiler::passes::fusion::fuse(f).unwrap())
}

#[test]
fn outputs_that_are_inputs_or_duplicated() {
    let mut b = FunctionBuilder::new("passthrough");
    let x = b.param("x", tt(DType::F64, &[3]));
    let y = b.unary(UnaryOp::Neg, x).unwrap();
    let f = b.finish([
        ("x".to_string(), x),
        ("y".to_string(), y),
        ("y2".to_string(), y),
    ]);
    check(&f, Tol::Exact(0.0));
    let mut b = FunctionBuilder::new("empty");
    let x = b.param("x", tt(DType::F64, &[3]));
    let f = b.finish([("x".to_string(), x)]);
    check(&f, Tol::Exact(0.0));
}

/// Every golden IR file under `tests/ir/` runs the same on both backends.
#[test]
fn ir_files_match() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ir");
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("ir") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let f = brainlift_ir::parse::parse_function(&src)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let f32ish = f.types.iter().any(|t| t.dtype == DType::F32);
        let tol = Tol::Rel(if f32ish { 1e-5 } else { 1e-12 });
        for seed in [11, 12] {
            let inputs = brainlift_runtime::random::random_inputs(&f, seed);
            check_with(&f, &inputs, tol);
        }
        // The gradient function (VJP w.r.t. every float input) agrees too.
        let wrt: Vec<usize> = (0..f.params.len())
            .filter(|&i| f.params[i].ty.dtype.is_float())
            .collect();
        let g = brainlift_compiler::ad::vjp(&f, &wrt)
            .unwrap_or_else(|e| panic!("{}: vjp: {e}", path.display()));
        check_with(&g, &brainlift_runtime::random::random_inputs(&g, 13), tol);
        n += 1;
    }
    assert!(n >= 5, "expected the golden IR files in {}", dir.display());
}

/// Every file under `tests/ir/bad/` that parses at all is rejected by the JIT too, never a crash.
#[test]
fn bad_ir_files_never_crash() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ir/bad");
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        if let Ok(f) = brainlift_ir::parse::parse_function(&src) {
            // The parser verifies; if something slipped through, compiling must still not panic.
            let _ = JitExecutable::compile(&f);
        }
    }
}

/// Gradient functions (reverse scans with residuals, custom_vjp backward) agree too.
#[test]
fn gradient_functions_match() {
    for (len, reverse) in [(0, false), (1, false), (5, false), (5, true)] {
        let f = rnn_scan(len, reverse, DType::F64);
        let wrt: Vec<usize> = (0..f.params.len()).collect();
        let g = brainlift_compiler::ad::vjp(&f, &wrt).unwrap();
        check_with(&g, &inputs_for(&g, 21, false), Tol::Rel(1e-12));
    }
}

/// Long fused chains (less unrolling) at odd sizes.
#[test]
fn long_chains() {
    for dt in [DType::F64, DType::F32] {
        for n in [3, 17, 1023] {
            for len in [10, 20, 40] {
                let mut b = FunctionBuilder::new(format!("long_{dt}_{n}_{len}"));
                let x = b.param("x", tt(dt, &[n]));
                let y = b.param("y", tt(dt, &[n]));
                let mut h = x;
                for i in 0..len {
                    h = match i % 4 {
                        0 => b.mul(h, y).unwrap(),
                        1 => b.add(h, x).unwrap(),
                        2 => b.unary(UnaryOp::Tanh, h).unwrap(),
                        _ => b.binary(BinaryOp::Max, h, y).unwrap(),
                    };
                }
                let f = b.finish([("h".to_string(), h)]);
                let exe = JitExecutable::compile(&f).unwrap();
                assert_eq!(exe.compiled().plan().steps.len(), 1);
                check(&f, Tol::Exact(rel_for(dt)));
            }
        }
    }
}

/// A chain of 30 000 ops (what a Rust loop over `x = tanh(0.99 x + 0.01)` traces to) compiles
/// without overflowing the stack, in kernels of at most `MAX_GROUP_OPS` ops, and agrees with
/// the interpreter.
#[test]
fn very_long_chains_compile_without_deep_recursion() {
    let n = 7;
    let mut b = FunctionBuilder::new("very_long");
    let x = b.param("x", tt(DType::F64, &[n]));
    let c1 = b.splat(tt(DType::F64, &[n]), 0.99);
    let c2 = b.splat(tt(DType::F64, &[n]), 0.01);
    let mut h = x;
    for _ in 0..10_000 {
        let m = b.mul(h, c1).unwrap();
        let a = b.add(m, c2).unwrap();
        h = b.unary(UnaryOp::Tanh, a).unwrap();
    }
    let f = b.finish([("h".to_string(), h)]);
    let exe = JitExecutable::compile(&f).unwrap();
    let max = brainlift_compiler::passes::fusion::MAX_GROUP_OPS;
    assert_eq!(exe.compiled().plan().steps.len(), 30_000usize.div_ceil(max));
    check_with(&f, &inputs_for(&f, 3, false), Tol::Rel(1e-12));
}
