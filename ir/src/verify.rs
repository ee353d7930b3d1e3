//! The verifier: SSA well-formedness and every op's type rule, recursively into nested bodies.

use crate::{Function, IrError, ValueId};
use std::collections::HashSet;

/// Checks that `f` is well formed: unique input names, every operand defined before use,
/// every value defined once and numbered in order, recorded types equal to what the op table
/// infers, outputs defined, and the same for nested bodies.
pub fn verify(f: &Function) -> Result<(), IrError> {
    let err = |msg: String| {
        Err(IrError::Verify {
            func: f.name.clone(),
            msg,
        })
    };
    let mut names = HashSet::new();
    for p in &f.params {
        if !names.insert(p.name.as_str()) {
            return err(format!("input name %{} is used twice", p.name));
        }
    }
    for (i, p) in f.params.iter().enumerate() {
        if f.types.get(i) != Some(&p.ty) {
            return err(format!(
                "input %{} has an inconsistent recorded type",
                p.name
            ));
        }
    }
    for (i, t) in f.types.iter().enumerate() {
        match t.shape.checked_numel() {
            Some(n) if n as u64 <= crate::parse::MAX_ELEMENTS => {}
            _ => {
                return err(format!(
                    "value v{i} has type {t}: more than 2^40 elements is not supported"
                ));
            }
        }
    }
    let mut next = f.params.len();
    for (k, inst) in f.insts.iter().enumerate() {
        let describe = || format!("instruction {k} ({})", inst.op.name());
        for a in &inst.args {
            if a.index() >= next {
                return err(format!(
                    "{}: operand {a} is used before it is defined",
                    describe()
                ));
            }
        }
        for r in &inst.results {
            if r.index() != next {
                return err(format!(
                    "{}: result {r} is out of order (expected v{next})",
                    describe()
                ));
            }
            next += 1;
        }
        for body in inst.op.bodies() {
            verify(body)?;
        }
        let arg_types: Vec<_> = inst.args.iter().map(|a| f.ty(*a).clone()).collect();
        let inferred = inst.op.infer(&arg_types)?;
        if inferred.len() != inst.results.len() {
            return err(format!(
                "{}: has {} results, the op defines {}",
                describe(),
                inst.results.len(),
                inferred.len()
            ));
        }
        for (r, t) in inst.results.iter().zip(&inferred) {
            if f.ty(*r) != t {
                return err(format!(
                    "{}: result {r} is recorded as {} but the op gives {t}",
                    describe(),
                    f.ty(*r)
                ));
            }
        }
    }
    if next != f.types.len() {
        return err(format!(
            "{} types recorded for {next} values",
            f.types.len()
        ));
    }
    let mut out_names = HashSet::new();
    for o in &f.outputs {
        if o.value >= ValueId(next as u32) {
            return err(format!(
                "output {} returns undefined value {}",
                o.name, o.value
            ));
        }
        if !out_names.insert(o.name.as_str()) {
            return err(format!("output name {} is used twice", o.name));
        }
    }
    Ok(())
}
