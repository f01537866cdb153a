//! A subset of CEL, the Common Expression Language, as Istio's Telemetry API uses it: access
//! log filters (`accessLogging[].filter.expression`, e.g. `response.code >= 400`) and metric
//! tag overrides (`metrics[].overrides[].tagOverrides.<tag>.value`, e.g. `request.host`).
//! Envoy evaluates those expressions against a request's attributes; so does this module.
//!
//! [`Expr::parse`] turns text into an expression once (at configuration time) and
//! [`Expr::eval`] evaluates it against one request's [`Attributes`] (at request time). Both are
//! pure: no I/O, no globals. The semantics are the CEL language definition's
//! (<https://github.com/google/cel-spec/blob/master/doc/langdef.md>) for the part implemented:
//!
//! - **Literals**: `int` (`12`, `-7`, `0x1F`), `uint` (`12u`, `0x1Fu`), `double` (`1.5`, `1e3`,
//!   `.5`), strings in single, double or triple quotes with CEL's escapes (`\n \t \\ \' \" \xHH
//!   \uHHHH \UHHHHHHHH` and octal `\ooo`), raw strings `r'...'`, bytes `b'...'`, `true`,
//!   `false`, `null`, lists `[1, 2]`, maps `{'a': 1}` (keys int, uint, bool or string).
//!   `//` comments are whitespace.
//! - **Operators**, lowest precedence first: `c ? a : b`, `||`, `&&`, the relations
//!   `== != < <= > >= in`, `+ -`, `* / %`, unary `! -`, then member access `a.b`, indexing
//!   `a[i]` and calls `a.f(x)`. `&&` and `||` are commutative about errors as CEL says: `false &&
//!   <error>` and `<error> && false` are `false`, `true || <error>` and `<error> || true` are
//!   `true`; otherwise the error (or a non-bool operand, as "no matching overload") is the
//!   result. Arithmetic is checked: int and uint overflow and division or remainder by zero are
//!   errors, never wrapped values. There is no implicit conversion between int, uint and double
//!   for arithmetic (`1 + 1.0` is "no matching overload") but `==`, `!=`, `<`, `<=`, `>`, `>=`
//!   compare the three numerically (`1 == 1.0`, `2u > 1`), as the current CEL spec does.
//!   Otherwise values of different types are simply not equal. `+` concatenates strings,
//!   bytes and lists, adds durations, and adds or subtracts a duration to or from a timestamp;
//!   the difference of two timestamps is a duration.
//! - **Functions**: `size` (`size(x)` or `x.size()`: characters of a string, bytes, list
//!   elements, map entries), the conversions `string`, `int`, `uint`, `double`, `bool`, `bytes`,
//!   `duration` (`duration('1h30m')`; units `h m s ms us ns`), `timestamp` (RFC 3339,
//!   `timestamp('2024-01-01T00:00:00Z')`) and `dyn`; the string methods `startsWith`,
//!   `endsWith`, `contains`, `matches` (also `matches(s, re)`; RE2-like syntax via the `regex`
//!   crate, unanchored like CEL's; a constant pattern is compiled once, at parse time),
//!   `lowerAscii` and `upperAscii`.
//! - **Macros**: `has(a.b)` (also `has(a['b'])`), and on lists (elements) and maps (keys)
//!   `all(x, p)`, `exists(x, p)`, `exists_one(x, p)`, `map(x, f)`, `map(x, p, f)` and
//!   `filter(x, p)`. `all` and `exists` absorb errors like `&&` and `||`.
//!
//! **Attributes.** An identifier chain such as `request.headers['x-user']` names one attribute
//! path, `["request", "headers", "x-user"]`, and is resolved by [`Attributes::attribute`]
//! longest path first: if the whole path is unknown, the shorter prefixes are tried and the rest
//! of the path is selected from the value found (a map); see [`Attributes`]. An unknown path is
//! [`EvalError::NoSuchAttribute`], which `has()` turns into `false`.
//!
//! **Not supported**: protobuf messages (`Name{field: ...}` construction is a parse error, and
//! there is no type checker: every check happens at evaluation), type values and `type(x)`,
//! the `?.`/`[?` optional syntax, `cel.bind` and the extension libraries, timestamp and
//! duration accessors (`getHours()`, ...), time zones other than a timestamp string's own
//! offset, and negative durations: [`Value::Duration`] is a [`std::time::Duration`], so
//! `duration('-1s')` is an invalid argument and a subtraction that would go below zero is
//! [`EvalError::Overflow`]. A name that is not a function or macro listed above is rejected
//! when the expression is parsed ("unknown function 'foo'"), as is a call with the wrong
//! number of arguments; wrong argument *types* are found at evaluation ("no matching
//! overload").
//!
//! **Bounds.** Expressions come from configuration and attribute values from the network, so:
//! text over [`MAX_TEXT_LEN`] bytes and expressions nested deeper than [`MAX_DEPTH`] are parse
//! errors (long `&&`/`||` chains are parsed as balanced trees, so they do not count as
//! nesting); an evaluation runs at most [`MAX_ITERATIONS`] macro iterations; regular
//! expressions are compiled with a size limit; and neither parsing nor evaluation panics on any
//! input.

mod eval;
mod lex;
mod parse;
#[cfg(test)]
mod tests;
mod text;

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

/// The longest expression text [`Expr::parse`] accepts, in bytes (16 KiB).
pub const MAX_TEXT_LEN: usize = 16 * 1024;

/// How deeply an expression may nest: parentheses, operands of operators, arguments, list
/// elements and so on each add a level. Deeper expressions are parse errors, which keeps both
/// the parser's and the evaluator's recursion bounded.
pub const MAX_DEPTH: usize = 64;

/// The most macro iterations (`all`, `exists`, `map`, ... one per element, nested macros
/// multiplied) one evaluation may run before it fails with [`EvalError::LimitExceeded`].
pub const MAX_ITERATIONS: usize = 100_000;

/// A parsed CEL expression, ready to evaluate any number of times.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    text: String,
    root: parse::Node,
}

impl Expr {
    /// Parses CEL text. Errors say what was expected and where (see [`ParseError`]); unknown
    /// functions and wrong argument counts are parse errors too.
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        let root = parse::parse(text)?;
        Ok(Expr {
            text: text.to_owned(),
            root,
        })
    }

    /// Evaluates the expression against one request's attributes. Never panics: type
    /// mismatches, unknown attributes, overflow and the like are [`EvalError`]s.
    pub fn eval(&self, attrs: &dyn Attributes) -> Result<Value, EvalError> {
        eval::eval(&self.root, attrs)
    }

    /// The source text, as given to [`Expr::parse`].
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for Expr {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Expr, ParseError> {
        Expr::parse(text)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A CEL value. Maps keep their entries in insertion order; CEL equality of maps
/// ignores the order (the derived `PartialEq` does not: it is structural).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    /// A non-negative duration (CEL's durations may be negative; these may not).
    Duration(Duration),
    Timestamp(SystemTime),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The text a metric label shows for this value: strings as they are, numbers in CEL's
    /// decimal form (`string(x)`: `9080`, `12` for `12u`, `1.5`, `1e+06`), `true`/`false`,
    /// durations and timestamps as CEL's `string()` writes them (`1.5s`,
    /// `2024-01-01T00:00:00Z`), bytes as UTF-8 (invalid sequences replaced), `null`, and lists
    /// and maps as CEL literals (`[1, "a"]`, `{"k": 2u}`).
    pub fn to_label(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Double(d) => text::format_double(*d),
            Value::String(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Duration(d) => text::format_duration(*d),
            Value::Timestamp(t) => text::format_timestamp(*t),
            Value::List(_) | Value::Map(_) => self.to_literal(),
        }
    }

    /// The CEL name of the value's type: `int`, `string`, `list`, `google.protobuf.Duration`...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null_type",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Duration(_) => "google.protobuf.Duration",
            Value::Timestamp(_) => "google.protobuf.Timestamp",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The value as a CEL literal (strings quoted, `u` on uints, `duration("1s")`).
    fn to_literal(&self) -> String {
        let mut out = String::new();
        self.write_literal(&mut out);
        out
    }

    /// Writes the value as a CEL literal (strings quoted, `u` on uints, `duration("1s")`).
    fn write_literal(&self, out: &mut String) {
        match self {
            Value::Uint(u) => {
                out.push_str(&u.to_string());
                out.push('u');
            }
            Value::Double(d) => {
                let text = text::format_double(*d);
                let looks_int = text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
                out.push_str(&text);
                if looks_int {
                    out.push_str(".0");
                }
            }
            Value::String(s) => write_quoted(s.as_bytes(), out),
            Value::Bytes(b) => {
                out.push('b');
                write_quoted(b, out);
            }
            Value::Duration(_) | Value::Timestamp(_) => {
                out.push_str(if matches!(self, Value::Duration(_)) {
                    "duration("
                } else {
                    "timestamp("
                });
                write_quoted(self.to_label().as_bytes(), out);
                out.push(')');
            }
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_literal(out);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_literal(out);
                    out.push_str(": ");
                    v.write_literal(out);
                }
                out.push('}');
            }
            Value::Null | Value::Bool(_) | Value::Int(_) => out.push_str(&self.to_label()),
        }
    }
}

/// Writes `bytes` as a double-quoted CEL string literal: printable UTF-8 as is, the rest escaped.
fn write_quoted(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
}

/// Where attribute values come from: the proxy implements this over a request's record.
///
/// An expression's identifier chain, with the constant string indexes that follow it
/// (`request.headers['x-user']`), is one path (`["request", "headers", "x-user"]`); a computed
/// index (`request.headers[name]`) or a method call ends the path, and applies to its value.
/// The evaluator asks for the whole path first; when that
/// is `None` it asks for ever shorter prefixes and selects the rest of the path from the first
/// value found, which must then be a map with string keys (so an implementation may answer
/// `["request", "headers"]` with the whole header map and never look up single headers). The
/// path is unknown ([`EvalError::NoSuchAttribute`]) when no prefix has a value, or when the
/// value found lacks a key on the rest of the path.
pub trait Attributes {
    /// The value of the attribute at `path`, e.g. `["request", "method"]`,
    /// `["response", "code"]`, `["request", "headers", "x-user"]`; `None` when the request
    /// has no such attribute.
    fn attribute(&self, path: &[&str]) -> Option<Value>;
}

/// Attributes keyed by their dotted path (`"request.headers.x-user"`, `"response.code"`): the
/// path's segments joined with `.`. Handy for tests and for callers with few attributes.
impl<S: BuildHasher> Attributes for HashMap<String, Value, S> {
    fn attribute(&self, path: &[&str]) -> Option<Value> {
        self.get(&path.join(".")).cloned()
    }
}

/// Text that is not a CEL expression this module can evaluate.
///
/// Displays as `at column N: message` (`at line L, column N: message` past the first line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the problem is: a 0-based offset in characters (not bytes) into the text.
    pub offset: usize,
    /// The 1-based line of `offset`.
    pub line: usize,
    /// The 1-based column of `offset` on its line, in characters.
    pub column: usize,
    /// What was expected and what was found, e.g. `expected ')', found end of input`.
    pub message: String,
}

impl ParseError {
    /// An error at byte offset `at` of `text`.
    fn at(text: &str, at: usize, message: impl Into<String>) -> ParseError {
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        ParseError {
            offset: before.chars().count(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 1 {
            write!(f, "at line {}, ", self.line)?;
        } else {
            f.write_str("at ")?;
        }
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Why an expression has no value for a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// No attribute (nor a prefix of it holding a map with the rest) exists at this dotted
    /// path, e.g. `request.headers.x-user`.
    #[error("no such attribute: {0}")]
    NoSuchAttribute(String),
    /// A map value (not an attribute path) has no such key.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// A list index outside the list.
    #[error("index out of range: {0}")]
    IndexOutOfRange(String),
    /// An operator or function applied to types it is not defined for, e.g. `_+_(int, string)`.
    #[error("no matching overload for {0}")]
    NoMatchingOverload(String),
    /// Integer division or remainder by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A result outside its type's range: int or uint overflow, a conversion out of range, a
    /// negative duration, a timestamp beyond what the system can represent.
    #[error("overflow: result out of range")]
    Overflow,
    /// An argument of the right type but a bad value: an invalid regex, an unparsable
    /// duration, timestamp or number, a duplicate map key.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The evaluation ran more than [`MAX_ITERATIONS`] macro iterations.
    #[error("evaluation limit exceeded: {0}")]
    LimitExceeded(String),
}
