//! Module retirement (`clear_cache` + drop frees the code) and shared code on threads.
//! In its own test binary: clearing the process-wide cache must not race other cache tests.

use brainlift_ir::{DType, Function, FunctionBuilder, TensorType, UnaryOp};
use brainlift_runtime::{Executable, JitExecutable, Tensor};

fn scaled_exp(name: &str, scale: f64) -> Function {
    let mut b = FunctionBuilder::new(name);
    let x = b.param("x", TensorType::new(DType::F64, [5]));
    let s = b.splat(TensorType::new(DType::F64, [5]), scale);
    let m = b.mul(x, s).unwrap();
    let e = b.unary(UnaryOp::Exp, m).unwrap();
    b.finish([("e".to_string(), e)])
}

#[test]
fn retired_modules_are_freed_and_shared_code_runs_on_threads() {
    let f = scaled_exp("retire", 0.123);
    let x = Tensor::from_f64([5], vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let want: Vec<f64> = (1..=5).map(|i| (i as f64 * 0.123).exp()).collect();
    // Two executables share one compiled module; each runs on its own thread.
    let a = JitExecutable::compile(&f).unwrap();
    let b = JitExecutable::compile(&f).unwrap();
    assert!(b.was_cache_hit());
    let handles: Vec<_> = [a, b]
        .into_iter()
        .map(|mut e| {
            let x = x.clone();
            std::thread::spawn(move || {
                let mut last = vec![];
                for _ in 0..100 {
                    last = e.run(std::slice::from_ref(&x)).unwrap()[0]
                        .as_f64()
                        .unwrap()
                        .to_vec();
                }
                last
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
    // Evict everything: the module is freed when the last executable is gone; compiling
    // again builds a fresh one that works.
    brainlift_runtime::cache::clear_cache();
    let mut c = JitExecutable::compile(&f).unwrap();
    assert_eq!(
        c.run(std::slice::from_ref(&x)).unwrap()[0]
            .as_f64()
            .unwrap(),
        &want[..]
    );
}
