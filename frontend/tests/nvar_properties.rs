//! Property test: the ring-buffer NVAR stepper equals a direct computation from the input
//! history (`x(t - j*s)`, zero before the start) for random specs and sequences.

use brainlift::nvar_spec::{NvarSpec, NvarState};
use proptest::prelude::*;

fn direct(spec: &NvarSpec, hist: &[Vec<f64>], t: usize) -> Vec<f64> {
    let d = spec.num_in;
    let mut lin = Vec::new();
    for j in 0..spec.delay {
        let back = j * spec.stride;
        if t >= back {
            lin.extend_from_slice(&hist[t - back][..d]);
        } else {
            lin.extend(std::iter::repeat_n(0.0, d));
        }
    }
    let mut out = Vec::new();
    if spec.constant {
        out.push(1.0);
    }
    out.extend(&lin);
    for m in spec.monomials() {
        out.push(m.iter().map(|&a| lin[a]).product());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn stepper_matches_direct_history(
        num_in in 1usize..4,
        delay in 1usize..5,
        stride in 1usize..4,
        orders in prop::sample::select(vec![vec![], vec![2], vec![3], vec![2, 3], vec![3, 2]]),
        constant in any::<bool>(),
        seq in prop::collection::vec(-3.0f64..3.0, 3 * 30),
    ) {
        let spec = NvarSpec::new(num_in, delay, orders.clone(), stride, constant).unwrap();
        let n_mono: usize = orders.iter().map(|&n| spec.order_dim(n)).sum();
        prop_assert_eq!(spec.monomials().len(), n_mono);
        prop_assert_eq!(spec.feature_names().len(), spec.num_out());
        // Monomials are non-decreasing tuples, strictly increasing in lexicographic order
        // within each order block.
        let monos = spec.monomials();
        for w in monos.windows(2) {
            if w[0].len() == w[1].len() {
                prop_assert!(w[0] < w[1]);
            }
        }
        let t_len = seq.len() / 3;
        let hist: Vec<Vec<f64>> = (0..t_len).map(|t| seq[t * 3..t * 3 + num_in].to_vec()).collect();
        let mut st = NvarState::new(spec.clone(), 1).unwrap();
        for t in 0..t_len {
            let got = st.step(&hist[t]).unwrap();
            let want = direct(&spec, &hist, t);
            prop_assert_eq!(got.len(), spec.num_out());
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                prop_assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "t {} k {}: {} vs {}", t, k, a, b);
            }
        }
    }
}
