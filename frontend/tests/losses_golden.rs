//! Losses against BrainPy golden values (tests/data/losses): values and gradients, rel 1e-12.

mod common;

use brainlift::compiler::ad::value_and_grad;
use brainlift::losses::{cross_entropy_loss, l2_norm, mean_squared_error};
use brainlift::runtime::interpret;
use brainlift::{Array, DType, Tensor, TensorType, trace};
use common::{read_npy, rel_close, scalar_vec};

const G: &str = "losses";

fn arr(file: &str) -> Array {
    let (v, s) = read_npy(G, file);
    Array::from_f64(s, v).unwrap()
}

fn labels_i32(file: &str) -> Array {
    let path = common::data_dir(G).join(file);
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let v: Vec<i64> = npy.into_vec().unwrap();
    Array::new(
        TensorType::new(DType::I32, shape),
        brainlift::runtime::TensorData::I32(v.iter().map(|&x| x as i32).collect()),
    )
    .unwrap()
}

fn assert_all_close(got: &Array, want: &[f64], eps: f64, what: &str) {
    let g = got.to_f64_vec();
    assert_eq!(g.len(), want.len(), "{what}: length");
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        assert!(rel_close(*a, *b, eps), "{what}[{i}]: got {a}, want {b}");
    }
}

/// Runs `value_and_grad` of a two-input loss w.r.t. input 0 (and 1 when `both`).
fn vg(
    a: &Array,
    b: &Array,
    wrt: &[usize],
    loss: impl FnOnce(&Tensor, &Tensor) -> Tensor,
) -> (f64, Vec<Array>) {
    let f = trace("loss", |tr| {
        let x = tr.input("a", a.ty().clone());
        let y = tr.input("b", b.ty().clone());
        Ok(vec![("loss".into(), loss(&x, &y))])
    })
    .unwrap();
    let g = value_and_grad(&f, wrt).unwrap();
    let mut out = interpret(&g, &[a.clone(), b.clone()]).unwrap();
    let v = out.remove(0).item().unwrap();
    (v, out)
}

#[test]
fn mse_value_and_gradient() {
    let (v, g) = vg(
        &arr("mse_pred.npy"),
        &arr("mse_target.npy"),
        &[0],
        mean_squared_error,
    );
    assert!(rel_close(v, scalar_vec(G, "mse")[0], 1e-12), "mse {v}");
    assert_all_close(
        &g[0],
        &read_npy(G, "mse_grad_pred.npy").0,
        1e-12,
        "mse grad",
    );
}

#[test]
fn cross_entropy_integer_labels() {
    let (v, g) = vg(
        &arr("ce_logits.npy"),
        &labels_i32("ce_labels.npy"),
        &[0],
        cross_entropy_loss,
    );
    assert!(
        rel_close(v, scalar_vec(G, "cross_entropy")[0], 1e-12),
        "ce {v}"
    );
    assert_all_close(
        &g[0],
        &read_npy(G, "ce_grad_logits.npy").0,
        1e-12,
        "ce grad",
    );
}

#[test]
fn cross_entropy_float_labels_as_indices() {
    let (v, g) = vg(
        &arr("ce2_logits.npy"),
        &arr("ce2_labels.npy"),
        &[0],
        cross_entropy_loss,
    );
    assert!(
        rel_close(v, scalar_vec(G, "cross_entropy_float_labels")[0], 1e-12),
        "ce2 {v}"
    );
    assert_all_close(
        &g[0],
        &read_npy(G, "ce2_grad_logits.npy").0,
        1e-12,
        "ce2 grad",
    );
}

#[test]
fn cross_entropy_one_hot_targets_match_index_labels() {
    let logits = arr("ce_logits.npy");
    let labels = labels_i32("ce_labels.npy").to_f64_vec();
    let mut oh = vec![0.0; 15];
    for (i, &l) in labels.iter().enumerate() {
        oh[i * 3 + l as usize] = 1.0;
    }
    let onehot = Array::from_f64([5, 3], oh).unwrap();
    let (v, g) = vg(&logits, &onehot, &[0], cross_entropy_loss);
    assert!(
        rel_close(v, scalar_vec(G, "cross_entropy")[0], 1e-12),
        "ce one-hot {v}"
    );
    assert_all_close(
        &g[0],
        &read_npy(G, "ce_grad_logits.npy").0,
        1e-12,
        "ce one-hot grad",
    );
}

#[test]
fn l2_norm_single_and_tree_with_squared_gradient() {
    let (a, b) = (arr("l2_A.npy"), arr("l2_B.npy"));
    let (v, _) = vg(&a, &b, &[0], |x, _| l2_norm(std::slice::from_ref(x)));
    assert!(
        rel_close(v, scalar_vec(G, "l2_norm_A")[0], 1e-12),
        "l2 A {v}"
    );
    let (v, _) = vg(&a, &b, &[0], |x, y| l2_norm(&[x.clone(), y.clone()]));
    assert!(
        rel_close(v, scalar_vec(G, "l2_norm_tree")[0], 1e-12),
        "l2 tree {v}"
    );
    let (_, g) = vg(&a, &b, &[0, 1], |x, y| {
        l2_norm(&[x.clone(), y.clone()]).square()
    });
    assert_all_close(
        &g[0],
        &read_npy(G, "l2sq_tree_grad_A.npy").0,
        1e-12,
        "l2sq grad A",
    );
    assert_all_close(
        &g[1],
        &read_npy(G, "l2sq_tree_grad_B.npy").0,
        1e-12,
        "l2sq grad B",
    );
}

#[test]
fn loss_shape_errors_name_the_loss_and_shapes() {
    let err = trace("bad", |tr| {
        let p = tr.input("p", TensorType::new(DType::F64, [4, 3]));
        let t = tr.input("t", TensorType::new(DType::F64, [4, 2]));
        Ok(vec![("l".into(), mean_squared_error(&p, &t))])
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("mean_squared_error") && err.contains("f64[4,3]") && err.contains("f64[4,2]"),
        "{err}"
    );
    let err = trace("bad", |tr| {
        let p = tr.input("p", TensorType::new(DType::F64, [4, 3]));
        let t = tr.input("t", TensorType::new(DType::I32, [5]));
        Ok(vec![("l".into(), cross_entropy_loss(&p, &t))])
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cross_entropy_loss") && err.contains("i32[5]"),
        "{err}"
    );
}
