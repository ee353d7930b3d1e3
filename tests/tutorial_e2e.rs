//! `brainlift tutorial --quick --json` end to end: every part's metric within bounds and every
//! plot a valid PNG of a sensible size.

use std::process::Command;

fn png_size(path: &str) -> (u32, u32, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{path}: not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR", "{path}: no IHDR chunk");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h, bytes.len())
}

#[test]
fn quick_tutorial_json_meets_bounds_and_writes_pngs() {
    let out = std::env::temp_dir().join(format!("brainlift-tutorial-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_brainlift"))
        .args([
            "tutorial",
            "--quick",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");

    let mse = &v["ngrc"]["mse"];
    let (m1, m10, m100) = (
        mse["1"].as_f64().unwrap(),
        mse["10"].as_f64().unwrap(),
        mse["100"].as_f64().unwrap(),
    );
    assert!(m1 <= 1e-9, "1-step MSE {m1}");
    assert!(m10 <= 0.06, "10-step MSE {m10}");
    assert!((30.0..=50.0).contains(&m100), "100-step MSE {m100}");
    assert!(v["ngrc"]["condition_numbers"][0].as_f64().unwrap() > 1e14);

    let rl: Vec<f64> = v["rnn"]["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        rl.len() == 3 && rl[2] < rl[0] && rl[2] < 0.6,
        "rnn losses {rl:?}"
    );
    assert_eq!(v["rnn"]["final_loss"].as_f64().unwrap(), rl[2]);

    let sl: Vec<f64> = v["snn"]["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        sl.len() >= 2 && sl[sl.len() - 1] < sl[0],
        "snn losses {sl:?}"
    );
    let acc = v["snn"]["accuracy"].as_f64().unwrap();
    assert!((0.6..=1.0).contains(&acc), "snn accuracy {acc}");

    let mut n = 0;
    for part in ["ngrc", "rnn", "snn"] {
        for p in v[part]["plots"].as_array().unwrap() {
            let (w, h, len) = png_size(p.as_str().unwrap());
            assert!(
                w >= 400 && h >= 300 && len > 10_000,
                "{p}: {w}x{h}, {len} bytes"
            );
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} plots");
}

/// An `--out` that cannot be a folder (here: a file) fails before any training, with the
/// path named and a nonzero exit.
#[test]
fn unusable_out_folder_fails_before_training() {
    let file = std::env::temp_dir().join(format!("brainlift-out-file-{}", std::process::id()));
    std::fs::write(&file, b"not a folder").unwrap();
    for (part, trained) in [
        ("rnn", "Train 0 epoch"),
        ("snn", "Train "),
        ("ngrc", "fit on"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_brainlift"))
            .args(["tutorial", "--quick", "--part", part, "--backend", "interp"])
            .arg("--out")
            .arg(&file)
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(o.status.code(), Some(1), "{part}: {err}");
        assert!(
            err.contains("cannot create") && err.contains(file.to_str().unwrap()),
            "{part}: {err}"
        );
        assert!(!out.contains(trained), "{part} trained first:\n{out}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_file(&file);
}

/// A negative number is reported as a bad value of its option, not as an unknown argument.
#[test]
fn negative_numbers_are_bad_values_not_unknown_arguments() {
    for (args, flag) in [
        (&["tutorial", "--seed", "-1"][..], "--seed"),
        (&["bench", "--seconds", "-1"][..], "--seconds"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_brainlift"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(
            err.contains("-1") && err.contains(flag) && !err.contains("unexpected argument"),
            "{args:?}: {err}"
        );
    }
}
