//! A format string (`[%START_TIME%] "%REQ(:METHOD)%" …`) parsed once into literal text and
//! operators, with Envoy's grammar: `%%` is a literal `%`; an operator is
//! `%NAME%`, `%NAME(ARGUMENT)%` or `%NAME(ARGUMENT):LENGTH%` where NAME is `[A-Z0-9_]+`,
//! the argument runs to the first `)` that the rest of the operator can follow and holds no
//! newline, and LENGTH is decimal. Anything else after a `%` is refused, as Envoy does.

use super::operator::Operator;
use super::value::Value;
use super::AccessRecord;

/// One piece of a parsed format string.
#[derive(Debug, Clone)]
pub(super) enum Piece {
    Literal(Box<str>),
    Operator(Operator),
}

/// A parsed format string.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub(super) pieces: Vec<Piece>,
}

/// An operator's parts as written: `%NAME(ARGUMENT):LENGTH%`.
struct Token<'f> {
    name: &'f str,
    argument: Option<&'f str>,
    max_length: Option<usize>,
    /// The whole operator, `%` to `%`.
    text: &'f str,
}

impl Template {
    /// Parses `source`. The error names the offending operator and its byte position.
    pub(super) fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut pos = 0;
        while pos < source.len() {
            let rest = &source[pos..];
            let Some(percent) = rest.find('%') else {
                literal.push_str(rest);
                break;
            };
            literal.push_str(&rest[..percent]);
            pos += percent;
            if source[pos + 1..].starts_with('%') {
                literal.push('%');
                pos += 2;
                continue;
            }
            let token = Token::at(&source[pos..]).ok_or_else(|| {
                format!(
                    "no command operator at position {pos}: expected %NAME%, %NAME(ARGUMENT)% \
                     or %NAME(ARGUMENT):LENGTH% with NAME in [A-Z0-9_] (write %% for a literal %)"
                )
            })?;
            let op = Operator::build(token.name, token.argument, token.max_length)
                .map_err(|reason| format!("{} at position {pos}: {reason}", token.text))?;
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal).into()));
            }
            pieces.push(Piece::Operator(op));
            pos += token.text.len();
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal.into()));
        }
        Ok(Template { pieces })
    }

    /// Appends the text form: each operator's value, `-` for a missing one.
    pub(super) fn render_text(&self, record: &AccessRecord<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Operator(op) => push_text(op.value(record), out),
            }
        }
    }
}

/// Appends a value as text, `-` when missing.
pub(super) fn push_text(value: Value<'_>, out: &mut dyn std::fmt::Write) {
    // Writing into a String cannot fail.
    let _ = if value.is_missing() {
        out.write_char('-')
    } else {
        value.write_text(out)
    };
}

impl<'f> Token<'f> {
    /// Matches Envoy's `^%([A-Z0-9_]+)(?:\((.*?)\))?(?::([0-9]+))?%` at the start of `s`.
    fn at(s: &'f str) -> Option<Token<'f>> {
        let bytes = s.as_bytes();
        let name_len = bytes[1..]
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        if name_len == 0 {
            return None;
        }
        let name = &s[1..1 + name_len];
        let after_name = 1 + name_len;
        if bytes.get(after_name) == Some(&b'(') {
            let arg_start = after_name + 1;
            // Lazy `.*?`: the first `)` after which the rest matches; `.` stops at newline.
            let mut at = arg_start;
            while let Some(close) = s[at..].find([')', '\n']).map(|i| at + i) {
                if bytes[close] == b'\n' {
                    break;
                }
                if let Some((max_length, end)) = length_and_end(s, close + 1) {
                    return Some(Token {
                        name,
                        argument: Some(&s[arg_start..close]),
                        max_length,
                        text: &s[..end],
                    });
                }
                at = close + 1;
            }
        }
        let (max_length, end) = length_and_end(s, after_name)?;
        Some(Token {
            name,
            argument: None,
            max_length,
            text: &s[..end],
        })
    }
}

/// Matches `(?::([0-9]+))?%` at `at`: the length if any and the index after the closing `%`.
fn length_and_end(s: &str, at: usize) -> Option<(Option<usize>, usize)> {
    let bytes = s.as_bytes();
    match bytes.get(at)? {
        b'%' => Some((None, at + 1)),
        b':' => {
            let digits = bytes[at + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = at + 1 + digits;
            if digits == 0 || bytes.get(end) != Some(&b'%') {
                return None;
            }
            let length = s[at + 1..end].parse().ok()?;
            Some((Some(length), end + 1))
        }
        _ => None,
    }
}
