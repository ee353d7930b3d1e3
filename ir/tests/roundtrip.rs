//! `parse(print(f)) == f` and `print(parse(print(f))) == print(f)` for random valid functions
//! covering every op, and a check that the generator really covers every op and variant.

mod common;

use brainlift_ir::{
    BinaryOp, CompareOp, DType, Op, ReduceOp, UnaryOp, parse_function, print_function, verify,
};
use common::{all_op_names, for_each_op, random_function};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn roundtrip(seed: u64) {
    let f = random_function(seed);
    verify(&f).unwrap();
    let text = print_function(&f);
    let g = parse_function(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
    assert_eq!(g, f, "seed {seed}: parse(print(f)) != f\n{text}");
    assert_eq!(
        print_function(&g),
        text,
        "seed {seed}: printing is not a fixed point"
    );
    assert_eq!(g.to_string(), text, "Display and print_function differ");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn print_parse_roundtrip(seed in any::<u64>()) {
        roundtrip(seed);
    }
}

/// Feature keys of every op in `f`: the op name plus the variants worth covering.
fn features(f: &brainlift_ir::Function) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for_each_op(f, &mut |op, dtype| {
        keys.insert(op.name().to_string());
        if let Some(d) = dtype {
            keys.insert(format!("{} on {d}", op.name()));
        }
        match op {
            Op::Constant(c) => {
                keys.insert(format!("constant {}", c.ty.dtype));
                for &x in c.data.iter() {
                    if c.ty.dtype.is_float() {
                        let kind = if x.is_nan() {
                            "nan"
                        } else if x.is_infinite() {
                            "inf"
                        } else if x == 0.0 && x.is_sign_negative() {
                            "-0.0"
                        } else {
                            "finite"
                        };
                        keys.insert(format!("constant {} {kind}", c.ty.dtype));
                    }
                }
                if c.data.len() > 1 {
                    keys.insert("constant values".into());
                }
            }
            Op::Unary(_) | Op::Binary(_) | Op::Reduce { .. } | Op::Matmul { .. } | Op::Cast(_) => {
                let key = match op {
                    Op::Matmul {
                        transpose_lhs,
                        transpose_rhs,
                    } => {
                        format!("matmul {transpose_lhs} {transpose_rhs}")
                    }
                    Op::Cast(d) => format!("cast to {d}"),
                    _ => op.name().to_string(),
                };
                keys.insert(key);
            }
            Op::Cumsum { reverse, .. } => {
                keys.insert(format!("cumsum reverse={reverse}"));
            }
            Op::Scan(s) => {
                keys.insert(format!("scan reverse={}", s.reverse));
                if s.body.params.len() > s.num_carry + s.num_xs {
                    keys.insert("scan consts".into());
                }
                for_each_op(&s.body, &mut |o, _| {
                    if o.name() == "scan" {
                        keys.insert("nested scan".into());
                    }
                });
            }
            _ => {}
        }
    });
    keys
}

#[test]
fn generator_covers_every_op_and_variant() {
    let mut seen = BTreeSet::new();
    for seed in 0..600 {
        let f = random_function(seed);
        seen.extend(features(&f));
    }
    let mut want: Vec<String> = all_op_names().iter().map(|s| s.to_string()).collect();
    for d in DType::ALL {
        want.push(format!("constant {d}"));
        want.push(format!("cast to {d}"));
    }
    // Every op on every dtype it accepts.
    let (floats, numeric) = (
        &[DType::F32, DType::F64][..],
        &[DType::F32, DType::F64, DType::I32][..],
    );
    let mut on = |names: Vec<&str>, dtypes: &[DType]| {
        for n in names {
            want.extend(dtypes.iter().map(|d| format!("{n} on {d}")));
        }
    };
    for u in UnaryOp::ALL {
        on(
            vec![u.name()],
            if u.allows_int() { numeric } else { floats },
        );
    }
    for b in BinaryOp::ALL {
        on(
            vec![b.name()],
            if b.allows_int() { numeric } else { floats },
        );
    }
    on(
        CompareOp::ALL.iter().map(|c| c.name()).collect(),
        &DType::ALL,
    );
    on(ReduceOp::ALL.iter().map(|r| r.name()).collect(), numeric);
    on(vec!["iota", "argmax", "matmul", "cumsum"], numeric);
    on(
        vec![
            "constant",
            "select",
            "cast",
            "broadcast",
            "reshape",
            "transpose",
            "slice",
            "pad",
        ],
        &DType::ALL,
    );
    on(vec!["concat", "stop_gradient", "scan"], &DType::ALL);
    on(vec!["custom_vjp"], floats);
    for d in [DType::F32, DType::F64] {
        for k in ["nan", "inf", "-0.0", "finite"] {
            want.push(format!("constant {d} {k}"));
        }
    }
    for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
        want.push(format!("matmul {a} {b}"));
    }
    want.extend(
        [
            "cumsum reverse=false",
            "cumsum reverse=true",
            "scan reverse=false",
            "scan reverse=true",
        ]
        .map(String::from),
    );
    want.extend(["scan consts", "nested scan", "constant values"].map(String::from));
    let missing: Vec<&String> = want.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "the generator never produced: {missing:?}"
    );
}

#[test]
fn fixed_seeds_roundtrip() {
    for seed in 0..64 {
        roundtrip(seed);
    }
}
