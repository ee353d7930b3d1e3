//! `.npy` reading and writing, and seeded random inputs.

use brainlift_ir::{DType, FunctionBuilder, TensorType};
use brainlift_runtime::npy::{read_npy, read_npy_bytes, write_npy, write_npy_bytes};
use brainlift_runtime::random::random_inputs;
use brainlift_runtime::{RuntimeError, Tensor, TensorData};
use npyz::{AutoSerialize, Order, WriteOptions, WriterBuilder};

/// The bytes of a `.npy` file of element type `T` written by npyz itself.
fn npy_of<T: AutoSerialize>(shape: &[u64], order: Order, items: Vec<T>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .order(order)
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend(items).unwrap();
    w.finish().unwrap();
    buf
}

fn io_msg(r: Result<Tensor, RuntimeError>) -> String {
    match r {
        Err(e @ RuntimeError::Io { .. }) => e.to_string(),
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[test]
fn round_trip_every_dtype() {
    let ts = [
        Tensor::from_f64(
            vec![2, 3],
            vec![1.0, -2.5, f64::NAN, f64::INFINITY, 0.1, -0.0],
        )
        .unwrap(),
        Tensor::from_f32(vec![3], vec![0.1, -1e30, 7.0]).unwrap(),
        Tensor::new(
            TensorType::new(DType::I32, [2, 2]),
            TensorData::I32(vec![i32::MIN, -1, 0, i32::MAX]),
        )
        .unwrap(),
        Tensor::new(
            TensorType::new(DType::Bool, [4]),
            TensorData::Bool(vec![1, 0, 0, 1]),
        )
        .unwrap(),
        Tensor::scalar_f64(3.25),
        Tensor::from_f64(vec![0, 5], vec![]).unwrap(),
    ];
    for t in &ts {
        let back = read_npy_bytes(&write_npy_bytes(t).unwrap()).unwrap();
        assert_eq!(back.ty(), t.ty());
        let (a, b) = (back.to_f64_vec(), t.to_f64_vec());
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn written_files_are_standard_npy() {
    // What numpy would write for np.array([[1., 2.]]): magic, version 1.0, '<f8', C order.
    let bytes = write_npy_bytes(&Tensor::from_f64(vec![1, 2], vec![1.0, 2.0]).unwrap()).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + hlen]);
    assert!(header.contains("'descr': '<f8'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    assert!(header.contains("'shape': (1, 2"), "{header}");
    assert!(header.ends_with('\n'));
    assert_eq!((10 + hlen) % 16, 0, "data starts aligned");
    assert_eq!(bytes.len(), 10 + hlen + 16);
    assert_eq!(&bytes[bytes.len() - 8..], &2.0f64.to_le_bytes());
}

#[test]
fn files_on_disk() {
    let dir = std::env::temp_dir().join(format!("brainlift-npy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.npy");
    let t = Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.5]).unwrap();
    write_npy(&path, &t).unwrap();
    assert_eq!(read_npy(&path).unwrap(), t);
    let missing = dir.join("missing.npy");
    let m = io_msg(read_npy(&missing));
    assert!(m.contains("missing.npy"), "{m}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn int64_is_narrowed_with_overflow_check() {
    let ok = read_npy_bytes(&npy_of::<i64>(&[3], Order::C, vec![-5, 0, i32::MAX as i64])).unwrap();
    assert_eq!(ok.ty(), &TensorType::new(DType::I32, [3]));
    assert_eq!(ok.data(), &TensorData::I32(vec![-5, 0, i32::MAX]));
    let m = io_msg(read_npy_bytes(&npy_of::<i64>(
        &[2],
        Order::C,
        vec![1, 1 << 40],
    )));
    assert!(
        m.contains("1099511627776") && m.contains("flat index 1") && m.contains("i32"),
        "{m}"
    );
}

#[test]
fn uint8_and_bool_masks() {
    let t = read_npy_bytes(&npy_of::<u8>(&[2, 2], Order::C, vec![0, 1, 1, 0])).unwrap();
    assert_eq!(t.ty(), &TensorType::new(DType::Bool, [2, 2]));
    assert_eq!(t.data(), &TensorData::Bool(vec![0, 1, 1, 0]));
    let t = read_npy_bytes(&npy_of::<bool>(&[3], Order::C, vec![true, false, true])).unwrap();
    assert_eq!(t.data(), &TensorData::Bool(vec![1, 0, 1]));
    let m = io_msg(read_npy_bytes(&npy_of::<u8>(&[3], Order::C, vec![0, 7, 1])));
    assert!(
        m.contains("uint8") && m.contains("is 7") && m.contains("int32"),
        "{m}"
    );
}

#[test]
fn fortran_order_is_rejected_for_rank_2() {
    let m = io_msg(read_npy_bytes(&npy_of::<f64>(
        &[2, 2],
        Order::Fortran,
        vec![1., 2., 3., 4.],
    )));
    assert!(m.contains("Fortran") && m.contains("[2, 2]"), "{m}");
    // Rank 1: both orders are the same layout.
    let t = read_npy_bytes(&npy_of::<f64>(&[2], Order::Fortran, vec![1., 2.])).unwrap();
    assert_eq!(t.to_f64_vec(), vec![1., 2.]);
}

#[test]
fn unsupported_dtypes_and_garbage() {
    let m = io_msg(read_npy_bytes(&npy_of::<i16>(&[2], Order::C, vec![1, 2])));
    assert!(m.contains("unsupported dtype") && m.contains("i2"), "{m}");
    let m = io_msg(read_npy_bytes(&npy_of::<u32>(&[1], Order::C, vec![1])));
    assert!(m.contains("unsupported dtype") && m.contains("u4"), "{m}");
    let m = io_msg(read_npy_bytes(b"definitely not numpy"));
    assert!(
        m.contains("<bytes>") && m.contains("not a valid .npy"),
        "{m}"
    );
    // Truncated data.
    let mut b = npy_of::<f64>(&[4], Order::C, vec![1., 2., 3., 4.]);
    b.truncate(b.len() - 3);
    assert!(read_npy_bytes(&b).is_err());
}

// ---------------------------------------------------------------- random inputs

fn mixed_function() -> brainlift_ir::Function {
    let mut b = FunctionBuilder::new("f");
    b.param("x", TensorType::new(DType::F64, [50, 20]));
    b.param("pos_tau", TensorType::new(DType::F32, [1000]));
    b.param("label", TensorType::new(DType::I32, [1000]));
    b.param("mask", TensorType::new(DType::Bool, [1000]));
    b.param("y", TensorType::new(DType::F32, [0, 3]));
    b.finish([])
}

#[test]
fn random_inputs_are_seeded_and_in_range() {
    let f = mixed_function();
    let a = random_inputs(&f, 7);
    assert_eq!(a, random_inputs(&f, 7));
    assert_ne!(a[0], random_inputs(&f, 8)[0]);
    let tys: Vec<&TensorType> = a.iter().map(|t| t.ty()).collect();
    assert_eq!(tys, f.params.iter().map(|p| &p.ty).collect::<Vec<_>>());

    let x = a[0].to_f64_vec();
    assert!(x.iter().all(|&v| (-1.0..1.0).contains(&v)));
    assert!(
        x.iter().any(|&v| v < -0.9) && x.iter().any(|&v| v > 0.9),
        "covers [-1, 1]"
    );
    let tau = a[1].to_f64_vec();
    assert!(tau.iter().all(|&v| (0.1..=2.0).contains(&v)));
    assert!(
        tau.iter().any(|&v| v < 0.2) && tau.iter().any(|&v| v > 1.9),
        "covers [0.1, 2]"
    );
    let label = a[2].to_f64_vec();
    for k in 0..4 {
        let n = label.iter().filter(|&&v| v == k as f64).count();
        assert!(
            (180..320).contains(&n),
            "label {k} drawn {n} times out of 1000"
        );
    }
    assert!(label.iter().all(|&v| (0.0..4.0).contains(&v)));
    let ones = a[3].to_f64_vec().iter().filter(|&&v| v == 1.0).count();
    assert!(
        (400..600).contains(&ones),
        "{ones} of 1000 mask values are true"
    );
    assert_eq!(a[4].numel(), 0);
}

#[test]
fn train_step_inputs_make_optimiser_state_and_hyper_parameters_small_and_non_negative() {
    let mut b = FunctionBuilder::new("step");
    b.param("W", TensorType::new(DType::F64, [40, 30]));
    b.param("hyper.lr", TensorType::new(DType::F64, []));
    b.param("opt.v.W", TensorType::new(DType::F64, [40, 30]));
    let f = b.finish([]);
    let plain = random_inputs(&f, 3);
    let step = brainlift_runtime::random::train_step_inputs(&f, 3);
    assert_eq!(step[0], plain[0], "other inputs are random_inputs' draws");
    for i in [1, 2] {
        let (got, raw) = (step[i].to_f64_vec(), plain[i].to_f64_vec());
        for (g, r) in got.iter().zip(&raw) {
            assert_eq!(*g, r.abs() * 1e-2);
        }
    }
    assert!(
        plain[2].to_f64_vec().iter().any(|&v| v < 0.0),
        "the case has negatives"
    );
}
