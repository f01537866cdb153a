//! One VirtualService HTTP rule (for one of its matches) as an Envoy route: forward,
//! redirect or respond directly, plus timeouts, retries, rewrites, headers, faults, CORS.

use super::destination::{cluster_specifier, hash_for, hash_policies, mirror_policies};
use super::filters::{cors, fault, CORS_FILTER, FAULT_FILTER};
use super::headers::{header_ops, HeaderOps};
use super::{retry, RouteContext};
use crate::proto::{duration, regex_is_valid, regex_matcher};
use bowline_config::common::StringMatch;
use bowline_config::istio::virtual_service::{
    Destination, HttpBody, HttpDirectResponse, HttpMatchRequest, HttpRedirect, HttpRoute,
};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{data_source, DataSource};
use bowline_xds::pb::envoy::config::route::v3::{
    redirect_action, route, route_action, DirectResponseAction, RedirectAction, Route, RouteAction,
    RouteMatch,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;

/// The route to `outbound|port||host` a virtual host gets when no VirtualService covers
/// its host: everything, Istio's default retries, no timeout.
pub(crate) fn default_route(ctx: &RouteContext<'_>, host: &str) -> Route {
    let dest = Destination {
        host: host.to_string(),
        ..Default::default()
    };
    let mut action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
            crate::naming::outbound_cluster(ctx.port, "", host),
        )),
        retry_policy: Some(retry::default_policy()),
        hash_policy: hash_for(ctx, &dest).into_iter().collect(),
        ..Default::default()
    };
    set_timeout(&mut action, None);
    Route {
        name: "default".into(),
        r#match: Some(super::matching::prefix_all()),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

/// The Envoy route for `rule` under one of its matches (`m`; `None` for a rule without
/// matches). `None` when the rule has nothing Envoy can do (only a delegate, a redirect code
/// or direct-response status Envoy refuses, no destination with a positive weight).
pub(crate) fn route(
    ctx: &RouteContext<'_>,
    rule: &HttpRoute,
    m: Option<&HttpMatchRequest>,
    route_match: RouteMatch,
) -> Option<Route> {
    let mut ops = header_ops(rule.headers.as_ref());
    let action = if let Some(r) = &rule.redirect {
        route::Action::Redirect(redirect(r, ctx.port)?)
    } else if let Some(d) = &rule.direct_response {
        route::Action::DirectResponse(direct_response(d)?)
    } else if !rule.route.is_empty() {
        route::Action::Route(forward(ctx, rule, m, &mut ops)?)
    } else {
        return None;
    };
    let mut out = Route {
        name: rule.name.clone(),
        r#match: Some(route_match),
        action: Some(action),
        request_headers_to_add: ops.request_add,
        request_headers_to_remove: ops.request_remove,
        response_headers_to_add: ops.response_add,
        response_headers_to_remove: ops.response_remove,
        ..Default::default()
    };
    if let Some(f) = rule.fault.as_ref().and_then(fault) {
        out.typed_per_filter_config
            .insert(FAULT_FILTER.into(), pack(&f));
    }
    if let Some(c) = &rule.cors_policy {
        out.typed_per_filter_config
            .insert(CORS_FILTER.into(), pack(&cors(c)));
    }
    Some(out)
}

fn forward(
    ctx: &RouteContext<'_>,
    rule: &HttpRoute,
    m: Option<&HttpMatchRequest>,
    ops: &mut HeaderOps,
) -> Option<RouteAction> {
    let (specifier, lifted) = cluster_specifier(ctx, &rule.route)?;
    // A single destination's own headers apply to the whole route (Istio does the same).
    let lifted = header_ops(lifted);
    ops.request_add.extend(lifted.request_add);
    ops.request_remove.extend(lifted.request_remove);
    ops.response_add.extend(lifted.response_add);
    ops.response_remove.extend(lifted.response_remove);
    let mut action = RouteAction {
        cluster_specifier: Some(specifier),
        retry_policy: retry::policy(rule.retries.as_ref()),
        hash_policy: hash_policies(ctx, &rule.route),
        request_mirror_policies: mirror_policies(ctx, rule),
        ..Default::default()
    };
    set_timeout(&mut action, rule.timeout.map(|t| t.as_std()));
    if let Some(rw) = &rule.rewrite {
        if let Some(rx) = rw
            .uri_regex_rewrite
            .as_ref()
            .filter(|rx| regex_is_valid(&rx.pattern))
        {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex_matcher(&rx.pattern)),
                substitution: rx.rewrite.clone(),
            });
        } else if !rw.uri.is_empty() {
            rewrite_uri(&mut action, &rw.uri, m.and_then(|m| m.uri.as_ref()));
        }
    }
    let authority = rule
        .rewrite
        .as_ref()
        .map(|rw| rw.authority.clone())
        .filter(|a| !a.is_empty())
        .or(lifted.host_rewrite)
        .or(ops.host_rewrite.take());
    action.host_rewrite_specifier =
        authority.map(route_action::HostRewriteSpecifier::HostRewriteLiteral);
    Some(action)
}

/// A prefix match swaps the matched prefix; an exact or regex match names the whole path,
/// so the whole path is replaced (a regex rewrite of `^.*$`).
fn rewrite_uri(action: &mut RouteAction, uri: &str, matched: Option<&StringMatch>) {
    match matched {
        Some(StringMatch::Exact(_)) | Some(StringMatch::Regex(_)) => {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex_matcher("^.*$")),
                substitution: uri.to_string(),
            });
        }
        _ => action.prefix_rewrite = uri.to_string(),
    }
}

/// Istio's timeout: the VirtualService's, else 0 (disabled; Envoy's own default is 15s).
///
/// Only the classic route `timeout` is set. Setting `max_stream_duration` as well (even just
/// its `grpc_timeout_header_max`) switches Envoy to its "new timeouts" and the route timeout
/// is then silently not enforced: measured with Envoy 1.40, a 2 s backend under a 0.5 s
/// timeout answered 200. Honouring gRPC's `grpc-timeout` header is left for later.
fn set_timeout(action: &mut RouteAction, timeout: Option<std::time::Duration>) {
    action.timeout = Some(duration(timeout.unwrap_or_default()));
}

/// Istio's redirect. `derivePort: FROM_REQUEST_PORT` becomes the virtual host's port (Envoy
/// cannot derive it; routes are built per port). Codes other than 301/302/303/307/308 are
/// refused, as in Istio.
fn redirect(r: &HttpRedirect, vhost_port: u32) -> Option<RedirectAction> {
    use redirect_action::RedirectResponseCode as Code;
    let code = match r.redirect_code.unwrap_or(301) {
        301 => Code::MovedPermanently,
        302 => Code::Found,
        303 => Code::SeeOther,
        307 => Code::TemporaryRedirect,
        308 => Code::PermanentRedirect,
        _ => return None,
    };
    let port = match (r.port, r.derive_port.as_deref()) {
        (Some(p), _) => crate::proto::valid_port(p).map(u32::from).unwrap_or(0),
        (None, Some("FROM_REQUEST_PORT")) => vhost_port,
        _ => 0,
    };
    Some(RedirectAction {
        host_redirect: r.authority.clone(),
        port_redirect: port,
        response_code: code as i32,
        scheme_rewrite_specifier: (!r.scheme.is_empty())
            .then(|| redirect_action::SchemeRewriteSpecifier::SchemeRedirect(r.scheme.clone())),
        path_rewrite_specifier: (!r.uri.is_empty())
            .then(|| redirect_action::PathRewriteSpecifier::PathRedirect(r.uri.clone())),
        ..Default::default()
    })
}

/// A fixed response. Envoy takes statuses 200..600 only; a `bytes` body is base64 as in
/// Istio's JSON form (undecodable = the rule is dropped rather than answered wrongly).
fn direct_response(d: &HttpDirectResponse) -> Option<DirectResponseAction> {
    if !(200..600).contains(&d.status) {
        return None;
    }
    let body = match &d.body {
        None => None,
        Some(HttpBody::String(s)) => Some(data_source::Specifier::InlineString(s.clone())),
        Some(HttpBody::Bytes(b)) => Some(data_source::Specifier::InlineBytes(base64_decode(b)?)),
    };
    Some(DirectResponseAction {
        status: d.status,
        body: body.map(|specifier| DataSource {
            specifier: Some(specifier),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Standard base64 (padding optional), as protobuf JSON writes `bytes`.
pub(crate) fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in input.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_bodies_decode() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn redirect_codes_and_ports() {
        let r = |json| redirect(&serde_json::from_value(json).unwrap(), 9080);
        use redirect_action::RedirectResponseCode as Code;
        let cases = [
            (
                serde_json::json!({"uri": "/v2"}),
                Some((Code::MovedPermanently, 0)),
            ),
            (
                serde_json::json!({"redirectCode": 307, "port": 8443}),
                Some((Code::TemporaryRedirect, 8443)),
            ),
            (
                serde_json::json!({"derivePort": "FROM_REQUEST_PORT"}),
                Some((Code::MovedPermanently, 9080)),
            ),
            (
                serde_json::json!({"derivePort": "FROM_PROTOCOL_DEFAULT"}),
                Some((Code::MovedPermanently, 0)),
            ),
            (serde_json::json!({"redirectCode": 305}), None),
        ];
        for (json, want) in cases {
            let got = r(json.clone())
                .map(|a| (Code::try_from(a.response_code).unwrap(), a.port_redirect));
            assert_eq!(got, want, "{json}");
        }
    }

    #[test]
    fn direct_responses_envoy_refuses_are_dropped() {
        let d = |json| direct_response(&serde_json::from_value(json).unwrap());
        assert!(d(serde_json::json!({"status": 100})).is_none());
        assert!(d(serde_json::json!({"status": 600})).is_none());
        assert!(d(serde_json::json!({"status": 200, "body": {"bytes": "%%%"}})).is_none());
        assert_eq!(d(serde_json::json!({"status": 418})).unwrap().status, 418);
    }
}
