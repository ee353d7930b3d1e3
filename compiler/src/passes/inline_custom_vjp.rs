//! Inlining of `custom_vjp` forward functions.
//!
//! Contract: run after AD (the user-defined derivative is lost). Expects a verified function;
//! returns an equivalent verified function with the same signature and no `custom_vjp` op
//! left: each is replaced by the instructions of its forward function. Recurses into nested
//! bodies. Cost: linear in the inlined code.

use crate::rewrite::{inline, map_bodies, rebuild};
use brainlift_ir::{Function, IrError, Op};

/// Replaces every `custom_vjp` by its forward body, recursively.
pub fn inline_custom_vjp(f: &Function) -> Result<Function, IrError> {
    rebuild(f, |b, op, args, _| match op {
        Op::CustomVjp(c) => {
            let fwd = inline_custom_vjp(&c.forward)?;
            let args: Vec<_> = args.iter().map(|a| Some(*a)).collect();
            inline(b, &fwd, &args)
        }
        op if !op.bodies().is_empty() => Ok(b
            .push(map_bodies(op, &mut |g| inline_custom_vjp(g))?, args)?
            .to_vec()),
        op => Ok(b.push(op.clone(), args)?.to_vec()),
    })
}
