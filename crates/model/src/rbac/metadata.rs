//! Envoy's `MetadataMatcher` and `ValueMatcher` on a request's dynamic metadata, held as
//! JSON: `{"<filter>": {…}}` (what Envoy keeps as a map of `Struct`s). The JWT filter puts
//! a verified token's payload at `{"envoy.filters.http.jwt_authn": {"<issuer>": {…}}}`.

use crate::error::{At, Problem};
use crate::matcher::{string_matcher, StringMatcher};
use bowline_xds::pb::envoy::r#type::matcher::v3::{
    double_matcher, list_matcher, metadata_matcher::path_segment::Segment, value_matcher,
    DoubleMatcher, ListMatcher, MetadataMatcher as PbMetadataMatcher, OrMatcher,
    ValueMatcher as PbValueMatcher,
};
use serde_json::Value;

/// The value at `path` under `filter`'s metadata, matched by `value`.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct MetadataMatcher {
    pub filter: String,
    /// Keys, from the filter's struct down (non-empty).
    pub path: Vec<String>,
    pub value: ValueMatcher,
    /// Negate the outcome.
    pub invert: bool,
}

/// A condition on one metadata value. A missing value (no such filter or key) matches
/// nothing but `Present(false)`… which Envoy also never matches: `present_match: false`
/// is only useful under `invert`.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum ValueMatcher {
    /// The value is `null`.
    Null,
    /// A number equal to this.
    DoubleExact(f64),
    /// A number in `start..end`.
    DoubleRange {
        start: f64,
        end: f64,
    },
    String(StringMatcher),
    Bool(bool),
    /// `true`: the value exists (any kind). `false` never matches (Envoy's rule).
    Present(bool),
    /// A list with at least one element that matches.
    ListOneOf(Box<ValueMatcher>),
    /// At least one matches (non-empty).
    Or(Vec<ValueMatcher>),
}

impl MetadataMatcher {
    /// Whether the request's dynamic metadata matches.
    pub fn matches(&self, metadata: &Value) -> bool {
        let mut value = metadata.get(&self.filter);
        for key in &self.path {
            value = value.and_then(|v| v.get(key));
        }
        self.value.matches(value) != self.invert
    }
}

impl ValueMatcher {
    /// `value` is `None` when missing.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (ValueMatcher::Present(want), v) => *want && v.is_some(),
            (_, None) => false,
            (ValueMatcher::Or(list), v) => list.iter().any(|m| m.matches(v)),
            (ValueMatcher::Null, Some(v)) => v.is_null(),
            (ValueMatcher::DoubleExact(x), Some(v)) => v.as_f64() == Some(*x),
            (ValueMatcher::DoubleRange { start, end }, Some(v)) => {
                v.as_f64().is_some_and(|n| *start <= n && n < *end)
            }
            (ValueMatcher::String(m), Some(v)) => v.as_str().is_some_and(|s| m.matches(s)),
            (ValueMatcher::Bool(b), Some(v)) => v.as_bool() == Some(*b),
            (ValueMatcher::ListOneOf(m), Some(v)) => v
                .as_array()
                .is_some_and(|items| items.iter().any(|i| m.matches(Some(i)))),
        }
    }
}

pub(crate) fn metadata_matcher(m: &PbMetadataMatcher, at: &At) -> Result<MetadataMatcher, Problem> {
    let PbMetadataMatcher {
        filter,
        path,
        value,
        invert,
    } = m;
    if filter.is_empty() {
        return Err(at.field("filter").invalid("must not be empty"));
    }
    if path.is_empty() {
        return Err(at.field("path").invalid("must have at least one key"));
    }
    let path = path
        .iter()
        .enumerate()
        .map(|(i, s)| match &s.segment {
            Some(Segment::Key(k)) if !k.is_empty() => Ok(k.clone()),
            _ => Err(at.index("path", i).invalid("a non-empty key is required")),
        })
        .collect::<Result<_, _>>()?;
    let Some(value) = value else {
        return Err(at.field("value").invalid("is required"));
    };
    Ok(MetadataMatcher {
        filter: filter.clone(),
        path,
        value: value_matcher(value, &at.field("value"))?,
        invert: *invert,
    })
}

fn value_matcher(m: &PbValueMatcher, at: &At) -> Result<ValueMatcher, Problem> {
    use value_matcher::MatchPattern;
    let PbValueMatcher { match_pattern } = m;
    Ok(match match_pattern {
        None => return Err(at.invalid("a match pattern is required")),
        Some(MatchPattern::NullMatch(_)) => ValueMatcher::Null,
        Some(MatchPattern::DoubleMatch(d)) => double(d, &at.field("double_match"))?,
        Some(MatchPattern::StringMatch(s)) => {
            ValueMatcher::String(string_matcher(s, &at.field("string_match"))?)
        }
        Some(MatchPattern::BoolMatch(b)) => ValueMatcher::Bool(*b),
        Some(MatchPattern::PresentMatch(p)) => ValueMatcher::Present(*p),
        Some(MatchPattern::ListMatch(l)) => {
            let at = at.field("list_match");
            let ListMatcher { match_pattern } = l.as_ref();
            match match_pattern {
                Some(list_matcher::MatchPattern::OneOf(v)) => {
                    ValueMatcher::ListOneOf(Box::new(value_matcher(v, &at.field("one_of"))?))
                }
                None => return Err(at.invalid("one_of is required")),
            }
        }
        Some(MatchPattern::OrMatch(o)) => {
            let at = at.field("or_match");
            let OrMatcher { value_matchers } = o;
            if value_matchers.len() < 2 {
                return Err(at
                    .field("value_matchers")
                    .invalid("needs at least two matchers"));
            }
            ValueMatcher::Or(
                value_matchers
                    .iter()
                    .enumerate()
                    .map(|(i, v)| value_matcher(v, &at.index("value_matchers", i)))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

fn double(d: &DoubleMatcher, at: &At) -> Result<ValueMatcher, Problem> {
    let DoubleMatcher { match_pattern } = d;
    match match_pattern {
        Some(double_matcher::MatchPattern::Exact(x)) => Ok(ValueMatcher::DoubleExact(*x)),
        Some(double_matcher::MatchPattern::Range(r)) => {
            let bowline_xds::pb::envoy::r#type::v3::DoubleRange { start, end } = r;
            if start > end {
                return Err(at.field("range").invalid("start must not exceed end"));
            }
            Ok(ValueMatcher::DoubleRange {
                start: *start,
                end: *end,
            })
        }
        None => Err(at.invalid("one of exact, range is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(path: &[&str], value: ValueMatcher) -> MetadataMatcher {
        MetadataMatcher {
            filter: "envoy.filters.http.jwt_authn".into(),
            path: path.iter().map(|s| s.to_string()).collect(),
            value,
            invert: false,
        }
    }

    #[test]
    fn values_match_like_envoy() {
        let md = json!({"envoy.filters.http.jwt_authn": {"https://issuer": {
            "sub": "alice", "admin": true, "groups": ["dev", "ops"], "age": 42, "none": null
        }}});
        let iss = "https://issuer";
        let s = |v: &str| ValueMatcher::String(StringMatcher::exact(v));
        let cases = [
            (m(&[iss, "sub"], s("alice")), true),
            (m(&[iss, "sub"], s("bob")), false),
            (m(&[iss, "sub"], ValueMatcher::Present(true)), true),
            (m(&[iss, "nope"], ValueMatcher::Present(true)), false),
            (m(&[iss, "nope"], ValueMatcher::Present(false)), false),
            (m(&["other", "sub"], s("alice")), false),
            (m(&[iss, "admin"], ValueMatcher::Bool(true)), true),
            (m(&[iss, "admin"], s("true")), false),
            (
                m(
                    &[iss, "groups"],
                    ValueMatcher::ListOneOf(Box::new(s("ops"))),
                ),
                true,
            ),
            (
                m(&[iss, "groups"], ValueMatcher::ListOneOf(Box::new(s("qa")))),
                false,
            ),
            (
                m(&[iss, "sub"], ValueMatcher::ListOneOf(Box::new(s("alice")))),
                false,
            ),
            (
                m(
                    &[iss, "sub"],
                    ValueMatcher::Or(vec![
                        ValueMatcher::ListOneOf(Box::new(s("alice"))),
                        s("alice"),
                    ]),
                ),
                true,
            ),
            (m(&[iss, "age"], ValueMatcher::DoubleExact(42.0)), true),
            (
                m(
                    &[iss, "age"],
                    ValueMatcher::DoubleRange {
                        start: 0.0,
                        end: 42.0,
                    },
                ),
                false,
            ),
            (m(&[iss, "none"], ValueMatcher::Null), true),
            (m(&[iss, "sub"], ValueMatcher::Null), false),
        ];
        for (matcher, want) in cases {
            assert_eq!(matcher.matches(&md), want, "{matcher:?}");
        }
        let mut inverted = m(&[iss, "nope"], ValueMatcher::Present(true));
        inverted.invert = true;
        assert!(
            inverted.matches(&md),
            "invert turns a missing value into a match"
        );
        assert!(!m(&[iss, "sub"], s("alice")).matches(&Value::Null));
    }

    #[test]
    fn conversion_enforces_envoy_constraints() {
        use bowline_xds::pb::envoy::r#type::matcher::v3::metadata_matcher::PathSegment;
        let at = At::root("m");
        let key = |k: &str| PathSegment {
            segment: Some(Segment::Key(k.into())),
        };
        let present = PbValueMatcher {
            match_pattern: Some(value_matcher::MatchPattern::PresentMatch(true)),
        };
        let pb = |filter: &str, path: Vec<PathSegment>, value: Option<PbValueMatcher>| {
            PbMetadataMatcher {
                filter: filter.into(),
                path,
                value,
                invert: false,
            }
        };
        let ok = metadata_matcher(
            &pb("f", vec![key("a"), key("b")], Some(present.clone())),
            &at,
        );
        assert_eq!(ok.unwrap().path, ["a", "b"]);
        assert!(metadata_matcher(&pb("", vec![key("a")], Some(present.clone())), &at).is_err());
        assert!(metadata_matcher(&pb("f", vec![], Some(present.clone())), &at).is_err());
        let err = metadata_matcher(&pb("f", vec![key("a")], None), &at).unwrap_err();
        assert_eq!(err.field(), "m.value");
    }
}
