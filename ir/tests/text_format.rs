//! Focused checks of the text format: canonical printing of a hand-built function, result
//! renumbering, comments, literal forms per dtype, string escapes, zero-result instructions.

use brainlift_ir::{
    Constant, CustomVjp, DType, FunctionBuilder, Op, Scan, TensorType, parse_function,
    print_function,
};
use expect_test::expect;

fn t(dtype: DType, dims: &[usize]) -> TensorType {
    TensorType::new(dtype, dims)
}

#[test]
fn canonical_form_of_a_built_function() {
    let mut body = FunctionBuilder::new("body");
    let h = body.param("h", t(DType::F64, &[2]));
    let x = body.param("x", t(DType::F64, &[2]));
    let s = body.add(h, x).unwrap();
    let body = body.finish([("h".to_string(), s), ("y".to_string(), s)]);

    let mut b = FunctionBuilder::new("demo");
    let h0 = b.param("h0", t(DType::F64, &[2]));
    let xs = b.param("xs", t(DType::F64, &[3, 2]));
    let c = b
        .push1(
            Op::Constant(Constant::from_values(
                t(DType::F32, &[3]),
                vec![0.1, -0.0, 1e-7],
            )),
            &[],
        )
        .unwrap();
    let i = b
        .push1(
            Op::Iota {
                ty: t(DType::I32, &[2, 3]),
                axis: 1,
            },
            &[],
        )
        .unwrap();
    let m = b
        .push1(
            Op::Constant(Constant::splat(t(DType::Bool, &[2]), 1.0)),
            &[],
        )
        .unwrap();
    let scan = Scan {
        length: 3,
        num_carry: 1,
        num_xs: 1,
        reverse: true,
        body,
    };
    let r = b.push(Op::Scan(Box::new(scan)), &[h0, xs]).unwrap();
    let sel = b.select(m, r[0], h0).unwrap();
    let f = b.finish([
        ("out".to_string(), sel),
        ("c".to_string(), c),
        ("i".to_string(), i),
    ]);
    expect![[r#"
        func @demo(%h0: f64[2], %xs: f64[3,2]) -> (out: f64[2], c: f32[3], i: i32[2,3]) {
          %0: f32[3] = constant[values=[0.1, -0.0, 1e-7]]
          %1: i32[2,3] = iota[axis=1]
          %2: bool[2] = constant[value=true]
          %3: f64[2], %4: f64[3,2] = scan[length=3, num_carry=1, num_xs=1, reverse=true] %h0, %xs {
            func @body(%h: f64[2], %x: f64[2]) -> (h: f64[2], y: f64[2]) {
              %0: f64[2] = add %h, %x
              return %0, %0
            }
          }
          %5: f64[2] = select %2, %3, %h0
          return %5, %0, %1
        }
    "#]]
    .assert_eq(&print_function(&f));
    assert_eq!(parse_function(&print_function(&f)).unwrap(), f);
}

#[test]
fn any_result_names_comments_and_spacing_are_accepted_and_renumbered() {
    let src = "// leading comment\n\
               func @f(%x: f64[2],\n        %y: f64[2]) -> (s: f64[2]) {  // header comment\n\
               \n\
                 %sum.1: f64[2] = add %x,   %y // trailing comment\n\
                 %tmp: f64[2]=neg %sum.1\n\
                 return %tmp\n\
               }";
    let f = parse_function(src).unwrap();
    expect![[r#"
        func @f(%x: f64[2], %y: f64[2]) -> (s: f64[2]) {
          %0: f64[2] = add %x, %y
          %1: f64[2] = neg %0
          return %1
        }
    "#]]
    .assert_eq(&f.to_string());
}

#[test]
fn literal_forms_per_dtype() {
    let one = |ty: &str, attr: &str| {
        let src =
            format!("func @f() -> (o: {ty}) {{\n  %0: {ty} = constant[{attr}]\n  return %0\n}}\n");
        let f = parse_function(&src).unwrap_or_else(|e| panic!("{attr}: {e}"));
        let Op::Constant(c) = &f.insts[0].op else {
            panic!("not a constant")
        };
        (
            c.data.to_vec(),
            print_function(&f)
                .lines()
                .nth(1)
                .unwrap()
                .trim()
                .to_string(),
        )
    };
    // f32 literals are rounded once to f32 and print in f32's shortest form.
    let (d, line) = one("f32[2]", "values=[0.1, 16777217]");
    assert_eq!(d, vec![0.1f32 as f64, 16777216.0]);
    assert_eq!(line, "%0: f32[2] = constant[values=[0.1, 16777216.0]]");
    let (d, line) = one("f64[4]", "values=[-0.0, 1e21, nan, -inf]");
    assert!(
        d[0] == 0.0
            && d[0].is_sign_negative()
            && d[1] == 1e21
            && d[2].is_nan()
            && d[3] == f64::NEG_INFINITY
    );
    assert_eq!(
        line,
        "%0: f64[4] = constant[values=[-0.0, 1e21, nan, -inf]]"
    );
    let (d, line) = one("i32[2]", "values=[-2147483648, 7]");
    assert_eq!(d, vec![-2147483648.0, 7.0]);
    assert_eq!(line, "%0: i32[2] = constant[values=[-2147483648, 7]]");
    let (d, line) = one("bool[3]", "values=[true, false, true]");
    assert_eq!(d, vec![1.0, 0.0, 1.0]);
    assert_eq!(line, "%0: bool[3] = constant[values=[true, false, true]]");
    // A one-element list is the same constant as a splat and prints as one.
    assert_eq!(
        one("f64[1]", "values=[2.5]").1,
        "%0: f64[1] = constant[value=2.5]"
    );
}

#[test]
fn strings_escape_quotes_and_backslashes() {
    let mut fwd = FunctionBuilder::new("forward");
    let u = fwd.param("u", t(DType::F64, &[]));
    let fwd = fwd.finish([("s".to_string(), u)]);
    let mut bwd = FunctionBuilder::new("backward");
    bwd.param("u", t(DType::F64, &[]));
    let g = bwd.param("g", t(DType::F64, &[]));
    let bwd = bwd.finish([("du".to_string(), g)]);
    let mut b = FunctionBuilder::new("f");
    let x = b.param("x", t(DType::F64, &[]));
    let name = "say \"hi\" \\ bye".to_string();
    let r = b
        .push1(
            Op::CustomVjp(Box::new(CustomVjp {
                name,
                forward: fwd,
                backward: bwd,
            })),
            &[x],
        )
        .unwrap();
    let f = b.finish([("y".to_string(), r)]);
    let text = print_function(&f);
    assert!(
        text.contains(r#"custom_vjp[name="say \"hi\" \\ bye"] %x {"#),
        "{text}"
    );
    assert_eq!(parse_function(&text).unwrap(), f);
}

#[test]
fn instructions_without_results_start_at_the_equals_sign() {
    let src = "func @f(%x: f64[]) -> () {\n  = scan[length=2, num_carry=0, num_xs=0] %x {\n    func @body(%c: f64[]) -> () {\n      return\n    }\n  }\n  return\n}\n";
    let f = parse_function(src).unwrap();
    assert_eq!(f.insts.len(), 1);
    assert!(f.insts[0].results.is_empty());
    assert_eq!(print_function(&f), src);
}

/// `matmul` takes a `bool` lhs with a float rhs (result: the rhs dtype); every other mix of
/// dtypes is rejected, a `bool` rhs included.
#[test]
fn matmul_accepts_a_bool_lhs_with_a_float_rhs_only() {
    let mm = |tl: bool, tr: bool| Op::Matmul {
        transpose_lhs: tl,
        transpose_rhs: tr,
    };
    let b = |d: &[usize]| t(DType::Bool, d);
    for rhs in [DType::F64, DType::F32] {
        let r = mm(false, false)
            .infer(&[b(&[4, 3]), t(rhs, &[3, 5])])
            .unwrap();
        assert_eq!(r, vec![t(rhs, &[4, 5])]);
        let r = mm(true, true)
            .infer(&[b(&[3, 4]), t(rhs, &[5, 3])])
            .unwrap();
        assert_eq!(r, vec![t(rhs, &[4, 5])]);
        let r = mm(false, false)
            .infer(&[b(&[2, 4, 3]), t(rhs, &[2, 3, 5])])
            .unwrap();
        assert_eq!(r, vec![t(rhs, &[2, 4, 5])]);
    }
    for (l, r) in [
        (DType::F64, DType::Bool),
        (DType::Bool, DType::Bool),
        (DType::Bool, DType::I32),
        (DType::I32, DType::F64),
        (DType::F32, DType::F64),
    ] {
        let e = mm(false, false)
            .infer(&[t(l, &[4, 3]), t(r, &[3, 5])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bool lhs and a float rhs"), "{l} x {r}: {e}");
    }
    // Shapes are still checked.
    assert!(
        mm(false, false)
            .infer(&[b(&[4, 3]), t(DType::F64, &[4, 5])])
            .is_err()
    );
    // The text format states the types: a bool-lhs product parses and prints back.
    let src = "func @f(%s: bool[4,3], %w: f32[3,5]) -> (y: f32[4,5]) {
  %0: f32[4,5] = matmul %s, %w
  return %0
}
";
    assert_eq!(print_function(&parse_function(src).unwrap()), src);
}
