use brainlift::ir::{Op, verify};
use brainlift::{DType, TensorType, TraceError, trace};

fn f64t(d: &[usize]) -> TensorType {
    TensorType::new(DType::F64, d)
}

#[test]
fn broadcasting_inserts_explicit_broadcasts() {
    let f = trace("bias", |tr| {
        let x = tr.input("x", f64t(&[4, 3]));
        let b = tr.input("b", f64t(&[3]));
        Ok(vec![("y".into(), (&x + &b) * 2.0)])
    })
    .unwrap();
    verify(&f).unwrap();
    let names: Vec<&str> = f.insts.iter().map(|i| i.op.name()).collect();
    assert_eq!(names, ["broadcast", "add", "constant", "broadcast", "mul"]);
    assert_eq!(f.output_types()[0], f64t(&[4, 3]));
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let err = trace("bad", |tr| {
        let x = tr.input("x", f64t(&[4, 3]));
        let w = tr.input("w", f64t(&[4, 2]));
        let y = x.matmul(&w).tanh(); // error here, later ops are skipped
        Ok(vec![("y".into(), y)])
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("matmul") && msg.contains("f64[4,3]") && msg.contains("f64[4,2]"),
        "{msg}"
    );

    let err = trace("bad2", |tr| {
        let x = tr.input("x", f64t(&[4, 3]));
        let y = tr.input("y", f64t(&[2]));
        Ok(vec![("z".into(), x + y)])
    })
    .unwrap_err();
    assert_eq!(
        err,
        TraceError::Op {
            op: "add".into(),
            msg: "shapes f64[4,3] and f64[2] do not broadcast together".into()
        }
    );
}

#[test]
fn scan_captures_outer_tensors_as_loop_invariants() {
    let f = trace("rnn", |tr| {
        let xs = tr.input("xs", f64t(&[5, 2, 3]));
        let h0 = tr.input("h0", f64t(&[2, 4]));
        let wi = tr.input("wi", f64t(&[3, 4]));
        let wh = tr.input("wh", f64t(&[4, 4]));
        let (carry, ys) = tr.scan(&[h0], &[xs], None, false, |_, c, x| {
            let h = (x[0].matmul(&wi) + c[0].matmul(&wh)).relu();
            Ok((vec![h.clone()], vec![h]))
        })?;
        Ok(vec![
            ("h".into(), carry[0].clone()),
            ("hs".into(), ys[0].clone()),
        ])
    })
    .unwrap();
    verify(&f).unwrap();
    let scan = f.insts.iter().find_map(|i| match &i.op {
        Op::Scan(s) => Some((s, i.args.len())),
        _ => None,
    });
    let (s, nargs) = scan.unwrap();
    assert_eq!((s.length, s.num_carry, s.num_xs, nargs), (5, 1, 1, 4));
    assert_eq!(s.body.params.len(), 4); // carry, x_t, wi, wh
    assert_eq!(f.output_types()[1], f64t(&[5, 2, 4]));
}

#[test]
fn names_become_identifiers_so_the_text_parses_back() {
    let f = trace("names", |tr| {
        let x = tr.input("layer-1.W", f64t(&[2]));
        let y = tr.input("0bias", f64t(&[2]));
        Ok(vec![("out put".into(), x + y)])
    })
    .unwrap();
    assert_eq!(f.params[0].name, "layer_1.W");
    assert_eq!(f.params[1].name, "_0bias");
    assert_eq!(f.outputs[0].name, "out_put");
    let text = brainlift::ir::print_function(&f);
    assert_eq!(brainlift::ir::parse_function(&text).unwrap(), f);
}

/// A bool lhs (spikes) times a float rhs is one matmul, no cast: rank 2, a rank-3 lhs (the
/// leading axes merged by reshapes) and a vector; the result has the rhs dtype. A bool rhs
/// is an error naming the types.
#[test]
fn bool_lhs_matmul_needs_no_cast() {
    let bt = |d: &[usize]| TensorType::new(DType::Bool, d);
    let f = trace("spikes", |tr| {
        let s = tr.input("s", bt(&[4, 3]));
        let s3 = tr.input("s3", bt(&[2, 4, 3]));
        let v = tr.input("v", bt(&[3]));
        let w = tr.input("w", f64t(&[3, 5]));
        let w32 = tr.input("w32", TensorType::new(DType::F32, [3, 5]));
        Ok(vec![
            ("y".into(), s.matmul(&w)),
            ("y3".into(), s3.matmul(&w)),
            ("yv".into(), v.matmul(&w)),
            ("y32".into(), s.matmul(&w32)),
        ])
    })
    .unwrap();
    verify(&f).unwrap();
    assert!(f.insts.iter().all(|i| !matches!(i.op, Op::Cast(_))), "{f}");
    let mm = f
        .insts
        .iter()
        .filter(|i| matches!(i.op, Op::Matmul { .. }))
        .count();
    assert_eq!(mm, 4, "{f}");
    let outs: Vec<String> = f
        .outputs
        .iter()
        .map(|o| f.ty(o.value).to_string())
        .collect();
    assert_eq!(outs, ["f64[4,5]", "f64[2,4,5]", "f64[5]", "f32[4,5]"]);
    let e = trace("bad", |tr| {
        let w = tr.input("w", f64t(&[4, 3]));
        let s = tr.input("s", bt(&[3, 5]));
        Ok(vec![("y".into(), w.matmul(&s))])
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("matmul") && e.contains("bool[3,5]"), "{e}");
}
