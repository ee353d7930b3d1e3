//! Row splitting of scan bodies: when every carry of a scan has the batch on its leading
//! axis and the body never mixes rows (row `r` of every output depends only on row `r` of the
//! row-split inputs), the scan can run as independent scans over blocks of rows — one per
//! thread, without any synchronisation inside the time loop.
//!
//! [`split_scan_body`] decides this and returns the body retyped for a block of `rows` rows.
//! Every body value is classified as
//! - **rows**: its leading axis is the batch axis (carries, the `x_t` and loop invariants
//!   that are combined row-wise with them, and everything computed from those row-wise);
//! - **free**: it has no batch axis to split (weights, their transposes, time inputs);
//! - **uniform**: the same for every row, with a leading axis of the batch size (splat
//!   constants, `iota` along another axis, broadcasts of free values along a new leading
//!   axis): emitted at the full size where a free value is needed and at `rows` rows where
//!   a row-split value is.
//!
//! Row-wise ops: elementwise ops, broadcasts and reshapes that keep the leading axis,
//! transposes that keep axis 0, reductions / argmax / cumsum along other axes, slices and
//! pads that leave axis 0 whole, concatenation along another axis, and matrix products of a
//! row-split lhs (not transposed) with a free rhs, or batched products whose batch axis is
//! the row axis. Anything else that touches a row-split value (a product contracting the
//! batch axis, a nested scan, ...) makes the body unsplittable; so does an output that is
//! free (every output is stacked or carried per row: row-split, or uniform like a zero
//! cotangent). The retyped body computes, row for row, exactly the values of the original
//! (the same ops on the same operands).
//!
//! Cost: linear in the body size.

use crate::passes::dce::dce;
use brainlift_ir::{Constant, Function, FunctionBuilder, Op, Shape, TensorType, ValueId};

/// A scan body split by rows.
#[derive(Clone, Debug)]
pub struct RowSplit {
    /// The body for a block of rows: same params and outputs, the row-split ones with
    /// their leading axis shortened to the block size.
    pub body: Function,
    /// Per body param: whether it is split by rows (its leading axis is the batch axis).
    pub split_params: Vec<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Rows,
    Free,
    Uniform,
}

fn leading_is(t: &TensorType, batch: usize) -> bool {
    t.rank() >= 1 && t.dims()[0] == batch
}

fn with_rows(t: &TensorType, rows: usize) -> TensorType {
    let mut d = t.dims().to_vec();
    d[0] = rows;
    TensorType::new(t.dtype, d)
}

fn shape_rows(s: &Shape, rows: usize) -> Shape {
    let mut d = s.0.to_vec();
    d[0] = rows;
    Shape::new(&d)
}

/// Params that some use forces to stay whole: matmul right-hand sides (and transposed
/// left-hand sides), operands of nested ops.
fn forced_free(body: &Function) -> Vec<bool> {
    let np = body.params.len();
    let mut free = vec![false; np];
    let mut mark = |v: ValueId| {
        if v.index() < np {
            free[v.index()] = true;
        }
    };
    for inst in &body.insts {
        match &inst.op {
            Op::Matmul { transpose_lhs, .. } => {
                let rank = body.ty(inst.args[0]).rank();
                if rank == 2 {
                    mark(inst.args[1]);
                    if *transpose_lhs {
                        mark(inst.args[0]);
                    }
                }
            }
            Op::Scan(_) | Op::CustomVjp(_) => inst.args.iter().for_each(|a| mark(*a)),
            _ => {}
        }
    }
    free
}

/// Classifies the result of one instruction, or `None` when it mixes rows.
fn classify(op: &Op, args: &[ValueId], cls: &[Class], f: &Function, batch: usize) -> Option<Class> {
    use Class::*;
    let c = |i: usize| cls[args[i].index()];
    let any_rows = args.iter().any(|a| cls[a.index()] == Rows);
    let all = |ok: &[Class]| args.iter().all(|a| ok.contains(&cls[a.index()]));
    match op {
        Op::Constant(k) => Some(if leading_is(&k.ty, batch) && k.splat_value().is_some() {
            Uniform
        } else {
            Free
        }),
        Op::Iota { ty, axis } => Some(if leading_is(ty, batch) && *axis != 0 {
            Uniform
        } else {
            Free
        }),
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Cast(_)
        | Op::StopGradient => {
            if any_rows {
                all(&[Rows, Uniform]).then_some(Rows)
            } else if all(&[Uniform]) {
                Some(Uniform)
            } else {
                Some(Free)
            }
        }
        Op::Broadcast { shape, dims } => {
            let keeps_rows = dims.first() == Some(&0) && shape.0.first() == Some(&batch);
            match c(0) {
                Rows => keeps_rows.then_some(Rows),
                Uniform if keeps_rows => Some(Uniform),
                _ if shape.0.first() == Some(&batch) && !dims.contains(&0) => Some(Uniform),
                _ => Some(Free),
            }
        }
        Op::Reshape(shape) => match c(0) {
            Rows => (shape.0.first() == Some(&batch)).then_some(Rows),
            _ => Some(Free),
        },
        Op::Transpose(perm) => match c(0) {
            Rows => (perm[0] == 0).then_some(Rows),
            _ => Some(Free),
        },
        Op::Reduce { axes, .. } => match c(0) {
            Rows => (!axes.contains(&0)).then_some(Rows),
            _ => Some(Free),
        },
        Op::Argmax { axis } | Op::Cumsum { axis, .. } => match c(0) {
            Rows => (*axis != 0).then_some(Rows),
            _ => Some(Free),
        },
        Op::Slice { start, end } => match c(0) {
            Rows => (start[0] == 0 && end[0] == batch).then_some(Rows),
            _ => Some(Free),
        },
        Op::Pad { low, high } => match c(0) {
            Rows => (low[0] == 0 && high[0] == 0).then_some(Rows),
            _ => Some(Free),
        },
        Op::Concat { axis } => {
            if any_rows {
                (*axis != 0 && all(&[Rows, Uniform])).then_some(Rows)
            } else {
                Some(Free)
            }
        }
        Op::Matmul { transpose_lhs, .. } => {
            let rank = f.ty(args[0]).rank();
            match (c(0), c(1)) {
                (Rows, Free | Uniform) if rank == 2 && !transpose_lhs => Some(Rows),
                (Rows, Rows) if rank >= 3 => Some(Rows),
                (Free | Uniform, Free | Uniform) => Some(Free),
                _ => None,
            }
        }
        Op::Scan(_) | Op::CustomVjp(_) => (!any_rows).then_some(Free),
    }
}

/// The op with its shape attributes shortened to `rows` rows (for a row-split result).
fn retyped(op: &Op, rows: usize) -> Op {
    match op {
        Op::Constant(k) => Op::Constant(Constant {
            ty: with_rows(&k.ty, rows),
            data: k.data.clone(),
        }),
        Op::Iota { ty, axis } => Op::Iota {
            ty: with_rows(ty, rows),
            axis: *axis,
        },
        Op::Broadcast { shape, dims } => Op::Broadcast {
            shape: shape_rows(shape, rows),
            dims: dims.clone(),
        },
        Op::Reshape(shape) => Op::Reshape(shape_rows(shape, rows)),
        Op::Slice { start, end } => {
            let mut end = end.clone();
            end[0] = rows;
            Op::Slice {
                start: start.clone(),
                end,
            }
        }
        other => other.clone(),
    }
}

/// Splits a scan body with `num_carry` carries and batch size `batch` into blocks of `rows`
/// rows (see the module doc); `None` when the body mixes rows, an output is not row-split,
/// or `rows` is not in `1..batch`.
pub fn split_scan_body(
    body: &Function,
    num_carry: usize,
    batch: usize,
    rows: usize,
) -> Option<RowSplit> {
    if rows == 0 || rows >= batch {
        return None;
    }
    let forced = forced_free(body);
    let np = body.params.len();
    let mut cls = vec![Class::Free; body.types.len()];
    for (i, p) in body.params.iter().enumerate() {
        let rows_ok = leading_is(&p.ty, batch);
        if i < num_carry {
            if !rows_ok || forced[i] {
                return None;
            }
            cls[i] = Class::Rows;
        } else if rows_ok && !forced[i] {
            cls[i] = Class::Rows;
        }
    }
    for inst in &body.insts {
        let c = classify(&inst.op, &inst.args, &cls, body, batch)?;
        for r in &inst.results {
            cls[r.index()] = c;
        }
    }
    // Outputs are stacked or carried per row: row-split, or uniform (e.g. a zero cotangent
    // constant), emitted at `rows` rows.
    if body
        .outputs
        .iter()
        .any(|o| cls[o.value.index()] == Class::Free)
    {
        return None;
    }
    // A row-split param that nothing row-wise uses would be split for nothing; harmless.
    // Emit: free/uniform values at full size (`whole`), row/uniform values at `rows` rows.
    let mut b = FunctionBuilder::new(body.name.clone());
    let mut whole: Vec<Option<ValueId>> = vec![None; body.types.len()];
    let mut part: Vec<Option<ValueId>> = vec![None; body.types.len()];
    let mut split_params = vec![false; np];
    for (i, p) in body.params.iter().enumerate() {
        if cls[i] == Class::Rows {
            split_params[i] = true;
            part[i] = Some(b.param(p.name.clone(), with_rows(&p.ty, rows)));
        } else {
            whole[i] = Some(b.param(p.name.clone(), p.ty.clone()));
        }
    }
    for inst in &body.insts {
        let c = cls[inst.results[0].index()];
        if c != Class::Rows {
            let args: Option<Vec<ValueId>> = inst.args.iter().map(|a| whole[a.index()]).collect();
            let res = b.push(inst.op.clone(), &args?).ok()?;
            for (r, v) in inst.results.iter().zip(res) {
                whole[r.index()] = Some(v);
            }
        }
        if c != Class::Free {
            // Row-split operands come at `rows` rows; free ones (a matmul rhs, what a uniform
            // broadcast spreads) stay whole.
            let rhs_whole =
                matches!(inst.op, Op::Matmul { .. }) && body.ty(inst.args[0]).rank() == 2;
            let args: Option<Vec<ValueId>> = inst
                .args
                .iter()
                .enumerate()
                .map(|(j, a)| match cls[a.index()] {
                    Class::Free => whole[a.index()],
                    Class::Uniform if rhs_whole && j == 1 => whole[a.index()],
                    _ => part[a.index()],
                })
                .collect();
            let res = b.push(retyped(&inst.op, rows), &args?).ok()?;
            for (r, v) in inst.results.iter().zip(res) {
                part[r.index()] = Some(v);
            }
        }
    }
    let outs: Option<Vec<(String, ValueId)>> = body
        .outputs
        .iter()
        .map(|o| part[o.value.index()].map(|v| (o.name.clone(), v)))
        .collect();
    let g = dce(&b.finish(outs?)).ok()?;
    brainlift_ir::verify(&g).ok()?;
    Some(RowSplit {
        body: g,
        split_params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::parse_function;

    const RNN_BODY: &str = "func @body(%h: f64[8,4], %x: f64[8,1], %wi: f64[1,4], %wh: f64[4,4], %b: f64[8,4]) -> (h: f64[8,4], y: f64[8,4]) {
  %0: f64[8] = reshape %x
  %1: f64[4] = reshape %wi
  %2: f64[8,4] = broadcast[dims=[0]] %0
  %3: f64[8,4] = broadcast[dims=[1]] %1
  %4: f64[8,4] = mul %2, %3
  %5: f64[8,4] = matmul %h, %wh
  %6: f64[8,4] = add %4, %5
  %7: f64[8,4] = add %6, %b
  %8: f64[8,4] = constant[value=0.0]
  %9: f64[8,4] = max %7, %8
  return %9, %9
}";

    #[test]
    fn rnn_body_splits_and_keeps_weights_whole() {
        let f = parse_function(RNN_BODY).unwrap();
        let s = split_scan_body(&f, 1, 8, 3).expect("row-wise body");
        assert_eq!(s.split_params, vec![true, true, false, false, true]);
        let text = s.body.to_string();
        assert!(text.contains("%h: f64[3,4]"), "{text}");
        assert!(text.contains("%wh: f64[4,4]"), "{text}");
        assert!(text.contains("%wi: f64[1,4]"), "{text}");
    }

    #[test]
    fn contracting_the_batch_axis_is_not_row_wise() {
        let f = parse_function(
            "func @body(%acc: f64[4,4], %h: f64[8,4]) -> (acc: f64[4,4]) {
  %0: f64[4,4] = matmul[transpose_lhs=true] %h, %h
  %1: f64[4,4] = add %acc, %0
  return %1
}",
        )
        .unwrap();
        assert!(split_scan_body(&f, 1, 8, 4).is_none());
        let g = parse_function(
            "func @body(%h: f64[8,4]) -> (h: f64[8,4], s: f64[4]) {
  %0: f64[4] = reduce_sum[axes=[0]] %h
  return %h, %0
}",
        )
        .unwrap();
        assert!(split_scan_body(&g, 1, 8, 4).is_none());
    }

    #[test]
    fn a_uniform_output_splits_too() {
        // A backward body returning a zero cotangent for a carry it does not feed.
        let f = parse_function(
            "func @body(%g: f64[8,4], %h: f64[8,4]) -> (g: f64[8,4], h: f64[8,4]) {
  %0: f64[8,4] = constant[value=0.0]
  %1: f64[8,4] = tanh %h
  return %0, %1
}",
        )
        .unwrap();
        let s = split_scan_body(&f, 2, 8, 4).expect("uniform outputs split");
        assert!(s.body.to_string().contains("constant[value=0.0]"));
        assert_eq!(s.body.ty(s.body.outputs[0].value).dims(), &[4, 4]);
    }

    #[test]
    fn a_weight_with_the_batch_size_stays_whole() {
        // batch 4 equals the hidden size: %wh is a matmul rhs, so it is not split.
        let f = parse_function(
            "func @body(%h: f64[4,4], %wh: f64[4,4]) -> (h: f64[4,4]) {
  %0: f64[4,4] = matmul %h, %wh
  return %0
}",
        )
        .unwrap();
        let s = split_scan_body(&f, 1, 4, 2).unwrap();
        assert_eq!(s.split_params, vec![true, false]);
    }
}
