//! Golden IR files for the AD transform: `tests/ir/ad/<name>.ir` is differentiated w.r.t. all
//! its inputs; the raw `grad` output and the pipeline's `simplified` stage are compared with
//! `<name>.grad.ir` and `<name>.simplified.ir` (regenerate with `UPDATE_EXPECT=1`). A change
//! in the transform shows up as a diff of these files.

use brainlift_compiler::ad::grad;
use brainlift_compiler::pipeline::{GradRequest, PipelineConfig, run_pipeline};
use brainlift_ir::{Function, parse_function, print_function};
use brainlift_runtime::gradcheck::check_grad;
use brainlift_runtime::random::random_inputs;
use expect_test::expect_file;

fn load(name: &str) -> Function {
    let path = format!("{}/tests/ir/ad/{name}.ir", env!("CARGO_MANIFEST_DIR"));
    parse_function(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn stages(name: &str) -> (Function, Function, Function) {
    let f = load(name);
    let wrt: Vec<usize> = (0..f.params.len()).collect();
    let g = grad(&f, &wrt).unwrap();
    let cfg = PipelineConfig {
        grad: Some(GradRequest::Grad(wrt.clone())),
        unroll_threshold: None,
        ..Default::default()
    };
    let simplified = run_pipeline(&f, &cfg)
        .unwrap()
        .stage("simplified")
        .unwrap()
        .function
        .clone();
    // The goldens are real gradients, and they round-trip through the text format.
    let r = check_grad(&f, &wrt, &random_inputs(&f, 7)).unwrap();
    assert!(r.max_err <= 1e-6, "{r:#?}");
    for h in [&g, &simplified] {
        assert_eq!(&parse_function(&print_function(h)).unwrap(), h);
    }
    (f, g, simplified)
}

#[test]
fn elementwise_chain() {
    let (_, g, s) = stages("elementwise_chain");
    expect_file!["ir/ad/elementwise_chain.grad.ir"].assert_eq(&print_function(&g));
    expect_file!["ir/ad/elementwise_chain.simplified.ir"].assert_eq(&print_function(&s));
}

#[test]
fn matmul_reduce() {
    let (_, g, s) = stages("matmul_reduce");
    expect_file!["ir/ad/matmul_reduce.grad.ir"].assert_eq(&print_function(&g));
    expect_file!["ir/ad/matmul_reduce.simplified.ir"].assert_eq(&print_function(&s));
}

#[test]
fn short_scan() {
    let (_, g, s) = stages("short_scan");
    expect_file!["ir/ad/short_scan.grad.ir"].assert_eq(&print_function(&g));
    expect_file!["ir/ad/short_scan.simplified.ir"].assert_eq(&print_function(&s));
}
