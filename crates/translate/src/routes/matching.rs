//! An Istio `HTTPMatchRequest` as an Envoy `RouteMatch`.

use crate::proto::{regex_is_valid, regex_matcher, string_matcher};
use bowline_config::common::StringMatch;
use bowline_config::istio::virtual_service::HttpMatchRequest;
use bowline_xds::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier, HeaderMatcher, QueryParameterMatcher, RouteMatch,
};

/// The Envoy match for one Istio match (`None` = the rule had no match: everything).
/// Returns `None` when a condition cannot be expressed to Envoy (an invalid regex): dropping
/// only that condition would widen the match, so the whole match is dropped instead.
pub(crate) fn route_match(m: Option<&HttpMatchRequest>) -> Option<RouteMatch> {
    let Some(m) = m else {
        return Some(prefix_all());
    };
    let mut out = RouteMatch {
        path_specifier: Some(path(m.uri.as_ref())?),
        ..Default::default()
    };
    if m.ignore_uri_case {
        out.case_sensitive = Some(bowline_xds::pb::google::protobuf::BoolValue { value: false });
    }
    let pseudo = [
        (":scheme", &m.scheme),
        (":method", &m.method),
        (":authority", &m.authority),
    ];
    for (name, value) in pseudo {
        if let Some(value) = value {
            out.headers.push(header(name, value, false)?);
        }
    }
    for (name, value) in &m.headers {
        out.headers.push(header(name, value, false)?);
    }
    for (name, value) in &m.without_headers {
        out.headers.push(header(name, value, true)?);
    }
    for (name, value) in &m.query_params {
        out.query_parameters.push(query_parameter(name, value)?);
    }
    Some(out)
}

/// Prefix `/`: what a rule without conditions matches.
pub(crate) fn prefix_all() -> RouteMatch {
    RouteMatch {
        path_specifier: Some(PathSpecifier::Prefix("/".into())),
        ..Default::default()
    }
}

fn path(uri: Option<&StringMatch>) -> Option<PathSpecifier> {
    Some(match uri {
        None => PathSpecifier::Prefix("/".into()),
        Some(StringMatch::Exact(p)) => PathSpecifier::Path(p.clone()),
        Some(StringMatch::Prefix(p)) => PathSpecifier::Prefix(p.clone()),
        Some(StringMatch::Regex(r)) if regex_is_valid(r) => {
            PathSpecifier::SafeRegex(regex_matcher(r))
        }
        Some(StringMatch::Regex(_)) => return None,
    })
}

/// Istio reads an empty exact or prefix, or the regex `*`, as "the header is present".
fn is_presence(m: &StringMatch) -> bool {
    match m {
        StringMatch::Exact(s) | StringMatch::Prefix(s) => s.is_empty(),
        StringMatch::Regex(r) => r == "*",
    }
}

/// A header condition; `invert` for `withoutHeaders` (so an empty match = "absent").
/// Header names are case-insensitive; Istio lower-cases them.
fn header(name: &str, m: &StringMatch, invert: bool) -> Option<HeaderMatcher> {
    let specifier = if is_presence(m) {
        HeaderMatchSpecifier::PresentMatch(true)
    } else {
        HeaderMatchSpecifier::StringMatch(string_matcher(m, false)?)
    };
    Some(HeaderMatcher {
        name: name.to_ascii_lowercase(),
        invert_match: invert,
        header_match_specifier: Some(specifier),
        ..Default::default()
    })
}

fn query_parameter(name: &str, m: &StringMatch) -> Option<QueryParameterMatcher> {
    let specifier = if is_presence(m) {
        QueryParameterMatchSpecifier::PresentMatch(true)
    } else {
        QueryParameterMatchSpecifier::StringMatch(string_matcher(m, false)?)
    };
    Some(QueryParameterMatcher {
        name: name.to_string(),
        query_parameter_match_specifier: Some(specifier),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;

    fn convert(json: serde_json::Value) -> Option<RouteMatch> {
        let m: HttpMatchRequest = serde_json::from_value(json).unwrap();
        route_match(Some(&m))
    }

    #[test]
    fn uris_become_path_specifiers() {
        let cases = [
            (
                serde_json::json!({}),
                Some(PathSpecifier::Prefix("/".into())),
            ),
            (
                serde_json::json!({"uri": {"exact": "/a"}}),
                Some(PathSpecifier::Path("/a".into())),
            ),
            (
                serde_json::json!({"uri": {"prefix": "/api"}}),
                Some(PathSpecifier::Prefix("/api".into())),
            ),
            (
                serde_json::json!({"uri": {"regex": "/v[0-9]+/.*"}}),
                Some(PathSpecifier::SafeRegex(regex_matcher("/v[0-9]+/.*"))),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                convert(json.clone()).unwrap().path_specifier,
                want,
                "{json}"
            );
        }
        assert!(convert(serde_json::json!({"uri": {"regex": "(?<=a)b"}})).is_none());
    }

    #[test]
    fn ignore_uri_case_turns_case_sensitivity_off() {
        let got =
            convert(serde_json::json!({"uri": {"prefix": "/A"}, "ignoreUriCase": true})).unwrap();
        assert_eq!(got.case_sensitive.map(|b| b.value), Some(false));
        let got = convert(serde_json::json!({"uri": {"prefix": "/A"}})).unwrap();
        assert_eq!(got.case_sensitive, None);
    }

    #[test]
    fn headers_methods_and_query_parameters() {
        let got = convert(serde_json::json!({
            "method": {"exact": "GET"},
            "scheme": {"exact": "https"},
            "authority": {"prefix": "reviews"},
            "headers": {"End-User": {"exact": "jason"}, "x-present": {"exact": ""}},
            "withoutHeaders": {"x-canary": {"exact": ""}, "x-env": {"prefix": "dev"}},
            "queryParams": {"v": {"regex": "[12]"}, "debug": {"exact": ""}}
        }))
        .unwrap();
        let summary: Vec<(String, bool, String)> = got
            .headers
            .iter()
            .map(|h| {
                let how = match h.header_match_specifier.as_ref().unwrap() {
                    HeaderMatchSpecifier::PresentMatch(_) => "present".to_string(),
                    HeaderMatchSpecifier::StringMatch(s) => match s.match_pattern.as_ref().unwrap()
                    {
                        MatchPattern::Exact(v) => format!("exact {v}"),
                        MatchPattern::Prefix(v) => format!("prefix {v}"),
                        other => format!("{other:?}"),
                    },
                    other => format!("{other:?}"),
                };
                (h.name.clone(), h.invert_match, how)
            })
            .collect();
        let want = [
            (":scheme", false, "exact https"),
            (":method", false, "exact GET"),
            (":authority", false, "prefix reviews"),
            ("end-user", false, "exact jason"),
            ("x-present", false, "present"),
            ("x-canary", true, "present"),
            ("x-env", true, "prefix dev"),
        ];
        let want: Vec<(String, bool, String)> = want
            .iter()
            .map(|(n, i, h)| (n.to_string(), *i, h.to_string()))
            .collect();
        assert_eq!(summary, want);
        let params: Vec<&str> = got
            .query_parameters
            .iter()
            .map(|q| q.name.as_str())
            .collect();
        assert_eq!(params, ["debug", "v"]);
        assert_eq!(
            got.query_parameters[0].query_parameter_match_specifier,
            Some(QueryParameterMatchSpecifier::PresentMatch(true))
        );
    }

    #[test]
    fn an_inexpressible_header_drops_the_whole_match() {
        assert!(convert(serde_json::json!({"headers": {"x": {"regex": "(a"}}})).is_none());
    }
}
