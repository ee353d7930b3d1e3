//! The `brainlift ir` commands, run as a user would: dump/check round trips for every built-in,
//! malformed files rejected with a one-line located error, f32 and f64 runs agreeing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn brainlift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brainlift"))
        .args(args)
        .output()
        .expect("runs")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("brainlift-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn every_builtin_dump_parses_back_to_identical_text() {
    let list = stdout(&brainlift(&["ir", "list"]));
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    for want in ["dense", "nvar", "rnn-cell", "lif", "rnn-loss", "snn-loss"] {
        assert!(names.contains(&want), "{want} missing from `ir list`");
    }
    for n in names {
        let dump = brainlift(&["ir", "dump", n]);
        assert!(dump.status.success(), "{n}: {}", stderr(&dump));
        let path = tmp(&format!("{n}.ir"));
        std::fs::write(&path, &dump.stdout).unwrap();
        let check = brainlift(&["ir", "check", path.to_str().unwrap()]);
        assert!(check.status.success(), "{n}: {}", stderr(&check));
        assert_eq!(
            stdout(&check),
            stdout(&dump),
            "{n}: check output differs from dump"
        );
    }
}

#[test]
fn malformed_files_give_one_located_line_and_nonzero_exit() {
    let dir = root().join("tests/ir/bad");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("ir") {
            continue;
        }
        let o = brainlift(&["ir", "check", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", p.display());
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{}: not one line: {err}",
            p.display()
        );
        assert!(!err.contains("panicked"), "{}: {err}", p.display());
        // `error: <file>:<line>:<col>: ...`
        let loc = err
            .trim_start_matches("error: ")
            .trim_start_matches(p.to_str().unwrap());
        let mut parts = loc.trim_start_matches(':').splitn(3, ':');
        let line: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{}: no line in {err}", p.display()));
        let col: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{}: no column in {err}", p.display()));
        assert!(line >= 1 && col >= 1);
        n += 1;
    }
    assert!(n >= 20, "only {n} malformed files");
    let o = brainlift(&["ir", "check", "does/not/exist.ir"]);
    assert_eq!(o.status.code(), Some(1));
}

fn run_json(file: &Path, backend: &str) -> serde_json::Value {
    let o = brainlift(&[
        "ir",
        "run",
        file.to_str().unwrap(),
        "--json",
        "--seed",
        "3",
        "--backend",
        backend,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn every_op_runs_alike_in_f32_and_f64() {
    for backend in ["interp", "jit"] {
        let a = run_json(&root().join("tests/ir/every_op.ir"), backend);
        let b = run_json(&root().join("tests/ir/every_op_f32.ir"), backend);
        let (oa, ob) = (
            a["outputs"].as_array().unwrap(),
            b["outputs"].as_array().unwrap(),
        );
        assert_eq!(oa.len(), ob.len());
        for (x, y) in oa.iter().zip(ob) {
            assert_eq!(x["shape"], y["shape"]);
            for (p, q) in x["values"]
                .as_array()
                .unwrap()
                .iter()
                .zip(y["values"].as_array().unwrap())
            {
                let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
                assert!(
                    (p - q).abs() <= 1e-5 * p.abs().max(1.0),
                    "{}: {p} vs {q}",
                    x["name"]
                );
            }
        }
    }
}

#[test]
fn grad_checks_and_rejects_bad_requests() {
    let dump = brainlift(&["ir", "dump", "rnn-loss"]);
    let path = tmp("rnn_loss.ir");
    std::fs::write(&path, &dump.stdout).unwrap();
    let p = path.to_str().unwrap();
    let ok = brainlift(&["ir", "grad", p, "--check"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("worst relative error"));
    // Every input of rnn-loss has at most 256 elements: all are checked, no "of" note.
    assert!(!stdout(&ok).contains("elements checked"), "{}", stdout(&ok));
    // A bounded check names how much of each input it compared (Wh has 16 x 16 elements).
    let few = brainlift(&[
        "ir",
        "grad",
        p,
        "--wrt",
        "Wh",
        "--check",
        "--check-elements",
        "5",
    ]);
    assert!(few.status.success(), "{}", stderr(&few));
    assert!(
        stdout(&few).contains("5 of 256 elements checked"),
        "{}",
        stdout(&few)
    );

    let e = brainlift(&["ir", "grad", p, "--wrt", "nope"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(
        stderr(&e).contains("no input named 'nope'"),
        "{}",
        stderr(&e)
    );

    let lif = tmp("lif.ir");
    std::fs::write(&lif, brainlift(&["ir", "dump", "lif"]).stdout).unwrap();
    let e = brainlift(&["ir", "grad", lif.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(1));
    assert!(stderr(&e).contains("float scalar"), "{}", stderr(&e));

    let snn = tmp("snn.ir");
    std::fs::write(&snn, brainlift(&["ir", "dump", "snn-loss"]).stdout).unwrap();
    let e = brainlift(&["ir", "grad", snn.to_str().unwrap(), "--wrt", "labels"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(stderr(&e).contains("i32"), "{}", stderr(&e));

    // An input too large to allocate: the 16 GiB limit, not an allocation abort.
    let big = tmp("big.ir");
    std::fs::write(
        &big,
        "func @f(%x: f64[100000,100000]) -> (y: f64[]) {\n  %0: f64[] = reduce_sum[axes=[0,1]] %x\n  return %0\n}\n",
    )
    .unwrap();
    let e = brainlift(&["ir", "grad", big.to_str().unwrap(), "--check"]);
    assert_eq!(e.status.code(), Some(1), "{}", stderr(&e));
    assert!(stderr(&e).contains("16 GiB"), "{}", stderr(&e));
    assert!(stderr(&e).contains("input %x"), "{}", stderr(&e));
    // An internal value too large: named as a value, not reported as an input mismatch.
    let bigc = tmp("bigc.ir");
    std::fs::write(
        &bigc,
        "func @f(%x: f64[3]) -> (y: f64[]) {\n  %0: f64[100000,100000] = constant[value=1.0]\n  %1: f64[] = reduce_sum[axes=[0,1]] %0\n  return %1\n}\n",
    )
    .unwrap();
    let e = brainlift(&["ir", "run", bigc.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(1), "{}", stderr(&e));
    assert!(
        stderr(&e).contains("too large to run: value %0 of type f64[100000,100000] needs 74.5 GiB"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn run_rejects_bad_backend_and_missing_inputs() {
    let f = root().join("tests/ir/dense.ir");
    let e = brainlift(&["ir", "run", f.to_str().unwrap(), "--backend", "gpu"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(stderr(&e).contains("unknown backend 'gpu'"));
    let e = brainlift(&["ir", "run", f.to_str().unwrap(), "--inputs", "/nonexistent"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(stderr(&e).contains(".npy"), "{}", stderr(&e));
}

/// `ir dump FILE.ir` runs a text IR file through the same stages as a built-in.
#[test]
fn dump_takes_a_text_ir_file_through_the_stages() {
    let file = root().join("tests/ir/dense.ir");
    let file = file.to_str().unwrap();
    let traced = brainlift(&["ir", "dump", file]);
    assert!(traced.status.success(), "{}", stderr(&traced));
    let check = brainlift(&["ir", "check", file]);
    assert_eq!(stdout(&traced), stdout(&check));
    let fused = brainlift(&["ir", "dump", file, "--stage", "fused"]);
    assert!(fused.status.success(), "{}", stderr(&fused));
    assert!(stdout(&fused).contains("kernel k0"), "{}", stdout(&fused));
    let stages = stdout(&brainlift(&["ir", "dump", file, "--stages"]));
    for stage in ["traced", "simplified", "lowered", "fused"] {
        assert!(stages.contains(stage), "{stage} missing: {stages}");
    }
    let missing = brainlift(&["ir", "dump", "no/such/file.ir"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no/such/file.ir"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn dump_with_an_unwritable_dot_path_prints_nothing_and_fails() {
    let e = brainlift(&["ir", "dump", "lif", "--dot", "/nonexistent/dir/lif.dot"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(
        stderr(&e).contains("/nonexistent/dir/lif.dot"),
        "{}",
        stderr(&e)
    );
    assert!(stdout(&e).is_empty(), "{}", stdout(&e));
}

/// `--inputs`: a float file for an i32 input is an error (it would be truncated); an i32 file
/// for an f64 input converts exactly.
#[test]
fn run_inputs_reject_lossy_dtype_conversions() {
    use brainlift::runtime::{Tensor, npy::write_npy};
    let f = tmp("idiv.ir");
    std::fs::write(
        &f,
        "func @f(%x: i32[2], %y: f64[2]) -> (s: f64[2]) {\n  %0: f64[2] = cast %x\n  %1: f64[2] = add %0, %y\n  return %1\n}\n",
    )
    .unwrap();
    let dir = tmp("lossy_inputs");
    std::fs::create_dir_all(&dir).unwrap();
    write_npy(
        dir.join("x.npy"),
        &Tensor::from_f64([2], vec![7.9, 1.0]).unwrap(),
    )
    .unwrap();
    let y_i32 = Tensor::from_f64([2], vec![1.0, 2.0])
        .unwrap()
        .cast(brainlift::ir::DType::I32);
    write_npy(dir.join("y.npy"), &y_i32).unwrap();
    let args = |d: &Path| {
        brainlift(&[
            "ir",
            "run",
            f.to_str().unwrap(),
            "--inputs",
            d.to_str().unwrap(),
        ])
    };
    let e = args(&dir);
    assert_eq!(e.status.code(), Some(1), "{}", stdout(&e));
    assert!(
        stderr(&e).contains("%x") && stderr(&e).contains("f64") && stderr(&e).contains("i32"),
        "{}",
        stderr(&e)
    );
    write_npy(dir.join("x.npy"), &y_i32).unwrap();
    let ok = args(&dir);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).contains("2.000000e0, 4.000000e0"),
        "{}",
        stdout(&ok)
    );
}

/// An empty output's checksum is +0 (a sum from +0, as `reduce_sum`), not -0.
#[test]
fn an_empty_output_has_checksum_zero() {
    let file = tmp("empty.ir");
    std::fs::write(
        &file,
        "func @f(%a: f64[0,3]) -> (c: f64[0,3]) {\n  %0: f64[0,3] = neg %a\n  return %0\n}\n",
    )
    .unwrap();
    for backend in ["jit", "interp"] {
        let out = run_json(&file, backend);
        let sum = out["outputs"][0]["checksum"].as_f64().unwrap();
        assert_eq!(sum.to_bits(), 0, "{backend}: checksum {sum:?}");
    }
}
