//! Small helpers shared by the AD transform and the passes: inlining a nested function into a
//! builder, unique output names, and a value map from an old function to a new one.

use brainlift_ir::{Function, FunctionBuilder, IrError, Op, ValueId};

/// Copies the instructions of `f` into `b`, with `f`'s inputs bound to `args` (`None` for
/// inputs known to be unused), and returns the values of `f`'s outputs in `b`.
///
/// Fails with a verifier error when an unbound input is used.
pub fn inline(
    b: &mut FunctionBuilder,
    f: &Function,
    args: &[Option<ValueId>],
) -> Result<Vec<ValueId>, IrError> {
    if args.len() != f.params.len() {
        return Err(IrError::Verify {
            func: f.name.clone(),
            msg: format!(
                "inline: {} arguments for {} inputs",
                args.len(),
                f.params.len()
            ),
        });
    }
    let mut map: Vec<Option<ValueId>> = vec![None; f.types.len()];
    map[..args.len()].copy_from_slice(args);
    let get = |map: &[Option<ValueId>], v: ValueId| -> Result<ValueId, IrError> {
        map[v.index()].ok_or_else(|| IrError::Verify {
            func: f.name.clone(),
            msg: format!("inline: value {v} is used but its input was not bound"),
        })
    };
    for inst in &f.insts {
        let new_args = inst
            .args
            .iter()
            .map(|a| get(&map, *a))
            .collect::<Result<Vec<_>, _>>()?;
        let res = b.push(inst.op.clone(), &new_args)?;
        for (old, new) in inst.results.iter().zip(res) {
            map[old.index()] = Some(new);
        }
    }
    f.outputs.iter().map(|o| get(&map, o.value)).collect()
}

/// Rebuilds `f` instruction by instruction. `on_inst` gets the builder, the instruction and
/// its operands already mapped into the new function; it returns the new values of the
/// instruction's results (it may push any number of ops, or reuse existing values).
pub fn rebuild(
    f: &Function,
    mut on_inst: impl FnMut(
        &mut FunctionBuilder,
        &Op,
        &[ValueId],
        usize,
    ) -> Result<Vec<ValueId>, IrError>,
) -> Result<Function, IrError> {
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut map: Vec<ValueId> = Vec::with_capacity(f.types.len());
    for p in &f.params {
        map.push(b.param(p.name.clone(), p.ty.clone()));
    }
    map.resize(f.types.len(), ValueId(u32::MAX));
    for (k, inst) in f.insts.iter().enumerate() {
        let args: Vec<ValueId> = inst.args.iter().map(|a| map[a.index()]).collect();
        let res = on_inst(&mut b, &inst.op, &args, k)?;
        if res.len() != inst.results.len() {
            return Err(IrError::Verify {
                func: f.name.clone(),
                msg: format!(
                    "rewrite of instruction {k} ({}) gave {} results, expected {}",
                    inst.op.name(),
                    res.len(),
                    inst.results.len()
                ),
            });
        }
        for (old, new) in inst.results.iter().zip(res) {
            map[old.index()] = new;
        }
    }
    Ok(b.finish(
        f.outputs
            .iter()
            .map(|o| (o.name.clone(), map[o.value.index()])),
    ))
}

/// Rebuilds `f` with new params: `params` gives every param's name and type (the first
/// `f.params.len()` replace `f`'s own, in order; more may follow). `bind` emits what stands
/// for each old param (e.g. the new param itself, or a broadcast of it) and returns those
/// values; `on_inst` may rewrite an instruction (`Some(results)`) or leave it (`None`, copied
/// with its operands mapped).
pub fn rebuild_with_params(
    f: &Function,
    params: &[(String, brainlift_ir::TensorType)],
    bind: impl FnOnce(&mut FunctionBuilder, &[ValueId]) -> Result<Vec<ValueId>, IrError>,
    mut on_inst: impl FnMut(
        &mut FunctionBuilder,
        &brainlift_ir::Inst,
        &[ValueId],
    ) -> Result<Option<Vec<ValueId>>, IrError>,
) -> Result<Function, IrError> {
    let mut b = FunctionBuilder::new(f.name.clone());
    let new_params: Vec<ValueId> = params
        .iter()
        .map(|(n, t)| b.param(n.clone(), t.clone()))
        .collect();
    let mut map = bind(&mut b, &new_params)?;
    map.resize(f.types.len(), ValueId(u32::MAX));
    for inst in &f.insts {
        let args: Vec<ValueId> = inst.args.iter().map(|v| map[v.index()]).collect();
        let res = match on_inst(&mut b, inst, &args)? {
            Some(r) => r,
            None => b.push(inst.op.clone(), &args)?.to_vec(),
        };
        for (old, new) in inst.results.iter().zip(res) {
            map[old.index()] = new;
        }
    }
    Ok(b.finish(
        f.outputs
            .iter()
            .map(|o| (o.name.clone(), map[o.value.index()])),
    ))
}

/// Applies `pass` to every nested function of `op` (scan body, custom_vjp forward/backward).
pub fn map_bodies(
    op: &Op,
    pass: &mut dyn FnMut(&Function) -> Result<Function, IrError>,
) -> Result<Op, IrError> {
    let mut op = op.clone();
    for body in op.bodies_mut() {
        *body = pass(body)?;
    }
    Ok(op)
}

/// `base` if no name in `taken` equals it, else `base_1`, `base_2`, ...; the result is added
/// to `taken`.
pub fn unique_name(base: &str, taken: &mut Vec<String>) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while taken.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    taken.push(name.clone());
    name
}
