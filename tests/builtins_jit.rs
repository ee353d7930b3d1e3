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
