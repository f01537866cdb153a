//! Merging a root rule's match conditions with a delegate rule's (Istio's
//! `mergeHTTPMatchRequests`): a delegate may only narrow what the root hands it.

use bowline_config::common::StringMatch;
use bowline_config::istio::virtual_service::HttpMatchRequest;
use std::collections::BTreeMap;

/// The match conditions of a delegate rule under its root rule, or `None` when the rule
/// conflicts with the root and is dropped (Istio logs and skips it).
///
/// No root matches: the delegate's as they are. No delegate matches: the root's (the rule
/// inherits them). Otherwise every (root, delegate) pair that does not conflict becomes one
/// merged match (the conjunction of both), in delegate-then-root order; a delegate match
/// compatible with no root match drops the whole rule, as does a rule left without matches.
pub(crate) fn merge(
    root: &[HttpMatchRequest],
    delegate: &[HttpMatchRequest],
) -> Option<Vec<HttpMatchRequest>> {
    if root.is_empty() {
        return Some(delegate.to_vec());
    }
    if delegate.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for leaf in delegate {
        let before = out.len();
        out.extend(
            root.iter()
                .filter(|r| !conflicts(r, leaf))
                .map(|r| merge_one(r, leaf)),
        );
        if out.len() == before {
            return None;
        }
    }
    Some(out)
}

/// True when `leaf` is not a narrowing of `root` (Istio's `hasConflict`): a path, scheme,
/// method, authority, header or query condition both set that the leaf does not narrow;
/// a different `ignoreUriCase`; different ports; a root `sourceNamespace` the leaf does not
/// repeat; a source label both set to different values; leaf `gateways` outside the root's.
/// Gateway names must already be qualified (`ns/name`) on both sides.
fn conflicts(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> bool {
    let fields = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    if fields
        .iter()
        .any(|(r, l)| string_conflict(r.as_ref(), l.as_ref()))
    {
        return true;
    }
    let maps = [
        (&root.headers, &leaf.headers),
        (&root.without_headers, &leaf.without_headers),
        (&root.query_params, &leaf.query_params),
    ];
    if maps.iter().any(|(r, l)| {
        l.iter()
            .any(|(key, value)| string_conflict(r.get(key), Some(value)))
    }) {
        return true;
    }
    if root.ignore_uri_case != leaf.ignore_uri_case {
        return true;
    }
    if matches!((root.port, leaf.port), (Some(r), Some(l)) if r != 0 && l != 0 && r != l) {
        return true;
    }
    if !root.source_namespace.is_empty() && leaf.source_namespace != root.source_namespace {
        return true;
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|r| r != v))
    {
        return true;
    }
    !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && !leaf.gateways.iter().all(|g| root.gateways.contains(g))
}

/// Istio's `stringMatchConflict`: no conflict when either side is unset; otherwise the leaf
/// must narrow the root — the same exact value under an exact root, or an exact or prefix
/// value starting with a prefix root. Regexes (and empty values) always conflict, since
/// containment cannot be decided.
fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    match (root, leaf) {
        (StringMatch::Exact(r), StringMatch::Exact(l)) if !r.is_empty() => r != l,
        (StringMatch::Prefix(r), StringMatch::Prefix(l) | StringMatch::Exact(l))
            if !r.is_empty() && !l.is_empty() =>
        {
            !l.starts_with(r.as_str())
        }
        _ => true,
    }
}

/// The conjunction of a compatible pair (Istio's `mergeHTTPMatchRequest`): the leaf's
/// conditions, each unset one taken from the root; header, query and source-label maps
/// united (the leaf's value wins for a key both set, being the narrower); names joined
/// `root-leaf`.
fn merge_one(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> HttpMatchRequest {
    fn union<V: Clone>(
        root: &BTreeMap<String, V>,
        leaf: &BTreeMap<String, V>,
    ) -> BTreeMap<String, V> {
        let mut out = root.clone();
        out.extend(leaf.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }
    let HttpMatchRequest {
        name,
        uri,
        scheme,
        method,
        authority,
        headers,
        without_headers,
        query_params,
        ignore_uri_case,
        port,
        source_labels,
        source_namespace,
        gateways,
        stat_prefix,
    } = leaf.clone();
    let or_root = |leaf: String, root: &String| if leaf.is_empty() { root.clone() } else { leaf };
    HttpMatchRequest {
        name: join_names(&root.name, name),
        uri: uri.or_else(|| root.uri.clone()),
        scheme: scheme.or_else(|| root.scheme.clone()),
        method: method.or_else(|| root.method.clone()),
        authority: authority.or_else(|| root.authority.clone()),
        headers: union(&root.headers, &headers),
        without_headers: union(&root.without_headers, &without_headers),
        query_params: union(&root.query_params, &query_params),
        ignore_uri_case,
        port: port.filter(|p| *p != 0).or(root.port),
        source_labels: union(&root.source_labels, &source_labels),
        source_namespace: or_root(source_namespace, &root.source_namespace),
        gateways: if gateways.is_empty() {
            root.gateways.clone()
        } else {
            gateways
        },
        stat_prefix: or_root(stat_prefix, &root.stat_prefix),
    }
}

/// Istio's naming of merged rules and matches: the leaf's name under the root's, `root-leaf`.
pub(crate) fn join_names(root: &str, leaf: String) -> String {
    match (root.is_empty(), leaf.is_empty()) {
        (_, true) => root.to_string(),
        (true, false) => leaf,
        (false, false) => format!("{root}-{leaf}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn matches(v: Value) -> Vec<HttpMatchRequest> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn delegate_matches_narrow_the_root_or_drop_the_rule() {
        // (root matches, delegate matches, merged matches or null = rule dropped)
        let cases = [
            // Either side without matches: the other's.
            (
                json!([]),
                json!([{"uri": {"prefix": "/a"}}]),
                json!([{"uri": {"prefix": "/a"}}]),
            ),
            (
                json!([{"uri": {"prefix": "/a"}}]),
                json!([]),
                json!([{"uri": {"prefix": "/a"}}]),
            ),
            // Paths: the delegate's must lie within the root's.
            (
                json!([{"uri": {"prefix": "/a"}}]),
                json!([{"uri": {"prefix": "/a/b"}}]),
                json!([{"uri": {"prefix": "/a/b"}}]),
            ),
            (
                json!([{"uri": {"prefix": "/a"}}]),
                json!([{"uri": {"exact": "/a/b"}}]),
                json!([{"uri": {"exact": "/a/b"}}]),
            ),
            (
                json!([{"uri": {"prefix": "/a"}}]),
                json!([{"uri": {"prefix": "/b"}}]),
                Value::Null,
            ),
            (
                json!([{"uri": {"prefix": "/a/b"}}]),
                json!([{"uri": {"prefix": "/a"}}]),
                Value::Null,
            ),
            (
                json!([{"uri": {"exact": "/a"}}]),
                json!([{"uri": {"exact": "/a"}}]),
                json!([{"uri": {"exact": "/a"}}]),
            ),
            (
                json!([{"uri": {"exact": "/a"}}]),
                json!([{"uri": {"exact": "/b"}}]),
                Value::Null,
            ),
            (
                json!([{"uri": {"exact": "/a"}}]),
                json!([{"uri": {"prefix": "/a"}}]),
                Value::Null,
            ),
            // Containment of regexes cannot be decided: a regex on either side conflicts.
            (
                json!([{"uri": {"regex": "/a.*"}}]),
                json!([{"uri": {"prefix": "/a"}}]),
                Value::Null,
            ),
            (
                json!([{"uri": {"prefix": "/a"}}]),
                json!([{"uri": {"regex": "/a.*"}}]),
                Value::Null,
            ),
            // Conditions on different fields combine; a path only on the root is inherited.
            (
                json!([{"uri": {"prefix": "/a"}, "method": {"exact": "GET"}}]),
                json!([{"headers": {"x-v": {"exact": "2"}}, "queryParams": {"q": {"exact": "1"}}}]),
                json!([{"uri": {"prefix": "/a"}, "method": {"exact": "GET"}, "headers": {"x-v": {"exact": "2"}}, "queryParams": {"q": {"exact": "1"}}}]),
            ),
            // Headers, query params and source labels unite; a key both set must narrow
            // (the delegate's value is kept), else the rule is dropped.
            (
                json!([{"headers": {"x-a": {"exact": "1"}, "x-t": {"prefix": "gold"}}}]),
                json!([{"headers": {"x-b": {"exact": "2"}, "x-t": {"exact": "gold-plus"}}}]),
                json!([{"headers": {"x-a": {"exact": "1"}, "x-b": {"exact": "2"}, "x-t": {"exact": "gold-plus"}}}]),
            ),
            (
                json!([{"headers": {"x-a": {"exact": "1"}}}]),
                json!([{"headers": {"x-a": {"exact": "2"}}}]),
                Value::Null,
            ),
            (
                json!([{"queryParams": {"q": {"exact": "1"}}}]),
                json!([{"queryParams": {"q": {"prefix": "1"}}}]),
                Value::Null,
            ),
            (
                json!([{"withoutHeaders": {"x-c": {"exact": "1"}}}]),
                json!([{"withoutHeaders": {"x-c": {"exact": "2"}}}]),
                Value::Null,
            ),
            (
                json!([{"sourceLabels": {"app": "a"}}]),
                json!([{"sourceLabels": {"version": "v1"}}]),
                json!([{"sourceLabels": {"app": "a", "version": "v1"}}]),
            ),
            (
                json!([{"sourceLabels": {"app": "a"}}]),
                json!([{"sourceLabels": {"app": "b"}}]),
                Value::Null,
            ),
            // Ports, case-insensitivity, source namespace (Istio: the delegate must repeat
            // the root's) and gateways (the delegate's within the root's).
            (
                json!([{"port": 80}]),
                json!([{"uri": {"prefix": "/"}}]),
                json!([{"port": 80, "uri": {"prefix": "/"}}]),
            ),
            (json!([{"port": 80}]), json!([{"port": 81}]), Value::Null),
            (
                json!([{"ignoreUriCase": true, "uri": {"prefix": "/a"}}]),
                json!([{"uri": {"prefix": "/a"}}]),
                Value::Null,
            ),
            (
                json!([{"sourceNamespace": "prod"}]),
                json!([{"uri": {"prefix": "/"}}]),
                Value::Null,
            ),
            (
                json!([{"sourceNamespace": "prod"}]),
                json!([{"sourceNamespace": "prod"}]),
                json!([{"sourceNamespace": "prod"}]),
            ),
            (
                json!([{"gateways": ["ns/a", "ns/b"]}]),
                json!([{"gateways": ["ns/b"]}]),
                json!([{"gateways": ["ns/b"]}]),
            ),
            (
                json!([{"gateways": ["ns/a"]}]),
                json!([{"gateways": ["ns/a", "ns/b"]}]),
                Value::Null,
            ),
            (
                json!([{"gateways": ["ns/a"]}]),
                json!([{"uri": {"prefix": "/"}}]),
                json!([{"gateways": ["ns/a"], "uri": {"prefix": "/"}}]),
            ),
            // Several root matches: each compatible one gives a merged match, in order.
            (
                json!([{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}, {"headers": {"x": {"exact": "1"}}}]),
                json!([{"uri": {"prefix": "/b/c"}}]),
                json!([{"uri": {"prefix": "/b/c"}}, {"uri": {"prefix": "/b/c"}, "headers": {"x": {"exact": "1"}}}]),
            ),
            // A delegate match compatible with no root match drops the whole rule.
            (
                json!([{"uri": {"prefix": "/a"}}]),
                json!([{"uri": {"prefix": "/a/1"}}, {"uri": {"prefix": "/z"}}]),
                Value::Null,
            ),
            // Names join root-first.
            (
                json!([{"name": "root", "uri": {"prefix": "/a"}}]),
                json!([{"name": "leaf"}, {"uri": {"prefix": "/a/x"}}]),
                json!([{"name": "root-leaf", "uri": {"prefix": "/a"}}, {"name": "root", "uri": {"prefix": "/a/x"}}]),
            ),
        ];
        for (root, leaf, want) in cases {
            let got = merge(&matches(root.clone()), &matches(leaf.clone()));
            let want = (!want.is_null()).then(|| matches(want));
            assert_eq!(got, want, "root {root} / delegate {leaf}");
        }
    }
}
