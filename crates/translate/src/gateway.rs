//! The ingress-gateway role: which Gateway servers a gateway proxy serves, on which ports,
//! and under which route configuration names. Listeners (`listeners/gateway.rs`) and routes
//! (`routes/gateway.rs`) are built from this one decision so they always agree.
//!
//! Istio's rules: a `Gateway` applies to the gateway workloads its `selector` matches (in
//! any namespace); its servers become listeners `0.0.0.0_<port>`; plaintext HTTP servers of
//! one port share the route configuration `http.<port>`; each TLS-terminating (`SIMPLE`)
//! server gets its own filter chain, matched by SNI, and route configuration
//! `https.<port>.<server port name>.<gateway>.<namespace>`. A VirtualService reaches a
//! server when its `gateways` name the Gateway (`<ns>/<name>`, or `<name>` in the
//! VirtualService's namespace) and one of its hosts is allowed by the server's `hosts`.
//!
//! Kubernetes Gateway API listeners are converted to the same server shapes first; their
//! HTTPRoutes and GRPCRoutes become virtual hosts of their own (see `api`).
//!
//! Left out (their servers get no listener): TLS modes other than `SIMPLE` (PASSTHROUGH,
//! MUTUAL, ISTIO_MUTUAL, AUTO_PASSTHROUGH) and TCP/TLS/MONGO servers.

pub mod api;

pub(crate) use api::{gateway_config, virtual_hosts as api_virtual_hosts, NamedGateway, NamedVs};

use crate::ProxyView;
use bowline_config::common::{host_matches, selector_matches};
use bowline_config::istio::gateway::Server;
use std::collections::BTreeMap;

/// One Gateway server that this proxy serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoundServer<'a> {
    pub gateway_namespace: &'a str,
    pub gateway_name: &'a str,
    pub server: &'a Server,
}

/// How a server's traffic arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// Plaintext HTTP (HTTP, HTTP2, GRPC); `https_redirect` answers 301 to https.
    Http { https_redirect: bool },
    /// TLS terminated here with a certificate from files.
    Https { cert: String, key: String },
}

/// The filter chains of one gateway port, in the order Envoy gets them.
#[derive(Debug, Clone)]
pub(crate) struct PortPlan<'a> {
    pub port: u32,
    pub bind_port: u16,
    /// Plaintext servers (sharing `http.<port>`), if any.
    pub http: Vec<BoundServer<'a>>,
    /// TLS servers, each with its own filter chain and route configuration.
    pub https: Vec<TlsServer<'a>>,
}

/// A TLS-terminating server of a port.
#[derive(Debug, Clone)]
pub(crate) struct TlsServer<'a> {
    pub bound: BoundServer<'a>,
    /// Its route configuration (and filter chain) name.
    pub route: String,
    /// SNI names the chain matches; empty = any.
    pub server_names: Vec<String>,
    pub cert: String,
    pub key: String,
}

/// Every port this gateway listens on, in port order. Empty for sidecars.
pub(crate) fn ports<'a>(gateways: &'a [NamedGateway], proxy: &ProxyView) -> Vec<PortPlan<'a>> {
    let Some(gw) = &proxy.gateway else {
        return Vec::new();
    };
    let mut by_port: BTreeMap<u32, PortPlan<'a>> = BTreeMap::new();
    let mut sni_taken: BTreeMap<u32, Vec<Vec<String>>> = BTreeMap::new();
    for gateway in gateways {
        if !selector_matches(&gateway.spec.selector, &proxy.labels) {
            continue;
        }
        for server in &gateway.spec.servers {
            let Some(bind_port) = gw.bind_port(server.port.number) else {
                continue;
            };
            let Some(kind) = server_kind(server, gw.credentials_dir.as_deref()) else {
                continue;
            };
            let bound = BoundServer {
                gateway_namespace: &gateway.namespace,
                gateway_name: &gateway.name,
                server,
            };
            let plan = by_port
                .entry(server.port.number)
                .or_insert_with(|| PortPlan {
                    port: server.port.number,
                    bind_port,
                    http: Vec::new(),
                    https: Vec::new(),
                });
            match kind {
                ServerKind::Http { .. } => plan.http.push(bound),
                ServerKind::Https { cert, key } => {
                    let names = server_names(server);
                    // Envoy refuses two chains with one match: the first server keeps it.
                    let taken = sni_taken.entry(plan.port).or_default();
                    if taken.contains(&names) {
                        continue;
                    }
                    taken.push(names.clone());
                    let route = format!(
                        "https.{}.{}.{}.{}",
                        plan.port, server.port.name, bound.gateway_name, bound.gateway_namespace
                    );
                    plan.https.push(TlsServer {
                        bound,
                        route,
                        server_names: names,
                        cert,
                        key,
                    });
                }
            }
        }
    }
    by_port.into_values().collect()
}

/// The route configuration of a port's plaintext servers.
pub(crate) fn http_route_name(port: u32) -> String {
    format!("http.{port}")
}

/// What a server is, or `None` when it is left out (see the module docs).
pub(crate) fn server_kind(server: &Server, credentials_dir: Option<&str>) -> Option<ServerKind> {
    let protocol = server.port.protocol.to_ascii_uppercase();
    match (protocol.as_str(), &server.tls) {
        ("HTTP" | "HTTP2" | "GRPC", tls) => Some(ServerKind::Http {
            https_redirect: tls.as_ref().is_some_and(|t| t.https_redirect),
        }),
        ("HTTPS", Some(tls)) if matches!(tls.mode.as_deref(), None | Some("SIMPLE")) => {
            let (cert, key) = if !tls.credential_name.is_empty() {
                let dir = credentials_dir?;
                let base = format!("{}/{}", dir.trim_end_matches('/'), tls.credential_name);
                (format!("{base}/tls.crt"), format!("{base}/tls.key"))
            } else if !tls.server_certificate.is_empty() && !tls.private_key.is_empty() {
                (tls.server_certificate.clone(), tls.private_key.clone())
            } else {
                return None;
            };
            Some(ServerKind::Https { cert, key })
        }
        _ => None,
    }
}

/// SNI names of a TLS server: its hosts without the namespace part; none for `*` (any).
fn server_names(server: &Server) -> Vec<String> {
    let mut names: Vec<String> = server
        .hosts
        .iter()
        .map(|h| host_part(h).to_string())
        .filter(|h| h != "*")
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `ns/host` → `host`; `host` → `host`.
pub(crate) fn host_part(host: &str) -> &str {
    host.split_once('/').map_or(host, |(_, h)| h)
}

/// The hosts under which `server` exposes a VirtualService host of `vs_namespace`: for each
/// server host (`[ns/]host`; ns `*` any, `.` the Gateway's own) that intersects it, the
/// narrower of the two — a VirtualService for `*` on a server for `shop.example.com` serves
/// `shop.example.com` there, as in Istio.
pub(crate) fn exposed(bound: &BoundServer<'_>, host: &str, vs_namespace: &str) -> Vec<String> {
    let mut out: Vec<String> = bound
        .server
        .hosts
        .iter()
        .filter_map(|entry| {
            let (ns, pattern) = entry.split_once('/').unwrap_or(("*", entry.as_str()));
            let ns_ok = match ns {
                "*" => true,
                "." => vs_namespace == bound.gateway_namespace,
                ns => ns == vs_namespace,
            };
            if !ns_ok {
                None
            } else if host_matches(pattern, host) {
                Some(host.to_string())
            } else if host_matches(host, pattern) {
                Some(pattern.to_string())
            } else {
                None
            }
        })
        .collect();
    out.dedup();
    out
}

/// Whether a VirtualService's `gateways` entry names this server's Gateway.
pub(crate) fn names_gateway(entry: &str, vs_namespace: &str, bound: &BoundServer<'_>) -> bool {
    let (ns, name) = entry.split_once('/').unwrap_or((vs_namespace, entry));
    ns == bound.gateway_namespace && name == bound.gateway_name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(json: serde_json::Value) -> Server {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn server_kinds() {
        let http = server(
            serde_json::json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}),
        );
        assert_eq!(
            server_kind(&http, None),
            Some(ServerKind::Http {
                https_redirect: false
            })
        );
        let redirect = server(
            serde_json::json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"httpsRedirect": true}}),
        );
        assert_eq!(
            server_kind(&redirect, None),
            Some(ServerKind::Http {
                https_redirect: true
            })
        );
        let cred = server(
            serde_json::json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "a-cert"}}),
        );
        assert_eq!(
            server_kind(&cred, None),
            None,
            "no directory to resolve the credential in"
        );
        assert_eq!(
            server_kind(&cred, Some("/certs/")),
            Some(ServerKind::Https {
                cert: "/certs/a-cert/tls.crt".into(),
                key: "/certs/a-cert/tls.key".into()
            })
        );
        let files = server(
            serde_json::json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"serverCertificate": "/c.pem", "privateKey": "/k.pem"}}),
        );
        assert_eq!(
            server_kind(&files, None),
            Some(ServerKind::Https {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
        for other in [
            serde_json::json!({"port": {"number": 443, "name": "tls", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"mode": "PASSTHROUGH"}}),
            serde_json::json!({"port": {"number": 443, "name": "tls", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"mode": "MUTUAL", "credentialName": "x"}}),
            serde_json::json!({"port": {"number": 31400, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"]}),
        ] {
            assert_eq!(
                server_kind(&server(other.clone()), Some("/certs")),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn hosts_and_gateway_references() {
        let s = server(
            serde_json::json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["prod/*.example.com", "./internal.local"]}),
        );
        let bound = BoundServer {
            gateway_namespace: "istio-system",
            gateway_name: "gw",
            server: &s,
        };
        assert_eq!(exposed(&bound, "a.example.com", "prod"), ["a.example.com"]);
        assert!(exposed(&bound, "a.example.com", "dev").is_empty());
        assert_eq!(
            exposed(&bound, "internal.local", "istio-system"),
            ["internal.local"]
        );
        assert!(exposed(&bound, "internal.local", "prod").is_empty());
        assert_eq!(
            exposed(&bound, "*", "prod"),
            ["*.example.com"],
            "the narrower host"
        );
        assert_eq!(exposed(&bound, "*", "istio-system"), ["internal.local"]);
        assert!(names_gateway("istio-system/gw", "default", &bound));
        assert!(names_gateway("gw", "istio-system", &bound));
        assert!(!names_gateway("gw", "default", &bound));
        assert!(!names_gateway("mesh", "istio-system", &bound));
    }
}
