//! The canonical printer of the IR text format (see `ARCHITECTURE.md`, "The IR text format").
//!
//! Contract: for every function that passes [`crate::verify()`] and whose input, output and
//! function names are identifiers (`[A-Za-z_][A-Za-z0-9_.]*`), `parse_function(&print_function(f))`
//! gives back `f` exactly (NaN constants come back as the canonical quiet NaN), and printing is
//! a fixed point of parsing. Canonical form: 2-space indentation per nesting level, inputs
//! printed by name, results numbered `%0, %1, ...` per function in definition order, every
//! result annotated with its type, boolean attributes only when true, and no attribute the
//! result type already states. Printing never panics, not even on a malformed function.
//! Cost: linear in the size of the function.

use crate::{DType, Function, Op};
use std::fmt::{self, Write};

/// Prints `f` in canonical text form (ends with a newline).
pub fn print_function(f: &Function) -> String {
    f.to_string()
}

impl fmt::Display for Function {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_function(out, self, 0)
    }
}

/// Writes `f` with every line indented by `depth` levels.
fn write_function(w: &mut impl Write, f: &Function, depth: usize) -> fmt::Result {
    let pad = "  ".repeat(depth);
    write!(w, "{pad}func @{}(", f.name)?;
    for (i, p) in f.params.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        write!(w, "{sep}%{}: {}", p.name, p.ty)?;
    }
    w.write_str(") -> (")?;
    for (i, o) in f.outputs.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        write!(w, "{sep}{}: ", o.name)?;
        write_type(w, f, o.value.index())?;
    }
    w.write_str(") {\n")?;
    for inst in &f.insts {
        write!(w, "{pad}  ")?;
        for (i, r) in inst.results.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            write!(w, "{sep}{}: ", ValueName(f, r.index()))?;
            write_type(w, f, r.index())?;
        }
        let eq = if inst.results.is_empty() { "=" } else { " =" };
        write!(w, "{eq} {}", inst.op.name())?;
        write_attrs(w, &inst.op)?;
        for (i, a) in inst.args.iter().enumerate() {
            let sep = if i > 0 { ", " } else { " " };
            write!(w, "{sep}{}", ValueName(f, a.index()))?;
        }
        let bodies = inst.op.bodies();
        if !bodies.is_empty() {
            w.write_str(" {\n")?;
            for b in bodies {
                write_function(w, b, depth + 2)?;
            }
            write!(w, "{pad}  }}")?;
        }
        w.write_char('\n')?;
    }
    write!(w, "{pad}  return")?;
    for (i, o) in f.outputs.iter().enumerate() {
        let sep = if i > 0 { ", " } else { " " };
        write!(w, "{sep}{}", ValueName(f, o.value.index()))?;
    }
    writeln!(w, "\n{pad}}}")
}

/// The recorded type of value `v` (`?` if the function is malformed).
fn write_type(w: &mut impl Write, f: &Function, v: usize) -> fmt::Result {
    match f.types.get(v) {
        Some(t) => write!(w, "{t}"),
        None => w.write_char('?'),
    }
}

/// Displays value `.1` of function `.0`: inputs by name, results by their result number.
struct ValueName<'a>(&'a Function, usize);

impl fmt::Display for ValueName<'_> {
    fn fmt(&self, w: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ValueName(f, v) = *self;
        match f.params.get(v) {
            Some(p) => write!(w, "%{}", p.name),
            None => write!(w, "%{}", v - f.params.len()),
        }
    }
}

/// Writes `[name=value, ...]`, or nothing when the op has no attribute to print.
fn write_attrs(w: &mut impl Write, op: &Op) -> fmt::Result {
    let mut attrs: Vec<(&str, String)> = vec![];
    let ints = |v: &[usize]| {
        format!(
            "[{}]",
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    match op {
        Op::Constant(c) => {
            let d = c.ty.dtype;
            match c.splat_value() {
                Some(x) => attrs.push(("value", scalar(d, x))),
                None => {
                    let vals: Vec<String> = c.data.iter().map(|&x| scalar(d, x)).collect();
                    attrs.push(("values", format!("[{}]", vals.join(", "))));
                }
            }
        }
        Op::Iota { axis, .. } | Op::Concat { axis } | Op::Argmax { axis } => {
            attrs.push(("axis", axis.to_string()))
        }
        Op::Broadcast { dims, .. } => attrs.push(("dims", ints(dims))),
        Op::Transpose(perm) => attrs.push(("perm", ints(perm))),
        Op::Slice { start, end } => {
            attrs.push(("start", ints(start)));
            attrs.push(("end", ints(end)));
        }
        Op::Pad { low, high } => {
            attrs.push(("low", ints(low)));
            attrs.push(("high", ints(high)));
        }
        Op::Reduce { axes, .. } => attrs.push(("axes", ints(axes))),
        Op::Matmul {
            transpose_lhs,
            transpose_rhs,
        } => {
            flag(&mut attrs, "transpose_lhs", *transpose_lhs);
            flag(&mut attrs, "transpose_rhs", *transpose_rhs);
        }
        Op::Cumsum { axis, reverse } => {
            attrs.push(("axis", axis.to_string()));
            flag(&mut attrs, "reverse", *reverse);
        }
        Op::Scan(s) => {
            attrs.push(("length", s.length.to_string()));
            attrs.push(("num_carry", s.num_carry.to_string()));
            attrs.push(("num_xs", s.num_xs.to_string()));
            flag(&mut attrs, "reverse", s.reverse);
        }
        Op::CustomVjp(c) => attrs.push(("name", quote(&c.name))),
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Cast(_)
        | Op::Reshape(_)
        | Op::StopGradient => {}
    }
    if attrs.is_empty() {
        return Ok(());
    }
    w.write_char('[')?;
    for (i, (k, v)) in attrs.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        write!(w, "{sep}{k}={v}")?;
    }
    w.write_char(']')
}

/// Adds `name=true` when `on`.
fn flag(attrs: &mut Vec<(&str, String)>, name: &'static str, on: bool) {
    if on {
        attrs.push((name, "true".into()));
    }
}

/// A constant element in the form the parser reads back for dtype `d`: `true`/`false` for
/// `bool`, an integer for `i32`, and for floats Rust's shortest round-trip form (`{:?}`, of the
/// `f32` value for `f32`) or `nan`, `inf`, `-inf`.
pub(crate) fn scalar(d: DType, x: f64) -> String {
    match d {
        DType::Bool => (x != 0.0).to_string(),
        DType::I32 => (x as i64).to_string(),
        _ if x.is_nan() => "nan".into(),
        _ if x.is_infinite() => (if x > 0.0 { "inf" } else { "-inf" }).into(),
        DType::F32 => format!("{:?}", x as f32),
        DType::F64 => format!("{x:?}"),
    }
}

/// A string literal with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}
