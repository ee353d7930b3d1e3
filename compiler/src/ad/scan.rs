//! The VJP of `scan`: one forward scan that also stacks residuals, one reverse scan whose body
//! is the VJP of the forward body (see the module doc of `ad`).
//!
//! Layout of the backward scan (`reverse = !forward.reverse`):
//! - carries: `ct_c` for each active carry `A`, then one accumulator per differentiated
//!   loop-invariant operand (starting at zero);
//! - xs: the saved carries (those the body VJP reads), the forward `xs` the body VJP reads,
//!   the cotangents of the `ys` that have one;
//! - consts: the forward loop invariants the body VJP reads.
//!
//! Body: inline the VJP of the forward body w.r.t. `A` carries, active xs and active consts;
//! return `(grad carries.., acc + grad consts.., grad xs..)`.

use super::{AdError, Seeds, build, forward_reach};
use crate::passes::dce::dce;
use crate::rewrite::{inline, unique_name};
use brainlift_ir::{Function, FunctionBuilder, Op, Output, Scan, TensorType, ValueId};

/// What the backward pass of one scan instruction needs, decided during the forward replay.
#[derive(Debug)]
pub(crate) struct ScanPlan {
    /// Active carry indices (fixpoint: active init, or fed by an active value in the body).
    carry_a: Vec<usize>,
    /// Active xs (0-based among the xs).
    xs_a: Vec<usize>,
    /// Active loop invariants (0-based among the consts).
    ks_a: Vec<usize>,
    /// ys with a cotangent (0-based among the ys).
    ys_ct: Vec<usize>,
    /// VJP of the body: inputs (body inputs.., ct of A carries.., ct of ys_ct..), outputs
    /// the gradients of (A carries.., xs_a.., ks_a..).
    body_vjp: Function,
    /// Body inputs the VJP reads: carries, xs, consts (0-based within each group).
    used_c: Vec<usize>,
    used_x: Vec<usize>,
    used_k: Vec<usize>,
    /// Stacked saved carries (values of the gradient function), one per `used_c`.
    residuals: Vec<ValueId>,
}

/// Decides the active carries and differentiates the body once.
pub(crate) fn plan(
    s: &Scan,
    arg_active: &[bool],
    res_active: &[bool],
) -> Result<ScanPlan, AdError> {
    let (nc, nx) = (s.num_carry, s.num_xs);
    let nk = arg_active.len() - nc - nx;
    let ny = s.body.outputs.len() - nc;
    let body = &s.body;
    let mut carry_on: Vec<bool> = arg_active[..nc].to_vec();
    loop {
        let mut seeds = arg_active.to_vec();
        seeds[..nc].copy_from_slice(&carry_on);
        let fwd = forward_reach(body, &seeds);
        let mut changed = false;
        for i in 0..nc {
            if !carry_on[i] && fwd[body.outputs[i].value.index()] {
                carry_on[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let carry_a: Vec<usize> = (0..nc).filter(|&i| carry_on[i]).collect();
    let xs_a: Vec<usize> = (0..nx).filter(|&j| arg_active[nc + j]).collect();
    let ks_a: Vec<usize> = (0..nk).filter(|&k| arg_active[nc + nx + k]).collect();
    let ys_ct: Vec<usize> = (0..ny).filter(|&j| res_active[nc + j]).collect();
    let mut mask = vec![false; nc + ny];
    carry_a.iter().for_each(|&i| mask[i] = true);
    ys_ct.iter().for_each(|&j| mask[nc + j] = true);
    let wrt: Vec<usize> = carry_a
        .iter()
        .copied()
        .chain(xs_a.iter().map(|j| nc + j))
        .chain(ks_a.iter().map(|k| nc + nx + k))
        .collect();
    let body_vjp = dce(&build(body, &wrt, &Seeds::Params(mask), false)?)?;
    let mut used = vec![false; body.params.len()];
    for inst in &body_vjp.insts {
        for a in &inst.args {
            if a.index() < used.len() {
                used[a.index()] = true;
            }
        }
    }
    for o in &body_vjp.outputs {
        if o.value.index() < used.len() {
            used[o.value.index()] = true;
        }
    }
    Ok(ScanPlan {
        used_c: (0..nc).filter(|&i| used[i]).collect(),
        used_x: (0..nx).filter(|&j| used[nc + j]).collect(),
        used_k: (0..nk).filter(|&k| used[nc + nx + k]).collect(),
        carry_a,
        xs_a,
        ks_a,
        ys_ct,
        body_vjp,
        residuals: vec![],
    })
}

/// Emits the forward scan with the carries the backward body reads stacked as extra ys;
/// returns the values of the original results.
pub(crate) fn emit_forward(
    b: &mut FunctionBuilder,
    s: &Scan,
    args: &[ValueId],
    plan: &mut ScanPlan,
) -> Result<Vec<ValueId>, AdError> {
    let n_orig = s.body.outputs.len();
    let mut body = s.body.clone();
    let mut names: Vec<String> = body.outputs.iter().map(|o| o.name.clone()).collect();
    for &i in &plan.used_c {
        let name = unique_name(&format!("res_{}", body.params[i].name), &mut names);
        body.outputs.push(Output {
            name,
            value: ValueId(i as u32),
        });
    }
    let res = b.push(
        Op::Scan(Box::new(Scan {
            body,
            ..(*s).clone()
        })),
        args,
    )?;
    plan.residuals = res[n_orig..].to_vec();
    Ok(res[..n_orig].to_vec())
}

/// Emits the reverse scan; returns one cotangent per scan operand.
pub(crate) fn backward(
    b: &mut FunctionBuilder,
    s: &Scan,
    x: &[ValueId],
    ct: &[Option<ValueId>],
    need: &[bool],
    p: &ScanPlan,
) -> Result<Vec<Option<ValueId>>, AdError> {
    let (nc, nx) = (s.num_carry, s.num_xs);
    let body = &s.body;
    let zeros = |b: &mut FunctionBuilder, t: TensorType| b.splat(t, 0.0);

    // Operands of the backward scan.
    let mut carries = Vec::new();
    for &i in &p.carry_a {
        carries.push(match ct[i] {
            Some(c) => c,
            None => zeros(b, b.ty(x[i]).clone()),
        });
    }
    for &k in &p.ks_a {
        carries.push(zeros(b, b.ty(x[nc + nx + k]).clone()));
    }
    let mut xs: Vec<ValueId> = p.residuals.clone();
    xs.extend(p.used_x.iter().map(|&j| x[nc + j]));
    for &j in &p.ys_ct {
        xs.push(match ct[nc + j] {
            Some(c) => c,
            None => {
                let y = body.ty(body.outputs[nc + j].value);
                let mut dims = vec![s.length];
                dims.extend_from_slice(y.dims());
                zeros(b, TensorType::new(y.dtype, dims))
            }
        });
    }
    let consts: Vec<ValueId> = p.used_k.iter().map(|&k| x[nc + nx + k]).collect();

    // The backward body.
    let mut bb = FunctionBuilder::new(format!("{}_bwd", body.name));
    let mut names: Vec<String> = Vec::new();
    let pty = |i: usize| body.params[i].ty.clone();
    let pname = |i: usize| body.params[i].name.clone();
    let ct_c: Vec<ValueId> = p
        .carry_a
        .iter()
        .map(|&i| bb.param(unique_name(&format!("ct_{}", pname(i)), &mut names), pty(i)))
        .collect();
    let acc: Vec<ValueId> = p
        .ks_a
        .iter()
        .map(|&k| {
            bb.param(
                unique_name(&format!("acc_{}", pname(nc + nx + k)), &mut names),
                pty(nc + nx + k),
            )
        })
        .collect();
    let mut bind: Vec<Option<ValueId>> = vec![None; p.body_vjp.params.len()];
    for &i in &p.used_c {
        bind[i] = Some(bb.param(
            unique_name(&format!("res_{}", pname(i)), &mut names),
            pty(i),
        ));
    }
    for &j in &p.used_x {
        bind[nc + j] = Some(bb.param(unique_name(&pname(nc + j), &mut names), pty(nc + j)));
    }
    let nb = body.params.len();
    let mut ct_slot = nb;
    for &c in &ct_c {
        bind[ct_slot] = Some(c);
        ct_slot += 1;
    }
    for &j in &p.ys_ct {
        let o = &body.outputs[nc + j];
        let t = body.ty(o.value).clone();
        bind[ct_slot] = Some(bb.param(unique_name(&format!("ct_{}", o.name), &mut names), t));
        ct_slot += 1;
    }
    for &k in &p.used_k {
        bind[nc + nx + k] = Some(bb.param(
            unique_name(&pname(nc + nx + k), &mut names),
            pty(nc + nx + k),
        ));
    }
    let grads = inline(&mut bb, &p.body_vjp, &bind)?;
    let (na, nka) = (p.carry_a.len(), p.ks_a.len());
    let mut outs: Vec<(String, ValueId)> = Vec::new();
    let mut onames: Vec<String> = Vec::new();
    for (n, &i) in p.carry_a.iter().enumerate() {
        outs.push((
            unique_name(&format!("ct_{}", pname(i)), &mut onames),
            grads[n],
        ));
    }
    for (n, &k) in p.ks_a.iter().enumerate() {
        let sum = bb.add(acc[n], grads[na + p.xs_a.len() + n])?;
        outs.push((
            unique_name(&format!("acc_{}", pname(nc + nx + k)), &mut onames),
            sum,
        ));
    }
    for (n, &j) in p.xs_a.iter().enumerate() {
        outs.push((
            unique_name(&format!("grad_{}", pname(nc + j)), &mut onames),
            grads[na + n],
        ));
    }
    let bwd_body = bb.finish(outs);

    let num_xs = xs.len();
    let mut operands = carries;
    operands.extend(xs);
    operands.extend(consts);
    let scan = Scan {
        length: s.length,
        num_carry: na + nka,
        num_xs,
        reverse: !s.reverse,
        body: bwd_body,
    };
    let res = b.push(Op::Scan(Box::new(scan)), &operands)?;

    let mut out = vec![None; need.len()];
    for (n, &i) in p.carry_a.iter().enumerate() {
        if need[i] {
            out[i] = Some(res[n]);
        }
    }
    for (n, &k) in p.ks_a.iter().enumerate() {
        out[nc + nx + k] = Some(res[na + n]);
    }
    for (n, &j) in p.xs_a.iter().enumerate() {
        out[nc + j] = Some(res[na + nka + n]);
    }
    Ok(out)
}
