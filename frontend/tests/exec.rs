use brainlift::ir::{DType, TensorType};
use brainlift::{Array, Backend, Module, Tensor, VarOwner, Variable, run_over_time};

/// x <- 0.5 x + w * input (per unit), output x.
struct Leaky {
    w: Variable,
    x: Variable,
}

impl Module for Leaky {
    fn update(&self, inp: &Tensor) -> Tensor {
        let tr = inp.tracer();
        let x = tr.read_var(&self.x);
        let w = tr.read_var(&self.w);
        let new = &x * 0.5 + inp * &w;
        tr.write_var(&self.x, &new);
        new
    }
}

impl VarOwner for Leaky {
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable)) {
        f("w", &self.w);
        f("x", &self.x);
    }
    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        f("w", &mut self.w);
        f("x", &mut self.x);
    }
}

#[test]
fn states_carry_over_between_calls_and_params_are_captured() {
    let mut m = Leaky {
        w: Variable::param(Array::from_f64([2], vec![1.0, 2.0]).unwrap()),
        x: Variable::state(Array::zeros(TensorType::new(DType::F64, [1, 2]))),
    };
    // batch-first (B=1, T=3, F=2)
    let xs = Array::from_f64([1, 3, 2], vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]).unwrap();
    let ys = run_over_time(&mut m, &xs, true, Backend::Interp).unwrap();
    assert_eq!(ys.shape(), &[1, 3, 2]);
    // unit 0: 1, 0.5, 2.25 ; unit 1: 2, 1, 4.5
    assert_eq!(ys.to_f64_vec(), vec![1.0, 2.0, 0.5, 1.0, 2.25, 4.5]);
    assert_eq!(m.x.value().to_f64_vec(), vec![2.25, 4.5]);
    // state is kept: a second call continues from it
    let ys2 = run_over_time(
        &mut m,
        &Array::zeros(TensorType::new(DType::F64, [1, 1, 2])),
        true,
        Backend::Interp,
    )
    .unwrap();
    assert_eq!(ys2.to_f64_vec(), vec![1.125, 2.25]);
    m.reset_state(1);
    assert_eq!(m.x.value().to_f64_vec(), vec![0.0, 0.0]);
}
