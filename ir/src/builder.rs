//! Building functions one instruction at a time, with types inferred by the op table.

use crate::{
    BinaryOp, CompareOp, Constant, DType, Function, Inst, IrError, Op, Output, Param, ReduceOp,
    Shape, TensorType, UnaryOp, ValueId,
};
use smallvec::SmallVec;

/// Builds a [`Function`]: add inputs, push ops (each checked by [`Op::infer`]), then finish
/// with the outputs. Used by the tracer, the parser and every pass that rewrites IR.
#[derive(Debug)]
pub struct FunctionBuilder {
    f: Function,
}

impl FunctionBuilder {
    /// An empty function called `name`.
    pub fn new(name: impl Into<String>) -> FunctionBuilder {
        FunctionBuilder {
            f: Function {
                name: name.into(),
                params: vec![],
                insts: vec![],
                outputs: vec![],
                types: vec![],
            },
        }
    }

    /// Adds an input. Inputs must all be added before the first instruction.
    pub fn param(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        assert!(
            self.f.insts.is_empty(),
            "FunctionBuilder::param after the first instruction"
        );
        let v = ValueId(self.f.types.len() as u32);
        self.f.params.push(Param {
            name: name.into(),
            ty: ty.clone(),
        });
        self.f.types.push(ty);
        v
    }

    /// The type of a value defined so far.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.f.types[v.index()]
    }

    /// Number of instructions pushed so far.
    pub fn len(&self) -> usize {
        self.f.insts.len()
    }

    /// True before the first instruction.
    pub fn is_empty(&self) -> bool {
        self.f.insts.is_empty()
    }

    /// Appends `op` applied to `args`; returns its results. Fails with the op's type error.
    pub fn push(&mut self, op: Op, args: &[ValueId]) -> Result<SmallVec<[ValueId; 1]>, IrError> {
        let n = self.f.types.len();
        for a in args {
            if a.index() >= n {
                return Err(IrError::Verify {
                    func: self.f.name.clone(),
                    msg: format!("{}: operand {a} is not defined", op.name()),
                });
            }
        }
        let arg_types: Vec<TensorType> = args
            .iter()
            .map(|a| self.f.types[a.index()].clone())
            .collect();
        let out = op.infer(&arg_types)?;
        let mut results = SmallVec::new();
        for t in out {
            results.push(ValueId(self.f.types.len() as u32));
            self.f.types.push(t);
        }
        self.f.insts.push(Inst {
            op,
            args: SmallVec::from_slice(args),
            results: results.clone(),
        });
        Ok(results)
    }

    /// Appends a single-result op.
    pub fn push1(&mut self, op: Op, args: &[ValueId]) -> Result<ValueId, IrError> {
        let r = self.push(op, args)?;
        debug_assert_eq!(r.len(), 1);
        Ok(r[0])
    }

    /// Finishes the function with named outputs.
    pub fn finish(mut self, outputs: impl IntoIterator<Item = (String, ValueId)>) -> Function {
        self.f.outputs = outputs
            .into_iter()
            .map(|(name, value)| Output { name, value })
            .collect();
        self.f
    }

    // ---- convenience constructors used by passes ----

    /// A constant filled with `value`.
    pub fn splat(&mut self, ty: TensorType, value: f64) -> ValueId {
        self.push1(Op::Constant(Constant::splat(ty, value)), &[])
            .expect("splat constant")
    }

    /// A scalar constant.
    pub fn scalar(&mut self, dtype: DType, value: f64) -> ValueId {
        self.splat(TensorType::scalar(dtype), value)
    }

    /// Zeros of the type of `like`.
    pub fn zeros_like(&mut self, like: ValueId) -> ValueId {
        let t = self.ty(like).clone();
        self.splat(t, 0.0)
    }

    /// Elementwise unary op.
    pub fn unary(&mut self, op: UnaryOp, a: ValueId) -> Result<ValueId, IrError> {
        self.push1(Op::Unary(op), &[a])
    }

    /// Elementwise binary op.
    pub fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.push1(Op::Binary(op), &[a, b])
    }

    /// `a + b`.
    pub fn add(&mut self, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.binary(BinaryOp::Add, a, b)
    }

    /// `a - b`.
    pub fn sub(&mut self, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.binary(BinaryOp::Sub, a, b)
    }

    /// `a * b`.
    pub fn mul(&mut self, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.binary(BinaryOp::Mul, a, b)
    }

    /// `a / b`.
    pub fn div(&mut self, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.binary(BinaryOp::Div, a, b)
    }

    /// Elementwise comparison.
    pub fn compare(&mut self, op: CompareOp, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.push1(Op::Compare(op), &[a, b])
    }

    /// `select pred, t, f`.
    pub fn select(&mut self, p: ValueId, t: ValueId, f: ValueId) -> Result<ValueId, IrError> {
        self.push1(Op::Select, &[p, t, f])
    }

    /// Conversion to `dtype`.
    pub fn cast(&mut self, a: ValueId, dtype: DType) -> Result<ValueId, IrError> {
        self.push1(Op::Cast(dtype), &[a])
    }

    /// `broadcast_in_dim`.
    pub fn broadcast(
        &mut self,
        a: ValueId,
        shape: Shape,
        dims: Vec<usize>,
    ) -> Result<ValueId, IrError> {
        self.push1(Op::Broadcast { shape, dims }, &[a])
    }

    /// Reshape.
    pub fn reshape(&mut self, a: ValueId, shape: Shape) -> Result<ValueId, IrError> {
        self.push1(Op::Reshape(shape), &[a])
    }

    /// Reduction over `axes`.
    pub fn reduce(
        &mut self,
        op: ReduceOp,
        a: ValueId,
        axes: Vec<usize>,
    ) -> Result<ValueId, IrError> {
        self.push1(Op::Reduce { op, axes }, &[a])
    }

    /// Matrix product with optional transposes.
    pub fn matmul(
        &mut self,
        a: ValueId,
        b: ValueId,
        ta: bool,
        tb: bool,
    ) -> Result<ValueId, IrError> {
        self.push1(
            Op::Matmul {
                transpose_lhs: ta,
                transpose_rhs: tb,
            },
            &[a, b],
        )
    }
}
