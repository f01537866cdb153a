//! HTTPRoute and GRPCRoute matches as Envoy `RouteMatch`es.
//!
//! - `PathPrefix` matches whole path segments (`/api` matches `/api` and `/api/x`, not
//!   `/apix`): Envoy's `path_separated_prefix`, with a trailing `/` of the value dropped
//!   (`/api/` matches like `/api`); `/` is Envoy's prefix `/`.
//! - Header names are case-insensitive; when a name is matched twice, the first match
//!   counts (spec). Query parameter names are case-sensitive.
//! - A gRPC method match is a match on `:path` = `/<service>/<method>`; a missing service
//!   or method matches any one path segment.

use crate::proto::{regex_is_valid, regex_matcher};
use bowline_config::gateway_api::{GrpcRouteMatch, HttpRouteMatch, NameValueMatch};
use bowline_xds::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier, HeaderMatcher, QueryParameterMatcher, RouteMatch,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};

/// The Envoy match of an HTTPRoute match. `None` when a regex would be refused by Envoy
/// (validation reports it): dropping only that condition would widen the match.
pub(crate) fn http_match(m: &HttpRouteMatch) -> Option<RouteMatch> {
    let path = m.path.as_ref();
    let value = path.and_then(|p| p.value.as_deref()).unwrap_or("/");
    let path_specifier = match path.and_then(|p| p.match_type.as_deref()) {
        Some("Exact") => PathSpecifier::Path(value.to_string()),
        Some("RegularExpression") if regex_is_valid(value) => {
            PathSpecifier::SafeRegex(regex_matcher(value))
        }
        Some("RegularExpression") => return None,
        _ => prefix(value),
    };
    let mut out = RouteMatch {
        path_specifier: Some(path_specifier),
        headers: headers(&m.headers)?,
        ..Default::default()
    };
    if let Some(method) = &m.method {
        out.headers.insert(0, header(":method", exact(method)));
    }
    for q in &m.query_params {
        out.query_parameters.push(QueryParameterMatcher {
            name: q.name.clone(),
            query_parameter_match_specifier: Some(QueryParameterMatchSpecifier::StringMatch(
                value_matcher(q)?,
            )),
        });
    }
    Some(out)
}

/// The prefix a `PathPrefix` value matches, as the path part a `ReplacePrefixMatch`
/// replaces: the value without a trailing `/` (`""` for `/`).
pub(crate) fn prefix_part(value: &str) -> &str {
    value.trim_end_matches('/')
}

fn prefix(value: &str) -> PathSpecifier {
    match prefix_part(value) {
        "" => PathSpecifier::Prefix("/".into()),
        p => PathSpecifier::PathSeparatedPrefix(p.to_string()),
    }
}

/// The Envoy match of a GRPCRoute match (`None` as for [`http_match`]).
pub(crate) fn grpc_match(m: &GrpcRouteMatch) -> Option<RouteMatch> {
    let path_specifier = match &m.method {
        None => PathSpecifier::Prefix("/".into()),
        Some(method) => {
            let service = method.service.as_deref();
            let name = method.method.as_deref();
            match (
                method.match_type.as_deref().unwrap_or("Exact"),
                service,
                name,
            ) {
                ("Exact", Some(s), Some(n)) => PathSpecifier::Path(format!("/{s}/{n}")),
                ("Exact", Some(s), None) => PathSpecifier::Prefix(format!("/{s}/")),
                ("Exact", None, n) => PathSpecifier::SafeRegex(regex_matcher(&format!(
                    "/[^/]+/{}",
                    n.map_or("[^/]+".to_string(), regex_escape)
                ))),
                (_, s, n) => {
                    let pattern = format!("/{}/{}", s.unwrap_or("[^/]+"), n.unwrap_or("[^/]+"));
                    if !regex_is_valid(&pattern) {
                        return None;
                    }
                    PathSpecifier::SafeRegex(regex_matcher(&pattern))
                }
            }
        }
    };
    Some(RouteMatch {
        path_specifier: Some(path_specifier),
        headers: headers(&m.headers)?,
        ..Default::default()
    })
}

/// Header matches, the first per (case-insensitive) name.
fn headers(list: &[NameValueMatch]) -> Option<Vec<HeaderMatcher>> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for h in list {
        let name = h.name.to_ascii_lowercase();
        if seen.contains(&name) {
            continue;
        }
        out.push(header(&name, value_matcher(h)?));
        seen.push(name);
    }
    Some(out)
}

fn header(name: &str, m: StringMatcher) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(m)),
        ..Default::default()
    }
}

fn exact(value: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(MatchPattern::Exact(value.to_string())),
        ignore_case: false,
    }
}

fn value_matcher(m: &NameValueMatch) -> Option<StringMatcher> {
    match m.match_type.as_deref() {
        Some("RegularExpression") if regex_is_valid(&m.value) => Some(StringMatcher {
            match_pattern: Some(MatchPattern::SafeRegex(regex_matcher(&m.value))),
            ignore_case: false,
        }),
        Some("RegularExpression") => None,
        _ => Some(exact(&m.value)),
    }
}

/// Escapes RE2 metacharacters.
pub(crate) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path_of(m: RouteMatch) -> PathSpecifier {
        m.path_specifier.unwrap()
    }

    #[test]
    fn http_paths() {
        let p = |v: serde_json::Value| {
            path_of(http_match(&serde_json::from_value(v).unwrap()).unwrap())
        };
        assert_eq!(p(json!({})), PathSpecifier::Prefix("/".into()));
        assert_eq!(
            p(json!({"path": {"type": "PathPrefix", "value": "/api/"}})),
            PathSpecifier::PathSeparatedPrefix("/api".into())
        );
        assert_eq!(
            p(json!({"path": {"type": "Exact", "value": "/a"}})),
            PathSpecifier::Path("/a".into())
        );
        assert_eq!(
            p(json!({"path": {"type": "RegularExpression", "value": "/v[0-9]+"}})),
            PathSpecifier::SafeRegex(regex_matcher("/v[0-9]+"))
        );
        assert!(http_match(
            &serde_json::from_value(json!({"path": {"type": "RegularExpression", "value": "(" }}))
                .unwrap()
        )
        .is_none());
    }

    #[test]
    fn first_header_match_per_name_and_method_as_pseudo_header() {
        let m = http_match(
            &serde_json::from_value(json!({
                "method": "POST",
                "headers": [{"name": "Version", "value": "one"}, {"name": "version", "value": "two"}],
                "queryParams": [{"name": "Q", "value": "1"}]
            }))
            .unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, [":method", "version"]);
        assert_eq!(m.query_parameters[0].name, "Q");
    }

    #[test]
    fn grpc_methods_are_paths() {
        let p = |v: serde_json::Value| {
            path_of(grpc_match(&serde_json::from_value(v).unwrap()).unwrap())
        };
        assert_eq!(
            p(json!({"method": {"service": "pkg.Svc", "method": "Echo"}})),
            PathSpecifier::Path("/pkg.Svc/Echo".into())
        );
        assert_eq!(
            p(json!({"method": {"service": "pkg.Svc"}})),
            PathSpecifier::Prefix("/pkg.Svc/".into())
        );
        assert_eq!(
            p(json!({"method": {"method": "Echo"}})),
            PathSpecifier::SafeRegex(regex_matcher("/[^/]+/Echo"))
        );
        assert_eq!(
            p(json!({"method": {"type": "RegularExpression", "service": "pkg\\..*"}})),
            PathSpecifier::SafeRegex(regex_matcher("/pkg\\..*/[^/]+"))
        );
        assert_eq!(p(json!({})), PathSpecifier::Prefix("/".into()));
    }
}
