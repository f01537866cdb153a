//! Istio `Gateway` and `Sidecar` checks (Istio's `ValidateGateway`, `ValidateSidecar`).

use super::fields::{self, Findings};
use super::labels;
use super::service_entry::is_protocol;
use crate::diag::{code, Finding};
use crate::istio::gateway::{Gateway, GatewayPort, Server, ServerTlsSettings, Sidecar};
use std::collections::HashMap;

const SERVER_TLS_MODES: &[&str] = &[
    "PASSTHROUGH",
    "SIMPLE",
    "MUTUAL",
    "AUTO_PASSTHROUGH",
    "ISTIO_MUTUAL",
    "OPTIONAL_MUTUAL",
];

pub fn check_gateway(gw: &Gateway) -> Vec<Finding> {
    let mut out = Findings::default();
    out.require(
        gw.servers.is_empty(),
        "spec.servers",
        "a Gateway needs at least one server",
    );
    labels::selector(&gw.selector, "spec.selector", &mut out);
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, server) in gw.servers.iter().enumerate() {
        let p = format!("spec.servers[{i}]");
        check_server(server, &p, &mut out);
        if server.port.name.is_empty() {
            continue;
        }
        if let Some(first) = names.insert(server.port.name.as_str(), i) {
            out.error(
                code::DUPLICATE,
                format!("{p}.port.name"),
                format!("port name {:?} is already used by spec.servers[{first}]; server port names must be unique", server.port.name),
            );
        }
    }
    out.0
}

fn check_server(server: &Server, p: &str, out: &mut Findings) {
    out.push(super::names::name(&server.name, &format!("{p}.name")));
    out.require(
        server.hosts.is_empty(),
        format!("{p}.hosts"),
        "a server needs at least one host",
    );
    for (i, host) in server.hosts.iter().enumerate() {
        let field = format!("{p}.hosts[{i}]");
        let (ns, name) = host.split_once('/').unwrap_or((".", host));
        if !(ns == "*" || ns == "." || fields::is_dns1123_label(ns)) {
            out.error(
                code::HOST,
                &field,
                format!("namespace {ns:?} in {host:?} must be `*`, `.` or a namespace name"),
            );
        }
        out.push(fields::wildcard_host(name, &field));
    }
    port(&server.port, &format!("{p}.port"), true, out);
    let protocol = server.port.protocol.to_ascii_uppercase();
    let tls_protocol = protocol == "HTTPS" || protocol == "TLS";
    match &server.tls {
        None if tls_protocol => out.error(
            code::REQUIRED,
            format!("{p}.tls"),
            format!("{protocol} servers need `tls` settings (mode and credentialName)"),
        ),
        None => {}
        Some(tls) if !tls_protocol => {
            let only_redirect = tls.https_redirect
                && tls.mode.is_none()
                && tls.credential_name.is_empty()
                && tls.server_certificate.is_empty()
                && tls.private_key.is_empty();
            if !only_redirect {
                out.error(
                    code::CONFLICT,
                    format!("{p}.tls"),
                    format!("{protocol} servers cannot have TLS settings (only httpsRedirect); use protocol HTTPS"),
                );
            }
        }
        Some(tls) => server_tls(tls, &format!("{p}.tls"), out),
    }
}

/// A listener port: number 1–65535, a known protocol, and (on Gateways) a name.
fn port(port: &GatewayPort, q: &str, name_required: bool, out: &mut Findings) {
    if port.number == 0 {
        out.error(
            code::REQUIRED,
            format!("{q}.number"),
            "port.number is required",
        );
    } else {
        out.push(fields::port(port.number.into(), &format!("{q}.number")));
    }
    if port.protocol.is_empty() {
        out.error(
            code::REQUIRED,
            format!("{q}.protocol"),
            "port.protocol is required (HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, ...)",
        );
    } else if !is_protocol(&port.protocol) {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.protocol"),
            format!("unknown protocol {:?}", port.protocol),
        );
    }
    out.require(
        name_required && port.name.is_empty(),
        format!("{q}.name"),
        "port.name is required",
    );
    out.push(super::names::name(&port.name, &format!("{q}.name")));
}

/// TLS fields bowline reads but does not pass on yet.
fn unapplied_tls(tls: &ServerTlsSettings, q: &str, out: &mut Findings) {
    if !tls.ecdh_curves.is_empty() {
        out.not_applied(
            format!("{q}.ecdhCurves"),
            "ecdhCurves (the proxy's default curves are offered)",
        );
    }
}

fn server_tls(tls: &ServerTlsSettings, q: &str, out: &mut Findings) {
    unapplied_tls(tls, q, out);
    let mode = tls.mode.as_deref().unwrap_or("SIMPLE");
    if !SERVER_TLS_MODES.contains(&mode) {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.mode"),
            format!(
                "TLS mode {mode:?} must be one of {}",
                SERVER_TLS_MODES.join(", ")
            ),
        );
        return;
    }
    let has_credential = !tls.credential_name.is_empty() || !tls.credential_names.is_empty();
    match mode {
        "ISTIO_MUTUAL" if has_credential || !tls.server_certificate.is_empty() || !tls.private_key.is_empty() => out.error(
            code::CONFLICT,
            q,
            "ISTIO_MUTUAL uses the mesh's own certificates; remove credentialName, serverCertificate and privateKey",
        ),
        "SIMPLE" | "MUTUAL" | "OPTIONAL_MUTUAL" if !has_credential && tls.tls_certificates.is_empty() => {
            out.require(tls.server_certificate.is_empty(), format!("{q}.serverCertificate"), "TLS needs credentialName or serverCertificate and privateKey");
            out.require(tls.private_key.is_empty(), format!("{q}.privateKey"), "TLS needs credentialName or serverCertificate and privateKey");
            if mode != "SIMPLE" {
                out.require(tls.ca_certificates.is_empty(), format!("{q}.caCertificates"), "MUTUAL TLS needs caCertificates (the client CA bundle)");
            }
        }
        _ => {}
    }
}

pub fn check_sidecar(sc: &Sidecar) -> Vec<Finding> {
    let mut out = Findings::default();
    if let Some(sel) = &sc.workload_selector {
        labels::selector(&sel.labels, "spec.workloadSelector.labels", &mut out);
    }
    out.require(
        sc.ingress.is_empty()
            && sc.egress.is_empty()
            && sc.outbound_traffic_policy.is_none()
            && sc.inbound_connection_pool.is_none(),
        "spec",
        "an empty Sidecar changes nothing; give ingress, egress or outboundTrafficPolicy",
    );
    for (i, ingress) in sc.ingress.iter().enumerate() {
        let p = format!("spec.ingress[{i}]");
        match &ingress.port {
            None => out.error(
                code::REQUIRED,
                format!("{p}.port"),
                "ingress listeners need a port",
            ),
            Some(pt) => port(pt, &format!("{p}.port"), false, &mut out),
        }
        if ingress.tls.is_some() {
            out.not_applied(
                format!("{p}.tls"),
                "an ingress listener's own TLS (inbound TLS is the mesh's mutual TLS)",
            );
        }
        if !default_endpoint_ok(&ingress.default_endpoint) {
            out.error(
                code::NOT_ALLOWED,
                format!("{p}.defaultEndpoint"),
                format!(
                    "{:?} must be 127.0.0.1:PORT, 0.0.0.0:PORT or unix:///path",
                    ingress.default_endpoint
                ),
            );
        }
    }
    for (i, egress) in sc.egress.iter().enumerate() {
        let p = format!("spec.egress[{i}]");
        if let Some(pt) = &egress.port {
            port(pt, &format!("{p}.port"), false, &mut out);
        }
        out.require(
            egress.hosts.is_empty(),
            format!("{p}.hosts"),
            "egress listeners need hosts (`namespace/host`, e.g. `./*`)",
        );
        for (j, host) in egress.hosts.iter().enumerate() {
            let field = format!("{p}.hosts[{j}]");
            match host.split_once('/') {
                Some((ns, name)) if ns == "*" || ns == "." || ns == "~" || fields::is_dns1123_label(ns) => {
                    out.push(fields::wildcard_host(name, &field))
                }
                _ => out.error(code::HOST, field, format!("egress host {host:?} must be `namespace/host` (e.g. `./*`, `istio-system/*`)")),
            }
        }
    }
    if let Some(mode) = sc
        .outbound_traffic_policy
        .as_ref()
        .and_then(|p| p.mode.as_deref())
    {
        if mode != "REGISTRY_ONLY" && mode != "ALLOW_ANY" {
            out.error(
                code::NOT_ALLOWED,
                "spec.outboundTrafficPolicy.mode",
                format!("{mode:?} must be REGISTRY_ONLY or ALLOW_ANY"),
            );
        }
    }
    out.0
}

/// Istio's forms of a Sidecar ingress `defaultEndpoint` (empty: unset).
fn default_endpoint_ok(endpoint: &str) -> bool {
    if endpoint.is_empty() {
        return true;
    }
    if let Some(path) = endpoint.strip_prefix("unix://") {
        return path.starts_with('/') || path.starts_with('@');
    }
    match endpoint.split_once(':') {
        Some(("127.0.0.1" | "0.0.0.0", port)) => port.parse::<u16>().is_ok_and(|p| p > 0),
        _ => false,
    }
}
