//! Scaling by constants as one multiply: divisions by a constant become multiplies by its
//! reciprocal, and chains of constant factors and negations collapse into one factor.
//! Part of the JIT's `lowered` stage with [`crate::pipeline::Lowering::reassociate`] only.
//!
//! - `x / c` -> `x * (1/c)` for a splat constant `c` whose reciprocal is a normal number
//!   (a division costs 4–8× a multiply in the vector units; the result may differ by one
//!   rounding, as with XLA's `A / const => A * (1/const)`);
//! - `(x * c1) * c2` -> `x * (c1·c2)`, constants on either side (one rounding instead of two),
//!   when `c1·c2` is a normal number;
//! - `(-x) * c` and `-(x * c)` -> `x * (-c)` (exact).
//!
//! So the exponential-Euler step `g + (-g / tau) * k` of a synapse becomes `g + g * (-k/tau)`.
//!
//! Contract: expects a verified function; returns a verified function with the same inputs
//! and outputs, equal up to rounding (a few ulp). Float element types only. The replaced
//! intermediate values stay when something else reads them (DCE removes them otherwise).
//! Nested bodies are rewritten recursively. Cost: linear.

use crate::rewrite::{map_bodies, rebuild};
use brainlift_ir::{BinaryOp, Function, FunctionBuilder, IrError, Op, UnaryOp, ValueId};
use std::collections::HashMap;

/// What a value of the rebuilt function is, as far as this pass tracks it.
#[derive(Clone, Copy)]
enum Form {
    /// A splat constant.
    Splat(f64),
    /// `x * c` for a splat constant `c` (already folded: `x` is neither of these forms).
    Scaled(ValueId, f64),
    /// `-x`.
    Neg(ValueId),
}

/// Folds constant scaling (see the module doc), recursively in nested bodies.
pub fn const_scale(f: &Function) -> Result<Function, IrError> {
    let mut forms: HashMap<ValueId, Form> = HashMap::new();
    rebuild(f, |b, op, args, _| {
        if !op.bodies().is_empty() {
            return Ok(b.push(map_bodies(op, &mut const_scale)?, args)?.to_vec());
        }
        let float = args.first().is_some_and(|&a| b.ty(a).dtype.is_float());
        let splat = |v: &ValueId| match forms.get(v) {
            Some(Form::Splat(c)) => Some(*c),
            _ => None,
        };
        let rewritten = match op {
            Op::Binary(BinaryOp::Div) if float => splat(&args[1])
                .map(|c| 1.0 / c)
                .filter(|r| r.is_normal())
                .map(|r| (args[0], r)),
            Op::Binary(BinaryOp::Mul) if float => match (splat(&args[0]), splat(&args[1])) {
                (None, Some(c)) => Some((args[0], c)),
                (Some(c), None) => Some((args[1], c)),
                _ => None,
            },
            Op::Unary(UnaryOp::Neg) if float => match forms.get(&args[0]) {
                Some(Form::Scaled(..)) => Some((args[0], -1.0)),
                _ => None,
            },
            _ => None,
        };
        if let Some((x, c)) = rewritten {
            return Ok(vec![scale(b, &mut forms, x, c)?]);
        }
        let res = b.push(op.clone(), args)?.to_vec();
        match op {
            Op::Constant(k) => {
                if let Some(c) = k.splat_value() {
                    forms.insert(res[0], Form::Splat(c));
                }
            }
            Op::Unary(UnaryOp::Neg) if float => {
                forms.insert(res[0], Form::Neg(args[0]));
            }
            _ => {}
        }
        Ok(res)
    })
}

/// `x * c` with the forms of `x` folded in: `-y` gives `y * -c`, `y * c0` gives
/// `y * (c0·c)` when that product is a normal number.
fn scale(
    b: &mut FunctionBuilder,
    forms: &mut HashMap<ValueId, Form>,
    x: ValueId,
    c: f64,
) -> Result<ValueId, IrError> {
    let (x, c) = match forms.get(&x) {
        Some(Form::Neg(y)) => (*y, -c),
        Some(Form::Scaled(y, c0)) if (c0 * c).is_normal() => (*y, c0 * c),
        _ => (x, c),
    };
    let ty = b.ty(x).clone();
    let c = ty.dtype.round(c);
    let k = b.splat(ty, c);
    forms.insert(k, Form::Splat(c));
    let v = b.binary(BinaryOp::Mul, x, k)?;
    forms.insert(v, Form::Scaled(x, c));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainlift_ir::parse_function;

    fn lowered(src: &str) -> String {
        let f = parse_function(src).unwrap();
        let g = crate::passes::dce::dce(&const_scale(&f).unwrap()).unwrap();
        brainlift_ir::verify(&g).unwrap();
        g.to_string()
    }

    #[test]
    fn synapse_step_becomes_one_factor() {
        let out = lowered(
            "func @f(%g: f64[4]) -> (r: f64[4]) {
  %0: f64[4] = neg %g
  %1: f64[4] = constant[value=10.0]
  %2: f64[4] = div %0, %1
  %3: f64[4] = constant[value=0.5]
  %4: f64[4] = mul %3, %2
  %5: f64[4] = add %g, %4
  return %5
}",
        );
        expect_test::expect![[r#"
            func @f(%g: f64[4]) -> (r: f64[4]) {
              %0: f64[4] = constant[value=-0.05]
              %1: f64[4] = mul %g, %0
              %2: f64[4] = add %g, %1
              return %2
            }
        "#]]
        .assert_eq(&out);
    }

    #[test]
    fn keeps_what_is_not_a_plain_scaling() {
        // Division by a non-constant, by zero (1/0 is not normal), by a huge number (its
        // reciprocal is subnormal), integer division, and a negation of a non-product.
        let src = "func @f(%x: f64[2], %y: f64[2], %i: i32[2]) -> (a: f64[2], b: f64[2], c: f64[2], d: i32[2], e: f64[2]) {
  %0: f64[2] = div %x, %y
  %1: f64[2] = constant[value=0.0]
  %2: f64[2] = div %x, %1
  %3: f64[2] = constant[value=1e308]
  %4: f64[2] = div %x, %3
  %5: i32[2] = constant[value=2]
  %6: i32[2] = div %i, %5
  %7: f64[2] = neg %y
  return %0, %2, %4, %6, %7
}";
        let f = parse_function(src).unwrap();
        let g = crate::passes::dce::dce(&const_scale(&f).unwrap()).unwrap();
        assert_eq!(
            g.to_string(),
            crate::passes::dce::dce(&f).unwrap().to_string()
        );
    }

    #[test]
    fn folds_chains_and_negations() {
        // ((-(x/4 * -8)) / 0.5): 1/4 · -8 · -1 · 2 = 4, exactly representable at every step.
        let out = lowered(
            "func @f(%x: f64[3]) -> (r: f64[3], s: f64[3]) {
  %0: f64[3] = constant[value=4.0]
  %1: f64[3] = div %x, %0
  %2: f64[3] = constant[value=-8.0]
  %3: f64[3] = mul %1, %2
  %4: f64[3] = neg %3
  %5: f64[3] = constant[value=0.5]
  %6: f64[3] = div %4, %5
  return %6, %1
}",
        );
        expect_test::expect![[r#"
            func @f(%x: f64[3]) -> (r: f64[3], s: f64[3]) {
              %0: f64[3] = constant[value=0.25]
              %1: f64[3] = mul %x, %0
              %2: f64[3] = constant[value=4.0]
              %3: f64[3] = mul %x, %2
              return %3, %1
            }
        "#]]
        .assert_eq(&out);
    }
}
