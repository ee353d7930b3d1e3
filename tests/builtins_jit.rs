//! Every built-in example function, forward and (for scalar losses) its gradient function,
//! gives the same numbers on the JIT as on the interpreter.

use brainlift::builtins::builtins;
use brainlift::compiler::ad::{float_inputs, value_and_grad};
use brainlift::ir::Function;
use brainlift::runtime::{Backend, compile, random::random_inputs};

fn agree(f: &Function, seed: u64) {
    let inputs = random_inputs(f, seed);
    let a = compile(f, Backend::Interp).unwrap().run(&inputs).unwrap();
    let b = compile(f, Backend::Jit).unwrap().run(&inputs).unwrap();
    assert_eq!(a.len(), b.len());
    for ((o, x), y) in f.outputs.iter().zip(&a).zip(&b) {
        assert_eq!(x.ty(), y.ty(), "@{} output {}", f.name, o.name);
        for (i, (p, q)) in x.to_f64_vec().iter().zip(y.to_f64_vec()).enumerate() {
            let tol = 1e-12 * p.abs().max(1.0);
            assert!(
                (p - q).abs() <= tol || (p.is_nan() && q.is_nan()),
                "@{} output {} element {i}: interp {p} vs jit {q}",
                f.name,
                o.name
            );
        }
    }
}

#[test]
fn builtins_forward_and_gradient_agree_on_jit_and_interpreter() {
    for b in builtins() {
        // The tutorial train steps (`ngrc`, `rnn`, `snn`) are compared on realistic data by the
        // tutorial tests; random inputs would put spikes and relu kinks at rounding distance.
        if ["ngrc", "rnn", "snn"].contains(&b.name) {
            continue;
        }
        let f = b.build().unwrap();
        agree(&f, 11);
        let scalar = f.outputs.len() == 1 && f.ty(f.outputs[0].value).rank() == 0;
        if scalar {
            let g = value_and_grad(&f, &float_inputs(&f)).unwrap();
            agree(&g, 12);
        }
    }
}

/// The tutorial's train steps split their scans into row blocks on two threads, give the
/// same numbers on every run, and agree with one thread to rounding (the weight gradients'
/// long sums over time × batch are split into ranges, which changes rounding only).
#[test]
fn tutorial_train_steps_split_by_rows_and_do_not_depend_on_threads() {
    use brainlift::compiler::pipeline::{Lowering, PipelineConfig, run_pipeline};
    use brainlift::runtime::{CompileOptions, JitExecutable, compile_with};
    for name in ["rnn", "snn"] {
        let f = brainlift::builtins::builtin(name).unwrap();
        // Optimiser moments and hyper-parameters small and positive (as in training), so the
        // step is finite.
        let mut inputs = random_inputs(&f, 5);
        for (p, t) in f.params.iter().zip(inputs.iter_mut()) {
            if p.name.contains("opt") || p.name.starts_with("hyper") {
                let v: Vec<f64> = t.to_f64_vec().iter().map(|x| x.abs() * 1e-2).collect();
                *t = brainlift::runtime::Tensor::from_f64_values(t.ty().clone(), &v).unwrap();
            }
        }
        let run = |threads: usize| {
            let opts = CompileOptions {
                threads,
                ..CompileOptions::default()
            };
            compile_with(&f, Backend::Jit, &opts)
                .unwrap()
                .run(&inputs)
                .unwrap()
        };
        let (one, two, again) = (run(1), run(2), run(2));
        for (((o, x), y), z) in f.outputs.iter().zip(&one).zip(&two).zip(&again) {
            let (xv, yv, zv) = (x.to_f64_vec(), y.to_f64_vec(), z.to_f64_vec());
            // Norm-wise: random weights blow the activations up, and rounding differences of
            // the split sums then show relative to the output's scale, not each element's.
            let scale = xv.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for i in 0..xv.len() {
                let (p, q, r) = (xv[i], yv[i], zv[i]);
                assert!(
                    p.is_finite(),
                    "@{} output {} element {i} is {p}",
                    f.name,
                    o.name
                );
                assert!(
                    q.to_bits() == r.to_bits() || (q.is_nan() && r.is_nan()),
                    "@{} output {} element {i}: two runs on 2 threads differ: {q} vs {r}",
                    f.name,
                    o.name
                );
                assert!(
                    (p - q).abs() <= 1e-10 * scale,
                    "@{} output {} element {i}: 1 thread {p} vs 2 threads {q}",
                    f.name,
                    o.name
                );
            }
        }
        let cfg = PipelineConfig {
            lower: Some(Lowering { reassociate: true }),
            ..Default::default()
        };
        let lowered = run_pipeline(&f, &cfg).unwrap().output().clone();
        let jit = JitExecutable::compile_threads(&lowered, &Default::default(), 2).unwrap();
        let blocks = jit.compiled().scan_row_blocks();
        assert!(
            blocks.iter().any(|&b| b >= 2),
            "@{}: no scan split into row blocks: {blocks:?}",
            f.name
        );
    }
}

/// The tutorial SNN train step takes its input spikes as `bool` and both products that read
/// them are bool-lhs matmuls on the spikes themselves: `x_t @ W` in the forward scan and the
/// hoisted weight gradient `X^T dI` over the merged `[T*B]` axis. Nothing casts or copies the
/// spikes to f64. The hidden layer's own spikes stay bool too (`bool_casts`): the readout
/// product in the forward scan and its hoisted weight gradient read them as bytes.
#[test]
fn snn_train_step_multiplies_the_bool_spikes_directly() {
    use brainlift::compiler::pipeline::{Lowering, PipelineConfig, run_pipeline};
    use brainlift::ir::{DType, Op};
    let f = brainlift::builtins::builtin("snn").unwrap();
    let xs = f.params.iter().find(|p| p.name == "xs").unwrap();
    assert_eq!(xs.ty.to_string(), "bool[100,256,100]");
    let cfg = PipelineConfig {
        lower: Some(Lowering { reassociate: true }),
        ..Default::default()
    };
    let lowered = run_pipeline(&f, &cfg).unwrap().output().clone();
    let text = lowered.to_string();
    assert!(
        !text.contains("cast %xs") && !text.contains("f64[100,256,100]"),
        "{text}"
    );
    assert!(!text.contains("f64[25600,100]"), "{text}");
    let bool_mm = |g: &brainlift::ir::Function| {
        g.insts
            .iter()
            .filter(|i| matches!(i.op, Op::Matmul { .. }) && g.ty(i.args[0]).dtype == DType::Bool)
            .map(|i| g.ty(i.args[0]).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bool_mm(&lowered),
        ["bool[25600,100]", "bool[25600,10]"],
        "{text}"
    );
    let forward = lowered
        .insts
        .iter()
        .find_map(|i| match &i.op {
            Op::Scan(s) if !s.reverse => Some(s.body.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(bool_mm(&forward), ["bool[256,100]", "bool[256,10]"]);
}
