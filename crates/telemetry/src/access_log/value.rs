//! What one operator says about one record, before it is written: a borrowed, typed value.
//! Text formats write it as is (`-` when missing); JSON formats write it as a JSON number,
//! string or `null`, escaping as they go. Nothing here allocates.

use std::fmt::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use super::time::TimeFormat;
use crate::ResponseFlags;

/// One operator's value for one record.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'s> {
    /// Not known for this record: text prints `-`, JSON `null`.
    Missing,
    /// A count or milliseconds: a JSON number.
    Number(u64),
    /// A string as recorded.
    Str(&'s str),
    /// A string with its whitespace replaced by `_` (Envoy keeps response code details and
    /// transport failure reasons one token wide).
    Underscored(&'s str),
    /// Header bytes cut to at most `max` bytes (`%REQ(X):N%`); bytes that are not UTF-8 are
    /// written as U+FFFD.
    Bytes(&'s [u8], Option<usize>),
    /// A number standing in for a header value (`:status`, the upstream service time): a
    /// JSON string, like the header it replaces, cut to at most `max` bytes.
    Digits(u64, Option<usize>),
    /// `ip:port`, IPv6 in brackets.
    Addr(SocketAddr),
    /// An IP without port, IPv6 without brackets.
    Ip(IpAddr),
    Time(SystemTime, &'s TimeFormat),
    Flags(ResponseFlags),
    FlagsLong(ResponseFlags),
}

impl Value<'_> {
    pub(super) fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    /// Writes the value's text; `Missing` writes nothing (the caller decides `-` or `null`).
    pub(super) fn write_text(&self, w: &mut dyn Write) -> fmt::Result {
        match *self {
            Value::Missing => Ok(()),
            Value::Number(n) => write!(w, "{n}"),
            Value::Str(s) => w.write_str(s),
            Value::Underscored(s) => {
                for part in s.split(|c: char| c.is_ascii_whitespace()).enumerate() {
                    if part.0 > 0 {
                        w.write_char('_')?;
                    }
                    w.write_str(part.1)?;
                }
                Ok(())
            }
            Value::Bytes(bytes, max) => write_lossy(truncate(bytes, max), w),
            Value::Digits(n, max) => {
                let mut buf = [0u8; 20];
                let mut at = buf.len();
                let mut n = n;
                loop {
                    at -= 1;
                    buf[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                write_lossy(truncate(&buf[at..], max), w)
            }
            Value::Addr(addr) => write!(w, "{addr}"),
            Value::Ip(ip) => write!(w, "{ip}"),
            Value::Time(time, format) => format.write(time, w),
            Value::Flags(flags) => write!(w, "{flags}"),
            Value::FlagsLong(flags) => {
                if flags.is_empty() {
                    return w.write_char('-');
                }
                for (i, flag) in flags.iter().enumerate() {
                    if i > 0 {
                        w.write_char(',')?;
                    }
                    w.write_str(flag.long())?;
                }
                Ok(())
            }
        }
    }

    /// Writes the value as one JSON value: numbers bare, `null` when missing, anything else
    /// a JSON string (Envoy's typed JSON output).
    pub(super) fn write_json(&self, out: &mut String) {
        match self {
            Value::Missing => out.push_str("null"),
            Value::Number(_) => {
                let _ = self.write_text(out);
            }
            _ => {
                out.push('"');
                let _ = self.write_text(&mut JsonEscaped(out));
                out.push('"');
            }
        }
    }
}

fn truncate(bytes: &[u8], max: Option<usize>) -> &[u8] {
    match max {
        Some(max) if max < bytes.len() => &bytes[..max],
        _ => bytes,
    }
}

fn write_lossy(bytes: &[u8], w: &mut dyn Write) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        w.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            w.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

/// A writer that escapes what it is given as the inside of a JSON string.
pub(super) struct JsonEscaped<'o>(pub(super) &'o mut String);

impl Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_json_escaped(self.0, s);
        Ok(())
    }
}

/// Appends `s` escaped for the inside of a JSON string (quotes not included).
pub(super) fn push_json_escaped(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends `s` as a quoted JSON string.
pub(super) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_json_escaped(out, s);
    out.push('"');
}
