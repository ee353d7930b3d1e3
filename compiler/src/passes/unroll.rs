//! Scan unrolling.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same signature where every `scan` with `length <= threshold` (after unrolling its own
//! body's inner scans) is replaced by straight-line code: per step, `x_t` is a `slice` +
//! `reshape` of each `xs`, the body is inlined on `(carry, x_t, consts)`, and each `ys` is
//! rebuilt by `reshape` to `[1, ..]` and one `concat` along axis 0 in time order (a
//! zero-length scan yields its initial carries and empty constants). Steps run in the scan's
//! direction (`reverse` runs `t = length-1 .. 0`). Scans above the threshold are kept (their
//! bodies are still processed). Cost: `length` copies of the body per unrolled scan.

use crate::rewrite::{inline, map_bodies, rebuild};
use brainlift_ir::{Function, FunctionBuilder, IrError, Op, Scan, TensorType, ValueId};

/// Unrolls every scan of length at most `threshold`, recursively in nested bodies.
pub fn unroll(f: &Function, threshold: usize) -> Result<Function, IrError> {
    rebuild(f, |b, op, args, _| match op {
        Op::Scan(s) if s.length <= threshold => {
            let body = unroll(&s.body, threshold)?;
            unroll_one(b, s, &body, args)
        }
        op if !op.bodies().is_empty() => Ok(b
            .push(map_bodies(op, &mut |g| unroll(g, threshold))?, args)?
            .to_vec()),
        op => Ok(b.push(op.clone(), args)?.to_vec()),
    })
}

fn unroll_one(
    b: &mut FunctionBuilder,
    s: &Scan,
    body: &Function,
    args: &[ValueId],
) -> Result<Vec<ValueId>, IrError> {
    let (nc, nx, t_len) = (s.num_carry, s.num_xs, s.length);
    let ny = body.outputs.len() - nc;
    let mut carry: Vec<ValueId> = args[..nc].to_vec();
    let mut ys: Vec<Vec<ValueId>> = vec![vec![]; ny]; // ys[j][t]
    let steps: Vec<usize> = if s.reverse {
        (0..t_len).rev().collect()
    } else {
        (0..t_len).collect()
    };
    let mut per_step: Vec<Vec<ValueId>> = vec![vec![]; t_len];
    for &t in &steps {
        let mut call: Vec<Option<ValueId>> = carry.iter().map(|c| Some(*c)).collect();
        for &x in &args[nc..nc + nx] {
            let dims = b.ty(x).dims().to_vec();
            let mut start = vec![0; dims.len()];
            let mut end = dims.clone();
            (start[0], end[0]) = (t, t + 1);
            let sl = b.push1(Op::Slice { start, end }, &[x])?;
            call.push(Some(b.reshape(sl, dims[1..].into())?));
        }
        call.extend(args[nc + nx..].iter().map(|k| Some(*k)));
        let out = inline(b, body, &call)?;
        carry = out[..nc].to_vec();
        per_step[t] = out[nc..].to_vec();
    }
    for (t, outs) in per_step.into_iter().enumerate() {
        for (j, y) in outs.into_iter().enumerate() {
            let mut dims = vec![1];
            dims.extend_from_slice(b.ty(y).dims());
            let r = b.reshape(y, dims.into())?;
            debug_assert_eq!(ys[j].len(), t);
            ys[j].push(r);
        }
    }
    let mut res = carry;
    for (j, parts) in ys.iter().enumerate() {
        let yt = body.ty(body.outputs[nc + j].value);
        res.push(match parts.len() {
            0 => {
                let mut dims = vec![0];
                dims.extend_from_slice(yt.dims());
                b.splat(TensorType::new(yt.dtype, dims), 0.0)
            }
            1 => parts[0],
            _ => b.push1(Op::Concat { axis: 0 }, parts)?,
        });
    }
    Ok(res)
}
