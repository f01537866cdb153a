//! Envoy's `safe_regex` (RE2) on Rust's `regex` crate, which accepts (nearly) the same
//! syntax and refuses what RE2 refuses (look-around, back-references).

use crate::error::{At, Problem};
use bowline_xds::pb::envoy::r#type::matcher::v3::{regex_matcher, RegexMatcher};
use std::fmt;

/// A compiled regular expression. Envoy matches `safe_regex` against the whole input
/// (RE2 `FullMatch`), so [`Regex::full_match`] is anchored; [`Regex::replace_all`] is the
/// unanchored RE2 `GlobalReplace` used by rewrites.
#[derive(Clone)]
pub struct Regex {
    full: regex::Regex,
    search: regex::Regex,
}

/// Serialised as its pattern (for `/config_dump`).
impl serde::Serialize for Regex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Regex {
    /// Compiles an RE2 pattern; `Err` carries the compiler's message.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let search = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
        let full = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())?;
        Ok(Regex { full, search })
    }

    pub fn as_str(&self) -> &str {
        self.search.as_str()
    }

    /// Whether the whole of `input` matches.
    pub fn full_match(&self, input: &str) -> bool {
        self.full.is_match(input)
    }

    /// Every non-overlapping match replaced by `substitution`, written in RE2's syntax
    /// (`\1` for a capture group, `\\` for a backslash).
    pub fn replace_all(&self, input: &str, substitution: &str) -> String {
        self.search
            .replace_all(input, re2_substitution(substitution).as_str())
            .into_owned()
    }
}

/// RE2's `\N` groups as the `regex` crate's `${N}`, and a literal `$` escaped as `$$`.
fn re2_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

impl PartialEq for Regex {
    fn eq(&self, other: &Regex) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({:?})", self.as_str())
    }
}

/// A `RegexMatcher`: the default engine (RE2) only, without a program-size limit.
pub(crate) fn regex(m: &RegexMatcher, at: &At) -> Result<Regex, Problem> {
    let RegexMatcher { regex, engine_type } = m;
    if let Some(regex_matcher::EngineType::GoogleRe2(re2)) = engine_type {
        if re2.max_program_size.is_some() {
            return Err(at
                .field("google_re2")
                .field("max_program_size")
                .unsupported());
        }
    }
    if regex.is_empty() {
        return Err(at.field("regex").invalid("must not be empty"));
    }
    Regex::new(regex).map_err(|e| {
        at.field("regex")
            .invalid(format!("{regex:?} does not compile: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_anchored_like_re2_full_match() {
        let re = Regex::new("/api/v[0-9]+").unwrap();
        assert!(re.full_match("/api/v1"));
        assert!(!re.full_match("/api/v1/users"));
        assert!(!re.full_match("x/api/v1"));
        let alt = Regex::new("a|b").unwrap();
        assert!(alt.full_match("b"), "alternation stays inside the anchors");
        assert!(!alt.full_match("ab"));
    }

    #[test]
    fn substitutions_use_re2_syntax() {
        let re = Regex::new("^/service/([^/]+)(/.*)$").unwrap();
        assert_eq!(
            re.replace_all("/service/foo/v1/api", "\\2/instance/\\1"),
            "/v1/api/instance/foo"
        );
        let all = Regex::new("o").unwrap();
        assert_eq!(
            all.replace_all("foo", "0"),
            "f00",
            "every match is replaced"
        );
        assert_eq!(all.replace_all("o", "$1\\\\"), "$1\\");
    }

    #[test]
    fn what_re2_refuses_is_refused() {
        assert!(Regex::new("(?=x)").is_err());
        assert!(Regex::new("(a)\\1").is_err());
        assert!(Regex::new("a(").is_err());
    }
}
