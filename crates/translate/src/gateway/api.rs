//! Kubernetes Gateway API on the ingress gateway, by the spec.
//!
//! - Each HTTP or HTTPS (`Terminate`) listener of a `Gateway` becomes an Istio Gateway
//!   server named `<gateway>-<listener>` (see [`server_name`]), so that listeners, ports
//!   and TLS share the gateway role's plan (`crate::gateway`). Gateway API Gateways have no
//!   selector: every gateway proxy serves them. An HTTPS listener's first certificateRef is
//!   its `credentialName`; one in another namespace needs a ReferenceGrant there, else the
//!   listener is not served. Other protocols (TCP, TLS, UDP, HBONE) are not served.
//! - HTTPRoutes and GRPCRoutes attach to listeners (`attach`) and become the virtual hosts
//!   of those listeners' route configurations (`vhosts`), translated straight to Envoy
//!   routes: matches (`matching`), precedence across all routes (`precedence`), filters
//!   (`filters`), backends with ReferenceGrants (`backends`, `grants`) and the rule's
//!   action (`action`).
//! - [`status`] computes the conditions Kubernetes would show for each route and Gateway.

mod action;
mod attach;
mod backends;
mod filters;
mod grants;
mod matching;
mod precedence;
pub mod status;
mod vhosts;

pub(crate) use vhosts::virtual_hosts;

use bowline_config::gateway_api::{Gateway as ApiGateway, Listener};
use bowline_config::istio::{Gateway, VirtualService};
use bowline_config::ConfigSet;
use grants::{permitted, Referent, Referrer, GATEWAY_GROUP};
use serde_json::json;

/// A Gateway (Istio's own, or converted) with where it lives.
#[derive(Debug, Clone)]
pub(crate) struct NamedGateway {
    pub namespace: String,
    pub name: String,
    pub spec: Gateway,
}

/// A VirtualService with the namespace its names resolve in.
#[derive(Debug, Clone)]
pub(crate) struct NamedVs {
    pub namespace: String,
    pub spec: VirtualService,
}

/// Istio's Gateways in load order, then one per served Gateway API listener; Istio's
/// VirtualServices in load order (Gateway API routes are not VirtualServices: see
/// [`virtual_hosts`]).
pub(crate) fn gateway_config(config: &ConfigSet) -> (Vec<NamedGateway>, Vec<NamedVs>) {
    let mut gateways: Vec<NamedGateway> = config
        .gateways()
        .map(|(r, g)| NamedGateway {
            namespace: r.namespace().to_string(),
            name: r.meta.name.clone(),
            spec: g.clone(),
        })
        .collect();
    let services: Vec<NamedVs> = config
        .virtual_services()
        .map(|(r, vs)| NamedVs {
            namespace: r.namespace().to_string(),
            spec: vs.clone(),
        })
        .collect();
    for (r, g) in config.k8s_gateways() {
        gateways.extend(listeners(config, r.namespace(), r.name(), g));
    }
    (gateways, services)
}

/// The name of the Istio Gateway standing for one Gateway API listener.
pub(crate) fn server_name(gateway: &str, listener: &str) -> String {
    format!("{gateway}-{listener}")
}

/// One Istio Gateway per served listener (see the module docs).
fn listeners(config: &ConfigSet, ns: &str, name: &str, g: &ApiGateway) -> Vec<NamedGateway> {
    g.listeners
        .iter()
        .filter_map(|l| {
            let host = l.hostname.clone().unwrap_or_else(|| "*".into());
            let mut server = json!({
                "port": {"number": l.port, "name": l.name, "protocol": l.protocol},
                "hosts": [format!("*/{host}")],
            });
            match l.protocol.as_str() {
                "HTTP" => {}
                "HTTPS" => {
                    server["tls"] =
                        json!({"mode": "SIMPLE", "credentialName": certificate(config, ns, l)?})
                }
                _ => return None,
            }
            Some(NamedGateway {
                namespace: ns.to_string(),
                name: server_name(name, &l.name),
                spec: serde_json::from_value(json!({"servers": [server]})).ok()?,
            })
        })
        .collect()
}

/// The credential of a `Terminate` HTTPS listener: its first certificateRef, a Secret of
/// the Gateway's namespace or of one whose ReferenceGrant lets Gateways refer to it. A
/// credential of another namespace is looked up as `<namespace>/<name>` under the
/// gateway's credentials directory.
pub(crate) fn certificate(config: &ConfigSet, ns: &str, l: &Listener) -> Option<String> {
    let tls = l.tls.as_ref()?;
    if !matches!(tls.mode.as_deref(), None | Some("Terminate")) {
        return None;
    }
    let cert = tls.certificate_refs.first()?;
    if certificate_ref_ok(config, ns, cert).is_err() {
        return None;
    }
    let cert_ns = if cert.namespace.is_empty() {
        ns
    } else {
        &cert.namespace
    };
    Some(if cert_ns == ns {
        cert.name.clone()
    } else {
        format!("{cert_ns}/{}", cert.name)
    })
}

/// Whether a certificateRef is usable: a core `Secret` (else `InvalidCertificateRef`) in the
/// Gateway's namespace or granted (else `RefNotPermitted`).
pub(crate) fn certificate_ref_ok(
    config: &ConfigSet,
    ns: &str,
    cert: &bowline_config::gateway_api::SecretObjectReference,
) -> Result<(), &'static str> {
    let kind = if cert.kind.is_empty() {
        "Secret"
    } else {
        &cert.kind
    };
    if !(cert.group.is_empty() || cert.group == "core") || kind != "Secret" {
        return Err("InvalidCertificateRef");
    }
    let cert_ns = if cert.namespace.is_empty() {
        ns
    } else {
        &cert.namespace
    };
    let from = Referrer {
        group: GATEWAY_GROUP,
        kind: "Gateway",
        namespace: ns,
    };
    let to = Referent {
        group: "",
        kind: "Secret",
        namespace: cert_ns,
        name: &cert.name,
    };
    if permitted(config, from, to) {
        Ok(())
    } else {
        Err("RefNotPermitted")
    }
}
