//! The hand-written canonical IR files under `tests/ir/` (repo root) parse and print back to
//! identical text (full-line `//` comments aside), and `every_op*.ir` use every op.

mod common;

use brainlift_ir::{Function, parse_function, print_function};
use common::{all_op_names, for_each_op};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn ir_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/ir")
}

/// `(file name, text)` of every `*.ir` file directly under `tests/ir/`, sorted by name.
fn golden_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(ir_dir())
        .expect("tests/ir exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ir"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The text without its full-line comments (which the printer does not reproduce).
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn parse_file(name: &str) -> Function {
    let text = std::fs::read_to_string(ir_dir().join(name)).unwrap();
    parse_function(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn golden_files_print_back_identically() {
    let files = golden_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "dense.ir",
        "rnn_cell.ir",
        "every_op.ir",
        "every_op_f32.ir",
        "scan_rnn.ir",
    ] {
        assert!(
            names.contains(&want),
            "missing tests/ir/{want}; found {names:?}"
        );
    }
    for (name, text) in &files {
        let f = parse_function(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            print_function(&f),
            without_comments(text),
            "{name} is not in canonical form"
        );
    }
}

#[test]
fn every_op_files_use_every_op_and_share_their_structure() {
    for name in ["every_op.ir", "every_op_f32.ir"] {
        let mut used = BTreeSet::new();
        for_each_op(&parse_file(name), &mut |op, _| {
            used.insert(op.name());
        });
        let missing: Vec<&str> = all_op_names()
            .into_iter()
            .filter(|n| !used.contains(n))
            .collect();
        assert!(missing.is_empty(), "{name} does not use {missing:?}");
    }
    let f64_text = print_function(&parse_file("every_op.ir"));
    let f32_text = print_function(&parse_file("every_op_f32.ir"));
    assert_eq!(f64_text.replace("f64", "f32"), f32_text);
}

#[test]
fn golden_files_have_the_expected_interfaces() {
    let f = parse_file("scan_rnn.ir");
    let outs: Vec<String> = f
        .outputs
        .iter()
        .map(|o| format!("{}: {}", o.name, f.ty(o.value)))
        .collect();
    assert_eq!(outs, ["h_final: f64[4,16]", "loss: f64[]"]);
    assert_eq!(f.op_count(), 15);
    let f = parse_file("rnn_cell.ir");
    let ins: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty))
        .collect();
    assert_eq!(
        ins,
        [
            "x: f64[4,1]",
            "h: f64[4,16]",
            "wi: f64[1,16]",
            "wh: f64[16,16]",
            "b: f64[16]"
        ]
    );
}
