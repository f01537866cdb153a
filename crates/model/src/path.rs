//! Envoy's request-path normalisation, as a pure function of the connection manager's path
//! options and the request's `:path`.
//!
//! Why: routes, RBAC and JWT rules match on the path *after* normalisation. If the proxy
//! normalised differently from Envoy, `/public/%2e%2e/admin` could reach a route or pass a
//! policy meant for `/public/…` in one and not in the other. So this module reproduces what
//! Envoy 1.40 does in `ConnectionManagerUtility::maybeNormalizePath`, byte for byte, and its
//! table tests were recorded from the real Envoy binary (see `path/tests.rs`).
//!
//! What Envoy does, in order (all of it on the part before the first `?`; the query is never
//! changed):
//!
//! 1. A `#` anywhere in `:path` (query included) is answered with 400, whatever the options
//!    (runtime `http_reject_path_with_fragment`, on by default).
//! 2. Unless `path_with_escaped_slashes_action` is `KEEP_UNCHANGED`, `%2F`/`%2f` become `/`
//!    and `%5C`/`%5c` become `\`. If there were any: `REJECT_REQUEST` answers 400,
//!    `UNESCAPE_AND_REDIRECT` goes on and finally answers 307 with `Location:` the fully
//!    normalised path-and-query, `UNESCAPE_AND_FORWARD` goes on.
//! 3. `normalize_path`: first a segment starting with `.;` or `..;` loses its parameters
//!    (`/a/..;x/b` → `/a/../b`; runtime `strip_dotdot_segments_with_parameters`), then
//!    Chromium's URL path canonicaliser (`url::CanonicalizePath` from googleurl). It removes
//!    `.` and `..` segments (also written `%2e`, `%2E`; `..` above the root is dropped),
//!    turns `\` into `/`, decodes escaped unreserved characters (`%61` → `a`, `%7E` → `~`,
//!    `%2D` → `-`), keeps every other escape exactly as written (hex case included: `%fF`
//!    stays `%fF`, `%2F` stays `%2F`), leaves a `%` that starts no valid escape alone,
//!    escapes `"` `<` `>` `^` `` ` `` `{` `|` `}`, control characters, DEL and non-ASCII
//!    bytes as `%XX` (upper-case hex), and fails, so 400, on `%00`. A quirk kept: when
//!    decoding would make a bare `%` look like a valid escape (`/%%30%30` → `/%00`), that
//!    `%` is written `%25` (`/%2500`).
//! 4. `merge_slashes`: runs of `/` collapse to one, except that a path of slashes only
//!    becomes `//` (`//` stays, `///` → `//`).
//!
//! Normalising twice changed nothing on every path sampled against Envoy, except where the
//! first pass makes a `.;` or `..;` segment (`/a/%2e%2e;x/b` → `/a/..;x/b` → `/b`): Envoy
//! is not idempotent there either, and neither is `apply`.
//!
//! Not here: Envoy answers before normalising when `:path` does not start with `/` (404
//! `absolute_path_rejected`, e.g. `OPTIONS *`) or is empty (404); `apply` leaves such a
//! target unchanged and the caller decides first. An HTTP/1.1 absolute-form target (`GET
//! http://h/a/../b`) is not such a case: the codec turns it into the path `/a/../b`, which
//! is what to pass. Envoy's codecs refuse some targets outright (HTTP/1.1: a space, raw
//! non-ASCII, a target starting with `\`; HTTP/2: control characters, a space). When
//! `UNESCAPE_AND_REDIRECT` would redirect a gRPC request (`content-type:
//! application/grpc…`), Envoy answers 400 instead: also the caller's check, as it depends
//! on a header.

use crate::EscapedSlashes;
use std::borrow::Cow;

/// The connection manager's path options (Envoy's `normalize_path`, `merge_slashes`,
/// `path_with_escaped_slashes_action`). The default (all off, escaped slashes kept) is
/// Envoy's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathNormalization {
    pub normalize: bool,
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
}

/// What the connection manager does with a request after normalising its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NormalizedPath<'a> {
    /// Route and forward with this path-and-query. Borrowed from the input when nothing
    /// changed (the common case: no allocation).
    Forward(Cow<'a, str>),
    /// Answer 307 with this `Location:` (a path-and-query): `UNESCAPE_AND_REDIRECT` found an
    /// escaped slash.
    Redirect(String),
    /// Answer 400 (Envoy's response details: `path_normalization_failed`). A short reason.
    Reject(&'static str),
}

impl PathNormalization {
    /// Normalise a request's `:path` (path, optional `?query`) as Envoy 1.40 does.
    pub fn apply<'a>(&self, path_and_query: &'a str) -> NormalizedPath<'a> {
        if !path_and_query.starts_with('/') {
            // `*`, empty: Envoy answers 404 before normalising (see the module docs).
            return NormalizedPath::Forward(Cow::Borrowed(path_and_query));
        }
        if path_and_query.contains('#') {
            return NormalizedPath::Reject("the path has a fragment");
        }
        let mut path = Cow::Borrowed(path_and_query);
        let mut redirect = false;
        if self.escaped_slashes != EscapedSlashes::KeepUnchanged {
            if let Some(unescaped) = unescape_slashes(&path) {
                match self.escaped_slashes {
                    EscapedSlashes::RejectRequest => {
                        return NormalizedPath::Reject("the path has an escaped slash")
                    }
                    EscapedSlashes::UnescapeAndRedirect => redirect = true,
                    EscapedSlashes::UnescapeAndForward | EscapedSlashes::KeepUnchanged => {}
                }
                path = Cow::Owned(unescaped);
            }
        }
        if self.normalize {
            match canonicalize(&path) {
                Err(reason) => return NormalizedPath::Reject(reason),
                Ok(Some(canonical)) => path = Cow::Owned(canonical),
                Ok(None) => {}
            }
        }
        if self.merge_slashes {
            if let Some(merged) = merge_slashes(&path) {
                path = Cow::Owned(merged);
            }
        }
        if redirect {
            NormalizedPath::Redirect(path.into_owned())
        } else {
            NormalizedPath::Forward(path)
        }
    }
}

/// Splits a path-and-query at the first `?`; the query keeps its `?`.
fn split_query(path_and_query: &str) -> (&str, &str) {
    let at = path_and_query.find('?').unwrap_or(path_and_query.len());
    path_and_query.split_at(at)
}

/// Envoy's `PathUtil::unescapeSlashes`: `%2F`, `%2f` → `/` and `%5C`, `%5c` → `\` in the
/// path. `None` when there were none.
fn unescape_slashes(path_and_query: &str) -> Option<String> {
    let (path, query) = split_query(path_and_query);
    let is_escaped_slash = |w: &[u8]| {
        w[0] == b'%' && matches!((w[1], w[2]), (b'2', b'F' | b'f') | (b'5', b'C' | b'c'))
    };
    if !path.as_bytes().windows(3).any(is_escaped_slash) {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path_and_query.len());
    let mut from = 0;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if is_escaped_slash(&bytes[i..i + 3]) {
            out.push_str(&path[from..i]);
            out.push(if bytes[i + 1] == b'2' { '/' } else { '\\' });
            i += 3;
            from = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&path[from..]);
    out.push_str(query);
    Some(out)
}

/// Envoy's `PathUtil::mergeSlashes`. `None` when the path has no `//`.
fn merge_slashes(path_and_query: &str) -> Option<String> {
    let (path, query) = split_query(path_and_query);
    if !path.contains("//") {
        return None;
    }
    let mut out = String::with_capacity(path_and_query.len());
    if path.starts_with('/') {
        out.push('/');
    }
    for (n, segment) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if n > 0 {
            out.push('/');
        }
        out.push_str(segment);
    }
    if path.ends_with('/') {
        out.push('/');
    }
    out.push_str(query);
    Some(out)
}

/// Envoy's `PathUtil::canonicalPath` (Chromium's `url::CanonicalizePath` on the part before
/// `?`). `Ok(None)` when the path is already canonical.
fn canonicalize(path_and_query: &str) -> Result<Option<String>, &'static str> {
    let (path, query) = split_query(path_and_query);
    if is_canonical(path.as_bytes()) {
        return Ok(None);
    }
    let stripped = strip_dot_segment_parameters(path);
    let bytes = stripped.as_deref().unwrap_or(path).as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut valid = true;
    // Where in `out` the last `%` that started no valid escape was written (see
    // `guard_nested_escape`). It is stale once a `..` has cut `out` shorter: the guard then
    // does not apply (Envoy: `/ab%/../cde%41F` → `/cdeAF`, not `/cde25AF`).
    let mut bare_percent: Option<usize> = None;
    if !bytes.first().is_some_and(|&b| is_slash(b)) {
        out.push(b'/');
    }
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let dot = dot_at(bytes, i);
        if dot > 0 {
            if out.last() == Some(&b'/') {
                match dot_segment(bytes, i + dot) {
                    DotSegment::Name => out.push(b'.'),
                    DotSegment::Current(after) => i += after,
                    DotSegment::Parent(after) => {
                        up_one_segment(&mut out);
                        i += after;
                    }
                }
            } else {
                out.push(b'.');
            }
            i += dot;
            continue;
        }
        match class(byte) {
            Class::Pass | Class::Unescape => out.push(byte),
            Class::Escape => push_escaped(&mut out, byte),
            Class::Invalid => {
                push_escaped(&mut out, byte);
                valid = false;
            }
            Class::Special if byte == b'\\' => out.push(b'/'),
            Class::Special => match escape_at(bytes, i) {
                // `%` (a `.` is a dot, handled above)
                Some(value) => {
                    match class(value) {
                        Class::Unescape => {
                            out.push(value);
                            if let Some(percent) = bare_percent {
                                if percent + 3 >= out.len() && out.get(percent) == Some(&b'%') {
                                    guard_nested_escape(&mut out, percent, bytes.get(i + 3));
                                }
                            }
                        }
                        Class::Invalid => {
                            out.extend_from_slice(&bytes[i..i + 3]);
                            valid = false;
                        }
                        _ => out.extend_from_slice(&bytes[i..i + 3]),
                    }
                    i += 2;
                }
                None => {
                    bare_percent = Some(out.len());
                    out.push(b'%');
                }
            },
        }
        i += 1;
    }
    if !valid {
        return Err("the path has an escaped NUL (%00)");
    }
    if out == path.as_bytes() {
        return Ok(None);
    }
    // Every byte written is ASCII (non-ASCII input is escaped), so this is lossless.
    let mut canonical: String = out.into_iter().map(char::from).collect();
    canonical.push_str(query);
    Ok(Some(canonical))
}

/// Envoy's `PathUtil::stripParametersFromDotSegments` (runtime
/// `strip_dotdot_segments_with_parameters`, on by default), run before the canonicaliser: a
/// segment starting with `..;` becomes `..` and one starting with `.;` becomes `.`, so that
/// `/a/..;x/b` is `/b`. Segments are split at `/` only, and only a literal dot counts
/// (`%2e;` does not). `None` when there is no `.;`.
fn strip_dot_segment_parameters(path: &str) -> Option<String> {
    if !path.contains(".;") {
        return None;
    }
    let segments = path.split('/').map(|segment| {
        if segment.starts_with("..;") {
            ".."
        } else if segment.starts_with(".;") {
            "."
        } else {
            segment
        }
    });
    Some(segments.collect::<Vec<_>>().join("/"))
}

/// A quick, conservative check that canonicalising would change nothing: no `%`, no `\`, no
/// byte to escape, no dot right after a slash.
fn is_canonical(path: &[u8]) -> bool {
    path.first() == Some(&b'/')
        && path.iter().enumerate().all(|(i, &b)| match class(b) {
            Class::Pass | Class::Unescape => true,
            Class::Special => b == b'.' && path[i - 1] != b'/',
            Class::Escape | Class::Invalid => false,
        })
}

/// How Chromium's path canonicaliser treats a byte, as written in a path (unescaped) or as
/// the value of a `%XX` escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Copied as written; an escape of it is kept as written.
    Pass,
    /// Copied as written; an escape of it is decoded (the unreserved characters).
    Unescape,
    /// Escaped as `%XX` when written raw; an escape of it is kept as written.
    Escape,
    /// `%00` or a raw NUL: escaped, and canonicalisation fails.
    Invalid,
    /// `.` (dot segments), `\` (a slash) and `%` (escapes) have their own handling.
    Special,
}

fn class(byte: u8) -> Class {
    match byte {
        0 => Class::Invalid,
        b'.' | b'\\' | b'%' => Class::Special,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'~' => Class::Unescape,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'/' | b':' | b';'
        | b'=' | b'@' | b'[' | b']' => Class::Pass,
        // Controls, space, `"`, `#`, `<`, `>`, `?`, `^`, `` ` ``, `{`, `|`, `}`, DEL, non-ASCII.
        _ => Class::Escape,
    }
}

/// `%XY` at `at` with `X`, `Y` hex digits: its value.
fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    match bytes.get(at..at + 3)? {
        [b'%', hi, lo] => Some((hex(*hi)? * 16 + hex(*lo)?) as u8),
        _ => None,
    }
}

/// Length of a dot at `at`: 1 for `.`, 3 for `%2e`/`%2E`, 0 for no dot.
fn dot_at(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at..) {
        Some([b'.', ..]) => 1,
        Some([b'%', b'2', b'e' | b'E', ..]) => 3,
        _ => 0,
    }
}

fn is_slash(byte: u8) -> bool {
    byte == b'/' || byte == b'\\'
}

/// What a dot that starts a segment means, and how many input bytes after the dot go with
/// it (the second dot, the slash).
enum DotSegment {
    /// `.x`, `..x`: part of a name.
    Name,
    /// `.` then the end or a slash.
    Current(usize),
    /// `..` then the end or a slash.
    Parent(usize),
}

fn dot_segment(bytes: &[u8], after_dot: usize) -> DotSegment {
    match bytes.get(after_dot) {
        None => return DotSegment::Current(0),
        Some(&b) if is_slash(b) => return DotSegment::Current(1),
        Some(_) => {}
    }
    let second = dot_at(bytes, after_dot);
    if second > 0 {
        match bytes.get(after_dot + second) {
            None => return DotSegment::Parent(second),
            Some(&b) if is_slash(b) => return DotSegment::Parent(second + 1),
            Some(_) => {}
        }
    }
    DotSegment::Name
}

fn push_escaped(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[
        b'%',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 15)],
    ]);
}

/// `..`: drop the last segment of `out` (which ends with `/`), never the first `/`.
fn up_one_segment(out: &mut Vec<u8>) {
    let last = out.len() - 1;
    if last == 0 {
        return;
    }
    let keep = out[..last].iter().rposition(|&b| b == b'/').unwrap_or(0);
    out.truncate(keep + 1);
}

/// Chromium's `CheckForNestedEscapes`: a byte was just decoded within two bytes after a bare
/// `%` (at `percent` in `out`). If that `%`, with the next one or two bytes, now reads as a
/// valid escape, the `%` is written `%25` so that the output cannot be decoded into something
/// else. `next` is the next unread input byte.
fn guard_nested_escape(out: &mut Vec<u8>, percent: usize, next: Option<&u8>) {
    let len = out.len();
    let decoded = out[len - 1];
    let with_next = percent + 2 == len;
    if with_next {
        match next {
            Some(&b) if b.is_ascii() => out.push(b),
            _ => return,
        }
    }
    let looks_escaped = escape_at(out, percent).is_some();
    if looks_escaped {
        if !with_next {
            out.push(out[percent + 1]);
        }
        out[percent + 1] = b'2';
        out[percent + 2] = b'5';
        out.push(decoded);
    } else if with_next {
        out.truncate(len);
    }
}

#[cfg(test)]
mod tests;
