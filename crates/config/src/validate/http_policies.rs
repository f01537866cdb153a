//! Per-rule HTTP policies of a VirtualService: redirect, direct response, rewrite, timeout,
//! retries, fault injection, mirroring, CORS and header operations.

use super::fields::{self, Findings};
use super::virtual_service::destination;
use crate::diag::code;
use crate::istio::virtual_service::{
    CorsPolicy, FaultAbort, FaultDelay, Headers, HttpDirectResponse, HttpRedirect, HttpRetry,
    HttpRewrite, HttpRoute,
};

/// Redirect codes Envoy can send (`RedirectResponseCode`).
pub const REDIRECT_CODES: &[u32] = &[301, 302, 303, 307, 308];

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

pub fn check(rule: &HttpRoute, p: &str, out: &mut Findings) {
    if let Some(r) = &rule.redirect {
        redirect(r, &format!("{p}.redirect"), out);
    }
    if let Some(d) = &rule.direct_response {
        direct_response(d, &format!("{p}.directResponse"), out);
    }
    if let Some(r) = &rule.rewrite {
        rewrite(r, &format!("{p}.rewrite"), out);
    }
    if let Some(t) = &rule.timeout {
        out.push(fields::duration(t, &format!("{p}.timeout")));
    }
    if let Some(r) = &rule.retries {
        retries(r, &format!("{p}.retries"), out);
    }
    if let Some(f) = &rule.fault {
        let q = format!("{p}.fault");
        out.require(
            f.abort.is_none() && f.delay.is_none(),
            &q,
            "fault needs an `abort` and/or a `delay`",
        );
        if let Some(a) = &f.abort {
            abort(a, &format!("{q}.abort"), out);
        }
        if let Some(d) = &f.delay {
            delay(d, &format!("{q}.delay"), out);
        }
    }
    if let Some(m) = &rule.mirror {
        destination(m, &format!("{p}.mirror"), out);
    }
    if let Some(pct) = &rule.mirror_percentage {
        out.push(fields::percent(
            pct.value,
            &format!("{p}.mirrorPercentage.value"),
        ));
    }
    if let Some(pct) = rule.mirror_percent {
        out.push(fields::percent(pct.into(), &format!("{p}.mirrorPercent")));
    }
    for (i, m) in rule.mirrors.iter().enumerate() {
        destination(
            &m.destination,
            &format!("{p}.mirrors[{i}].destination"),
            out,
        );
        if let Some(pct) = &m.percentage {
            out.push(fields::percent(
                pct.value,
                &format!("{p}.mirrors[{i}].percentage.value"),
            ));
        }
    }
    if let Some(c) = &rule.cors_policy {
        cors(c, &format!("{p}.corsPolicy"), out);
    }
    if let Some(h) = &rule.headers {
        headers(h, &format!("{p}.headers"), out);
    }
}

fn redirect(r: &HttpRedirect, q: &str, out: &mut Findings) {
    out.require(
        r.uri.is_empty()
            && r.prefix_rewrite.is_empty()
            && r.authority.is_empty()
            && r.scheme.is_empty()
            && r.port.is_none()
            && r.derive_port.is_none(),
        q,
        "redirect must set at least one of uri, authority, scheme, port or derivePort",
    );
    if !r.prefix_rewrite.is_empty() {
        out.not_applied(
            format!("{q}.prefixRewrite"),
            "prefixRewrite (the redirect keeps the request's path unless `uri` replaces it)",
        );
        if !r.uri.is_empty() {
            out.error(
                code::CONFLICT,
                format!("{q}.prefixRewrite"),
                "set either `uri` or `prefixRewrite`, not both",
            );
        }
    }
    if let Some(c) = r.redirect_code {
        if !REDIRECT_CODES.contains(&c) {
            out.error(
                code::STATUS_CODE,
                format!("{q}.redirectCode"),
                format!("redirect code {c} is not one of 301, 302, 303, 307, 308"),
            );
        }
    }
    if let Some(port) = r.port {
        out.push(fields::port(port.into(), &format!("{q}.port")));
        if r.derive_port.is_some() {
            out.error(
                code::CONFLICT,
                format!("{q}.derivePort"),
                "set either `port` or `derivePort`, not both",
            );
        }
    }
    if let Some(d) = &r.derive_port {
        if !["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"].contains(&d.as_str()) {
            out.error(
                code::NOT_ALLOWED,
                format!("{q}.derivePort"),
                format!("derivePort {d:?} must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT"),
            );
        }
    }
    if !r.scheme.is_empty() && r.scheme != "http" && r.scheme != "https" {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.scheme"),
            format!("scheme {:?} must be http or https", r.scheme),
        );
    }
}

fn direct_response(d: &HttpDirectResponse, q: &str, out: &mut Findings) {
    if !(200..=599).contains(&d.status) {
        out.error(
            code::STATUS_CODE,
            format!("{q}.status"),
            format!("status {} is outside 200–599", d.status),
        );
    }
}

fn rewrite(r: &HttpRewrite, q: &str, out: &mut Findings) {
    if !r.uri.is_empty() && r.uri_regex_rewrite.is_some() {
        out.error(
            code::CONFLICT,
            format!("{q}.uriRegexRewrite"),
            "set either `uri` or `uriRegexRewrite`, not both",
        );
    }
    out.require(
        r.uri.is_empty() && r.authority.is_empty() && r.uri_regex_rewrite.is_none(),
        q,
        "rewrite must set uri, uriRegexRewrite or authority",
    );
    if let Some(rr) = &r.uri_regex_rewrite {
        let f = format!("{q}.uriRegexRewrite");
        out.require(
            rr.pattern.is_empty(),
            format!("{f}.match"),
            "uriRegexRewrite.match is required",
        );
        out.require(
            rr.rewrite.is_empty(),
            format!("{f}.rewrite"),
            "uriRegexRewrite.rewrite is required",
        );
        if !rr.pattern.is_empty() {
            out.push(fields::regex(&rr.pattern, &format!("{f}.match")));
        }
    }
}

fn retries(r: &HttpRetry, q: &str, out: &mut Findings) {
    if r.attempts < 0 {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.attempts"),
            "attempts cannot be negative",
        );
    } else if r.attempts == 0 && (r.per_try_timeout.is_some() || !r.retry_on.is_empty()) {
        out.error(
            code::CONFLICT,
            format!("{q}.attempts"),
            "retry settings given but attempts is 0 (retries disabled); set attempts ≥ 1",
        );
    }
    if let Some(t) = &r.per_try_timeout {
        out.push(fields::duration(t, &format!("{q}.perTryTimeout")));
    }
    if let Some(b) = &r.backoff {
        out.push(fields::duration(b, &format!("{q}.backoff")));
    }
    for cond in r
        .retry_on
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let status_code = cond.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
        if !status_code && !crate::common::RETRY_ON.contains(&cond) {
            out.error(
                code::RETRY_ON,
                format!("{q}.retryOn"),
                format!("{cond:?} is not a retry condition; use Envoy's (5xx, gateway-error, connect-failure, reset, retriable-4xx, refused-stream, unavailable, cancelled, ...) or an HTTP status code"),
            );
        }
    }
}

fn abort(a: &FaultAbort, q: &str, out: &mut Findings) {
    let kinds = [
        a.http_status.is_some(),
        a.grpc_status.is_some(),
        a.http2_error.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        0 => out.warning(
            code::REQUIRED,
            q,
            "abort has no httpStatus or grpcStatus, so it does nothing",
        ),
        1 => {}
        _ => out.error(
            code::CONFLICT,
            q,
            "abort takes one of httpStatus, grpcStatus or http2Error",
        ),
    }
    if let Some(s) = a.http_status {
        if !(200..=599).contains(&s) {
            out.error(
                code::STATUS_CODE,
                format!("{q}.httpStatus"),
                format!("abort status {s} is outside 200–599"),
            );
        }
    }
    if let Some(g) = &a.grpc_status {
        if crate::common::grpc_code(g).is_none() {
            out.error(
                code::NOT_ALLOWED,
                format!("{q}.grpcStatus"),
                format!("{g:?} is not a gRPC status name (e.g. UNAVAILABLE, NOT_FOUND)"),
            );
        }
    }
    if a.http2_error.is_some() {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.http2Error"),
            "HTTP/2 error aborts are not supported (as in Istio)",
        );
    }
    if let Some(p) = &a.percentage {
        out.push(fields::percent(p.value, &format!("{q}.percentage.value")));
    }
}

fn delay(d: &FaultDelay, q: &str, out: &mut Findings) {
    match (&d.fixed_delay, &d.exponential_delay) {
        (Some(_), Some(_)) => out.error(
            code::CONFLICT,
            q,
            "delay takes one of fixedDelay or exponentialDelay",
        ),
        (None, None) => out.error(
            code::REQUIRED,
            format!("{q}.fixedDelay"),
            "delay needs fixedDelay",
        ),
        (Some(t), None) => out.push(fields::duration(t, &format!("{q}.fixedDelay"))),
        (None, Some(_)) => out.error(
            code::NOT_ALLOWED,
            format!("{q}.exponentialDelay"),
            "exponentialDelay is not supported (as in Istio); use fixedDelay",
        ),
    }
    if let Some(p) = &d.percentage {
        out.push(fields::percent(p.value, &format!("{q}.percentage.value")));
    }
    if let Some(p) = d.percent {
        out.push(fields::percent(p.into(), &format!("{q}.percent")));
    }
}

fn cors(c: &CorsPolicy, q: &str, out: &mut Findings) {
    for (i, origin) in c.allow_origins.iter().enumerate() {
        fields::string_match(origin, &format!("{q}.allowOrigins[{i}]"), false, out);
    }
    for (i, m) in c.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&m.as_str()) {
            out.error(
                code::NOT_ALLOWED,
                format!("{q}.allowMethods[{i}]"),
                format!("{m:?} is not an HTTP method"),
            );
        }
    }
    for (list, name) in [
        (&c.allow_headers, "allowHeaders"),
        (&c.expose_headers, "exposeHeaders"),
    ] {
        for (i, h) in list.iter().enumerate() {
            if h != "*" && !fields::is_header_token(h) {
                out.error(
                    code::HEADER_NAME,
                    format!("{q}.{name}[{i}]"),
                    format!("{h:?} is not a valid header name"),
                );
            }
        }
    }
    if let Some(age) = &c.max_age {
        out.push(fields::duration(age, &format!("{q}.maxAge")));
    }
}

/// Header operations. Requests may set the authority (`:authority`/`host`); nothing may
/// touch other pseudo-headers.
pub fn headers(h: &Headers, q: &str, out: &mut Findings) {
    for (side, ops) in [("request", &h.request), ("response", &h.response)] {
        let Some(ops) = ops else { continue };
        let names = ops
            .set
            .keys()
            .map(|k| (k, "set"))
            .chain(ops.add.keys().map(|k| (k, "add")));
        for (name, op) in names {
            let authority =
                name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host");
            if side == "request" && authority {
                continue;
            }
            out.push(fields::operation_header_name(
                name,
                &format!("{q}.{side}.{op}.{name}"),
            ));
        }
        for (i, name) in ops.remove.iter().enumerate() {
            out.push(fields::operation_header_name(
                name,
                &format!("{q}.{side}.remove[{i}]"),
            ));
        }
    }
}
