//! Reverse-mode automatic differentiation as an IR-to-IR transform.
//!
//! [`vjp`] turns `f(x..) -> (y..)` into `f_vjp(x.., ct_y..) -> (y.., grad_x..)`: it replays
//! the forward instructions, then walks them backwards applying each op's VJP rule (the single
//! table in `rules.rs`), summing cotangents that meet at a value. [`grad`] and
//! [`value_and_grad`] seed a scalar loss with `1.0`.
//!
//! **Activity.** Before emitting anything the transform marks the *active* values: those
//! reachable forwards from a `wrt` input and backwards from an output, through float values
//! and differentiable operands only. Only active values get cotangents, so branches unrelated
//! to the requested gradients emit nothing. Non-differentiable paths (`bool`/`i32` values,
//! compare, argmax, iota, constants, `sign`, `stop_gradient`, the predicate of `select`, casts
//! to or from non-floats) simply carry no gradient: a `wrt` input that only reaches the
//! outputs through them gets a zero gradient. Asking for the gradient of an `i32`/`bool`
//! input is an error naming the input.
//!
//! **Scan (BPTT).** The VJP of a `scan` is *one* forward scan and *one* reverse scan, not an
//! unrolled copy per step (see `scan.rs`):
//! 1. the forward scan is re-emitted with extra `ys`: the carry entering each step
//!    (only the carries the backward body reads), i.e. residuals of size
//!    `T x (carry size)` — memory O(T x state), visible in the dumped IR as the extra
//!    stacked results of the forward scan;
//! 2. one `scan[reverse=!reverse]` whose body is the VJP of the forward body. It carries the
//!    cotangents of the active carries plus one accumulator per differentiated loop-invariant
//!    operand (the parameters), reads the saved carries, the `xs` and the cotangents of the
//!    `ys` per step, and outputs the cotangents of the `xs` as its `ys`. The body's VJP
//!    recomputes that step's forward from the saved carry (one step of recomputation, no
//!    per-step intermediates saved).
//!
//! **Custom VJP.** A `custom_vjp` op inlines its backward function on
//! `(operands.., cotangents..)`; the forward stays a `custom_vjp` until the
//! `inline_custom_vjp` pass.
//!
//! Cost: the gradient function has O(size of `f`) instructions (each rule emits a bounded
//! number of ops; nested bodies are differentiated once, not per step).

mod rules;
mod scan;

use crate::passes::dce::dce;
use crate::rewrite::unique_name;
use brainlift_ir::{Function, FunctionBuilder, IrError, Op, ValueId};
use std::collections::HashMap;
use thiserror::Error;

pub(crate) use rules::differentiable;

/// Why a function could not be differentiated.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AdError {
    /// A `wrt` index does not name an input.
    #[error("@{func}: wrt index {index} is out of range (the function has {count} inputs)")]
    WrtOutOfRange {
        /// Function name.
        func: String,
        /// The bad index.
        index: usize,
        /// Number of inputs.
        count: usize,
    },
    /// The gradient of a non-float input was requested.
    #[error(
        "@{func}: cannot differentiate with respect to input %{name} of type {ty}: only f32/f64 inputs have gradients"
    )]
    NonFloatWrt {
        /// Function name.
        func: String,
        /// Input name.
        name: String,
        /// Its type.
        ty: String,
    },
    /// A `wrt` name is not an input of the function.
    #[error("@{func}: no input named %{name} (inputs: {available})")]
    UnknownInput {
        /// Function name.
        func: String,
        /// The requested name.
        name: String,
        /// The input names, comma-separated.
        available: String,
    },
    /// An input is listed twice in `wrt`.
    #[error("@{func}: input %{name} is listed twice in wrt")]
    DuplicateWrt {
        /// Function name.
        func: String,
        /// Input name.
        name: String,
    },
    /// `grad`/`value_and_grad` need a single float scalar output.
    #[error(
        "@{func}: grad needs exactly one output, a float scalar (f32[] or f64[]); got ({outputs})"
    )]
    NotScalarLoss {
        /// Function name.
        func: String,
        /// The outputs found, `name: type` comma-separated.
        outputs: String,
    },
    /// Building the gradient function produced ill-typed IR (a bug in a rule).
    #[error("building the gradient: {0}")]
    Ir(#[from] IrError),
    /// An invariant of the transform was violated (a bug).
    #[error("internal AD error: {0}")]
    Internal(String),
}

/// How the cotangents of the outputs are supplied and what the result returns.
#[derive(Clone, Debug)]
pub(crate) enum Seeds {
    /// One cotangent input per output whose mask entry is true.
    Params(Vec<bool>),
    /// The single scalar output is seeded with `1.0`.
    One,
}

/// The VJP of `f` with respect to inputs `wrt`: inputs `(f's inputs.., ct_<output>..)` (one
/// cotangent per output, with the output's type), outputs `(f's outputs.., grad_<input>..)`.
///
/// Cotangents of non-float outputs are accepted and ignored.
pub fn vjp(f: &Function, wrt: &[usize]) -> Result<Function, AdError> {
    let g = build(f, wrt, &Seeds::Params(vec![true; f.outputs.len()]), true)?;
    Ok(dce(&g)?)
}

/// The gradient of a scalar loss: `f` must have exactly one output, a float scalar. The result
/// has `f`'s inputs and one output per `wrt` input, named `grad_<input name>`.
pub fn grad(f: &Function, wrt: &[usize]) -> Result<Function, AdError> {
    check_scalar(f)?;
    let g = build(f, wrt, &Seeds::One, false)?;
    Ok(dce(&g)?)
}

/// Like [`grad`], but returns the loss value first, then the gradients.
pub fn value_and_grad(f: &Function, wrt: &[usize]) -> Result<Function, AdError> {
    check_scalar(f)?;
    let g = build(f, wrt, &Seeds::One, true)?;
    Ok(dce(&g)?)
}

/// Indices of the floating-point inputs of `f` (the default `wrt` set).
pub fn float_inputs(f: &Function) -> Vec<usize> {
    (0..f.params.len())
        .filter(|&i| f.params[i].ty.dtype.is_float())
        .collect()
}

/// Resolves input names to `wrt` indices; fails on an unknown name, a non-float input or a
/// duplicate, naming it.
pub fn wrt_by_names(f: &Function, names: &[&str]) -> Result<Vec<usize>, AdError> {
    let wrt = names
        .iter()
        .map(|n| {
            f.param_index(n).ok_or_else(|| AdError::UnknownInput {
                func: f.name.clone(),
                name: n.to_string(),
                available: f
                    .params
                    .iter()
                    .map(|p| format!("%{}", p.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_wrt(f, &wrt)?;
    Ok(wrt)
}

fn check_scalar(f: &Function) -> Result<(), AdError> {
    let ok = f.outputs.len() == 1 && {
        let t = f.ty(f.outputs[0].value);
        t.rank() == 0 && t.dtype.is_float()
    };
    if ok {
        return Ok(());
    }
    let outputs = f
        .outputs
        .iter()
        .map(|o| format!("{}: {}", o.name, f.ty(o.value)))
        .collect::<Vec<_>>()
        .join(", ");
    Err(AdError::NotScalarLoss {
        func: f.name.clone(),
        outputs,
    })
}

fn check_wrt(f: &Function, wrt: &[usize]) -> Result<(), AdError> {
    for (k, &i) in wrt.iter().enumerate() {
        let p = f.params.get(i).ok_or(AdError::WrtOutOfRange {
            func: f.name.clone(),
            index: i,
            count: f.params.len(),
        })?;
        if !p.ty.dtype.is_float() {
            return Err(AdError::NonFloatWrt {
                func: f.name.clone(),
                name: p.name.clone(),
                ty: p.ty.to_string(),
            });
        }
        if wrt[..k].contains(&i) {
            return Err(AdError::DuplicateWrt {
                func: f.name.clone(),
                name: p.name.clone(),
            });
        }
    }
    Ok(())
}

/// Values reachable forwards from the inputs marked in `seeds` through differentiable
/// operands (float results only).
pub(crate) fn forward_reach(f: &Function, seeds: &[bool]) -> Vec<bool> {
    let mut fwd = vec![false; f.types.len()];
    fwd[..seeds.len()].copy_from_slice(seeds);
    for inst in &f.insts {
        let hit = inst
            .args
            .iter()
            .enumerate()
            .any(|(i, a)| fwd[a.index()] && differentiable(&inst.op, i, f.ty(*a).dtype));
        if hit {
            for r in &inst.results {
                fwd[r.index()] = f.ty(*r).dtype.is_float();
            }
        }
    }
    fwd
}

/// Active values: forward-reachable from `wrt` and backward-reachable from the outputs whose
/// `mask` entry is true, through differentiable operands.
pub(crate) fn activity(f: &Function, wrt: &[usize], mask: &[bool]) -> Vec<bool> {
    let mut seeds = vec![false; f.params.len()];
    wrt.iter().for_each(|&i| seeds[i] = true);
    let fwd = forward_reach(f, &seeds);
    let mut bwd = vec![false; f.types.len()];
    for (o, &m) in f.outputs.iter().zip(mask) {
        if m {
            bwd[o.value.index()] = true;
        }
    }
    for inst in f.insts.iter().rev() {
        if inst
            .results
            .iter()
            .any(|r| bwd[r.index()] && fwd[r.index()])
        {
            for (i, a) in inst.args.iter().enumerate() {
                if differentiable(&inst.op, i, f.ty(*a).dtype) {
                    bwd[a.index()] = true;
                }
            }
        }
    }
    fwd.iter().zip(&bwd).map(|(a, b)| *a && *b).collect()
}

/// The transform. `keep_values`: also return `f`'s outputs before the gradients.
pub(crate) fn build(
    f: &Function,
    wrt: &[usize],
    seeds: &Seeds,
    keep_values: bool,
) -> Result<Function, AdError> {
    check_wrt(f, wrt)?;
    let mask = match seeds {
        Seeds::Params(m) => m.clone(),
        Seeds::One => vec![true; f.outputs.len()],
    };
    let active = activity(f, wrt, &mask);
    let name = if matches!(seeds, Seeds::One) {
        format!("{}_grad", f.name)
    } else {
        format!("{}_vjp", f.name)
    };
    let mut b = FunctionBuilder::new(name);
    let mut names: Vec<String> = f.params.iter().map(|p| p.name.clone()).collect();
    let mut map: Vec<ValueId> = f
        .params
        .iter()
        .map(|p| b.param(p.name.clone(), p.ty.clone()))
        .collect();
    let mut ct_params = vec![None; f.outputs.len()];
    if let Seeds::Params(m) = seeds {
        for (k, o) in f.outputs.iter().enumerate() {
            if m[k] {
                let n = unique_name(&format!("ct_{}", o.name), &mut names);
                ct_params[k] = Some(b.param(n, f.ty(o.value).clone()));
            }
        }
    }
    map.resize(f.types.len(), ValueId(u32::MAX));

    // Forward replay; active scans also stack their residuals.
    let mut plans: HashMap<usize, scan::ScanPlan> = HashMap::new();
    for (k, inst) in f.insts.iter().enumerate() {
        let args: Vec<ValueId> = inst.args.iter().map(|a| map[a.index()]).collect();
        let res = match &inst.op {
            Op::Scan(s)
                if inst.args.iter().any(|a| active[a.index()])
                    && inst.results.iter().any(|r| active[r.index()]) =>
            {
                let arg_act: Vec<bool> = inst.args.iter().map(|a| active[a.index()]).collect();
                let res_act: Vec<bool> = inst.results.iter().map(|r| active[r.index()]).collect();
                let mut plan = scan::plan(s, &arg_act, &res_act)?;
                let res = scan::emit_forward(&mut b, s, &args, &mut plan)?;
                plans.insert(k, plan);
                res
            }
            op => b.push(op.clone(), &args)?.to_vec(),
        };
        for (old, new) in inst.results.iter().zip(res) {
            map[old.index()] = new;
        }
    }

    // Seed the output cotangents.
    let mut ct: Vec<Option<ValueId>> = vec![None; f.types.len()];
    for (k, o) in f.outputs.iter().enumerate() {
        if !active[o.value.index()] {
            continue;
        }
        let seed = match seeds {
            Seeds::One => {
                let t = f.ty(o.value).clone();
                b.splat(t, 1.0)
            }
            Seeds::Params(_) => match ct_params[k] {
                Some(p) => p,
                None => continue,
            },
        };
        accumulate(&mut b, &mut ct[o.value.index()], seed)?;
    }

    // Backward sweep.
    for (k, inst) in f.insts.iter().enumerate().rev() {
        let cts: Vec<Option<ValueId>> = inst
            .results
            .iter()
            .map(|r| {
                if active[r.index()] {
                    ct[r.index()]
                } else {
                    None
                }
            })
            .collect();
        let need: Vec<bool> = inst.args.iter().map(|a| active[a.index()]).collect();
        if cts.iter().all(Option::is_none) || !need.iter().any(|n| *n) {
            continue;
        }
        let x: Vec<ValueId> = inst.args.iter().map(|a| map[a.index()]).collect();
        let y: Vec<ValueId> = inst.results.iter().map(|r| map[r.index()]).collect();
        let grads = rules::vjp_rule(&mut b, &inst.op, &x, &y, &cts, &need, plans.get(&k))?;
        for ((a, g), n) in inst.args.iter().zip(grads).zip(&need) {
            if let (Some(g), true) = (g, *n) {
                accumulate(&mut b, &mut ct[a.index()], g)?;
            }
        }
    }

    let mut outputs: Vec<(String, ValueId)> = Vec::new();
    let mut out_names: Vec<String> = Vec::new();
    if keep_values {
        for o in &f.outputs {
            outputs.push((unique_name(&o.name, &mut out_names), map[o.value.index()]));
        }
    }
    for &i in wrt {
        let g = match ct[i] {
            Some(g) => g,
            None => {
                let t = f.params[i].ty.clone();
                b.splat(t, 0.0)
            }
        };
        outputs.push((
            unique_name(&format!("grad_{}", f.params[i].name), &mut out_names),
            g,
        ));
    }
    Ok(b.finish(outputs))
}

fn accumulate(
    b: &mut FunctionBuilder,
    slot: &mut Option<ValueId>,
    g: ValueId,
) -> Result<(), AdError> {
    *slot = Some(match *slot {
        Some(a) => b.add(a, g)?,
        None => g,
    });
    Ok(())
}
