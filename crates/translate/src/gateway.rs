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
//! TLS servers terminate in SIMPLE, MUTUAL, OPTIONAL_MUTUAL or ISTIO_MUTUAL mode; HTTPS
//! servers then route HTTP, TLS servers bytes (VirtualService `tcp` rules). PASSTHROUGH
//! servers route TLS untouched by its SNI (VirtualService `tls` rules); TCP and MONGO
//! servers route bytes (`tcp` rules). Left out (no listener): AUTO_PASSTHROUGH, and
//! terminating servers without their certificate files.

pub mod api;
pub(crate) mod l4;

pub(crate) use api::{gateway_config, virtual_hosts as api_virtual_hosts, NamedGateway, NamedVs};

use crate::ProxyView;
use bowline_config::common::{host_matches, selector_matches};
use bowline_config::istio::gateway::{Server, ServerTlsSettings};
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
    /// TLS terminated here (HTTPS), then routed as HTTP.
    Https(Termination),
    /// TLS passed through untouched (`PASSTHROUGH`), routed by its SNI: VirtualService
    /// `tls` rules.
    Passthrough,
    /// Opaque TCP (protocol TCP, MONGO…, or TLS terminated here first): VirtualService
    /// `tcp` rules.
    Tcp(Option<Termination>),
}

/// How a server terminates TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Termination {
    pub certificate: Certificate,
    /// Client certificates: `None` asks for none (SIMPLE).
    pub clients: Option<ClientCertificates>,
}

/// The certificate a server presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Certificate {
    /// PEM files (a `credentialName` resolved in the credentials directory, or
    /// `serverCertificate`/`privateKey`).
    Files { cert: String, key: String },
    /// The gateway's own mesh certificate (ISTIO_MUTUAL), over SDS.
    Mesh,
}

/// Which client certificates a server asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCertificates {
    /// The CA they must chain to: a PEM file, or the mesh root (ISTIO_MUTUAL).
    pub ca: Option<String>,
    /// MUTUAL and ISTIO_MUTUAL refuse a client without one; OPTIONAL_MUTUAL does not.
    pub required: bool,
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
    /// PASSTHROUGH servers: their VirtualServices' `tls` rules route by SNI.
    pub passthrough: Vec<BoundServer<'a>>,
    /// TCP servers (the first one of a port serves it: one opaque chain per port).
    pub tcp: Vec<L4Server<'a>>,
}

/// A TLS-terminating server of a port.
#[derive(Debug, Clone)]
pub(crate) struct TlsServer<'a> {
    pub bound: BoundServer<'a>,
    /// Its route configuration (and filter chain) name.
    pub route: String,
    /// SNI names the chain matches; empty = any.
    pub server_names: Vec<String>,
    pub termination: Termination,
}

/// A server whose traffic is proxied as bytes: passed-through TLS (by SNI) or TCP.
#[derive(Debug, Clone)]
pub(crate) struct L4Server<'a> {
    pub bound: BoundServer<'a>,
    /// Set for TLS terminated before the bytes are proxied.
    pub termination: Option<Termination>,
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
                    passthrough: Vec::new(),
                    tcp: Vec::new(),
                });
            match kind {
                ServerKind::Http { .. } => plan.http.push(bound),
                ServerKind::Passthrough => plan.passthrough.push(bound),
                ServerKind::Tcp(termination) => plan.tcp.push(L4Server { bound, termination }),
                ServerKind::Https(termination) => {
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
                        termination,
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
    let mode = server.tls.as_ref().and_then(|t| t.mode.as_deref());
    match (protocol.as_str(), &server.tls) {
        ("HTTP" | "HTTP2" | "GRPC", tls) => Some(ServerKind::Http {
            https_redirect: tls.as_ref().is_some_and(|t| t.https_redirect),
        }),
        ("HTTPS" | "TLS", Some(_)) if mode == Some("PASSTHROUGH") => Some(ServerKind::Passthrough),
        ("HTTPS", Some(tls)) => Some(ServerKind::Https(termination(tls, credentials_dir)?)),
        ("TLS", Some(tls)) => Some(ServerKind::Tcp(Some(termination(tls, credentials_dir)?))),
        ("TCP" | "MONGO", _) => Some(ServerKind::Tcp(None)),
        _ => None,
    }
}

/// How a server's `tls` terminates: SIMPLE, MUTUAL and OPTIONAL_MUTUAL with files (a
/// `credentialName` is `<dir>/<name>/tls.crt`, `tls.key` and, for client certificates,
/// `ca.crt`: the keys of Istio's credential secrets), ISTIO_MUTUAL with the mesh's
/// certificates. `None` for another mode or missing files.
fn termination(tls: &ServerTlsSettings, credentials_dir: Option<&str>) -> Option<Termination> {
    let files = |name: &str| -> Option<(String, String, String)> {
        let dir = credentials_dir?;
        let base = format!("{}/{name}", dir.trim_end_matches('/'));
        Some((
            format!("{base}/tls.crt"),
            format!("{base}/tls.key"),
            format!("{base}/ca.crt"),
        ))
    };
    let (cert, key, credential_ca) = if !tls.credential_name.is_empty() {
        let (c, k, ca) = files(&tls.credential_name)?;
        (c, k, Some(ca))
    } else {
        (
            tls.server_certificate.clone(),
            tls.private_key.clone(),
            None,
        )
    };
    let ca = (!tls.ca_certificates.is_empty())
        .then(|| tls.ca_certificates.clone())
        .or(credential_ca);
    let certificate = || -> Option<Certificate> {
        (!cert.is_empty() && !key.is_empty()).then(|| Certificate::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
    };
    let clients = |required: bool| -> Option<ClientCertificates> {
        Some(ClientCertificates {
            ca: Some(ca.clone()?),
            required,
        })
    };
    Some(match tls.mode.as_deref() {
        None | Some("SIMPLE") => Termination {
            certificate: certificate()?,
            clients: None,
        },
        Some("MUTUAL") => Termination {
            certificate: certificate()?,
            clients: Some(clients(true)?),
        },
        Some("OPTIONAL_MUTUAL") => Termination {
            certificate: certificate()?,
            clients: Some(clients(false)?),
        },
        Some("ISTIO_MUTUAL") => Termination {
            certificate: Certificate::Mesh,
            clients: Some(ClientCertificates {
                ca: None,
                required: true,
            }),
        },
        _ => return None,
    })
}

/// SNI names of a TLS server: its hosts without the namespace part; none for `*` (any).
pub(crate) fn server_names(server: &Server) -> Vec<String> {
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
        let files = |cert: &str, key: &str| Certificate::Files {
            cert: cert.into(),
            key: key.into(),
        };
        assert_eq!(
            server_kind(&cred, Some("/certs/")),
            Some(ServerKind::Https(Termination {
                certificate: files("/certs/a-cert/tls.crt", "/certs/a-cert/tls.key"),
                clients: None,
            }))
        );
        let cases = [
            (
                serde_json::json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"serverCertificate": "/c.pem", "privateKey": "/k.pem"}}),
                Some(ServerKind::Https(Termination {
                    certificate: files("/c.pem", "/k.pem"),
                    clients: None,
                })),
            ),
            (
                serde_json::json!({"port": {"number": 443, "name": "tls", "protocol": "TLS"}, "hosts": ["*"], "tls": {"mode": "PASSTHROUGH"}}),
                Some(ServerKind::Passthrough),
            ),
            (
                serde_json::json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"mode": "MUTUAL", "credentialName": "x"}}),
                Some(ServerKind::Https(Termination {
                    certificate: files("/certs/x/tls.crt", "/certs/x/tls.key"),
                    clients: Some(ClientCertificates {
                        ca: Some("/certs/x/ca.crt".into()),
                        required: true,
                    }),
                })),
            ),
            (
                serde_json::json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"mode": "OPTIONAL_MUTUAL", "serverCertificate": "/c.pem", "privateKey": "/k.pem", "caCertificates": "/ca.pem"}}),
                Some(ServerKind::Https(Termination {
                    certificate: files("/c.pem", "/k.pem"),
                    clients: Some(ClientCertificates {
                        ca: Some("/ca.pem".into()),
                        required: false,
                    }),
                })),
            ),
            (
                serde_json::json!({"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "hosts": ["*"], "tls": {"mode": "ISTIO_MUTUAL"}}),
                Some(ServerKind::Tcp(Some(Termination {
                    certificate: Certificate::Mesh,
                    clients: Some(ClientCertificates {
                        ca: None,
                        required: true,
                    }),
                }))),
            ),
            (
                serde_json::json!({"port": {"number": 31400, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"]}),
                Some(ServerKind::Tcp(None)),
            ),
            (
                serde_json::json!({"port": {"number": 443, "name": "tls", "protocol": "TLS"}, "hosts": ["*"], "tls": {"mode": "AUTO_PASSTHROUGH"}}),
                None,
            ),
            (
                serde_json::json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"mode": "MUTUAL", "serverCertificate": "/c.pem", "privateKey": "/k.pem"}}),
                None,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                server_kind(&server(json.clone()), Some("/certs")),
                want,
                "{json}"
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
