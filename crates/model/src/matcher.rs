//! Envoy's `StringMatcher`, used by header, query-parameter and CORS origin matching.

use crate::error::{At, Problem};
use crate::regex::{regex, Regex};
use bowline_xds::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, StringMatcher as PbStringMatcher,
};

/// How a string is matched.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum StringPattern {
    Exact(String),
    /// Non-empty (Envoy refuses an empty prefix, suffix or substring).
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Matched against the whole input.
    Regex(Regex),
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct StringMatcher {
    pub pattern: StringPattern,
    /// ASCII case-insensitive comparison (never set for a regex: Envoy refuses that).
    pub ignore_case: bool,
}

impl StringMatcher {
    pub fn exact(s: &str) -> StringMatcher {
        StringMatcher {
            pattern: StringPattern::Exact(s.to_string()),
            ignore_case: false,
        }
    }

    pub fn matches(&self, input: &str) -> bool {
        let fold = |s: &str| {
            if self.ignore_case {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        };
        match &self.pattern {
            StringPattern::Exact(s) => fold(input) == fold(s),
            StringPattern::Prefix(s) => fold(input).starts_with(&fold(s)),
            StringPattern::Suffix(s) => fold(input).ends_with(&fold(s)),
            StringPattern::Contains(s) => fold(input).contains(&fold(s)),
            StringPattern::Regex(re) => re.full_match(input),
        }
    }
}

pub(crate) fn string_matcher(m: &PbStringMatcher, at: &At) -> Result<StringMatcher, Problem> {
    let PbStringMatcher {
        ignore_case,
        match_pattern,
    } = m;
    let non_empty = |s: &String, name: &str| {
        if s.is_empty() {
            Err(at.field(name).invalid("must not be empty"))
        } else {
            Ok(s.clone())
        }
    };
    let pattern = match match_pattern {
        None => {
            return Err(at.invalid("one of exact, prefix, suffix, safe_regex, contains is required"))
        }
        Some(MatchPattern::Exact(s)) => StringPattern::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => StringPattern::Prefix(non_empty(s, "prefix")?),
        Some(MatchPattern::Suffix(s)) => StringPattern::Suffix(non_empty(s, "suffix")?),
        Some(MatchPattern::Contains(s)) => StringPattern::Contains(non_empty(s, "contains")?),
        Some(MatchPattern::SafeRegex(r)) => {
            if *ignore_case {
                return Err(at
                    .field("ignore_case")
                    .invalid("has no effect for safe_regex"));
            }
            StringPattern::Regex(regex(r, &at.field("safe_regex"))?)
        }
        Some(MatchPattern::Custom(ext)) => {
            let type_url = ext
                .typed_config
                .as_ref()
                .map(|a| a.type_url.as_str())
                .unwrap_or("");
            return Err(at.field("custom").unsupported_filter(&ext.name, type_url));
        }
    };
    Ok(StringMatcher {
        pattern,
        ignore_case: *ignore_case,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: StringPattern, ignore_case: bool) -> StringMatcher {
        StringMatcher {
            pattern,
            ignore_case,
        }
    }

    #[test]
    fn patterns_match_like_envoy() {
        use StringPattern::*;
        let re = |s: &str| Regex(crate::Regex::new(s).unwrap());
        let cases = [
            (m(Exact("v1".into()), false), "v1", true),
            (m(Exact("v1".into()), false), "V1", false),
            (m(Exact("v1".into()), true), "V1", true),
            (m(Exact(String::new()), false), "", true),
            (m(Prefix("Mozilla".into()), false), "Mozilla/5.0", true),
            (m(Prefix("mozilla".into()), true), "Mozilla/5.0", true),
            (m(Suffix(".com".into()), false), "example.com", true),
            (m(Contains("bot".into()), false), "a-bot-b", true),
            (m(Contains("bot".into()), false), "human", false),
            (m(re("v[0-9]"), false), "v1", true),
            (m(re("v[0-9]"), false), "v12", false),
        ];
        for (matcher, input, want) in cases {
            assert_eq!(matcher.matches(input), want, "{matcher:?} on {input:?}");
        }
    }

    #[test]
    fn envoy_constraints_are_enforced() {
        let at = At::root("h");
        let pb = |p: MatchPattern, ignore_case| PbStringMatcher {
            ignore_case,
            match_pattern: Some(p),
        };
        assert!(string_matcher(&pb(MatchPattern::Prefix(String::new()), false), &at).is_err());
        let rx = bowline_xds::pb::envoy::r#type::matcher::v3::RegexMatcher {
            regex: "a.*".into(),
            engine_type: None,
        };
        assert!(string_matcher(&pb(MatchPattern::SafeRegex(rx.clone()), false), &at).is_ok());
        assert!(string_matcher(&pb(MatchPattern::SafeRegex(rx), true), &at).is_err());
        let none = PbStringMatcher::default();
        assert!(string_matcher(&none, &at).is_err());
    }
}
