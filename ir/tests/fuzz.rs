//! The parser never panics: random bytes, random token soup, and truncated or mutated valid
//! text all give `Ok` or `Err(IrError::Parse)`.

mod common;

use brainlift_ir::{IrError, parse_function, print_function};
use common::{Rng, random_function};
use proptest::prelude::*;

/// Parses `src`; any error must be a parse error with a 1-based position inside the text.
fn parse_checked(src: &str) -> Result<(), IrError> {
    match parse_function(src) {
        Ok(_) => Ok(()),
        Err(e @ IrError::Parse { line, col, .. }) => {
            let lines = src.split('\n').count();
            assert!(
                line >= 1 && line <= lines && col >= 1,
                "bad position in {e} for {src:?}"
            );
            Err(e)
        }
        Err(e) => panic!("non-parse error {e} for {src:?}"),
    }
}

const VOCAB: [&str; 40] = [
    "func",
    "@f",
    "@body",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "->",
    "-",
    "%x",
    "%0",
    "%1",
    "f64",
    "f32",
    "i32",
    "bool",
    "4",
    "0",
    "1.5",
    "1e400",
    "99999999999999999999",
    "nan",
    "inf",
    "return",
    "add",
    "constant",
    "value",
    "values",
    "scan",
    "custom_vjp",
    "matmul",
    "true",
    "\"s\"",
    "\n",
    "// c\n",
];

/// A random mutation of `text`: truncation, deleted range, inserted token or duplicated range.
fn mutate(text: &str, seed: u64) -> String {
    let mut r = Rng::new(seed);
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let (i, j) = {
        let a = r.range(0, n);
        let b = r.range(0, n);
        (a.min(b), a.max(b))
    };
    let s = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    match r.range(0, 3) {
        0 => s(0, i),
        1 => s(0, i) + &s(j, n),
        2 => s(0, i) + r.pick(&VOCAB) + &s(i, n),
        _ => s(0, j) + &s(i, j) + &s(j, n),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_checked(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soup_never_panics(idx in prop::collection::vec(0..VOCAB.len(), 0..80)) {
        let src: Vec<&str> = idx.iter().map(|&i| VOCAB[i]).collect();
        let _ = parse_checked(&src.join(" "));
    }

    #[test]
    fn mutated_valid_text_never_panics(seed in any::<u64>(), mseed in any::<u64>()) {
        let text = print_function(&random_function(seed));
        for k in 0..4 {
            let _ = parse_checked(&mutate(&text, mseed.wrapping_add(k)));
        }
    }

    #[test]
    fn every_strict_prefix_is_an_error(seed in any::<u64>(), cut in any::<u64>()) {
        let text = print_function(&random_function(seed));
        let chars: Vec<char> = text.trim_end().chars().collect();
        let at = (cut % chars.len() as u64) as usize;
        let prefix: String = chars[..at].iter().collect();
        prop_assert!(parse_checked(&prefix).is_err(), "prefix parsed: {prefix:?}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut src = String::new();
    for _ in 0..200 {
        src.push_str("func @f() -> () {\n = scan[length=1, num_carry=0, num_xs=0] {\n");
    }
    let err = parse_function(&src).unwrap_err();
    assert!(
        err.to_string().contains("nested more than 16 deep"),
        "{err}"
    );
}

#[test]
fn huge_numbers_do_not_overflow_or_allocate() {
    let cases = [
        (
            "func @f(%x: f64[99999999999999999999999]) -> () {\n return\n}",
            "too large",
        ),
        (
            "func @f(%x: f64[1099511627777]) -> () {\n return\n}",
            "too large (at most 2^40)",
        ),
        (
            "func @f(%x: f64[1048576,1048576,2]) -> () {\n return\n}",
            "more than 2^40 elements",
        ),
        (
            "func @f(%x: f64[0,1099511627776,1099511627776]) -> () {\n return\n}",
            "more than 2^40",
        ),
        (
            "func @f(%x: f64[1]) -> () {\n %0: f64[2] = pad[low=[0], high=[18446744073709551615]] %x\n return\n}",
            "too large",
        ),
    ];
    for (src, want) in cases {
        let err = parse_function(src).unwrap_err().to_string();
        assert!(err.contains(want), "{src}: {err}");
    }
}

#[test]
fn large_inputs_stay_linear() {
    let n = 20_000;
    let mut src = String::from("func @chain(%x: f64[4]) -> (y: f64[4]) {\n  %0: f64[4] = neg %x\n");
    for i in 1..n {
        src.push_str(&format!("  %{i}: f64[4] = tanh %{}\n", i - 1));
    }
    src.push_str(&format!("  return %{}\n}}\n", n - 1));
    let start = std::time::Instant::now();
    let f = parse_function(&src).unwrap();
    assert_eq!(f.insts.len(), n);
    assert_eq!(print_function(&f), src);
    // Many results in one instruction and many attributes are rejected without quadratic work.
    let results: Vec<String> = (0..n).map(|i| format!("%r{i}: f64[]")).collect();
    let src = format!(
        "func @f() -> () {{\n  {} = constant[value=1.0]\n  return\n}}\n",
        results.join(", ")
    );
    assert!(
        parse_function(&src)
            .unwrap_err()
            .to_string()
            .contains("constant defines one result")
    );
    let attrs: Vec<String> = (0..n).map(|i| format!("a{i}=1")).collect();
    let src = format!(
        "func @f() -> () {{\n  %0: f64[] = constant[value=1.0, {}]\n  return\n}}\n",
        attrs.join(", ")
    );
    assert!(
        parse_function(&src)
            .unwrap_err()
            .to_string()
            .contains("unknown attribute 'a0'")
    );
    assert!(
        start.elapsed().as_secs_f64() < 5.0,
        "took {:?}",
        start.elapsed()
    );
}
