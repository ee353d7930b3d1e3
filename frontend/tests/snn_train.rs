//! Surrogate-gradient training of the tutorial's spiking network: gradients against finite
//! differences, a reduced training run, bad inputs, backends.

use brainlift::compiler::ad;
use brainlift::dyn_::SpikeForward;
use brainlift::ir::{DType, TensorType};
use brainlift::tutorial::snn::{SnnConfig, SnnNet, poisson_data, run_snn_part, snn_loss};
use brainlift::{Array, Backend, Module, Tracer, named_vars, random, train_vars};

/// Gradient of the (tiny) tutorial loss w.r.t. every weight and bias, by reverse-mode AD
/// through the scan, against central finite differences.
///
/// Why this is sound: with the Heaviside forward the loss is piecewise constant in the
/// weights (finite differences see 0 or jumps) while AD returns the *surrogate* gradient, so
/// the two cannot be compared. [`SpikeForward::SmoothSigmoid`] replaces only the forward by
/// `sigmoid(α·u)` and keeps the Sigmoid surrogate's backward `α·σ(1−σ)`, which is then the
/// exact derivative of that forward. Everything else is the real tutorial graph (Linear,
/// Expon, LIF with the non-detached soft reset through the spike, Integrator, max over time,
/// cross-entropy, the scan's reverse pass), so agreement checks every VJP rule on the path and
/// the custom_vjp plumbing; the surrogate backward itself is checked against the golden
/// values and the spec formula in `dyn_golden.rs`.
#[test]
fn smooth_tutorial_loss_gradient_matches_finite_differences() {
    random::seed(7);
    let (t, b, n_in, n_rec) = (6, 3, 4, 3);
    let mut net = SnnNet::new(
        n_in,
        n_rec,
        2,
        1.0,
        SpikeForward::SmoothSigmoid { alpha: 2.0 },
    )
    .unwrap();
    net.reset_state(b);
    let (x, _) = poisson_data(t, b, n_in, 400.0, 1.0).unwrap();
    let y = Array::from_f64([b], vec![0.0, 1.0, 1.0]).unwrap();
    let params = train_vars(&net);
    assert_eq!(
        params.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["i2r.comm.W", "i2r.comm.b", "r2o.comm.W", "r2o.comm.b"]
    );
    let tr = Tracer::new("loss");
    tr.name_vars(&net, "");
    for (_, v) in &params {
        tr.read_var(v);
    }
    let xs = tr.input("xs", x.ty().clone());
    let ys = tr.input("ys", y.ty().clone());
    let loss = snn_loss(&net, &xs, &ys).unwrap();
    let f = tr.finish(&[("loss".into(), loss)]).unwrap();
    // inputs: params (0..4), xs, ys, then the states read by the loop
    let all = named_vars(&net);
    let mut inputs: Vec<Array> = vec![];
    let var_at: std::collections::HashMap<usize, u64> =
        tr.var_inputs().into_iter().map(|(id, p)| (p, id)).collect();
    for (i, p) in f.params.iter().enumerate() {
        inputs.push(match (var_at.get(&i), p.name.as_str()) {
            (Some(id), _) => all
                .iter()
                .find(|(_, v)| v.id() == *id)
                .unwrap()
                .1
                .value()
                .clone(),
            (None, "xs") => x.clone(),
            (None, _) => y.clone(),
        });
    }
    let g = ad::value_and_grad(&f, &[0, 1, 2, 3]).unwrap();
    let mut gexe = brainlift::runtime::compile(&g, Backend::Interp).unwrap();
    let out = gexe.run(&inputs).unwrap();
    let l0 = out[0].item().unwrap();
    assert!(l0.is_finite() && l0 > 0.0);
    let mut fexe = brainlift::runtime::compile(&f, Backend::Interp).unwrap();
    let mut eval = |inp: &[Array]| fexe.run(inp).unwrap()[0].item().unwrap();
    assert!((eval(&inputs) - l0).abs() < 1e-14);
    let h = 1e-6;
    let mut checked = 0;
    let mut max_g: f64 = 0.0;
    for pi in 0..4 {
        let ad_g = out[1 + pi].to_f64_vec();
        let base = inputs[pi].to_f64_vec();
        for j in 0..base.len() {
            let mut plus = inputs.clone();
            let mut minus = inputs.clone();
            let mut v = base.clone();
            v[j] += h;
            plus[pi] = Array::from_f64(inputs[pi].shape(), v.clone()).unwrap();
            v[j] -= 2.0 * h;
            minus[pi] = Array::from_f64(inputs[pi].shape(), v).unwrap();
            let fd = (eval(&plus) - eval(&minus)) / (2.0 * h);
            assert!(
                (fd - ad_g[j]).abs() <= 1e-6 * ad_g[j].abs().max(1e-2),
                "{} [{j}]: AD {} vs finite differences {fd}",
                params[pi].0,
                ad_g[j]
            );
            max_g = max_g.max(ad_g[j].abs());
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 3 + 3 + 3 * 2 + 2);
    assert!(max_g > 1e-3, "gradients are not all ~0 ({max_g})");
}

#[test]
fn reduced_training_run_decreases_the_loss() {
    let cfg = SnnConfig {
        backend: Backend::Interp,
        seed: 3,
        ..SnnConfig::quick()
    };
    let r = run_snn_part(&cfg).unwrap();
    assert_eq!(r.all_losses.len(), cfg.train_steps);
    assert_eq!(r.losses.len(), cfg.train_steps / cfg.report_every);
    let first: f64 = r.all_losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = r.all_losses[cfg.train_steps - 5..].iter().sum::<f64>() / 5.0;
    assert!(
        last < 0.8 * first,
        "loss should fall: first {first}, last {last}"
    );
    // the runner (a separately traced forward) agrees with the training loss: the loss of its
    // outputs at the trained parameters is within one Adam step of the last training loss
    assert!(
        (r.eval_loss - r.final_loss).abs() < 0.02,
        "eval {} vs train {}",
        r.eval_loss,
        r.final_loss
    );
    assert!((0.0..=1.0).contains(&r.accuracy));
    assert!(r.mean_spikes_per_neuron > 0.0);
    assert_eq!(r.final_loss, *r.all_losses.last().unwrap());
    let j = r.to_json();
    assert_eq!(j["losses"].as_array().unwrap().len(), r.losses.len());
}

#[test]
fn bad_inputs_name_the_layer() {
    random::seed(1);
    let mut net = SnnNet::new(5, 3, 2, 1.0, SpikeForward::Heaviside).unwrap();
    net.reset_state(2);
    let mut runner = brainlift::runner::Runner::new(&mut net).backend(Backend::Interp);
    let e = runner
        .run(&Array::zeros(TensorType::new(DType::F64, [4, 2, 6])), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'i2r'") && e.contains("(batch, 5)"), "{e}");
    let e =
        brainlift::dyn_::check_spikes("snn input", &Array::from_f64([2], vec![1.0, 2.0]).unwrap())
            .unwrap_err()
            .to_string();
    assert!(e.contains("snn input") && e.contains("only 0 and 1"), "{e}");
    let e = brainlift::dyn_::check_labels(
        "snn labels",
        &Array::from_f64([2], vec![1.0, 2.0]).unwrap(),
        2,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("snn labels") && e.contains("label 2"), "{e}");
}

/// The JIT and the interpreter give the same losses for the first training steps and the same
/// runner monitors (the interpreter is the reference).
#[test]
fn jit_matches_interpreter_for_first_steps() {
    let base = SnnConfig {
        train_steps: 4,
        report_every: 1,
        seed: 11,
        ..SnnConfig::quick()
    };
    let a = run_snn_part(&SnnConfig {
        backend: Backend::Interp,
        ..base.clone()
    })
    .unwrap();
    let b = run_snn_part(&SnnConfig {
        backend: Backend::Jit,
        ..base
    })
    .unwrap();
    for (i, (x, y)) in a.all_losses.iter().zip(&b.all_losses).enumerate() {
        assert!(
            (x - y).abs() <= 1e-10 * x.abs().max(1.0),
            "step {i}: interp {x} vs jit {y}"
        );
    }
    assert!((a.eval_loss - b.eval_loss).abs() <= 1e-10);
    assert_eq!(a.accuracy, b.accuracy);
    assert_eq!(a.mean_spikes_per_neuron, b.mean_spikes_per_neuron);
}

/// A hand-written trainer (the tutorial's `Trainer`: `grad` of a `for_loop` loss, then an
/// Adam update) gives the same losses as the fused one-function `TrainStep`.
#[test]
fn custom_trainer_from_for_loop_and_grad_matches_train_step() {
    use brainlift::autograd::{ApplyGradients, grad};
    use brainlift::optim::{Adam, BiasCorrection};
    use brainlift::tutorial::snn::snn_train_step;
    let (t, b, n_in) = (10, 8, 6);
    let make = || {
        random::seed(5);
        let mut net = SnnNet::new(n_in, 4, 2, 1.0, SpikeForward::Heaviside).unwrap();
        net.reset_state(b);
        net
    };
    let mut net = make();
    let (x, _) = poisson_data(t, b, n_in, 200.0, 1.0).unwrap();
    let y = Array::from_f64([b], (0..b).map(|i| (i % 2) as f64).collect()).unwrap();
    let data = [x.clone(), y.clone()];
    let mut opt = Adam::new(4e-3).bias_correction(BiasCorrection::PerEpoch);
    let mut step = snn_train_step(&net, &mut opt, x.ty(), y.ty(), Backend::Interp).unwrap();
    let fused: Vec<f64> = (0..3)
        .map(|_| step.step(&mut net, &mut opt, &data).unwrap())
        .collect();

    let mut net = make();
    let vars = train_vars(&net);
    let dty = [("xs", x.ty().clone()), ("labels", y.ty().clone())];
    let mut f_grad = grad(&net, &vars, &dty, Backend::Interp, |_, d| {
        snn_loss(&net, &d[0], &d[1])
    })
    .unwrap();
    let mut opt = Adam::new(4e-3).bias_correction(BiasCorrection::PerEpoch);
    let mut update = ApplyGradients::new(&net, &vars, &mut opt, Backend::Interp).unwrap();
    let mut custom = vec![];
    for _ in 0..3 {
        net.reset_state(b);
        let (grads, loss) = f_grad.call(&mut net, &data).unwrap();
        assert_eq!(grads[0].0, "i2r.comm.W");
        let g: Vec<Array> = grads.into_iter().map(|(_, g)| g).collect();
        update.apply(&mut net, &mut opt, &g).unwrap();
        custom.push(loss);
    }
    for (a, c) in fused.iter().zip(&custom) {
        assert!(
            (a - c).abs() <= 1e-12,
            "fused {fused:?} vs custom {custom:?}"
        );
    }
    assert_ne!(fused[0], fused[2], "the parameters change");
}

/// The tutorial's spikes are bool (BrainPy: `bm.random.rand(..) < freq * dt`): the train step,
/// the runner and the accuracy take them as they are, and float 0/1 trains (still accepted)
/// give exactly the same losses, outputs and monitors, on both backends.
#[test]
fn bool_and_float_spike_trains_train_and_run_alike() {
    use brainlift::optim::{Adam, BiasCorrection};
    use brainlift::tutorial::snn::{max_over_time_accuracy, snn_train_step};
    let (t, b, n_in) = (12, 6, 8);
    random::seed(21);
    let (x, y) = poisson_data(t, b, n_in, 300.0, 1.0).unwrap();
    assert_eq!(x.ty(), &TensorType::new(DType::Bool, [t, b, n_in]));
    let ones = x.to_f64_vec().iter().filter(|&&v| v == 1.0).count();
    assert!(ones > 0 && ones < t * b * n_in / 2, "{ones} spikes");
    brainlift::dyn_::check_spikes("snn input", &x).unwrap();
    let xf = x.cast(DType::F64);
    for backend in [Backend::Interp, Backend::Jit] {
        let run = |xs: &Array| {
            random::seed(5);
            let mut net = SnnNet::new(n_in, 4, 2, 1.0, SpikeForward::Heaviside).unwrap();
            net.reset_state(b);
            let mut opt = Adam::new(4e-3).bias_correction(BiasCorrection::PerEpoch);
            let mut step = snn_train_step(&net, &mut opt, xs.ty(), y.ty(), backend).unwrap();
            let data = [xs.clone(), y.clone()];
            let losses: Vec<f64> = (0..3)
                .map(|_| step.step(&mut net, &mut opt, &data).unwrap())
                .collect();
            let mut runner = brainlift::runner::Runner::new(&mut net)
                .backend(backend)
                .monitor("r.spike", "r.spike");
            let out = runner.run(xs, true).unwrap();
            let acc = max_over_time_accuracy(&out.outputs, &y).unwrap();
            let spikes = out.mon("r.spike").unwrap().clone();
            (losses, out.outputs, spikes, acc)
        };
        let (lb, ob, sb, ab) = run(&x);
        let (lf, of, sf, af) = run(&xf);
        assert_eq!(lb, lf, "{backend:?}: losses");
        assert_ne!(lb[0], lb[2], "{backend:?}: the parameters change");
        assert_eq!(ob, of, "{backend:?}: runner outputs");
        assert_eq!(sb, sf, "{backend:?}: monitored spikes");
        assert_eq!(ab, af);
    }
}
