//! The simplification passes and the pipeline: each pass preserves the results of every IR
//! file in `tests/ir` on the interpreter, the rewrites do what their contracts say, and the
//! pipeline reports its stages and names a pass that breaks the IR.

mod common;

use brainlift_compiler::ad::{grad, vjp};
use brainlift_compiler::passes::{
    algebra::algebra, cse::cse, dce::dce, fold::fold, inline_custom_vjp::inline_custom_vjp,
    unroll::unroll,
};
use brainlift_compiler::pipeline::{
    GradRequest, PipelineConfig, PipelineError, run_passes, run_pipeline,
};
use brainlift_compiler::rewrite::inline;
use brainlift_ir::{Function, FunctionBuilder, IrError, Op, parse_function, print_function};
use brainlift_runtime::random::random_inputs;
use brainlift_runtime::{Tensor, interpret};
use common::*;
use expect_test::{Expect, expect};

fn ir_files() -> Vec<(String, Function)> {
    let mut out = vec![];
    for dir in ["tests/ir", "tests/ir/ad"] {
        let path = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            if n.ends_with(".ir") && !n.contains(".grad.") && !n.contains(".simplified.") {
                out.push((
                    n,
                    parse_function(&std::fs::read_to_string(&p).unwrap()).unwrap(),
                ));
            }
        }
    }
    assert!(out.len() >= 8);
    out
}

fn assert_close(name: &str, a: &[Tensor], b: &[Tensor]) {
    assert_eq!(a.len(), b.len(), "{name}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.ty(), y.ty(), "{name}");
        for (u, v) in x.to_f64_vec().iter().zip(y.to_f64_vec()) {
            let ok =
                u == &v || (u.is_nan() && v.is_nan()) || (u - v).abs() <= 1e-12 * v.abs().max(1.0);
            assert!(ok, "{name}: {u} vs {v}");
        }
    }
}

#[test]
fn every_pass_preserves_results_of_every_ir_file() {
    type P = fn(&Function) -> Result<Function, IrError>;
    let passes: [(&str, P); 7] = [
        ("dce", dce),
        ("cse", cse),
        ("fold", fold),
        ("algebra", |f| algebra(f, true)),
        ("unroll", |f| unroll(f, 100)),
        ("inline_custom_vjp", inline_custom_vjp),
        ("pipeline", |f| {
            Ok(run_pipeline(f, &PipelineConfig::default())
                .unwrap()
                .output()
                .clone())
        }),
    ];
    for (file, f) in ir_files() {
        let ins = random_inputs(&f, 3);
        let want = interpret(&f, &ins).unwrap();
        for (pname, p) in passes {
            let g = p(&f).unwrap();
            brainlift_ir::verify(&g).unwrap();
            assert_eq!(g.param_types(), f.param_types(), "{file} {pname}");
            assert_close(
                &format!("{file} {pname}"),
                &interpret(&g, &ins).unwrap(),
                &want,
            );
        }
        let unrolled = unroll(&f, 100).unwrap();
        assert!(!print_function(&unrolled).contains("scan["), "{file}");
        let inlined = inline_custom_vjp(&f).unwrap();
        assert!(!print_function(&inlined).contains("custom_vjp"), "{file}");
    }
}

/// The gradient of the every-op file, as `sum_k <w_k, out_k>`, matches finite differences.
#[test]
fn vjp_of_every_op_file_matches_finite_differences() {
    let (_, f) = ir_files()
        .into_iter()
        .find(|(n, _)| n == "every_op.ir")
        .unwrap();
    let mut b = FunctionBuilder::new("every_op_loss");
    let ps: Vec<_> = f
        .params
        .iter()
        .map(|p| Some(b.param(p.name.clone(), p.ty.clone())))
        .collect();
    let outs = inline(&mut b, &f, &ps).unwrap();
    let mut l = None;
    // `spikes` is a custom_vjp whose surrogate gradient is deliberately not the true one.
    for (o, out) in outs.into_iter().zip(&f.outputs) {
        if out.name == "spikes" {
            continue;
        }
        let s = weighted_sum(&mut b, o);
        l = Some(match l {
            None => s,
            Some(a) => b.add(a, s).unwrap(),
        });
    }
    let lf = finish(b, l.unwrap());
    let wrt: Vec<usize> = (0..f.params.len()).collect();
    assert_grad(&lf, &wrt, &random_inputs(&f, 11), 1e-6);
    // vjp itself: inputs (x.., ct..), outputs (y.., grads..).
    let v = vjp(&f, &wrt).unwrap();
    assert_eq!(v.params.len(), f.params.len() + f.outputs.len());
    assert_eq!(v.outputs.len(), f.outputs.len() + wrt.len());
}

fn check(pass: fn(&Function) -> Result<Function, IrError>, src: &str, want: Expect) {
    let f = parse_function(src).unwrap();
    let g = pass(&f).unwrap();
    brainlift_ir::verify(&g).unwrap();
    let ins = random_inputs(&f, 5);
    assert_close(
        "check",
        &interpret(&g, &ins).unwrap(),
        &interpret(&f, &ins).unwrap(),
    );
    want.assert_eq(&print_function(&g));
}

#[test]
fn algebra_identities() {
    check(
        |f| dce(&algebra(f, true)?),
        r#"func @f(%x: f64[2,3], %v: f64[3]) -> (a: f64[2,3], b: f64[3], c: f64[2,3], d: f64[3,2], e: f64[6]) {
  %0: f64[2,3] = constant[value=0.0]
  %1: f64[2,3] = constant[value=1.0]
  %2: f64[2,3] = add %x, %0
  %3: f64[2,3] = add %0, %2
  %4: f64[2,3] = mul %3, %1
  %5: f64[2,3] = mul %1, %4
  %6: f64[2,3] = div %5, %1
  %7: f64[2,3] = sub %6, %0
  %8: f64[2,3] = neg %7
  %9: f64[2,3] = neg %8
  %10: f64[2,3] = stop_gradient %9
  %11: f64[4,3] = broadcast[dims=[1]] %v
  %12: f64[3] = reduce_sum[axes=[0]] %11
  %13: f64[] = constant[value=2.0]
  %14: f64[2,3] = broadcast[dims=[]] %13
  %15: f64[2,3] = mul %10, %14
  %16: f64[3,2] = transpose[perm=[1,0]] %x
  %17: f64[2,3] = transpose[perm=[1,0]] %16
  %18: f64[3,2] = transpose[perm=[1,0]] %17
  %19: f64[6] = reshape %x
  %20: f64[3,2] = reshape %19
  %21: f64[6] = reshape %20
  %22: f64[2,3] = sub %0, %x
  return %10, %12, %15, %18, %21
}"#,
        expect![[r#"
            func @f(%x: f64[2,3], %v: f64[3]) -> (a: f64[2,3], b: f64[3], c: f64[2,3], d: f64[3,2], e: f64[6]) {
              %0: f64[3] = constant[value=4.0]
              %1: f64[3] = mul %v, %0
              %2: f64[2,3] = constant[value=2.0]
              %3: f64[2,3] = mul %x, %2
              %4: f64[3,2] = transpose[perm=[1,0]] %x
              %5: f64[6] = reshape %x
              return %x, %1, %3, %4, %5
            }
        "#]],
    );
}

#[test]
fn cse_and_fold() {
    check(
        |f| dce(&cse(&fold(f)?)?),
        r#"func @f(%x: f64[3]) -> (a: f64[3], b: f64[3]) {
  %0: f64[3] = constant[value=2.0]
  %1: f64[3] = constant[value=3.0]
  %2: f64[3] = add %0, %1
  %3: f64[3] = constant[values=[1.0, 4.0, 9.0]]
  %4: f64[3] = sqrt %3
  %5: f64[3] = mul %x, %2
  %6: f64[3] = constant[value=5.0]
  %7: f64[3] = mul %x, %6
  %8: f64[3] = exp %7
  %9: f64[3] = exp %5
  %10: f64[3] = add %8, %9
  %11: f64[3] = add %10, %4
  return %11, %5
}"#,
        expect![[r#"
            func @f(%x: f64[3]) -> (a: f64[3], b: f64[3]) {
              %0: f64[3] = constant[value=5.0]
              %1: f64[3] = constant[values=[1.0, 2.0, 3.0]]
              %2: f64[3] = mul %x, %0
              %3: f64[3] = exp %2
              %4: f64[3] = add %3, %3
              %5: f64[3] = add %4, %1
              return %5, %2
            }
        "#]],
    );
}

/// f32 transcendental ops are not folded (the runtime rounds them, not the compiler).
#[test]
fn fold_leaves_f32_transcendentals() {
    let f = parse_function(
        "func @f() -> (a: f32[2], b: f32[2]) {\n  %0: f32[2] = constant[value=0.5]\n  %1: f32[2] = exp %0\n  %2: f32[2] = add %0, %0\n  return %1, %2\n}",
    )
    .unwrap();
    let g = dce(&fold(&f).unwrap()).unwrap();
    let names: Vec<&str> = g.insts.iter().map(|i| i.op.name()).collect();
    assert_eq!(names, ["constant", "exp", "constant"]);
}

#[test]
fn unroll_small_scans_only() {
    check(
        |f| unroll(f, 2),
        r#"func @f(%h0: f64[2], %xs: f64[2,2], %ys: f64[3,2]) -> (h: f64[2], s: f64[2,2], g: f64[2]) {
  %0: f64[2], %1: f64[2,2] = scan[length=2, num_carry=1, num_xs=1, reverse=true] %h0, %xs {
    func @body(%h: f64[2], %x: f64[2]) -> (h: f64[2], y: f64[2]) {
      %0: f64[2] = add %h, %x
      return %0, %h
    }
  }
  %2: f64[2], %3: f64[3,2] = scan[length=3, num_carry=1, num_xs=1] %0, %ys {
    func @body(%h: f64[2], %x: f64[2]) -> (h: f64[2], y: f64[2]) {
      %0: f64[2] = mul %h, %x
      return %0, %0
    }
  }
  return %0, %1, %2
}"#,
        expect![[r#"
            func @f(%h0: f64[2], %xs: f64[2,2], %ys: f64[3,2]) -> (h: f64[2], s: f64[2,2], g: f64[2]) {
              %0: f64[1,2] = slice[start=[1,0], end=[2,2]] %xs
              %1: f64[2] = reshape %0
              %2: f64[2] = add %h0, %1
              %3: f64[1,2] = slice[start=[0,0], end=[1,2]] %xs
              %4: f64[2] = reshape %3
              %5: f64[2] = add %2, %4
              %6: f64[1,2] = reshape %2
              %7: f64[1,2] = reshape %h0
              %8: f64[2,2] = concat[axis=0] %6, %7
              %9: f64[2], %10: f64[3,2] = scan[length=3, num_carry=1, num_xs=1] %5, %ys {
                func @body(%h: f64[2], %x: f64[2]) -> (h: f64[2], y: f64[2]) {
                  %0: f64[2] = mul %h, %x
                  return %0, %0
                }
              }
              return %5, %8, %9
            }
        "#]],
    );
}

#[test]
fn pipeline_stages_and_reports() {
    let (_, f) = ir_files()
        .into_iter()
        .find(|(n, _)| n == "short_scan.ir")
        .unwrap();
    let cfg = PipelineConfig {
        grad: Some(GradRequest::ValueAndGrad(vec![0, 1, 2])),
        unroll_threshold: Some(8),
        ..Default::default()
    };
    let r = run_pipeline(&f, &cfg).unwrap();
    let names: Vec<&str> = r.stages.iter().map(|s| s.name).collect();
    assert_eq!(names, ["traced", "ad", "simplified", "unrolled"]);
    assert_eq!(r.stage("traced").unwrap().op_count, f.op_count());
    assert!(
        r.stage("unrolled")
            .unwrap()
            .function
            .insts
            .iter()
            .all(|i| !matches!(i.op, Op::Scan(_)))
    );
    assert!(
        r.stage("simplified")
            .unwrap()
            .passes
            .iter()
            .any(|p| p.pass == "cse")
    );
    assert!(r.summary().lines().count() == 4 && r.summary().contains("unrolled"));
    // Every stage computes the same thing.
    let ins = random_inputs(&f, 1);
    let want = interpret(&r.stage("ad").unwrap().function, &ins).unwrap();
    for st in &r.stages[2..] {
        assert_close(st.name, &interpret(&st.function, &ins).unwrap(), &want);
    }
    let cfg = PipelineConfig {
        unroll_threshold: None,
        ..Default::default()
    };
    let names: Vec<&str> = run_pipeline(&f, &cfg)
        .unwrap()
        .stages
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["traced", "simplified", "scanned"]);
    // AD errors come through.
    let cfg = PipelineConfig {
        grad: Some(GradRequest::Grad(vec![7])),
        ..Default::default()
    };
    assert!(matches!(run_pipeline(&f, &cfg), Err(PipelineError::Ad(_))));
}

#[test]
fn pipeline_names_the_pass_that_broke_the_ir() {
    let (_, f) = ir_files()
        .into_iter()
        .find(|(n, _)| n == "elementwise_chain.ir")
        .unwrap();
    let breaker = |f: &Function| -> Result<Function, IrError> {
        let mut g = f.clone();
        g.types[1] = g.types[0].with_dtype(brainlift_ir::DType::F32);
        Ok(g)
    };
    let ok = |f: &Function| dce(f);
    let err = run_passes("custom", &f, &[("dce", &ok), ("breaker", &breaker)], true).unwrap_err();
    match err {
        PipelineError::Broken { stage, pass, .. } => {
            assert_eq!((stage, pass), ("custom", "breaker"))
        }
        e => panic!("{e}"),
    }
}

/// After simplification the gradient of an elementwise chain is small: the backward part
/// (ops beyond the forward ops it replays) is at most twice the forward.
#[test]
fn simplified_gradient_of_elementwise_chain_is_small() {
    let (_, f) = ir_files()
        .into_iter()
        .find(|(n, _)| n == "elementwise_chain.ir")
        .unwrap();
    let cfg = PipelineConfig {
        grad: Some(GradRequest::Grad(vec![0])),
        ..Default::default()
    };
    let g = run_pipeline(&f, &cfg).unwrap().output().clone();
    let fwd = f.op_count();
    let backward = g.op_count() - (fwd - 1); // the forward minus its final reduce_sum is replayed
    assert_eq!((fwd, g.op_count()), (5, 14));
    assert!(
        backward <= 2 * fwd,
        "forward {fwd} ops, gradient {} ops",
        g.op_count()
    );
    let raw = grad(&f, &[0]).unwrap().op_count();
    assert!(
        g.op_count() < raw,
        "simplification must shrink the raw gradient ({raw} ops)"
    );
}
