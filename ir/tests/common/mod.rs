//! A seeded generator of random *valid* IR functions, built through `FunctionBuilder`, covering
//! every op of the op table (see `all_op_names`) for every dtype where the op is legal.

#![allow(dead_code)]

use brainlift_ir::{
    BinaryOp, CompareOp, Constant, CustomVjp, DType, Function, FunctionBuilder, Op, ReduceOp, Scan,
    Shape, TensorType, UnaryOp, ValueId,
};

/// SplitMix64: a tiny deterministic generator, one per seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.range(0, xs.len() - 1)].clone()
    }
}

#[allow(unused_imports)] // used by some of the test binaries sharing this module
pub use brainlift_ir::op::all_op_names;

const KINDS: [&str; 20] = [
    "constant",
    "iota",
    "unary",
    "binary",
    "compare",
    "select",
    "cast",
    "broadcast",
    "reshape",
    "transpose",
    "slice",
    "pad",
    "concat",
    "reduce",
    "argmax",
    "matmul",
    "cumsum",
    "stop_gradient",
    "scan",
    "custom_vjp",
];

const NUMERIC: [DType; 3] = [DType::F32, DType::F64, DType::I32];
const FLOATS: [DType; 2] = [DType::F32, DType::F64];
const NAMES: [&str; 6] = ["x", "h", "in.a", "_w", "B", "s_t"];
const VJP_NAMES: [&str; 4] = ["spike", "quote\"back\\slash", "", "two words"];

/// Builds one function with random inputs, `steps` random instructions and random outputs.
pub fn random_function(seed: u64) -> Function {
    let mut r = Rng::new(seed);
    let params: Vec<TensorType> = (0..r.range(0, 3))
        .map(|_| rand_type(&mut r, &DType::ALL, 0))
        .collect();
    let mut g = Gen::new("f", &params, 0);
    let steps = r.range(1, 14);
    g.steps(&mut r, steps);
    let n_out = r.range(0, 3);
    g.finish_random(&mut r, n_out)
}

fn rand_dims(r: &mut Rng, rank: usize) -> Vec<usize> {
    (0..rank)
        .map(|_| {
            if r.range(0, 11) == 0 {
                0
            } else {
                r.range(1, 3)
            }
        })
        .collect()
}

fn rand_type(r: &mut Rng, dtypes: &[DType], min_rank: usize) -> TensorType {
    let rank = r.range(min_rank, 3);
    TensorType::new(r.pick(dtypes), rand_dims(r, rank))
}

/// A random element value of dtype `d` (rounded by `Constant::from_values`).
fn rand_value(r: &mut Rng, d: DType) -> f64 {
    match d {
        DType::Bool => r.range(0, 1) as f64,
        DType::I32 => r.pick(&[0.0, 1.0, -7.0, 2147483647.0, -2147483648.0, 42.0]),
        _ => match r.range(0, 3) {
            0 => r.pick(&[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                0.0,
                5e-324,
                f64::MAX,
            ]),
            1 => r.pick(&[0.1, 1.5, -2.25, 1e-7, 1e21, 123456.789, 1.0 / 3.0]),
            _ => {
                let x = f64::from_bits(r.next());
                if x.is_nan() { f64::NAN } else { x }
            }
        },
    }
}

/// One function under construction: its builder and the values defined so far.
pub struct Gen {
    b: FunctionBuilder,
    pool: Vec<ValueId>,
    depth: usize,
}

impl Gen {
    fn new(name: &str, params: &[TensorType], depth: usize) -> Gen {
        let mut b = FunctionBuilder::new(name);
        let pool = params
            .iter()
            .enumerate()
            .map(|(i, t)| b.param(format!("{}{i}", NAMES[i % 6]), t.clone()))
            .collect();
        Gen { b, pool, depth }
    }

    fn ty(&self, v: ValueId) -> TensorType {
        self.b.ty(v).clone()
    }

    fn push(&mut self, op: Op, args: &[ValueId]) -> Vec<ValueId> {
        let name = op.name();
        let res = self
            .b
            .push(op, args)
            .unwrap_or_else(|e| panic!("generator made a bad {name}: {e}"));
        self.pool.extend(res.iter().copied());
        res.to_vec()
    }

    fn constant(&mut self, r: &mut Rng, ty: TensorType) -> ValueId {
        let n = ty.numel();
        let c = if n > 12 || r.coin() {
            Constant::splat(ty.clone(), rand_value(r, ty.dtype))
        } else {
            Constant::from_values(
                ty.clone(),
                (0..n).map(|_| rand_value(r, ty.dtype)).collect(),
            )
        };
        self.push(Op::Constant(c), &[])[0]
    }

    /// A value of exactly type `ty`: an existing one when there is one (usually), else a constant.
    fn value_of(&mut self, r: &mut Rng, ty: &TensorType) -> ValueId {
        let found: Vec<ValueId> = self
            .pool
            .iter()
            .copied()
            .filter(|v| self.b.ty(*v) == ty)
            .collect();
        if !found.is_empty() && r.range(0, 3) > 0 {
            r.pick(&found)
        } else {
            self.constant(r, ty.clone())
        }
    }

    /// An existing value satisfying `ok` (usually), else a constant of a type from `make`.
    fn operand(
        &mut self,
        r: &mut Rng,
        ok: impl Fn(&TensorType) -> bool,
        make: impl Fn(&mut Rng) -> TensorType,
    ) -> ValueId {
        let found: Vec<ValueId> = self
            .pool
            .iter()
            .copied()
            .filter(|v| ok(self.b.ty(*v)))
            .collect();
        if !found.is_empty() && r.range(0, 3) > 0 {
            r.pick(&found)
        } else {
            let t = make(r);
            self.constant(r, t)
        }
    }

    fn steps(&mut self, r: &mut Rng, n: usize) {
        for _ in 0..n {
            self.step(r);
        }
    }

    fn finish_random(mut self, r: &mut Rng, n_out: usize) -> Function {
        let mut outs = vec![];
        for i in 0..n_out {
            let v = if self.pool.is_empty() {
                let t = rand_type(r, &DType::ALL, 0);
                self.constant(r, t)
            } else {
                r.pick(&self.pool)
            };
            outs.push((format!("out{i}"), v));
        }
        self.b.finish(outs)
    }

    fn step(&mut self, r: &mut Rng) {
        let kinds = if self.depth >= 2 {
            &KINDS[..18]
        } else {
            &KINDS[..]
        };
        let any = |_: &TensorType| true;
        let numeric = |t: &TensorType| t.dtype.is_numeric();
        match r.pick(kinds) {
            "constant" => {
                let t = rand_type(r, &DType::ALL, 0);
                self.constant(r, t);
            }
            "iota" => {
                let ty = rand_type(r, &NUMERIC, 1);
                let axis = r.range(0, ty.rank() - 1);
                self.push(Op::Iota { ty, axis }, &[]);
            }
            "unary" => {
                let u = r.pick(&UnaryOp::ALL);
                let dts: &[DType] = if u.allows_int() { &NUMERIC } else { &FLOATS };
                let x = self.operand(r, |t| dts.contains(&t.dtype), |r| rand_type(r, dts, 0));
                self.push(Op::Unary(u), &[x]);
            }
            "binary" => {
                let op = r.pick(&BinaryOp::ALL);
                let dts: &[DType] = if op.allows_int() { &NUMERIC } else { &FLOATS };
                let x = self.operand(r, |t| dts.contains(&t.dtype), |r| rand_type(r, dts, 0));
                let y = self.value_of(r, &self.ty(x));
                self.push(Op::Binary(op), &[x, y]);
            }
            "compare" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                let y = self.value_of(r, &self.ty(x));
                self.push(Op::Compare(r.pick(&CompareOp::ALL)), &[x, y]);
            }
            "select" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                let t = self.ty(x);
                let p = self.value_of(r, &t.with_dtype(DType::Bool));
                let y = self.value_of(r, &t);
                self.push(Op::Select, &[p, x, y]);
            }
            "cast" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                self.push(Op::Cast(r.pick(&DType::ALL)), &[x]);
            }
            "broadcast" => {
                let x = self.operand(r, |t| t.rank() <= 2, |r| rand_type(r, &DType::ALL, 0));
                let t = self.ty(x);
                let out_rank = t.rank() + r.range(0, 2);
                let mut dims: Vec<usize> = (0..out_rank).collect();
                while dims.len() > t.rank() {
                    let i = r.range(0, dims.len() - 1);
                    dims.remove(i);
                }
                let mut shape = rand_dims(r, out_rank);
                for (i, &d) in dims.iter().enumerate() {
                    if t.dims()[i] != 1 {
                        shape[d] = t.dims()[i];
                    }
                }
                self.push(
                    Op::Broadcast {
                        shape: shape.into(),
                        dims,
                    },
                    &[x],
                );
            }
            "reshape" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                let t = self.ty(x);
                let shape: Vec<usize> = match r.range(0, 2) {
                    0 => vec![t.numel()],
                    1 => t.dims().iter().rev().copied().collect(),
                    _ => {
                        let mut d = t.dims().to_vec();
                        d.insert(r.range(0, d.len()), 1);
                        d
                    }
                };
                self.push(Op::Reshape(Shape::from(shape)), &[x]);
            }
            "transpose" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                let mut perm: Vec<usize> = (0..self.ty(x).rank()).collect();
                for i in (1..perm.len()).rev() {
                    perm.swap(i, r.range(0, i));
                }
                self.push(Op::Transpose(perm), &[x]);
            }
            "slice" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                let (mut start, mut end) = (vec![], vec![]);
                for &d in self.ty(x).dims() {
                    let s = r.range(0, d);
                    start.push(s);
                    end.push(r.range(s, d));
                }
                self.push(Op::Slice { start, end }, &[x]);
            }
            "pad" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                let rank = self.ty(x).rank();
                let low = (0..rank).map(|_| r.range(0, 2)).collect();
                let high = (0..rank).map(|_| r.range(0, 2)).collect();
                self.push(Op::Pad { low, high }, &[x]);
            }
            "concat" => {
                let x = self.operand(r, |t| t.rank() >= 1, |r| rand_type(r, &DType::ALL, 1));
                let t = self.ty(x);
                let axis = r.range(0, t.rank() - 1);
                let mut args = vec![x];
                for _ in 0..r.range(0, 2) {
                    let mut d = t.dims().to_vec();
                    d[axis] = r.range(0, 3);
                    args.push(self.value_of(r, &TensorType::new(t.dtype, d)));
                }
                self.push(Op::Concat { axis }, &args);
            }
            "reduce" => {
                let x = self.operand(r, numeric, |r| rand_type(r, &NUMERIC, 0));
                let axes = (0..self.ty(x).rank()).filter(|_| r.coin()).collect();
                self.push(
                    Op::Reduce {
                        op: r.pick(&ReduceOp::ALL),
                        axes,
                    },
                    &[x],
                );
            }
            "argmax" => {
                let has_axis =
                    |t: &TensorType| t.dtype.is_numeric() && t.dims().iter().any(|&d| d > 0);
                let x = self.operand(r, has_axis, |r| {
                    let rank = r.range(1, 3);
                    TensorType::new(
                        r.pick(&NUMERIC),
                        (0..rank).map(|_| r.range(1, 3)).collect::<Vec<_>>(),
                    )
                });
                let axes: Vec<usize> = (0..self.ty(x).rank())
                    .filter(|&i| self.ty(x).dims()[i] > 0)
                    .collect();
                self.push(
                    Op::Argmax {
                        axis: r.pick(&axes),
                    },
                    &[x],
                );
            }
            "matmul" => {
                let d = r.pick(&NUMERIC);
                let batch_rank = r.range(0, 2);
                let batch = rand_dims(r, batch_rank);
                let (m, k, n) = (r.range(1, 3), r.range(0, 3), r.range(1, 3));
                let (ta, tb) = (r.coin(), r.coin());
                let mat = |rows: usize, cols: usize, t: bool| {
                    let mut s = batch.clone();
                    s.extend(if t { [cols, rows] } else { [rows, cols] });
                    TensorType::new(d, s)
                };
                let a = self.value_of(r, &mat(m, k, ta));
                let b = self.value_of(r, &mat(k, n, tb));
                self.push(
                    Op::Matmul {
                        transpose_lhs: ta,
                        transpose_rhs: tb,
                    },
                    &[a, b],
                );
            }
            "cumsum" => {
                let x = self.operand(
                    r,
                    |t| t.dtype.is_numeric() && t.rank() >= 1,
                    |r| rand_type(r, &NUMERIC, 1),
                );
                let axis = r.range(0, self.ty(x).rank() - 1);
                self.push(
                    Op::Cumsum {
                        axis,
                        reverse: r.coin(),
                    },
                    &[x],
                );
            }
            "stop_gradient" => {
                let x = self.operand(r, any, |r| rand_type(r, &DType::ALL, 0));
                self.push(Op::StopGradient, &[x]);
            }
            "scan" => self.scan(r),
            "custom_vjp" => self.custom_vjp(r),
            k => unreachable!("{k}"),
        }
    }

    fn scan(&mut self, r: &mut Rng) {
        let length = r.range(0, 3);
        let carry: Vec<TensorType> = (0..r.range(0, 2))
            .map(|_| rand_type(r, &DType::ALL, 0))
            .collect();
        let xs: Vec<TensorType> = (0..r.range(0, 2))
            .map(|_| rand_type(r, &DType::ALL, 0))
            .collect();
        let consts: Vec<TensorType> = (0..r.range(0, 2))
            .map(|_| rand_type(r, &DType::ALL, 0))
            .collect();
        let params: Vec<TensorType> = carry.iter().chain(&xs).chain(&consts).cloned().collect();
        let mut g = Gen::new("body", &params, self.depth + 1);
        let n = r.range(0, 5);
        g.steps(r, n);
        let mut outs = vec![];
        for (i, t) in carry.iter().enumerate() {
            outs.push((format!("c{i}"), g.value_of(r, t)));
        }
        for i in 0..r.range(0, 2) {
            let v = g.operand(r, |_| true, |r| rand_type(r, &DType::ALL, 0));
            outs.push((format!("y{i}"), v));
        }
        let body = g.b.finish(outs);
        let mut args: Vec<ValueId> = carry.iter().map(|t| self.value_of(r, t)).collect();
        for t in &xs {
            let mut d = vec![length];
            d.extend_from_slice(t.dims());
            args.push(self.value_of(r, &TensorType::new(t.dtype, d)));
        }
        args.extend(
            consts
                .iter()
                .map(|t| self.value_of(r, t))
                .collect::<Vec<_>>(),
        );
        let s = Scan {
            length,
            num_carry: carry.len(),
            num_xs: xs.len(),
            reverse: r.coin(),
            body,
        };
        self.push(Op::Scan(Box::new(s)), &args);
    }

    fn custom_vjp(&mut self, r: &mut Rng) {
        let ins: Vec<TensorType> = (0..r.range(1, 2))
            .map(|_| rand_type(r, &FLOATS, 0))
            .collect();
        let mut g = Gen::new("forward", &ins, self.depth + 1);
        let n = r.range(0, 4);
        g.steps(r, n);
        let n_out = r.range(1, 2);
        let forward = g.finish_random(r, n_out);
        let mut bwd_in = ins.clone();
        bwd_in.extend(forward.output_types());
        let mut g = Gen::new("backward", &bwd_in, self.depth + 1);
        let n = r.range(0, 4);
        g.steps(r, n);
        let outs: Vec<(String, ValueId)> = ins
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("d{i}"), g.value_of(r, t)))
            .collect();
        let backward = g.b.finish(outs);
        let args: Vec<ValueId> = ins.iter().map(|t| self.value_of(r, t)).collect();
        let name = r.pick(&VJP_NAMES).to_string();
        self.push(
            Op::CustomVjp(Box::new(CustomVjp {
                name,
                forward,
                backward,
            })),
            &args,
        );
    }
}

/// Visits every op of `f` and of its nested functions with the dtype it works on: that of its
/// first operand (for select: its first branch), else of its first result (`None` for an op
/// with neither).
pub fn for_each_op(f: &Function, visit: &mut impl FnMut(&Op, Option<DType>)) {
    for inst in &f.insts {
        let skip = usize::from(inst.op == Op::Select);
        let v = inst.args.get(skip).or(inst.results.first());
        visit(&inst.op, v.map(|v| f.ty(*v).dtype));
        for b in inst.op.bodies() {
            for_each_op(b, visit);
        }
    }
}
