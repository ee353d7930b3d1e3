//! Common-subexpression elimination.
//!
//! Contract: expects a verified function; returns an equivalent verified function with the
//! same signature in which no two instructions have the same op (attributes, constant bits
//! and nested bodies compared structurally) and the same operands: later duplicates are
//! replaced by the first occurrence. All ops are pure, so this is always sound. Nested bodies
//! are processed first (independently: values never cross a body boundary). Cost: expected
//! linear (structural hash of op name, operands and a constant's first value; full equality
//! check on hash hits).

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{Function, IrError, Op, ValueId};
use std::collections::HashMap;

/// Hash key: op name, operands, and a salt from a constant's first value.
type Key = (&'static str, Vec<ValueId>, u64);

/// Merges structurally identical instructions, recursively in nested bodies.
pub fn cse(f: &Function) -> Result<Function, IrError> {
    let mut table: HashMap<Key, Vec<(Op, Vec<ValueId>)>> = HashMap::new();
    rebuild(f, |b, op, args, _| {
        let op = if op.bodies().is_empty() {
            op.clone()
        } else {
            map_bodies(op, &mut |g| cse(g))?
        };
        let salt = match &op {
            Op::Constant(c) => c.data.first().map_or(0, |x| x.to_bits()) ^ c.data.len() as u64,
            _ => 0,
        };
        let key = (op.name(), args.to_vec(), salt);
        if let Some((_, res)) = table
            .get(&key)
            .and_then(|bk| bk.iter().find(|(o, _)| *o == op))
        {
            return Ok(res.clone());
        }
        let res = b.push(op.clone(), args)?.to_vec();
        table.entry(key).or_default().push((op, res.clone()));
        Ok(res)
    })
}
