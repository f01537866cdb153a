//! The lexer: CEL text to tokens, each with the byte offset where it starts.
//!
//! Literals are decoded here (escapes, number bases), so the parser sees values. An integer
//! literal is kept as its magnitude (`u64`): whether it fits an `int` depends on a preceding
//! minus sign, which the parser sees (`-9223372036854775808` is a valid int).

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An integer literal without a `u` suffix: its magnitude.
    Int(u64),
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    Ident(String),
    True,
    False,
    Null,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Dot,
    Comma,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Eof,
}

impl Tok {
    /// How an error message names the token: `')'`, `identifier 'foo'`, `end of input`.
    pub(super) fn describe(&self) -> String {
        let punct = match self {
            Tok::Int(v) => return format!("number {v}"),
            Tok::Uint(v) => return format!("number {v}u"),
            Tok::Double(v) => return format!("number {v}"),
            Tok::Str(_) => return "a string literal".to_owned(),
            Tok::Bytes(_) => return "a bytes literal".to_owned(),
            Tok::Ident(name) => return format!("identifier '{name}'"),
            Tok::Eof => return "end of input".to_owned(),
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::In => "in",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Dot => ".",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Question => "?",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Bang => "!",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::And => "&&",
            Tok::Or => "||",
        };
        format!("'{punct}'")
    }
}

/// A token and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub at: usize,
}

/// Text that is not a token, at a byte offset.
#[derive(Debug)]
pub(super) struct LexError {
    pub at: usize,
    pub message: String,
}

/// Words CEL reserves: not usable as identifiers.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// All of `text`'s tokens, ending with [`Tok::Eof`].
pub(super) fn tokens(text: &str) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        let token = lexer.next()?;
        let end = token.tok == Tok::Eof;
        out.push(token);
        if end {
            return Ok(out);
        }
    }
}

struct Lexer<'t> {
    text: &'t str,
    b: &'t [u8],
    i: usize,
}

fn err<T>(at: usize, message: impl Into<String>) -> Result<T, LexError> {
    Err(LexError {
        at,
        message: message.into(),
    })
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.i + ahead).copied()
    }

    fn next(&mut self) -> Result<Token, LexError> {
        self.skip_space_and_comments();
        let at = self.i;
        let Some(c) = self.peek(0) else {
            return Ok(Token { tok: Tok::Eof, at });
        };
        let two = |second: u8, yes: Tok, no: Tok| {
            if self.peek(1) == Some(second) {
                (yes, 2)
            } else {
                (no, 1)
            }
        };
        let (tok, len) = match c {
            b'0'..=b'9' => {
                return Ok(Token {
                    tok: self.number()?,
                    at,
                })
            }
            b'.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => {
                return Ok(Token {
                    tok: self.number()?,
                    at,
                })
            }
            b'\'' | b'"' => {
                return Ok(Token {
                    tok: self.string(at, false, false)?,
                    at,
                })
            }
            b'r' | b'R' | b'b' | b'B' if self.string_prefix().is_some() => {
                let (prefix_len, raw, bytes) = self.string_prefix().unwrap_or_default();
                self.i += prefix_len;
                return Ok(Token {
                    tok: self.string(at, raw, bytes)?,
                    at,
                });
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                return Ok(Token {
                    tok: self.word()?,
                    at,
                })
            }
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'.' => (Tok::Dot, 1),
            b',' => (Tok::Comma, 1),
            b':' => (Tok::Colon, 1),
            b'?' => (Tok::Question, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'*' => (Tok::Star, 1),
            b'/' => (Tok::Slash, 1),
            b'%' => (Tok::Percent, 1),
            b'!' => two(b'=', Tok::Ne, Tok::Bang),
            b'<' => two(b'=', Tok::Le, Tok::Lt),
            b'>' => two(b'=', Tok::Ge, Tok::Gt),
            b'=' if self.peek(1) == Some(b'=') => (Tok::Eq, 2),
            b'=' => return err(at, "expected '==' (a single '=' is not a CEL operator)"),
            b'&' if self.peek(1) == Some(b'&') => (Tok::And, 2),
            b'&' => return err(at, "expected '&&' (CEL has no '&' operator)"),
            b'|' if self.peek(1) == Some(b'|') => (Tok::Or, 2),
            b'|' => return err(at, "expected '||' (CEL has no '|' operator)"),
            _ => {
                let c = self
                    .text
                    .get(at..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or('?');
                return err(at, format!("unexpected character {c:?}"));
            }
        };
        self.i += len;
        Ok(Token { tok, at })
    }

    fn skip_space_and_comments(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.i += 1,
                b'/' if self.peek(1) == Some(b'/') => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// An identifier or keyword.
    fn word(&mut self) -> Result<Tok, LexError> {
        let start = self.i;
        while self
            .peek(0)
            .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric())
        {
            self.i += 1;
        }
        let word = &self.text[start..self.i];
        Ok(match word {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "in" => Tok::In,
            w if RESERVED.contains(&w) => {
                return err(
                    start,
                    format!("'{w}' is a reserved word and cannot be an identifier"),
                )
            }
            w => Tok::Ident(w.to_owned()),
        })
    }

    /// `Some((length, raw, bytes))` when a string literal's prefix (`r`, `b`, `rb`, `br`, any
    /// case) starts here, followed by a quote.
    fn string_prefix(&self) -> Option<(usize, bool, bool)> {
        let is_quote = |c: Option<u8>| matches!(c, Some(b'\'' | b'"'));
        let kind = |c: u8| match c {
            b'r' | b'R' => Some(true),
            b'b' | b'B' => Some(false),
            _ => None,
        };
        let first = kind(self.peek(0)?)?;
        if is_quote(self.peek(1)) {
            return Some((1, first, !first));
        }
        let second = kind(self.peek(1)?)?;
        (second != first && is_quote(self.peek(2))).then_some((2, true, true))
    }

    /// A string or bytes literal starting at the quote under the cursor (`at` is where the
    /// token, prefix included, started).
    fn string(&mut self, at: usize, raw: bool, bytes: bool) -> Result<Tok, LexError> {
        let Some(quote) = self.peek(0) else {
            return err(at, "unterminated string literal");
        };
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        self.i += if triple { 3 } else { 1 };
        let mut buf = Vec::new();
        loop {
            let Some(c) = self.peek(0) else {
                return err(at, "unterminated string literal");
            };
            if c == quote {
                if !triple {
                    self.i += 1;
                    break;
                }
                if self.peek(1) == Some(quote) && self.peek(2) == Some(quote) {
                    self.i += 3;
                    break;
                }
            } else if !triple && (c == b'\n' || c == b'\r') {
                return err(
                    at,
                    "unterminated string literal (use ''' or \"\"\" for text over several lines)",
                );
            }
            if c == b'\\' && !raw {
                self.escape(&mut buf, bytes)?;
            } else {
                buf.push(c);
                self.i += 1;
            }
        }
        if bytes {
            Ok(Tok::Bytes(buf))
        } else {
            String::from_utf8(buf)
                .map(Tok::Str)
                .or_else(|_| err(at, "string literal is not valid UTF-8"))
        }
    }

    /// Decodes the escape sequence at the cursor (a backslash) into `buf`. In strings `\xHH`
    /// and octal escapes are code points; in bytes they are bytes.
    fn escape(&mut self, buf: &mut Vec<u8>, bytes: bool) -> Result<(), LexError> {
        let at = self.i;
        let Some(e) = self.peek(1) else {
            return err(at, "unterminated string literal");
        };
        self.i += 2;
        let simple = match e {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'\'' | b'"' | b'`' | b'?' => Some(e),
            _ => None,
        };
        if let Some(byte) = simple {
            buf.push(byte);
            return Ok(());
        }
        let (digits, radix) = match e {
            b'x' | b'X' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'3' => {
                self.i -= 1; // the first octal digit is part of the number
                (3, 8)
            }
            _ => {
                let shown = self
                    .text
                    .get(at + 1..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or('?');
                return err(at, format!("invalid escape sequence '\\{shown}'"));
            }
        };
        let text = self.text.get(self.i..self.i + digits).unwrap_or("");
        let value = (text.len() == digits && text.bytes().all(|d| (d as char).is_digit(radix)))
            .then(|| u32::from_str_radix(text, radix).ok())
            .flatten();
        let Some(value) = value else {
            return err(
                at,
                format!(
                    "invalid escape sequence: '\\{}' needs {digits} {} digits",
                    e as char,
                    if radix == 16 { "hex" } else { "octal" }
                ),
            );
        };
        self.i += digits;
        let is_byte = matches!(e, b'x' | b'X' | b'0'..=b'3');
        match (bytes && is_byte, char::from_u32(value)) {
            (true, _) => buf.push(value as u8), // at most 0xff: two hex or three octal digits from 0-3
            (false, Some(c)) => buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            (false, None) => return err(at, format!("invalid code point U+{value:X} in escape")),
        }
        Ok(())
    }

    /// A number: decimal or hex integer, optional `u` suffix, or a double.
    fn number(&mut self) -> Result<Tok, LexError> {
        let start = self.i;
        let is_digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
        let uint_suffix = |lexer: &mut Self| {
            let yes = matches!(lexer.peek(0), Some(b'u' | b'U'));
            lexer.i += usize::from(yes);
            yes
        };
        let out_of_range = || err(start, "integer literal out of range");
        if self.peek(0) == Some(b'0')
            && matches!(self.peek(1), Some(b'x' | b'X'))
            && self.peek(2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            self.i += 2;
            while self.peek(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                self.i += 1;
            }
            let Ok(v) = u64::from_str_radix(&self.text[start + 2..self.i], 16) else {
                return out_of_range();
            };
            return Ok(if uint_suffix(self) {
                Tok::Uint(v)
            } else {
                Tok::Int(v)
            });
        }
        while is_digit(self.peek(0)) {
            self.i += 1;
        }
        let mut double = false;
        if self.peek(0) == Some(b'.') && is_digit(self.peek(1)) {
            double = true;
            self.i += 1;
            while is_digit(self.peek(0)) {
                self.i += 1;
            }
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
            if is_digit(self.peek(1 + sign)) {
                double = true;
                self.i += 1 + sign;
                while is_digit(self.peek(0)) {
                    self.i += 1;
                }
            }
        }
        let text = &self.text[start..self.i];
        if double {
            return match text.parse::<f64>() {
                Ok(v) => Ok(Tok::Double(v)),
                Err(_) => err(start, format!("invalid number '{text}'")),
            };
        }
        let Ok(v) = text.parse::<u64>() else {
            return out_of_range();
        };
        Ok(if uint_suffix(self) {
            Tok::Uint(v)
        } else {
            Tok::Int(v)
        })
    }
}
