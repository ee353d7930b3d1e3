//! NVAR feature layout and a plain-Rust reference stepper (spec §1, BrainPy `dnn.NVAR`).
//!
//! Contract:
//! * [`NvarSpec`] describes `NVAR(num_in, delay, order, stride, constant)`; [`NvarSpec::new`]
//!   validates it (`num_in, delay, stride >= 1`, every order `>= 2`, sizes that fit in memory).
//! * Output layout of one step: `[1 if constant] ++ lin ++ nonlinear(order[0]) ++ ...`, where
//!   `lin[j*d + i]` is input feature `i` delayed by `j*stride` steps (time-major, then feature)
//!   and every nonlinear block lists the products over the non-decreasing index tuples of
//!   `0..linear_dim()` in lexicographic order (Python's `combinations_with_replacement`).
//! * [`NvarState`] is the ring buffer of length `1 + (delay-1)*stride`, zero-filled after a
//!   reset; taps not yet written read as 0 (BrainPy's warm-up behaviour, nothing is masked).
//!
//! Cost of one step: `O(B * num_out)` multiplications (one per factor of each monomial).

use thiserror::Error;

/// Largest `num_out` a spec may have (about 16.7 million features): larger layouts are
/// rejected instead of exhausting memory.
pub const MAX_NVAR_FEATURES: usize = 1 << 24;

/// Errors from building an NVAR spec or stepping the reference state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NvarError {
    /// A parameter of the spec is out of range.
    #[error("NVAR spec: invalid {param} = {value}: {expected}")]
    InvalidParam {
        /// Parameter name (`num_in`, `delay`, `stride`, `order`).
        param: &'static str,
        /// The offending value, printed.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The spec would have more than [`MAX_NVAR_FEATURES`] output features (or overflows).
    #[error("NVAR spec: {what} is too large (limit {limit} features)")]
    TooLarge {
        /// Which size overflowed.
        what: String,
        /// The limit.
        limit: usize,
    },
    /// An input has the wrong number of values.
    #[error(
        "NVAR step: input has {got} values, expected batch {batch} x num_in {num_in} = {expected}"
    )]
    InputShape {
        /// Values given.
        got: usize,
        /// Batch size of the state.
        batch: usize,
        /// Input features of the spec.
        num_in: usize,
        /// `batch * num_in`.
        expected: usize,
    },
    /// A batch size of zero was requested.
    #[error("NVAR state: batch size must be >= 1, got 0")]
    EmptyBatch,
    /// A sequence given to [`NvarState::run`] has a shape that does not match.
    #[error(
        "NVAR run: sequence shape {shape:?} (B, T, d) does not match {len} values / batch {batch} / num_in {num_in}"
    )]
    SequenceShape {
        /// Shape given.
        shape: [usize; 3],
        /// Number of values given.
        len: usize,
        /// Batch size of the state.
        batch: usize,
        /// Input features of the spec.
        num_in: usize,
    },
}

/// Description of an NVAR layer: `NVAR(num_in, delay, order, stride, constant)` (spec §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvarSpec {
    /// Input features `d`.
    pub num_in: usize,
    /// Number of taps `k` (the current sample included), `>= 1`.
    pub delay: usize,
    /// Monomial orders of the nonlinear part, each `>= 2`, emitted in the order given.
    pub order: Vec<usize>,
    /// Distance `s` in steps between taps, `>= 1`.
    pub stride: usize,
    /// Whether a leading constant 1 is emitted.
    pub constant: bool,
}

/// Binomial coefficient `C(n, k)` with overflow checking.
fn binomial(n: usize, k: usize) -> Option<usize> {
    let k = k.min(n.checked_sub(k)?);
    let mut acc: u128 = 1;
    for i in 0..k {
        acc = acc * (n - i) as u128 / (i + 1) as u128;
        if acc > usize::MAX as u128 {
            return None;
        }
    }
    usize::try_from(acc).ok()
}

impl NvarSpec {
    /// Builds and validates a spec. Errors name the parameter and the expected range.
    pub fn new(
        num_in: usize,
        delay: usize,
        order: Vec<usize>,
        stride: usize,
        constant: bool,
    ) -> Result<Self, NvarError> {
        let spec = NvarSpec {
            num_in,
            delay,
            order,
            stride,
            constant,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the ranges of every parameter and that the output size stays below
    /// [`MAX_NVAR_FEATURES`].
    pub fn validate(&self) -> Result<(), NvarError> {
        let positive = |param: &'static str, v: usize| {
            if v == 0 {
                Err(NvarError::InvalidParam {
                    param,
                    value: v.to_string(),
                    expected: "an integer >= 1",
                })
            } else {
                Ok(())
            }
        };
        positive("num_in", self.num_in)?;
        positive("delay", self.delay)?;
        positive("stride", self.stride)?;
        if let Some(&bad) = self.order.iter().find(|&&n| n < 2) {
            return Err(NvarError::InvalidParam {
                param: "order",
                value: format!("{:?} (entry {bad})", self.order),
                expected: "every order >= 2 (the linear part is always present)",
            });
        }
        self.checked_num_out()?;
        self.delay
            .checked_sub(1)
            .and_then(|k| k.checked_mul(self.stride))
            .and_then(|v| v.checked_add(1))
            .filter(|&l| l <= MAX_NVAR_FEATURES)
            .ok_or_else(|| NvarError::TooLarge {
                what: format!(
                    "ring buffer length 1 + (delay {} - 1) * stride {}",
                    self.delay, self.stride
                ),
                limit: MAX_NVAR_FEATURES,
            })?;
        Ok(())
    }

    fn checked_num_out(&self) -> Result<usize, NvarError> {
        let too_large = |what: String| NvarError::TooLarge {
            what,
            limit: MAX_NVAR_FEATURES,
        };
        let lin = self
            .num_in
            .checked_mul(self.delay)
            .ok_or_else(|| too_large("linear dimension".into()))?;
        let mut total = lin + usize::from(self.constant);
        for &n in &self.order {
            let c = lin
                .checked_add(n - 1)
                .and_then(|m| binomial(m, n))
                .ok_or_else(|| too_large(format!("order-{n} block")))?;
            total = total
                .checked_add(c)
                .ok_or_else(|| too_large("num_out".into()))?;
        }
        if total > MAX_NVAR_FEATURES {
            return Err(too_large(format!("num_out = {total}")));
        }
        Ok(total)
    }

    /// Ring-buffer length `L = 1 + (delay - 1) * stride`.
    pub fn buffer_len(&self) -> usize {
        1usize.saturating_add(self.delay.saturating_sub(1).saturating_mul(self.stride))
    }

    /// Linear dimension `delay * num_in`.
    pub fn linear_dim(&self) -> usize {
        self.delay.saturating_mul(self.num_in)
    }

    /// Size of the order-`n` block: `C(linear_dim + n - 1, n)`.
    pub fn order_dim(&self, n: usize) -> usize {
        match (self.linear_dim() + n).checked_sub(1) {
            Some(m) => binomial(m, n).unwrap_or(usize::MAX),
            None => 0,
        }
    }

    /// Total output features `[constant] + linear_dim + sum_n C(linear_dim + n - 1, n)`.
    pub fn num_out(&self) -> usize {
        self.order.iter().fold(
            usize::from(self.constant).saturating_add(self.linear_dim()),
            |acc, &n| acc.saturating_add(self.order_dim(n)),
        )
    }

    /// Every monomial of the nonlinear part, as non-decreasing index tuples into the linear
    /// vector, in output order (orders as given, each in lexicographic order). Empty for a
    /// spec that fails [`NvarSpec::validate`] (the size getters saturate instead of panicking).
    pub fn monomials(&self) -> Vec<Vec<usize>> {
        let lin = self.linear_dim();
        let mut out = Vec::new();
        if self.validate().is_err() {
            return out;
        }
        for &n in &self.order {
            let mut idx = vec![0usize; n];
            loop {
                out.push(idx.clone());
                // Advance like combinations_with_replacement: find the rightmost index that
                // can grow, increment it and set everything to its right to the same value.
                let Some(pos) = (0..n).rev().find(|&p| idx[p] + 1 < lin) else {
                    break;
                };
                let v = idx[pos] + 1;
                for slot in &mut idx[pos..] {
                    *slot = v;
                }
            }
        }
        out
    }

    /// Names of the linear features: `x{i}(t)` then `x{i}(t-{j*stride})`.
    pub fn linear_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.linear_dim());
        for j in 0..self.delay {
            for i in 0..self.num_in {
                if j == 0 {
                    names.push(format!("x{i}(t)"));
                } else {
                    names.push(format!("x{i}(t-{})", j * self.stride));
                }
            }
        }
        names
    }

    /// Feature names in output order, as BrainPy's `get_feature_names()`: `1` (if constant),
    /// the linear names, then each monomial as its distinct factors joined by a space, a
    /// repeated factor written `name^power` (e.g. `x0(t)^2`, `x0(t) x1(t-5)`).
    pub fn feature_names(&self) -> Vec<String> {
        if self.validate().is_err() {
            return Vec::new();
        }
        let lin = self.linear_names();
        let mut names = Vec::with_capacity(self.num_out());
        if self.constant {
            names.push("1".to_string());
        }
        names.extend(lin.iter().cloned());
        for mono in self.monomials() {
            let mut parts = Vec::new();
            let mut p = 0;
            while p < mono.len() {
                let id = mono[p];
                let count = mono[p..].iter().take_while(|&&v| v == id).count();
                if count > 1 {
                    parts.push(format!("{}^{count}", lin[id]));
                } else {
                    parts.push(lin[id].clone());
                }
                p += count;
            }
            names.push(parts.join(" "));
        }
        names
    }
}

/// Reference NVAR state: the ring buffer `store (L, B, d)` and the write pointer `idx`.
#[derive(Debug, Clone)]
pub struct NvarState {
    spec: NvarSpec,
    batch: usize,
    idx: usize,
    store: Vec<f64>,
    monomials: Vec<Vec<usize>>,
}

impl NvarState {
    /// A fresh (zeroed) state for `batch` rows. The spec is validated again.
    pub fn new(spec: NvarSpec, batch: usize) -> Result<Self, NvarError> {
        spec.validate()?;
        if batch == 0 {
            return Err(NvarError::EmptyBatch);
        }
        let monomials = spec.monomials();
        let store = vec![0.0; spec.buffer_len() * batch * spec.num_in];
        Ok(NvarState {
            spec,
            batch,
            idx: 0,
            store,
            monomials,
        })
    }

    /// The spec this state follows.
    pub fn spec(&self) -> &NvarSpec {
        &self.spec
    }

    /// Current batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Current write pointer (`0..buffer_len()`).
    pub fn write_index(&self) -> usize {
        self.idx
    }

    /// BrainPy's `reset_state(B)`: pointer to 0, buffer zeroed with the new batch size.
    pub fn reset(&mut self, batch: usize) -> Result<(), NvarError> {
        if batch == 0 {
            return Err(NvarError::EmptyBatch);
        }
        self.batch = batch;
        self.idx = 0;
        self.store = vec![0.0; self.spec.buffer_len() * batch * self.spec.num_in];
        Ok(())
    }

    /// One step: `x` is `(B, d)` row-major; returns `(B, num_out)` row-major.
    pub fn step(&mut self, x: &[f64]) -> Result<Vec<f64>, NvarError> {
        let mut out = vec![0.0; self.batch * self.spec.num_out()];
        self.step_into(x, &mut out)?;
        Ok(out)
    }

    /// As [`NvarState::step`], writing into `out` (length `B * num_out`).
    fn step_into(&mut self, x: &[f64], out: &mut [f64]) -> Result<(), NvarError> {
        let (b, d) = (self.batch, self.spec.num_in);
        if x.len() != b * d {
            return Err(NvarError::InputShape {
                got: x.len(),
                batch: b,
                num_in: d,
                expected: b * d,
            });
        }
        let l = self.spec.buffer_len();
        let s = self.spec.stride;
        let p = self.idx;
        // Write store[p] = x.
        self.store[p * b * d..(p + 1) * b * d].copy_from_slice(x);
        let lin_dim = self.spec.linear_dim();
        let num_out = self.spec.num_out();
        let mut lin = vec![0.0; lin_dim];
        for row in 0..b {
            for j in 0..self.spec.delay {
                // r_j = (p - j*s) mod L, computed without negative numbers.
                let r = (p + l - (j * s) % l) % l;
                let src = &self.store[(r * b + row) * d..(r * b + row + 1) * d];
                lin[j * d..(j + 1) * d].copy_from_slice(src);
            }
            let o = &mut out[row * num_out..(row + 1) * num_out];
            let mut k = 0;
            if self.spec.constant {
                o[0] = 1.0;
                k = 1;
            }
            o[k..k + lin_dim].copy_from_slice(&lin);
            k += lin_dim;
            for mono in &self.monomials {
                let mut prod = lin[mono[0]];
                for &a in &mono[1..] {
                    prod *= lin[a];
                }
                o[k] = prod;
                k += 1;
            }
        }
        self.idx = (p + 1) % l;
        Ok(())
    }

    /// Runs a batch-first sequence `(B, T, d)` (B must equal the state's batch) and returns
    /// the features `(B, T, num_out)` row-major. The state carries over (no reset).
    pub fn run(&mut self, xs: &[f64], shape: [usize; 3]) -> Result<Vec<f64>, NvarError> {
        let [b, t, d] = shape;
        if b != self.batch
            || d != self.spec.num_in
            || Some(xs.len()) != b.checked_mul(t).and_then(|v| v.checked_mul(d))
        {
            return Err(NvarError::SequenceShape {
                shape,
                len: xs.len(),
                batch: self.batch,
                num_in: self.spec.num_in,
            });
        }
        let f = self.spec.num_out();
        let mut out = vec![0.0; b * t * f];
        let mut x = vec![0.0; b * d];
        let mut y = vec![0.0; b * f];
        for step in 0..t {
            for row in 0..b {
                x[row * d..(row + 1) * d]
                    .copy_from_slice(&xs[(row * t + step) * d..(row * t + step + 1) * d]);
            }
            self.step_into(&x, &mut y)?;
            for row in 0..b {
                out[(row * t + step) * f..(row * t + step + 1) * f]
                    .copy_from_slice(&y[row * f..(row + 1) * f]);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_delay2_stride1() {
        let spec = NvarSpec::new(2, 2, vec![2], 1, false).unwrap();
        assert_eq!(spec.num_out(), 14);
        let mut st = NvarState::new(spec, 1).unwrap();
        assert_eq!(
            st.step(&[1.0, 2.0]).unwrap(),
            vec![1., 2., 0., 0., 1., 2., 0., 0., 4., 0., 0., 0., 0., 0.]
        );
        assert_eq!(
            st.step(&[3.0, 4.0]).unwrap(),
            vec![3., 4., 1., 2., 9., 12., 3., 6., 16., 4., 8., 1., 2., 4.]
        );
        assert_eq!(
            st.step(&[5.0, 6.0]).unwrap(),
            vec![
                5., 6., 3., 4., 25., 30., 15., 20., 36., 18., 24., 9., 12., 16.
            ]
        );
    }

    #[test]
    fn worked_example_constant_stride2() {
        let spec = NvarSpec::new(1, 3, vec![2], 2, true).unwrap();
        assert_eq!(spec.buffer_len(), 5);
        assert_eq!(spec.num_out(), 10);
        assert_eq!(
            spec.feature_names(),
            [
                "1",
                "x0(t)",
                "x0(t-2)",
                "x0(t-4)",
                "x0(t)^2",
                "x0(t) x0(t-2)",
                "x0(t) x0(t-4)",
                "x0(t-2)^2",
                "x0(t-2) x0(t-4)",
                "x0(t-4)^2"
            ]
        );
        let mut st = NvarState::new(spec, 1).unwrap();
        let mut last = Vec::new();
        for v in 1..=5 {
            last = st.step(&[v as f64]).unwrap();
        }
        assert_eq!(last, vec![1., 5., 3., 1., 25., 15., 5., 9., 3., 1.]);
    }

    #[test]
    fn monomials_order3_lexicographic() {
        let spec = NvarSpec::new(1, 2, vec![3], 1, false).unwrap();
        assert_eq!(
            spec.monomials(),
            vec![vec![0, 0, 0], vec![0, 0, 1], vec![0, 1, 1], vec![1, 1, 1]]
        );
        assert_eq!(
            spec.feature_names()[2..],
            ["x0(t)^3", "x0(t)^2 x0(t-1)", "x0(t) x0(t-1)^2", "x0(t-1)^3"]
        );
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(matches!(
            NvarSpec::new(0, 1, vec![], 1, false),
            Err(NvarError::InvalidParam {
                param: "num_in",
                ..
            })
        ));
        assert!(matches!(
            NvarSpec::new(3, 0, vec![], 1, false),
            Err(NvarError::InvalidParam { param: "delay", .. })
        ));
        assert!(matches!(
            NvarSpec::new(3, 2, vec![], 0, false),
            Err(NvarError::InvalidParam {
                param: "stride",
                ..
            })
        ));
        assert!(matches!(
            NvarSpec::new(3, 2, vec![2, 1], 1, false),
            Err(NvarError::InvalidParam { param: "order", .. })
        ));
        assert!(matches!(
            NvarSpec::new(100, 100, vec![5], 1, false),
            Err(NvarError::TooLarge { .. })
        ));
        // A hand-built invalid spec does not panic in the getters.
        let bad = NvarSpec {
            num_in: 0,
            delay: 0,
            order: vec![0],
            stride: 0,
            constant: false,
        };
        assert_eq!(
            (bad.buffer_len(), bad.linear_dim(), bad.num_out()),
            (1, 0, 0)
        );
        assert!(bad.monomials().is_empty() && bad.feature_names().is_empty());
        assert!(NvarState::new(bad, 1).is_err());
        let spec = NvarSpec::new(2, 2, vec![2], 1, false).unwrap();
        assert!(matches!(
            NvarState::new(spec.clone(), 0),
            Err(NvarError::EmptyBatch)
        ));
        let mut st = NvarState::new(spec, 2).unwrap();
        let err = st.step(&[1.0, 2.0]).unwrap_err();
        assert!(
            err.to_string().contains("expected batch 2 x num_in 2 = 4"),
            "{err}"
        );
        // The failed step left the state untouched.
        assert_eq!(st.write_index(), 0);
    }
}
