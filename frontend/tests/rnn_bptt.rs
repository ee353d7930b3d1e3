//! Recurrent cells, the BPTT gradient and trainer, and parameter files.

mod common;

use brainlift::autograd::{grad, trace_loss};
use brainlift::losses::{l2_norm, mean_squared_error};
use brainlift::nn::{GruCell, LstmCell, RnnCell};
use brainlift::optim::{Adam, Optimizer};
use brainlift::params_io::{load_params, params_from_bytes, params_to_bytes, save_params};
use brainlift::runtime::gradcheck::check_grad;
use brainlift::train::{Bptt, ModelView, forward_over_time};
use brainlift::tutorial::rnn::{RnnConfig, TutorialRnn, build_inputs_and_targets, run_rnn_part};
use brainlift::{Array, Backend, Module, Tensor, named_vars, random, run_over_time, train_vars};
use common::{read_npy, rel_close};

fn arr(group: &str, file: &str) -> Array {
    let (v, s) = read_npy(group, file);
    Array::from_f64(s, v).unwrap()
}

fn tutorial_loss(p: &Tensor, t: &Tensor, m: &ModelView<'_>) -> Tensor {
    mean_squared_error(p, t) + l2_norm(&m.train_vars()).square() * 2e-4
}

#[test]
fn golden_rnn_hidden_and_gradients() {
    let mut cell = RnnCell::new(1, 8).unwrap();
    cell.wi.set_value(arr("rnn", "Wi.npy")).unwrap();
    cell.wh.set_value(arr("rnn", "Wh.npy")).unwrap();
    cell.b.set_value(arr("rnn", "b.npy")).unwrap();
    let (x, target) = (arr("rnn", "x.npy"), arr("rnn", "target.npy"));
    cell.reset_state(2);
    let h = run_over_time(&mut cell, &x, true, Backend::Interp).unwrap();
    let (want_h, _) = read_npy("rnn", "hidden.npy");
    for (i, (a, b)) in h.to_f64_vec().iter().zip(&want_h).enumerate() {
        assert!((a - b).abs() <= 1e-12, "hidden[{i}]: {a} vs {b}");
    }
    cell.reset_state(2);
    let vars = train_vars(&cell);
    let names: Vec<&str> = vars.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["Wi", "Wh", "b"]);
    let data = [("xs", x.ty().clone()), ("target", target.ty().clone())];
    let mut g = grad(&cell, &vars, &data, Backend::Interp, |tr, d| {
        let h = forward_over_time(tr, &cell, &d[0])?;
        Ok(mean_squared_error(&h, &d[1]))
    })
    .unwrap();
    let (grads, loss) = g.call(&mut cell, &[x, target]).unwrap();
    let want_loss = common::scalar_vec("rnn", "loss")[0];
    assert!(
        rel_close(loss, want_loss, 1e-12),
        "loss {loss} vs {want_loss}"
    );
    for ((path, gv), file) in grads
        .iter()
        .zip(["grad_Wi.npy", "grad_Wh.npy", "grad_b.npy"])
    {
        let (want, _) = read_npy("rnn", file);
        for (i, (a, b)) in gv.to_f64_vec().iter().zip(&want).enumerate() {
            assert!(rel_close(*a, *b, 1e-10), "{path}[{i}]: {a} vs {b}");
        }
    }
}

#[test]
fn tutorial_model_bptt_gradient_matches_finite_differences() {
    random::seed(7);
    let mut model = TutorialRnn::new(1, 6).unwrap();
    // a non-zero trainable initial state so its gradient path is exercised
    let s = Array::from_f64([6], vec![0.1, -0.2, 0.3, 0.05, -0.1, 0.2]).unwrap();
    model
        .rnn
        .state2train
        .as_mut()
        .unwrap()
        .set_value(s)
        .unwrap();
    let (x, y) = build_inputs_and_targets(3, 6, 0.04).unwrap();
    model.reset_state(3);
    let params = train_vars(&model);
    let names: Vec<&str> = params.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "rnn.Wi",
            "rnn.Wh",
            "rnn.b",
            "rnn.state2train",
            "out.W",
            "out.b"
        ]
    );
    let data = [("xs", x.ty().clone()), ("targets", y.ty().clone())];
    let lt = trace_loss("tut", &model, &params, &data, false, |tr, d| {
        model.reset_state_traced(tr);
        let p = forward_over_time(tr, &model, &d[0])?;
        Ok(tutorial_loss(&p, &d[1], &ModelView::new(tr, &model)))
    })
    .unwrap();
    // assemble the inputs: variables by binding, then the data
    let by_id: std::collections::HashMap<u64, Array> = named_vars(&model)
        .into_iter()
        .map(|(_, v)| (v.id(), v.value().clone()))
        .collect();
    let mut inputs = vec![None; lt.function.params.len()];
    for &(id, pos) in &lt.binding.var_inputs {
        inputs[pos] = Some(by_id[&id].clone());
    }
    for (d, &pos) in [x, y].iter().zip(&lt.binding.data_inputs) {
        inputs[pos] = Some(d.clone());
    }
    let inputs: Vec<Array> = inputs.into_iter().map(Option::unwrap).collect();
    let wrt: Vec<usize> = (0..params.len()).collect();
    let rep = check_grad(&lt.function, &wrt, &inputs).unwrap();
    assert!(rep.max_err < 1e-6, "{rep:#?}");
    // the initial state really is differentiated
    let s2t = &rep.inputs[3];
    assert!(
        s2t.analytic.abs() > 1e-8,
        "state2train gradient is zero: {s2t:?}"
    );
}

type LossFn = fn(&Tensor, &Tensor, &ModelView<'_>) -> Tensor;

fn small_trainer(seed: u64) -> Bptt<TutorialRnn, LossFn> {
    random::seed(seed);
    let model = TutorialRnn::new(1, 8).unwrap();
    Bptt::new(model, tutorial_loss as LossFn, Adam::new(0.02).eps(0.1))
        .backend(Backend::Interp)
        .verbose(false)
}

fn batches(n: usize, b: usize, t: usize) -> Vec<(Array, Array)> {
    (0..n)
        .map(|_| build_inputs_and_targets(b, t, 0.04).unwrap())
        .collect()
}

#[test]
fn bptt_trains_the_initial_state_and_records_history() {
    let mut tr = small_trainer(3);
    let data = batches(4, 8, 10);
    let before: Vec<f64> = tr.model.out.w.value().to_f64_vec();
    let losses = tr.fit(data.clone(), 3).unwrap();
    assert_eq!(losses.len(), 3);
    assert_eq!(tr.hist_metric("loss").unwrap(), &losses[..]);
    assert_eq!(tr.detailed_losses().len(), 3);
    assert_eq!(tr.detailed_losses()[0].len(), 4);
    let mean0 = tr.detailed_losses()[0].iter().sum::<f64>() / 4.0;
    assert_eq!(losses[0], mean0);
    assert!(losses[2] < losses[0], "{losses:?}");
    assert_ne!(tr.model.out.w.value().to_f64_vec(), before);
    let s = tr
        .model
        .rnn
        .state2train
        .as_ref()
        .unwrap()
        .value()
        .to_f64_vec();
    assert!(
        s.iter().any(|v| v.abs() > 1e-6),
        "state2train stayed at zero: {s:?}"
    );
    assert_eq!(tr.optimizer().num_updates(), 12);
    // predict: (B, T, 1)
    let p = tr.predict(&data[0].0).unwrap();
    assert_eq!(p.shape(), &[8, 10, 1]);
    assert!(tr.hist_metric("accuracy").is_err());
    // closures returning an iterator per epoch work too
    let mut k = 0;
    tr.fit(
        || {
            k += 1;
            batches(2, 8, 10)
        },
        2,
    )
    .unwrap();
    assert_eq!(k, 2);
    assert_eq!(tr.hist_metric("loss").unwrap().len(), 5);
}

#[test]
fn bptt_rejects_bad_input() {
    let mut tr = small_trainer(1);
    let err = tr.fit(batches(1, 4, 5), 0).unwrap_err().to_string();
    assert!(err.contains("num_epoch"), "{err}");
    let err = tr
        .fit(Vec::<(Array, Array)>::new(), 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no batches") && err.contains("epoch 0"),
        "{err}"
    );
    let (x, _) = build_inputs_and_targets(4, 5, 0.04).unwrap();
    let (_, y_long) = build_inputs_and_targets(4, 6, 0.04).unwrap();
    let err = tr
        .fit(vec![(x.clone(), y_long)], 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("targets f64[4,6,1]") && err.contains("batch 0"),
        "{err}"
    );
    let y2 = Array::from_f64([4, 5, 2], vec![0.0; 40]).unwrap();
    let err = tr.fit(vec![(x.clone(), y2)], 1).unwrap_err().to_string();
    assert!(
        err.contains("mean_squared_error") && err.contains("f64[4,5,2]"),
        "{err}"
    );
    // Inputs of the wrong width: the layer that cannot take them is named.
    let x3 = Array::from_f64([4, 5, 3], vec![0.1; 60]).unwrap();
    let (_, y) = build_inputs_and_targets(4, 5, 0.04).unwrap();
    let err = tr.fit(vec![(x3, y)], 1).unwrap_err().to_string();
    assert!(
        err.contains("RnnCell") && err.contains("[4,1]") && err.contains("f64[4,3]"),
        "{err}"
    );
    // NaN in the second batch's inputs: stops with epoch and batch named
    let mut data = batches(3, 4, 5);
    let mut v = data[1].0.to_f64_vec();
    v[3] = f64::NAN;
    data[1].0 = Array::from_f64([4, 5, 1], v).unwrap();
    let err = tr.fit(data.clone(), 2).unwrap_err().to_string();
    assert!(
        err.contains("NaN") && err.contains("epoch 0, batch 1"),
        "{err}"
    );
    // ... and predictions on such inputs are refused rather than returned as NaN.
    for err in [
        tr.predict(&data[1].0).unwrap_err().to_string(),
        tr.predict_continue(&data[1].0).unwrap_err().to_string(),
    ] {
        assert!(
            err.contains("non-finite value (NaN) at flat index 3"),
            "{err}"
        );
    }
}

fn tiny_cfg(seed: u64) -> RnnConfig {
    RnnConfig {
        seed,
        batch: 16,
        batches_per_epoch: 5,
        num_epoch: 3,
        num_hidden: 16,
        backend: Backend::Interp,
        verbose: false,
        ..RnnConfig::default()
    }
}

#[test]
fn tutorial_loss_history_is_reproducible_per_seed() {
    let a = run_rnn_part(&tiny_cfg(5)).unwrap();
    let b = run_rnn_part(&tiny_cfg(5)).unwrap();
    assert_eq!(a.losses, b.losses);
    let c = run_rnn_part(&tiny_cfg(6)).unwrap();
    assert_ne!(a.losses, c.losses);
}

#[test]
fn reduced_tutorial_run_decreases_and_writes_plots() {
    let dir = std::env::temp_dir().join(format!("brainlift_rnn_test_{}", std::process::id()));
    let cfg = RnnConfig {
        out_dir: Some(dir.clone()),
        ..RnnConfig {
            backend: Backend::Interp,
            verbose: false,
            ..RnnConfig::quick()
        }
    };
    let r = run_rnn_part(&cfg).unwrap();
    assert_eq!(r.losses.len(), 3);
    assert!(r.losses.windows(2).all(|w| w[1] < w[0]), "{:?}", r.losses);
    assert!(r.final_loss < 0.6 && r.final_loss > 0.0, "{:?}", r.losses);
    assert!(r.state2train_max_abs > 0.0);
    assert_eq!(r.plots.len(), 2);
    for p in &r.plots {
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{}", p.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lstm_and_gru_match_hand_computed_steps() {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut lstm = LstmCell::new(1, 1).unwrap();
    let (wi, wh) = ([0.5, -0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]);
    lstm.wi
        .set_value(Array::from_f64([1, 4], wi.to_vec()).unwrap())
        .unwrap();
    lstm.wh
        .set_value(Array::from_f64([1, 4], wh.to_vec()).unwrap())
        .unwrap();
    lstm.b
        .set_value(Array::from_f64([4], vec![0.0, 0.1, 0.0, -0.1]).unwrap())
        .unwrap();
    lstm.reset_state(1);
    let xs = [1.0, 2.0];
    let out = run_over_time(
        &mut lstm,
        &Array::from_f64([1, 2, 1], xs.to_vec()).unwrap(),
        true,
        Backend::Interp,
    )
    .unwrap();
    let (mut h, mut c) = (0.0, 0.0);
    let bias = [0.0, 0.1, 0.0, -0.1];
    let mut want = vec![];
    for x in xs {
        let g: Vec<f64> = (0..4).map(|k| x * wi[k] + h * wh[k] + bias[k]).collect();
        c = sig(g[2]) * c + sig(g[0]) * g[1].tanh();
        h = sig(g[3]) * c.tanh();
        want.push(h);
    }
    for (a, b) in out.to_f64_vec().iter().zip(&want) {
        assert!((a - b).abs() < 1e-14, "lstm {a} vs {b}");
    }
    assert!((lstm.c.value().to_f64_vec()[0] - c).abs() < 1e-14);

    let mut gru = GruCell::new(1, 1).unwrap();
    let (wi, wh, b) = ([0.5, -0.3, 0.8], [0.2, 0.4, -0.6], [0.1, 0.0, -0.2]);
    gru.wi
        .set_value(Array::from_f64([1, 3], wi.to_vec()).unwrap())
        .unwrap();
    gru.wh
        .set_value(Array::from_f64([1, 3], wh.to_vec()).unwrap())
        .unwrap();
    gru.b
        .set_value(Array::from_f64([3], b.to_vec()).unwrap())
        .unwrap();
    gru.reset_state(1);
    let out = run_over_time(
        &mut gru,
        &Array::from_f64([1, 2, 1], xs.to_vec()).unwrap(),
        true,
        Backend::Interp,
    )
    .unwrap();
    let mut h = 0.0;
    let mut want = vec![];
    for x in xs {
        let z = sig(x * wi[0] + h * wh[0] + b[0]);
        let r = sig(x * wi[1] + h * wh[1] + b[1]);
        let a = (x * wi[2] + r * h * wh[2] + b[2]).tanh();
        h = (1.0 - z) * h + z * a;
        want.push(h);
    }
    for (a, b) in out.to_f64_vec().iter().zip(&want) {
        assert!((a - b).abs() < 1e-14, "gru {a} vs {b}");
    }
}

#[test]
fn cells_reject_zero_sizes_and_name_paths() {
    assert!(
        RnnCell::new(0, 3)
            .unwrap_err()
            .to_string()
            .contains("RnnCell")
    );
    assert!(GruCell::new(2, 0).is_err());
    assert!(LstmCell::new(0, 0).is_err());
    random::seed(0);
    let m = TutorialRnn::new(1, 4).unwrap();
    let paths: Vec<String> = named_vars(&m).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "rnn.Wi",
            "rnn.Wh",
            "rnn.b",
            "rnn.state2train",
            "rnn.state",
            "out.W",
            "out.b"
        ]
    );
}

#[test]
fn params_roundtrip_and_corruption_is_detected() {
    random::seed(11);
    let a = TutorialRnn::new(1, 5).unwrap();
    random::seed(12);
    let mut b = TutorialRnn::new(1, 5).unwrap();
    let path = std::env::temp_dir().join(format!(
        "brainlift_params_{}.safetensors",
        std::process::id()
    ));
    save_params(&a, &path).unwrap();
    load_params(&mut b, &path).unwrap();
    let va: Vec<Vec<f64>> = named_vars(&a)
        .iter()
        .map(|(_, v)| v.value().to_f64_vec())
        .collect();
    let vb: Vec<Vec<f64>> = named_vars(&b)
        .iter()
        .map(|(_, v)| v.value().to_f64_vec())
        .collect();
    assert_eq!(va, vb);
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    // truncated
    let err = params_from_bytes(&mut b, &bytes[..bytes.len() - 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    let err = params_from_bytes(&mut b, &bytes[..5])
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    // one flipped data byte
    let mut bad = bytes.clone();
    let k = bad.len() - 10;
    bad[k] ^= 0x40;
    let err = params_from_bytes(&mut b, &bad).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    // a recorded data length near usize::MAX: an error, not an overflow
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let data_len = header
        .split("\"brainlift.data_len\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let header = header.replace(
        &format!("\"brainlift.data_len\":\"{data_len}\""),
        &format!("\"brainlift.data_len\":\"{}\"", usize::MAX),
    );
    let mut huge = (header.len() as u64).to_le_bytes().to_vec();
    huge.extend_from_slice(header.as_bytes());
    huge.extend_from_slice(&bytes[8 + n..]);
    let err = params_from_bytes(&mut b, &huge).unwrap_err().to_string();
    assert!(err.contains("truncated or corrupt"), "{err}");
    // a model of another size: named shape error, model untouched
    random::seed(13);
    let mut c = TutorialRnn::new(1, 6).unwrap();
    let before = c.rnn.wh.value().clone();
    let err = params_from_bytes(&mut c, &params_to_bytes(&a).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("rnn.Wh") || err.contains("rnn.Wi"), "{err}");
    assert_eq!(c.rnn.wh.value(), &before);
}

#[test]
fn train_step_is_one_function_with_forward_and_reverse_scans() {
    use brainlift::autograd::TrainStep;
    use brainlift::ir::Op;
    random::seed(2);
    let mut model = TutorialRnn::new(1, 4).unwrap();
    let mut opt = Adam::new(0.01).eps(0.1);
    let (x, y) = build_inputs_and_targets(2, 3, 0.04).unwrap();
    model.reset_state(2);
    let data = [("xs", x.ty().clone()), ("targets", y.ty().clone())];
    let m = &model;
    let mut step = TrainStep::new("step", m, &mut opt, &data, Backend::Interp, |tr, d| {
        m.reset_state_traced(tr);
        let p = forward_over_time(tr, m, &d[0])?;
        Ok(tutorial_loss(&p, &d[1], &ModelView::new(tr, m)))
    })
    .unwrap();
    let f = step.function();
    let scans: Vec<bool> = f
        .insts
        .iter()
        .filter_map(|i| {
            if let Op::Scan(s) = &i.op {
                Some(s.reverse)
            } else {
                None
            }
        })
        .collect();
    assert!(
        scans.contains(&false) && scans.contains(&true),
        "scans (reverse flags): {scans:?}"
    );
    let outs: Vec<&str> = f.outputs.iter().map(|o| o.name.as_str()).collect();
    for want in [
        "loss",
        "new.rnn.Wh",
        "new.rnn.state2train",
        "new.out.b",
        "new.opt.m.rnn.Wh",
        "new.opt.v.out.W",
    ] {
        assert!(outs.contains(&want), "missing output {want}: {outs:?}");
    }
    let ins: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    assert!(
        ins.contains(&"hyper.lr_step") && ins.contains(&"xs"),
        "{ins:?}"
    );
    // the same compiled function is reused: two steps, two updates, parameters move
    let w0 = model.rnn.wh.value().clone();
    let l1 = step
        .step(&mut model, &mut opt, &[x.clone(), y.clone()])
        .unwrap();
    model.reset_state(2);
    let l2 = step.step(&mut model, &mut opt, &[x, y]).unwrap();
    assert!(l2 < l1, "{l1} -> {l2}");
    assert_ne!(model.rnn.wh.value(), &w0);
    assert_eq!(opt.num_updates(), 2);
    let err = step
        .step(&mut model, &mut opt, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 2 data arrays"), "{err}");
}

#[test]
fn jit_and_interpreter_agree_on_the_first_epochs() {
    let run = |b: Backend| {
        run_rnn_part(&RnnConfig {
            backend: b,
            ..tiny_cfg(9)
        })
        .unwrap()
        .losses
    };
    let (i, j) = (run(Backend::Interp), run(Backend::Jit));
    for (a, b) in i.iter().zip(&j) {
        assert!((a - b).abs() <= 1e-9 * b.abs(), "interp {i:?} vs jit {j:?}");
    }
}

/// A diverging run (learning rate 1e150: the second step's loss overflows) stops with the
/// epoch and batch named, and the failing step changes nothing: the parameters are the
/// finite ones after the last good step, and the optimiser counted only the applied updates.
#[test]
fn a_non_finite_loss_leaves_the_model_as_it_was() {
    use brainlift::optim::Sgd;
    random::seed(9);
    let model = TutorialRnn::new(1, 8).unwrap();
    let mut tr = Bptt::new(model, tutorial_loss as LossFn, Sgd::new(1e150))
        .backend(Backend::Interp)
        .verbose(false);
    let data = batches(6, 4, 5);
    let mut good = None;
    let mut applied = 0;
    // Find the first failing batch by training one batch at a time.
    for (b, batch) in data.iter().enumerate() {
        let before: Vec<Vec<f64>> = train_vars(&tr.model)
            .iter()
            .map(|(_, v)| v.value().to_f64_vec())
            .collect();
        match tr.fit(vec![batch.clone()], 1) {
            Ok(_) => applied += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("epoch") && msg.contains("batch 0") && msg.contains("not applied"),
                    "{msg}"
                );
                good = Some((b, before));
                break;
            }
        }
    }
    let (b, before) = good.expect("a learning rate of 1e150 diverges within 6 steps");
    assert!(b >= 1, "the first step has a finite loss");
    let after: Vec<Vec<f64>> = train_vars(&tr.model)
        .iter()
        .map(|(_, v)| v.value().to_f64_vec())
        .collect();
    assert_eq!(after, before, "the failing step changed the parameters");
    assert!(after.iter().flatten().all(|x| x.is_finite()));
    assert_eq!(tr.optimizer().num_updates(), applied);
}

/// `predict_continue` on a batch the model's states were not sized for: an error naming the
/// states and the fix; `predict` (which resets them) then works.
#[test]
fn predict_continue_with_another_batch_names_the_states() {
    let mut tr = small_trainer(4);
    let (x4, y4) = build_inputs_and_targets(4, 5, 0.04).unwrap();
    tr.fit(vec![(x4, y4)], 1).unwrap();
    let (x8, _) = build_inputs_and_targets(8, 5, 0.04).unwrap();
    let err = tr.predict_continue(&x8).unwrap_err().to_string();
    assert!(
        err.contains("rnn.state f64[4,8]") && err.contains("call predict"),
        "{err}"
    );
    assert_eq!(tr.predict(&x8).unwrap().shape(), &[8, 5, 1]);
    assert_eq!(tr.predict_continue(&x8).unwrap().shape(), &[8, 5, 1]);
    let flat = Array::from_f64([8, 5], x8.to_f64_vec()).unwrap();
    let err = tr.predict_continue(&flat).unwrap_err().to_string();
    assert!(err.contains("(batch, time, features)"), "{err}");
}
