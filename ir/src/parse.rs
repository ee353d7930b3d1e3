//! The parser of the IR text format (see `ARCHITECTURE.md`, "The IR text format").
//!
//! Contract: reads exactly one function (`//` comments and any whitespace allowed; operands
//! must start on the line of their op). Result names may be any `%identifier`; they are
//! renumbered in definition order. Every instruction is built through [`FunctionBuilder`], so
//! its recorded result types are checked against [`crate::Op::infer`], and the finished
//! function is verified. Every problem is an [`IrError::Parse`] with a 1-based line and column
//! and a one-line message naming what was expected and what was found. The parser never
//! panics; shapes with more than 2^40 elements, integers above 2^40 and functions nested more
//! than 16 deep are rejected. Cost: linear in the input size.

use crate::{
    BinaryOp, CompareOp, Constant, CustomVjp, DType, Function, FunctionBuilder, IrError, Op,
    ReduceOp, Scan, TensorType, UnaryOp, ValueId,
};
use std::collections::{HashMap, HashSet};

/// The largest element count of a shape and the largest integer attribute accepted: 2^40.
pub const MAX_ELEMENTS: u64 = 1 << 40;

/// How deeply nested functions (scan bodies, custom_vjp functions) may be.
pub const MAX_DEPTH: usize = 16;

/// Parses one function in the IR text format and verifies it.
pub fn parse_function(src: &str) -> Result<Function, IrError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    let start = p.peek().clone();
    let f = p.function(0)?;
    let end = p.peek();
    if end.tok != Tok::Eof {
        return Err(end.err(format!(
            "expected end of input after the function, found {}",
            end.describe()
        )));
    }
    crate::verify(&f).map_err(|e| start.err(e.to_string()))?;
    Ok(f)
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok<'a> {
    /// `[A-Za-z_][A-Za-z0-9_.]*`: keywords, dtypes, op, attribute and output names.
    Ident(&'a str),
    /// `%name`.
    Value(&'a str),
    /// `@name`.
    Global(&'a str),
    /// Digits only.
    Int(&'a str),
    /// Digits with a fraction and/or an exponent.
    Float(&'a str),
    /// A string literal, unescaped.
    Str(String),
    /// One of `( ) [ ] { } , : = -`.
    Punct(char),
    /// `->`.
    Arrow,
    Eof,
}

#[derive(Clone, Debug)]
struct Token<'a> {
    tok: Tok<'a>,
    line: usize,
    col: usize,
}

impl Token<'_> {
    fn err(&self, msg: String) -> IrError {
        IrError::Parse {
            line: self.line,
            col: self.col,
            msg,
        }
    }

    /// The token as quoted in error messages (long tokens shortened).
    fn describe(&self) -> String {
        let text = match &self.tok {
            Tok::Ident(s) | Tok::Int(s) | Tok::Float(s) => s.to_string(),
            Tok::Value(s) => format!("%{s}"),
            Tok::Global(s) => format!("@{s}"),
            Tok::Str(s) => format!("\"{}\"", s.escape_debug()),
            Tok::Punct(c) => c.to_string(),
            Tok::Arrow => "->".into(),
            Tok::Eof => return "end of input".into(),
        };
        format!("'{}'", short(&text))
    }

    fn is(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// `text` cut to 40 characters for an error message.
fn short(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

struct Lexer<'a> {
    src: &'a str,
    i: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    fn peek_nth(&self, n: usize) -> Option<char> {
        self.src[self.i..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_nth(0)?;
        self.i += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn eat_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.i;
        while self.peek_nth(0).is_some_and(&f) {
            self.bump();
        }
        &self.src[start..self.i]
    }

    fn err(&self, msg: String) -> IrError {
        IrError::Parse {
            line: self.line,
            col: self.col,
            msg,
        }
    }

    /// Skips whitespace and `//` comments.
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek_nth(0), self.peek_nth(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    self.eat_while(|c| c != '\n');
                }
                _ => return,
            }
        }
    }

    /// A name after `%` or `@`.
    fn name(&mut self, sigil: char) -> Result<&'a str, IrError> {
        self.bump();
        let s = self.eat_while(is_ident_char);
        let ok = match sigil {
            '@' => s.starts_with(is_ident_start),
            _ => !s.is_empty(),
        };
        if ok {
            Ok(s)
        } else {
            let what = if sigil == '@' { "function" } else { "value" };
            Err(self.err(format!("expected a {what} name after '{sigil}'")))
        }
    }

    fn number(&mut self) -> Result<Tok<'a>, IrError> {
        let (start, line, col) = (self.i, self.line, self.col);
        self.eat_while(|c| c.is_ascii_digit());
        let mut float = false;
        if self.peek_nth(0) == Some('.') && self.peek_nth(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            self.eat_while(|c| c.is_ascii_digit());
            float = true;
        }
        if matches!(self.peek_nth(0), Some('e' | 'E')) {
            self.bump();
            if matches!(self.peek_nth(0), Some('+' | '-')) {
                self.bump();
            }
            if self.eat_while(|c| c.is_ascii_digit()).is_empty() {
                let msg = format!(
                    "expected exponent digits in number '{}'",
                    &self.src[start..self.i]
                );
                return Err(IrError::Parse { line, col, msg });
            }
            float = true;
        }
        let text = &self.src[start..self.i];
        Ok(if float {
            Tok::Float(text)
        } else {
            Tok::Int(text)
        })
    }

    fn string(&mut self) -> Result<Tok<'a>, IrError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut s = String::new();
        loop {
            let (esc_line, esc_col) = (self.line, self.col);
            match self.bump() {
                None => {
                    let msg = "unterminated string".into();
                    return Err(IrError::Parse { line, col, msg });
                }
                Some('"') => return Ok(Tok::Str(s)),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => s.push(c),
                    other => {
                        let found = other
                            .map_or("end of input".into(), |c| format!("'{}'", c.escape_debug()));
                        let msg =
                            format!("expected '\"' or '\\' after '\\' in a string, found {found}");
                        return Err(IrError::Parse {
                            line: esc_line,
                            col: esc_col,
                            msg,
                        });
                    }
                },
                Some(c) => s.push(c),
            }
        }
    }
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
fn lex(src: &str) -> Result<Vec<Token<'_>>, IrError> {
    let mut lx = Lexer {
        src,
        i: 0,
        line: 1,
        col: 1,
    };
    let mut toks = vec![];
    loop {
        lx.skip_trivia();
        let (line, col) = (lx.line, lx.col);
        let Some(c) = lx.peek_nth(0) else {
            toks.push(Token {
                tok: Tok::Eof,
                line,
                col,
            });
            return Ok(toks);
        };
        let tok = match c {
            c if is_ident_start(c) => Tok::Ident(lx.eat_while(is_ident_char)),
            '%' => Tok::Value(lx.name('%')?),
            '@' => Tok::Global(lx.name('@')?),
            '0'..='9' => lx.number()?,
            '"' => lx.string()?,
            '-' => {
                lx.bump();
                if lx.peek_nth(0) == Some('>') {
                    lx.bump();
                    Tok::Arrow
                } else {
                    Tok::Punct('-')
                }
            }
            '(' | ')' | '[' | ']' | '{' | '}' | ',' | ':' | '=' => {
                lx.bump();
                Tok::Punct(c)
            }
            _ => return Err(lx.err(format!("unexpected character '{}'", c.escape_debug()))),
        };
        toks.push(Token { tok, line, col });
    }
}

// ---------------------------------------------------------------- attributes

/// One attribute element as written.
#[derive(Clone, Debug)]
enum Scalar {
    /// A number; `text` includes the sign, `nan`/`inf` are numbers too.
    Num {
        text: String,
        int: bool,
    },
    Bool(bool),
    Str(String),
}

impl Scalar {
    fn describe(&self) -> String {
        match self {
            Scalar::Num { text, .. } => short(text),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Str(s) => format!("\"{}\"", s.escape_debug()),
        }
    }
}

#[derive(Clone, Debug)]
enum AttrValue {
    One(Scalar),
    List(Vec<Scalar>),
}

impl AttrValue {
    fn describe(&self) -> String {
        match self {
            AttrValue::One(s) => s.describe(),
            AttrValue::List(_) => "a list".into(),
        }
    }
}

struct Attr<'a> {
    name: &'a str,
    at: Token<'a>,
    value: AttrValue,
}

/// The attributes of one instruction; each op takes the ones it needs, leftovers are errors.
struct Attrs<'a> {
    op: &'a str,
    at: Token<'a>,
    items: Vec<Attr<'a>>,
}

impl<'a> Attrs<'a> {
    fn take(&mut self, name: &str) -> Option<Attr<'a>> {
        let i = self.items.iter().position(|a| a.name == name)?;
        Some(self.items.remove(i))
    }

    fn required(&mut self, name: &str) -> Result<Attr<'a>, IrError> {
        let op = self.op;
        self.take(name)
            .ok_or_else(|| self.at.err(format!("{op}: missing attribute '{name}'")))
    }

    fn bad(&self, a: &Attr, what: &str) -> IrError {
        a.at.err(format!(
            "{}: attribute '{}' must be {what}, found {}",
            self.op,
            a.name,
            a.value.describe()
        ))
    }

    fn to_usize(&self, a: &Attr, s: &Scalar) -> Result<usize, IrError> {
        match s {
            Scalar::Num { text, int: true } if !text.starts_with('-') => bounded_int(&a.at, text),
            _ => Err(a.at.err(format!(
                "{}: attribute '{}' must hold non-negative integers, found {}",
                self.op,
                a.name,
                s.describe()
            ))),
        }
    }

    /// A required non-negative integer.
    fn int(&mut self, name: &str) -> Result<usize, IrError> {
        let a = self.required(name)?;
        match &a.value {
            AttrValue::One(s) => self.to_usize(&a, s),
            AttrValue::List(_) => Err(self.bad(&a, "an integer")),
        }
    }

    /// A required list of non-negative integers.
    fn ints(&mut self, name: &str) -> Result<Vec<usize>, IrError> {
        let a = self.required(name)?;
        match &a.value {
            AttrValue::List(l) => l.iter().map(|s| self.to_usize(&a, s)).collect(),
            AttrValue::One(_) => Err(self.bad(&a, "a list of integers")),
        }
    }

    /// An optional boolean, false when absent.
    fn flag(&mut self, name: &str) -> Result<bool, IrError> {
        match self.take(name) {
            None => Ok(false),
            Some(a) => match a.value {
                AttrValue::One(Scalar::Bool(b)) => Ok(b),
                _ => Err(self.bad(&a, "true or false")),
            },
        }
    }

    /// A required string.
    fn string(&mut self, name: &str) -> Result<String, IrError> {
        let a = self.required(name)?;
        match a.value {
            AttrValue::One(Scalar::Str(s)) => Ok(s),
            _ => Err(self.bad(&a, "a string")),
        }
    }

    /// `value=x` (splat) or `values=[..]` (one per element) of a constant of type `ty`.
    fn constant(&mut self, ty: TensorType) -> Result<Constant, IrError> {
        let (one, many) = (self.take("value"), self.take("values"));
        let (a, splat) = match (one, many) {
            (Some(a), None) => (a, true),
            (None, Some(a)) => (a, false),
            (Some(_), Some(a)) => {
                return Err(a
                    .at
                    .err("constant: give 'value' or 'values', not both".into()));
            }
            (None, None) => {
                return Err(self
                    .at
                    .err("constant: missing attribute 'value' or 'values'".into()));
            }
        };
        let scalars = match (&a.value, splat) {
            (AttrValue::One(s), true) => std::slice::from_ref(s),
            (AttrValue::List(l), false) => l.as_slice(),
            (_, true) => return Err(self.bad(&a, "a single value (use 'values' for a list)")),
            (_, false) => return Err(self.bad(&a, "a list")),
        };
        if !splat && scalars.len() != ty.numel() {
            return Err(a.at.err(format!(
                "constant: type {ty} needs {} values, found {}",
                ty.numel(),
                scalars.len()
            )));
        }
        let d = ty.dtype;
        let data = scalars
            .iter()
            .map(|s| element(&a.at, d, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Constant::from_values(ty, data))
    }
}

/// A non-negative integer literal of at most [`MAX_ELEMENTS`].
fn bounded_int(at: &Token, text: &str) -> Result<usize, IrError> {
    let n = text.parse::<u64>().ok().filter(|&n| n <= MAX_ELEMENTS);
    n.and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
        at.err(format!(
            "integer {} is too large (at most 2^40)",
            short(text)
        ))
    })
}

/// One constant element of dtype `d`: `true`/`false` for bool, an integer for i32, any
/// number (or `nan`, `inf`, `-inf`) for floats; `f32` literals are rounded once, directly.
fn element(at: &Token, d: DType, s: &Scalar) -> Result<f64, IrError> {
    let bad = |what: &str| {
        at.err(format!(
            "constant: {d} values must be {what}, found {}",
            s.describe()
        ))
    };
    match (d, s) {
        (DType::Bool, Scalar::Bool(b)) => Ok(f64::from(u8::from(*b))),
        (DType::Bool, _) => Err(bad("true or false")),
        (DType::I32, Scalar::Num { text, int: true }) => match text.parse::<i32>() {
            Ok(v) => Ok(f64::from(v)),
            Err(_) => Err(at.err(format!(
                "constant: i32 value {} is out of range",
                short(text)
            ))),
        },
        (DType::I32, _) => Err(bad("integers")),
        (_, Scalar::Num { text, .. }) => {
            let v = match text.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => {
                    let v = if d == DType::F32 {
                        text.parse::<f32>().map(f64::from)
                    } else {
                        text.parse::<f64>()
                    };
                    match v {
                        Ok(v) if v.is_finite() => v,
                        _ => {
                            return Err(at.err(format!(
                                "constant: value {} is out of range for {d}",
                                short(text)
                            )));
                        }
                    }
                }
            };
            Ok(v)
        }
        _ => Err(bad("numbers")),
    }
}

/// The attribute-free ops and the reductions, looked up in the `ALL` tables of `op.rs`.
fn table_op(name: &str) -> Option<Op> {
    let simple = UnaryOp::ALL
        .map(Op::Unary)
        .into_iter()
        .chain(BinaryOp::ALL.map(Op::Binary));
    let simple = simple
        .chain(CompareOp::ALL.map(Op::Compare))
        .chain([Op::Select, Op::StopGradient]);
    let reduce = ReduceOp::ALL.map(|op| Op::Reduce { op, axes: vec![] });
    simple.chain(reduce).find(|op| op.name() == name)
}

fn is_known_op(name: &str) -> bool {
    crate::op::OTHER_OP_NAMES.contains(&name) || table_op(name).is_some()
}

// ---------------------------------------------------------------- parser

/// A declared result: its name, recorded type and where it was written.
type Declared<'a> = (&'a str, TensorType, Token<'a>);

/// A used operand: its value, its name as written and where.
type Operand<'a> = (ValueId, &'a str, Token<'a>);

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token<'a> {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    /// The current token; stays on the final `Eof`.
    fn next(&mut self) -> Token<'a> {
        let t = self.peek().clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// Line of the previously consumed token.
    fn prev_line(&self) -> usize {
        self.pos.checked_sub(1).map_or(0, |i| self.toks[i].line)
    }

    fn expect(&mut self, c: char, context: &str) -> Result<Token<'a>, IrError> {
        let t = self.next();
        if t.is(c) {
            Ok(t)
        } else {
            Err(t.err(format!("expected '{c}' {context}, found {}", t.describe())))
        }
    }

    /// Items separated by `,` up to `close` (the opener is consumed); `what` names the list.
    fn list<T>(
        &mut self,
        close: char,
        what: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, IrError>,
    ) -> Result<Vec<T>, IrError> {
        let mut out = vec![];
        if self.peek().is(close) {
            self.next();
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            let t = self.next();
            if t.is(close) {
                return Ok(out);
            } else if !t.is(',') {
                let found = t.describe();
                return Err(t.err(format!(
                    "expected ',' or '{close}' in {what}, found {found}"
                )));
            }
        }
    }

    /// `func @name(%in: type, ..) -> (out: type, ..) { instructions.. return .. }`.
    fn function(&mut self, depth: usize) -> Result<Function, IrError> {
        let t = self.next();
        if t.tok != Tok::Ident("func") {
            return Err(t.err(format!("expected 'func', found {}", t.describe())));
        }
        if depth > MAX_DEPTH {
            return Err(t.err(format!("functions are nested more than {MAX_DEPTH} deep")));
        }
        let t = self.next();
        let Tok::Global(name) = t.tok else {
            return Err(t.err(format!(
                "expected a function name '@name', found {}",
                t.describe()
            )));
        };
        let mut b = FunctionBuilder::new(name);
        let mut scope: HashMap<&'a str, ValueId> = HashMap::new();
        self.expect('(', "after the function name")?;
        self.list(')', "the input list", |p| {
            let t = p.next();
            let Tok::Value(n) = t.tok else {
                return Err(t.err(format!("expected an input '%name', found {}", t.describe())));
            };
            if !n.starts_with(is_ident_start) {
                return Err(t.err(format!("input name %{n} must start with a letter or '_'")));
            }
            if scope.contains_key(n) {
                return Err(t.err(format!("input %{n} is defined twice")));
            }
            p.expect(':', &format!("after input %{n}"))?;
            let ty = p.ty()?;
            scope.insert(n, b.param(n, ty));
            Ok(())
        })?;
        let t = self.next();
        if t.tok != Tok::Arrow {
            return Err(t.err(format!(
                "expected '->' after the inputs, found {}",
                t.describe()
            )));
        }
        self.expect('(', "to open the output list")?;
        let mut outputs: Vec<(&str, TensorType)> = vec![];
        let mut out_names = HashSet::new();
        self.list(')', "the output list", |p| {
            let t = p.next();
            let Tok::Ident(n) = t.tok else {
                return Err(t.err(format!("expected an output name, found {}", t.describe())));
            };
            if !out_names.insert(n) {
                return Err(t.err(format!("output name '{n}' is used twice")));
            }
            p.expect(':', &format!("after output name '{n}'"))?;
            outputs.push((n, p.ty()?));
            Ok(())
        })?;
        self.expect('{', "to open the function body")?;
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Value(_) | Tok::Punct('=') => self.instruction(&mut b, &mut scope, depth)?,
                Tok::Ident("return") => {
                    self.next();
                    let vals = self.operands(&scope)?;
                    if vals.len() != outputs.len() {
                        return Err(t.err(format!(
                            "return lists {} value(s), the header declares {} output(s)",
                            vals.len(),
                            outputs.len()
                        )));
                    }
                    for ((v, arg, at), (n, ty)) in vals.iter().zip(&outputs) {
                        if b.ty(*v) != ty {
                            return Err(at.err(format!(
                                "return: output '{n}' is declared {ty} but %{arg} has type {}",
                                b.ty(*v)
                            )));
                        }
                    }
                    self.expect('}', "after return")?;
                    let outs = outputs
                        .iter()
                        .zip(vals)
                        .map(|((n, _), (v, ..))| (n.to_string(), v));
                    return Ok(b.finish(outs));
                }
                _ => {
                    let found = t.describe();
                    return Err(t.err(format!(
                        "expected an instruction '%name: type = op ..' or 'return', found {found}"
                    )));
                }
            }
        }
    }

    /// `dtype[d0,d1,..]`, at most 2^40 elements.
    fn ty(&mut self) -> Result<TensorType, IrError> {
        let t = self.next();
        let Tok::Ident(d) = t.tok else {
            return Err(t.err(format!(
                "expected a type like 'f64[4,16]', found {}",
                t.describe()
            )));
        };
        let dtype = DType::from_name(d).ok_or_else(|| {
            t.err(format!(
                "unknown dtype '{d}' (expected f32, f64, i32 or bool)"
            ))
        })?;
        self.expect('[', &format!("after dtype {dtype}"))?;
        let dims = self.list(']', "shape", |p| {
            let d = p.next();
            match d.tok {
                Tok::Int(s) => bounded_int(&d, s),
                _ => Err(d.err(format!(
                    "expected a dimension in shape, found {}",
                    d.describe()
                ))),
            }
        })?;
        let n = dims
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d.max(1) as u64));
        let ty = TensorType::new(dtype, dims);
        if n > MAX_ELEMENTS {
            return Err(t.err(format!("type {ty} has more than 2^40 elements")));
        }
        Ok(ty)
    }

    /// Comma-separated `%name` operands starting on the current line (possibly none).
    fn operands(&mut self, scope: &HashMap<&str, ValueId>) -> Result<Vec<Operand<'a>>, IrError> {
        let mut out = vec![];
        let first = self.peek();
        if matches!(first.tok, Tok::Value(_)) && first.line == self.prev_line() {
            loop {
                let t = self.next();
                let Tok::Value(n) = t.tok else {
                    let found = t.describe();
                    return Err(t.err(format!(
                        "expected an operand '%name' after ',', found {found}"
                    )));
                };
                let v = *scope
                    .get(n)
                    .ok_or_else(|| t.err(format!("undefined value %{n}")))?;
                out.push((v, n, t));
                if !self.peek().is(',') {
                    break;
                }
                self.next();
            }
        }
        let t = self.peek();
        if t.line == self.prev_line() && !(t.is('{') || t.is('}') || t.tok == Tok::Eof) {
            let what = if out.is_empty() {
                "an operand '%name'"
            } else {
                "','"
            };
            return Err(t.err(format!(
                "expected {what} or end of line, found {}",
                t.describe()
            )));
        }
        Ok(out)
    }

    /// `%r: type, .. = op[attrs] %a, .. { nested functions }`; an instruction without results
    /// (a scan or custom_vjp returning nothing) starts at `=`.
    fn instruction(
        &mut self,
        b: &mut FunctionBuilder,
        scope: &mut HashMap<&'a str, ValueId>,
        depth: usize,
    ) -> Result<(), IrError> {
        let mut seen = HashSet::new();
        let results: Vec<Declared<'a>> = self.list('=', "the result list", |p| {
            let t = p.next();
            let Tok::Value(n) = t.tok else {
                return Err(t.err(format!("expected a result '%name', found {}", t.describe())));
            };
            if scope.contains_key(n) || !seen.insert(n) {
                return Err(t.err(format!("value %{n} is already defined")));
            }
            p.expect(':', &format!("after result %{n}"))?;
            Ok((n, p.ty()?, t))
        })?;
        let op_tok = self.next();
        let Tok::Ident(name) = op_tok.tok else {
            let found = op_tok.describe();
            return Err(op_tok.err(format!("expected an op name after '=', found {found}")));
        };
        if !is_known_op(name) {
            return Err(op_tok.err(format!("unknown op '{name}'")));
        }
        let mut attrs = Attrs {
            op: name,
            at: op_tok.clone(),
            items: vec![],
        };
        if self.peek().is('[') {
            self.next();
            attrs.items = self.list(']', &format!("the attributes of {name}"), Self::attr)?;
        }
        let mut seen = HashSet::new();
        if let Some(a) = attrs.items.iter().find(|a| !seen.insert(a.name)) {
            return Err(a
                .at
                .err(format!("{name}: attribute '{}' is given twice", a.name)));
        }
        let args: Vec<ValueId> = self.operands(scope)?.into_iter().map(|(v, ..)| v).collect();
        let mut bodies = vec![];
        if self.peek().is('{') {
            self.next();
            while !self.peek().is('}') {
                let t = self.peek();
                if t.tok != Tok::Ident("func") {
                    let found = t.describe();
                    return Err(t.err(format!("expected a nested 'func' or '}}', found {found}")));
                }
                bodies.push(self.function(depth + 1)?);
            }
            self.next();
        }
        let op = build_op(&op_tok, name, attrs, &results, bodies)?;
        let vals = b.push(op, &args).map_err(|e| op_tok.err(e.to_string()))?;
        if vals.len() != results.len() {
            let (n, m) = (vals.len(), results.len());
            return Err(op_tok.err(format!("{name} defines {n} result(s), {m} declared")));
        }
        for (v, (n, ty, at)) in vals.into_iter().zip(results) {
            if *b.ty(v) != ty {
                return Err(at.err(format!(
                    "{name}: result %{n} is declared {ty} but the op gives {}",
                    b.ty(v)
                )));
            }
            scope.insert(n, v);
        }
        Ok(())
    }

    /// `name=value` or `name=[value, ..]`.
    fn attr(&mut self) -> Result<Attr<'a>, IrError> {
        let t = self.next();
        let Tok::Ident(name) = t.tok else {
            return Err(t.err(format!(
                "expected an attribute name, found {}",
                t.describe()
            )));
        };
        self.expect('=', &format!("after attribute name '{name}'"))?;
        let value = if self.peek().is('[') {
            self.next();
            AttrValue::List(self.list(']', &format!("attribute '{name}'"), Self::scalar)?)
        } else {
            AttrValue::One(self.scalar()?)
        };
        Ok(Attr { name, at: t, value })
    }

    /// A number (optionally negative, or `nan`/`inf`), `true`/`false` or a string.
    fn scalar(&mut self) -> Result<Scalar, IrError> {
        let t = self.next();
        let num = |text: String, int: bool| Ok(Scalar::Num { text, int });
        match t.tok {
            Tok::Int(s) => num(s.into(), true),
            Tok::Float(s) | Tok::Ident(s @ ("nan" | "inf")) => num(s.into(), false),
            Tok::Ident("true") => Ok(Scalar::Bool(true)),
            Tok::Ident("false") => Ok(Scalar::Bool(false)),
            Tok::Str(s) => Ok(Scalar::Str(s)),
            Tok::Punct('-') => {
                let u = self.next();
                match u.tok {
                    Tok::Int(s) => num(format!("-{s}"), true),
                    Tok::Float(s) | Tok::Ident(s @ "inf") => num(format!("-{s}"), false),
                    _ => Err(u.err(format!(
                        "expected a number after '-', found {}",
                        u.describe()
                    ))),
                }
            }
            _ => Err(t.err(format!(
                "expected an attribute value, found {}",
                t.describe()
            ))),
        }
    }
}

/// Builds the op called `name` from its attributes, declared results and nested functions.
fn build_op(
    at: &Token,
    name: &str,
    mut attrs: Attrs,
    results: &[Declared],
    mut bodies: Vec<Function>,
) -> Result<Op, IrError> {
    let want_bodies = match name {
        "scan" => 1,
        "custom_vjp" => 2,
        _ => 0,
    };
    if bodies.len() != want_bodies {
        return Err(at.err(format!(
            "{name} takes {want_bodies} nested function(s), found {}",
            bodies.len()
        )));
    }
    // constant, iota, cast, reshape and broadcast read their shape/dtype from the result type.
    let result_ty = || match results {
        [(_, ty, _)] => Ok(ty.clone()),
        _ => Err(at.err(format!(
            "{name} defines one result, {} declared",
            results.len()
        ))),
    };
    let op = match table_op(name) {
        Some(Op::Reduce { op, .. }) => Op::Reduce {
            op,
            axes: attrs.ints("axes")?,
        },
        Some(op) => op,
        None => match name {
            "constant" => Op::Constant(attrs.constant(result_ty()?)?),
            "iota" => Op::Iota {
                ty: result_ty()?,
                axis: attrs.int("axis")?,
            },
            "cast" => Op::Cast(result_ty()?.dtype),
            "broadcast" => Op::Broadcast {
                shape: result_ty()?.shape,
                dims: attrs.ints("dims")?,
            },
            "reshape" => Op::Reshape(result_ty()?.shape),
            "transpose" => Op::Transpose(attrs.ints("perm")?),
            "slice" => Op::Slice {
                start: attrs.ints("start")?,
                end: attrs.ints("end")?,
            },
            "pad" => Op::Pad {
                low: attrs.ints("low")?,
                high: attrs.ints("high")?,
            },
            "concat" => Op::Concat {
                axis: attrs.int("axis")?,
            },
            "argmax" => Op::Argmax {
                axis: attrs.int("axis")?,
            },
            "matmul" => Op::Matmul {
                transpose_lhs: attrs.flag("transpose_lhs")?,
                transpose_rhs: attrs.flag("transpose_rhs")?,
            },
            "cumsum" => Op::Cumsum {
                axis: attrs.int("axis")?,
                reverse: attrs.flag("reverse")?,
            },
            "scan" => Op::Scan(Box::new(Scan {
                length: attrs.int("length")?,
                num_carry: attrs.int("num_carry")?,
                num_xs: attrs.int("num_xs")?,
                reverse: attrs.flag("reverse")?,
                body: bodies.remove(0),
            })),
            "custom_vjp" => {
                let name = attrs.string("name")?;
                let backward = bodies.remove(1);
                let forward = bodies.remove(0);
                Op::CustomVjp(Box::new(CustomVjp {
                    name,
                    forward,
                    backward,
                }))
            }
            _ => return Err(at.err(format!("unknown op '{name}'"))),
        },
    };
    if let Some(a) = attrs.items.first() {
        return Err(a.at.err(format!("{name}: unknown attribute '{}'", a.name)));
    }
    Ok(op)
}
