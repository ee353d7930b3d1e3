//! Malformed inputs: every file under `tests/ir/bad/` (repo root) is rejected with an
//! `IrError::Parse` at the stated position whose message contains the stated text. Each file
//! starts with `// error: <substring of the message>` and `// at: <line>:<col>`.
//! A few exact messages are pinned with expect-test.

use brainlift_ir::{IrError, parse_function};
use expect_test::{Expect, expect};
use std::path::PathBuf;

fn bad_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/ir/bad");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("tests/ir/bad exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ir"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_file_gives_the_stated_error_at_the_stated_place() {
    let files = bad_files();
    assert!(
        files.len() >= 24,
        "only {} files in tests/ir/bad",
        files.len()
    );
    let mut failures = vec![];
    for (name, text) in &files {
        let mut lines = text.lines();
        let want = lines
            .next()
            .and_then(|l| l.strip_prefix("// error: "))
            .expect("first line: // error: ..");
        let at = lines
            .next()
            .and_then(|l| l.strip_prefix("// at: "))
            .expect("second line: // at: L:C");
        match parse_function(text) {
            Err(IrError::Parse { line, col, msg }) => {
                if !msg.contains(want) || at != format!("{line}:{col}") {
                    failures.push(format!("{name}: got {line}:{col}: {msg}"));
                }
                assert!(!msg.contains('\n'), "{name}: message spans lines: {msg}");
            }
            other => failures.push(format!("{name}: expected a parse error, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check(src: &str, want: Expect) {
    want.assert_eq(&parse_function(src).unwrap_err().to_string());
}

#[test]
fn exact_messages() {
    check(
        "func @f(%x: f64[4x]) -> () {\n  return\n}\n",
        expect![[r#"parse error at line 1, column 18: expected ',' or ']' in shape, found 'x'"#]],
    );
    check(
        "func @f(%x: f64[2]) -> (y: f64[2]) {\n  %0: f64[2] = foo %x\n  return %0\n}\n",
        expect![[r#"parse error at line 2, column 16: unknown op 'foo'"#]],
    );
    check(
        "func @f(%x: f64[2]) -> (y: f64[2]) {\n  %0: f64[2] = add %x, %h\n  return %0\n}\n",
        expect![[r#"parse error at line 2, column 24: undefined value %h"#]],
    );
    check(
        "func @f(%x: f64[2], %y: f64[3]) -> (y: f64[2]) {\n  %0: f64[2] = add %x, %y\n  return %0\n}\n",
        expect![[
            r#"parse error at line 2, column 16: add: operands must have equal types (broadcast explicitly), got f64[2] and f64[3] (operands: f64[2], f64[3])"#
        ]],
    );
    check(
        "func @f(%x: f64[2]) -> (y: f64[2]) {\n  %0: f64[2] = neg %x\n",
        expect![[
            r#"parse error at line 3, column 1: expected an instruction '%name: type = op ..' or 'return', found end of input"#
        ]],
    );
}
