//! Gateway API checks (the CRDs' OpenAPI enums and CEL rules): Gateway listeners,
//! HTTPRoute/GRPCRoute matches, filters (the type names its one field), backendRefs.

mod filters;
mod listeners;

use super::fields::{self, Findings};
use crate::diag::{code, Finding};
use crate::gateway_api::{
    Gateway, GrpcRoute, HttpBackendRef, HttpRoute, HttpRouteMatch, NameValueMatch, ParentReference,
};
use filters::filters;
pub use listeners::check_reference_grant;
use std::collections::HashMap;

const HTTP_FILTERS: &[&str] = &[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
];
const GRPC_FILTERS: &[&str] = &[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "ExtensionRef",
];
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

pub fn check_gateway(gw: &Gateway) -> Vec<Finding> {
    let mut out = Findings::default();
    out.require(
        gw.gateway_class_name.is_empty(),
        "spec.gatewayClassName",
        "gatewayClassName is required",
    );
    out.require(
        gw.listeners.is_empty(),
        "spec.listeners",
        "a Gateway needs at least one listener",
    );
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, l) in gw.listeners.iter().enumerate() {
        let p = format!("spec.listeners[{i}]");
        if l.name.is_empty() {
            out.error(
                code::REQUIRED,
                format!("{p}.name"),
                "listener name is required",
            );
        } else if let Some(first) = names.insert(l.name.as_str(), i) {
            out.error(
                code::DUPLICATE,
                format!("{p}.name"),
                format!(
                    "listener name {:?} is already used by spec.listeners[{first}]",
                    l.name
                ),
            );
        }
        out.push(fields::port(l.port.into(), &format!("{p}.port")));
        if let Some(h) = &l.hostname {
            out.push(fields::wildcard_host(h, &format!("{p}.hostname")));
        }
        let tls_protocol = matches!(l.protocol.as_str(), "HTTPS" | "TLS");
        match l.protocol.as_str() {
            "HTTP" | "HTTPS" | "TLS" | "TCP" | "UDP" => {}
            // Istio's ambient waypoints: the CRD allows any protocol name.
            "HBONE" => out.warning(
                code::NOT_APPLIED,
                format!("{p}.protocol"),
                "HBONE listeners belong to Istio ambient waypoints; bowline has no ambient mode and does not serve this listener (use an HTTP or HTTPS listener)",
            ),
            p if p.contains('/') => {} // implementation-specific, domain-prefixed
            "" => out.error(
                code::REQUIRED,
                format!("{p}.protocol"),
                "listener protocol is required",
            ),
            other => out.error(
                code::NOT_ALLOWED,
                format!("{p}.protocol"),
                format!("protocol {other:?} must be HTTP, HTTPS, TLS, TCP, UDP or HBONE"),
            ),
        }
        if let Some(allowed) = &l.allowed_routes {
            listeners::allowed_routes(allowed, &format!("{p}.allowedRoutes"), &mut out);
        }
        match &l.tls {
            None if tls_protocol => out.error(
                code::REQUIRED,
                format!("{p}.tls"),
                format!("{} listeners need `tls`", l.protocol),
            ),
            Some(_) if !tls_protocol && !l.protocol.contains('/') => out.error(
                code::CONFLICT,
                format!("{p}.tls"),
                format!("{} listeners cannot have `tls`", l.protocol),
            ),
            Some(tls) => {
                let mode = tls.mode.as_deref().unwrap_or("Terminate");
                if mode != "Terminate" && mode != "Passthrough" {
                    out.error(
                        code::NOT_ALLOWED,
                        format!("{p}.tls.mode"),
                        format!("tls.mode {mode:?} must be Terminate or Passthrough"),
                    );
                } else if mode == "Terminate"
                    && tls.certificate_refs.is_empty()
                    && tls.options.is_empty()
                {
                    out.error(
                        code::REQUIRED,
                        format!("{p}.tls.certificateRefs"),
                        "tls mode Terminate needs certificateRefs",
                    );
                }
            }
            None => {}
        }
    }
    out.0
}

fn parent_refs(refs: &[ParentReference], hostnames: &[String], out: &mut Findings) {
    for (i, r) in refs.iter().enumerate() {
        let p = format!("spec.parentRefs[{i}]");
        out.require(
            r.name.is_empty(),
            format!("{p}.name"),
            "parentRef name is required",
        );
        if let Some(port) = r.port {
            out.push(fields::port(port.into(), &format!("{p}.port")));
        }
    }
    for (i, h) in hostnames.iter().enumerate() {
        out.push(fields::wildcard_host(h, &format!("spec.hostnames[{i}]")));
    }
}

pub fn check_http_route(route: &HttpRoute) -> Vec<Finding> {
    let mut out = Findings::default();
    parent_refs(&route.parent_refs, &route.hostnames, &mut out);
    for (i, rule) in route.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        for (j, m) in rule.matches.iter().enumerate() {
            http_match(m, &format!("{p}.matches[{j}]"), &mut out);
        }
        let only_prefix_matches = rule.matches.iter().all(|m| {
            m.path
                .as_ref()
                .and_then(|p| p.match_type.as_deref())
                .unwrap_or("PathPrefix")
                == "PathPrefix"
        });
        filters(
            &rule.filters,
            &format!("{p}.filters"),
            HTTP_FILTERS,
            only_prefix_matches,
            &mut out,
        );
        backend_refs(
            &rule.backend_refs,
            &format!("{p}.backendRefs"),
            HTTP_FILTERS,
            &mut out,
        );
        if let Some(t) = &rule.timeouts {
            if let (Some(req), Some(backend)) = (&t.request, &t.backend_request) {
                if backend > req && req.as_std() != std::time::Duration::ZERO {
                    out.error(
                        code::CONFLICT,
                        format!("{p}.timeouts.backendRequest"),
                        "backendRequest timeout cannot be longer than the request timeout",
                    );
                }
            }
        }
        if let Some(r) = &rule.retry {
            if r.attempts.is_some_and(|a| a < 0) {
                out.error(
                    code::NOT_ALLOWED,
                    format!("{p}.retry.attempts"),
                    "attempts cannot be negative",
                );
            }
            for (k, c) in r.codes.iter().enumerate() {
                if !(400..=599).contains(c) {
                    out.error(
                        code::STATUS_CODE,
                        format!("{p}.retry.codes[{k}]"),
                        format!("retry code {c} is outside 400–599"),
                    );
                }
            }
        }
    }
    out.0
}

pub fn check_grpc_route(route: &GrpcRoute) -> Vec<Finding> {
    let mut out = Findings::default();
    parent_refs(&route.parent_refs, &route.hostnames, &mut out);
    for (i, rule) in route.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        for (j, m) in rule.matches.iter().enumerate() {
            let q = format!("{p}.matches[{j}]");
            if let Some(method) = &m.method {
                let mq = format!("{q}.method");
                match method.match_type.as_deref().unwrap_or("Exact") {
                    "Exact" => out.require(
                        method.service.is_none() && method.method.is_none(),
                        &mq,
                        "an Exact method match needs `service` and/or `method`",
                    ),
                    "RegularExpression" => {
                        for (v, name) in [(&method.service, "service"), (&method.method, "method")]
                        {
                            if let Some(v) = v {
                                out.push(fields::regex(v, &format!("{mq}.{name}")));
                            }
                        }
                    }
                    other => out.error(
                        code::NOT_ALLOWED,
                        format!("{mq}.type"),
                        format!("{other:?} must be Exact or RegularExpression"),
                    ),
                }
            }
            name_value_matches(&m.headers, &format!("{q}.headers"), true, &mut out);
        }
        filters(
            &rule.filters,
            &format!("{p}.filters"),
            GRPC_FILTERS,
            false,
            &mut out,
        );
        backend_refs(
            &rule.backend_refs,
            &format!("{p}.backendRefs"),
            GRPC_FILTERS,
            &mut out,
        );
    }
    out.0
}

fn http_match(m: &HttpRouteMatch, q: &str, out: &mut Findings) {
    if let Some(path) = &m.path {
        let value = path.value.as_deref().unwrap_or("/");
        match path.match_type.as_deref().unwrap_or("PathPrefix") {
            "Exact" | "PathPrefix" if !value.starts_with('/') => out.error(
                code::NOT_ALLOWED,
                format!("{q}.path.value"),
                format!("path {value:?} must start with '/'"),
            ),
            "Exact" | "PathPrefix" => {}
            "RegularExpression" => out.push(fields::regex(value, &format!("{q}.path.value"))),
            other => out.error(
                code::NOT_ALLOWED,
                format!("{q}.path.type"),
                format!("path match type {other:?} must be Exact, PathPrefix or RegularExpression"),
            ),
        }
    }
    name_value_matches(&m.headers, &format!("{q}.headers"), true, out);
    name_value_matches(&m.query_params, &format!("{q}.queryParams"), false, out);
    if let Some(method) = &m.method {
        if !METHODS.contains(&method.as_str()) {
            out.error(
                code::NOT_ALLOWED,
                format!("{q}.method"),
                format!("{method:?} is not an HTTP method (upper case, e.g. GET)"),
            );
        }
    }
}

fn name_value_matches(matches: &[NameValueMatch], q: &str, header: bool, out: &mut Findings) {
    for (i, m) in matches.iter().enumerate() {
        let p = format!("{q}[{i}]");
        if m.name.is_empty() {
            out.error(code::REQUIRED, format!("{p}.name"), "name is required");
        } else if header && !fields::is_header_token(&m.name) {
            out.error(
                code::HEADER_NAME,
                format!("{p}.name"),
                format!("{:?} is not a valid header name", m.name),
            );
        }
        match m.match_type.as_deref().unwrap_or("Exact") {
            "Exact" => {}
            "RegularExpression" => out.push(fields::regex(&m.value, &format!("{p}.value"))),
            other => out.error(
                code::NOT_ALLOWED,
                format!("{p}.type"),
                format!("{other:?} must be Exact or RegularExpression"),
            ),
        }
    }
}

fn backend_refs(refs: &[HttpBackendRef], q: &str, allowed_filters: &[&str], out: &mut Findings) {
    for (i, b) in refs.iter().enumerate() {
        let p = format!("{q}[{i}]");
        out.require(
            b.name.is_empty(),
            format!("{p}.name"),
            "backendRef name is required",
        );
        if let Some(w) = b.weight {
            if !(0..=1_000_000).contains(&w) {
                out.error(
                    code::WEIGHT,
                    format!("{p}.weight"),
                    format!("weight {w} must be 0–1000000"),
                );
            }
        }
        let is_service = b.kind.as_deref().unwrap_or("Service") == "Service"
            && b.group.as_deref().unwrap_or("").is_empty();
        match b.port {
            None if is_service => out.error(
                code::REQUIRED,
                format!("{p}.port"),
                "a Service backendRef needs a port",
            ),
            None => {}
            Some(port) => out.push(fields::port(port.into(), &format!("{p}.port"))),
        }
        filters(
            &b.filters,
            &format!("{p}.filters"),
            allowed_filters,
            true,
            out,
        );
    }
}
