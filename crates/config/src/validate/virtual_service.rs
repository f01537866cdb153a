//! VirtualService checks: hosts and gateways, which actions a rule may combine, matches,
//! destinations and weights. Per-rule policies (retries, fault, CORS, ...) are in
//! [`super::http_policies`]. Rules follow Istio's `validateVirtualService`.

use super::fields::{self, Findings};
use super::http_policies;
use super::labels;
use super::Context;
use crate::diag::{code, Finding};
use crate::istio::virtual_service::{
    Destination, HttpMatchRequest, HttpRoute, L4MatchAttributes, RouteDestination, TcpRoute,
    TlsRoute, VirtualService,
};

/// A VirtualService without hosts is a delegate (Istio's rule): it is used only through
/// another VirtualService's `delegate`, so it takes no gateways and no tcp/tls rules, and its
/// rules cannot delegate again. `ctx.is_delegate` (another resource names it) adds the last
/// rule to a delegate that also lists hosts.
pub fn check(vs: &VirtualService, ctx: &Context) -> Vec<Finding> {
    let mut out = Findings::default();
    let ctx = &Context {
        is_delegate: ctx.is_delegate || vs.hosts.is_empty(),
    };
    if vs.hosts.is_empty() {
        let delegate_only = |out: &mut Findings, set: bool, field: &str, what: &str| {
            if set {
                out.error(
                    code::CONFLICT,
                    field,
                    format!("a VirtualService without hosts is a delegate, which takes no {what}; add `hosts` if it is meant to route on its own"),
                );
            }
        };
        delegate_only(
            &mut out,
            !vs.gateways.is_empty(),
            "spec.gateways",
            "gateways (it applies where the delegating VirtualService does)",
        );
        delegate_only(&mut out, !vs.tcp.is_empty(), "spec.tcp", "tcp rules");
        delegate_only(&mut out, !vs.tls.is_empty(), "spec.tls", "tls rules");
    }
    let on_mesh = bound_to_mesh(&vs.gateways);
    for (i, host) in vs.hosts.iter().enumerate() {
        let field = format!("spec.hosts[{i}]");
        if host == "*" && on_mesh {
            out.error(code::HOST, field, "host `*` is not allowed for VirtualServices bound to the mesh gateway; name the services");
        } else {
            out.push(fields::wildcard_host(host, &field));
        }
    }
    gateway_refs(&vs.gateways, "spec.gateways", &mut out);
    out.require(
        vs.http.is_empty() && vs.tcp.is_empty() && vs.tls.is_empty(),
        "spec",
        "a VirtualService needs at least one `http`, `tcp` or `tls` rule",
    );
    for (i, rule) in vs.http.iter().enumerate() {
        http_rule(rule, &format!("spec.http[{i}]"), ctx, &mut out);
    }
    for (i, rule) in vs.tcp.iter().enumerate() {
        tcp_rule(rule, &format!("spec.tcp[{i}]"), &mut out);
    }
    for (i, rule) in vs.tls.iter().enumerate() {
        tls_rule(rule, &format!("spec.tls[{i}]"), &mut out);
    }
    out.0
}

/// A VirtualService applies to sidecars when it names no gateway or names `mesh`.
pub fn bound_to_mesh(gateways: &[String]) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| g == "mesh")
}

/// `mesh`, `<namespace>/<name>` or `<name>` (legacy `<name>.<namespace>.svc...` too).
fn gateway_refs(gateways: &[String], field: &str, out: &mut Findings) {
    for (i, gw) in gateways.iter().enumerate() {
        let ok = match gw.split_once('/') {
            _ if gw == "mesh" => true,
            Some((ns, name)) => fields::is_dns1123_label(ns) && fields::is_dns1123_label(name),
            None => fields::is_dns1123_subdomain(gw),
        };
        if !ok {
            out.error(
                code::HOST,
                format!("{field}[{i}]"),
                format!("invalid gateway reference {gw:?}: write `mesh`, `<namespace>/<name>` or `<name>`"),
            );
        }
    }
}

fn http_rule(rule: &HttpRoute, p: &str, ctx: &Context, out: &mut Findings) {
    out.push(super::names::name(&rule.name, &format!("{p}.name")));
    actions(rule, p, ctx, out);
    for (j, m) in rule.matches.iter().enumerate() {
        let q = format!("{p}.match[{j}]");
        out.push(super::names::name(&m.name, &format!("{q}.name")));
        out.push(super::names::name(
            &m.stat_prefix,
            &format!("{q}.statPrefix"),
        ));
        http_match(m, &q, out);
    }
    destinations(
        rule.route.iter().map(|r| (&r.destination, r.weight)),
        &format!("{p}.route"),
        out,
    );
    for (k, r) in rule.route.iter().enumerate() {
        if let Some(h) = &r.headers {
            http_policies::headers(h, &format!("{p}.route[{k}].headers"), out);
        }
    }
    if let Some(d) = &rule.delegate {
        out.require(
            d.name.is_empty(),
            format!("{p}.delegate.name"),
            "delegate.name is required",
        );
    }
    http_policies::check(rule, p, out);
}

/// Which of route / redirect / directResponse / delegate a rule may combine (Istio's
/// `validateHTTPRouteConflict`).
fn actions(rule: &HttpRoute, p: &str, ctx: &Context, out: &mut Findings) {
    let conflict = |out: &mut Findings, field: &str, msg: &str| {
        out.error(code::CONFLICT, format!("{p}.{field}"), msg)
    };
    if rule.delegate.is_some() {
        if ctx.is_delegate {
            conflict(
                out,
                "delegate",
                "a delegate VirtualService's rules cannot delegate again",
            );
        }
        if rule.redirect.is_some() {
            conflict(
                out,
                "redirect",
                "a rule with `delegate` must not also set `redirect`",
            );
        }
        if !rule.route.is_empty() {
            conflict(
                out,
                "route",
                "a rule with `delegate` must not also set `route`",
            );
        }
        return;
    }
    let has_route = !rule.route.is_empty();
    if rule.redirect.is_some() {
        if has_route {
            conflict(
                out,
                "redirect",
                "a rule cannot have both `route` and `redirect`",
            );
        }
        if rule.fault.is_some() {
            conflict(
                out,
                "fault",
                "a rule cannot have both `fault` and `redirect`",
            );
        }
        if rule.rewrite.is_some() {
            conflict(
                out,
                "rewrite",
                "a rule cannot have both `rewrite` and `redirect`",
            );
        }
        if rule.direct_response.is_some() {
            conflict(
                out,
                "directResponse",
                "a rule cannot have both `directResponse` and `redirect`",
            );
        }
    } else if rule.direct_response.is_some() {
        if has_route {
            conflict(
                out,
                "directResponse",
                "a rule cannot have both `route` and `directResponse`",
            );
        }
        if rule.fault.is_some() {
            conflict(
                out,
                "fault",
                "a rule cannot have both `fault` and `directResponse`",
            );
        }
        if rule.rewrite.is_some() {
            conflict(
                out,
                "rewrite",
                "a rule cannot have both `rewrite` and `directResponse`",
            );
        }
    } else if !has_route {
        out.error(
            code::REQUIRED,
            format!("{p}.route"),
            "each http rule needs `route`, `redirect`, `directResponse` or `delegate`",
        );
    }
    if rule.mirror.is_some() && !rule.mirrors.is_empty() {
        conflict(
            out,
            "mirrors",
            "a rule cannot have both `mirror` and `mirrors`",
        );
    }
}

fn http_match(m: &HttpMatchRequest, q: &str, out: &mut Findings) {
    if let Some(uri) = &m.uri {
        fields::string_match(uri, &format!("{q}.uri"), true, out);
    }
    for (name, sm) in [
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = sm {
            fields::string_match(sm, &format!("{q}.{name}"), false, out);
        }
    }
    for (header, sm) in &m.headers {
        let field = format!("{q}.headers.{header}");
        fields::match_header_name(header, &field, out);
        fields::string_match(sm, &field, false, out);
    }
    for (header, sm) in &m.without_headers {
        let field = format!("{q}.withoutHeaders.{header}");
        fields::match_header_name(header, &field, out);
        fields::string_match(sm, &field, false, out);
    }
    for (param, sm) in &m.query_params {
        fields::string_match(sm, &format!("{q}.queryParams.{param}"), false, out);
    }
    if let Some(port) = m.port {
        out.push(fields::port(port.into(), &format!("{q}.port")));
    }
    labels::selector(&m.source_labels, &format!("{q}.sourceLabels"), out);
    if !m.source_namespace.is_empty() && !fields::is_dns1123_label(&m.source_namespace) {
        out.error(
            code::HOST,
            format!("{q}.sourceNamespace"),
            format!("{:?} is not a namespace name", m.source_namespace),
        );
    }
    gateway_refs(&m.gateways, &format!("{q}.gateways"), out);
}

fn l4_match(m: &L4MatchAttributes, q: &str, out: &mut Findings) {
    for (i, subnet) in m.destination_subnets.iter().enumerate() {
        out.push(fields::ip_or_cidr(
            subnet,
            &format!("{q}.destinationSubnets[{i}]"),
        ));
    }
    if !m.source_subnet.is_empty() {
        out.push(fields::ip_or_cidr(
            &m.source_subnet,
            &format!("{q}.sourceSubnet"),
        ));
    }
    if let Some(port) = m.port {
        out.push(fields::port(port.into(), &format!("{q}.port")));
    }
    labels::selector(&m.source_labels, &format!("{q}.sourceLabels"), out);
    gateway_refs(&m.gateways, &format!("{q}.gateways"), out);
}

fn tcp_rule(rule: &TcpRoute, p: &str, out: &mut Findings) {
    for (j, m) in rule.matches.iter().enumerate() {
        l4_match(m, &format!("{p}.match[{j}]"), out);
    }
    out.require(
        rule.route.is_empty(),
        format!("{p}.route"),
        "a tcp rule needs at least one route",
    );
    l4_destinations(&rule.route, p, out);
}

fn tls_rule(rule: &TlsRoute, p: &str, out: &mut Findings) {
    out.require(
        rule.matches.is_empty(),
        format!("{p}.match"),
        "a tls rule needs at least one match (with sniHosts)",
    );
    for (j, m) in rule.matches.iter().enumerate() {
        let q = format!("{p}.match[{j}]");
        out.require(
            m.sni_hosts.is_empty(),
            format!("{q}.sniHosts"),
            "sniHosts is required",
        );
        for (k, sni) in m.sni_hosts.iter().enumerate() {
            out.push(fields::wildcard_host(sni, &format!("{q}.sniHosts[{k}]")));
        }
        for (k, subnet) in m.destination_subnets.iter().enumerate() {
            out.push(fields::ip_or_cidr(
                subnet,
                &format!("{q}.destinationSubnets[{k}]"),
            ));
        }
        if let Some(port) = m.port {
            out.push(fields::port(port.into(), &format!("{q}.port")));
        }
        labels::selector(&m.source_labels, &format!("{q}.sourceLabels"), out);
        gateway_refs(&m.gateways, &format!("{q}.gateways"), out);
    }
    out.require(
        rule.route.is_empty(),
        format!("{p}.route"),
        "a tls rule needs at least one route",
    );
    l4_destinations(&rule.route, p, out);
}

fn l4_destinations(route: &[RouteDestination], p: &str, out: &mut Findings) {
    destinations(
        route.iter().map(|r| (&r.destination, r.weight)),
        &format!("{p}.route"),
        out,
    );
}

/// Destinations of one rule and their weights: each weight 0–100; with more than one
/// destination the weights must sum to 100 (an unset weight counts as 0).
fn destinations<'a>(
    routes: impl Iterator<Item = (&'a Destination, Option<i32>)>,
    p: &str,
    out: &mut Findings,
) {
    let mut total: i64 = 0;
    let mut count = 0;
    for (k, (dest, weight)) in routes.enumerate() {
        count += 1;
        destination(dest, &format!("{p}[{k}].destination"), out);
        let w = weight.unwrap_or(0);
        if !(0..=100).contains(&w) {
            out.error(
                code::WEIGHT,
                format!("{p}[{k}].weight"),
                format!("weight {w} is outside 0–100"),
            );
        }
        total += i64::from(w);
    }
    if count > 1 && total != 100 {
        out.error(
            code::WEIGHT,
            p,
            format!(
                "the weights of these {count} destinations sum to {total}; they must sum to 100"
            ),
        );
    }
}

/// A destination: a host (not `*`), an optional subset (a DNS label) and port.
pub fn destination(d: &Destination, field: &str, out: &mut Findings) {
    if d.host.is_empty() {
        out.error(
            code::REQUIRED,
            format!("{field}.host"),
            "destination.host is required",
        );
    } else if d.host == "*" {
        out.error(
            code::HOST,
            format!("{field}.host"),
            "destination host cannot be `*`; name a service",
        );
    } else {
        out.push(fields::wildcard_host(&d.host, &format!("{field}.host")));
    }
    if !d.subset.is_empty() && !fields::is_dns1123_label(&d.subset) {
        out.error(
            code::HOST,
            format!("{field}.subset"),
            format!("subset name {:?} must be a DNS label", d.subset),
        );
    }
    if let Some(port) = &d.port {
        out.push(fields::port(
            port.number.into(),
            &format!("{field}.port.number"),
        ));
    }
}
