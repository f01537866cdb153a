//! The proxy's own workload as the inbound side sees it: which ports it takes inbound
//! traffic on, with which protocol, and where the application listens for it.

use crate::proto::valid_port;
use crate::{ProxyView, PushContext};
use bowline_registry::Protocol;

/// One inbound port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InboundPort {
    pub number: u16,
    pub protocol: Protocol,
    /// Where the application takes it: `127.0.0.1:<number>` unless a Sidecar ingress
    /// listener says otherwise (an `ip:port`, or `unix:///path`).
    pub endpoint: String,
}

/// The ports of the proxy's registry Workload, in port-number order; empty when the workload
/// is unknown (then the proxy gets no inbound listener nor inbound clusters). A port's
/// protocol is the one of the service port of the same name that selects this workload,
/// else Istio's port-name convention (`http-…`, `grpc-…`), else TCP. UDP ports and numbers
/// Envoy refuses are skipped; two names for one number keep the first (name order).
///
/// A Sidecar with ingress listeners replaces all that: its listeners' ports, protocols and
/// default endpoints, for a workload the registry knows or not.
pub(crate) fn inbound_ports(ctx: &PushContext, proxy: &ProxyView) -> Vec<InboundPort> {
    if let Some(sidecar) = ctx
        .sidecar_of(proxy)
        .filter(|s| !s.scope.ingress.is_empty())
    {
        let mut out: Vec<InboundPort> = Vec::new();
        for l in &sidecar.scope.ingress {
            if l.protocol == Protocol::Udp || out.iter().any(|p| p.number == l.port) {
                continue;
            }
            out.push(InboundPort {
                number: l.port,
                protocol: l.protocol,
                endpoint: ingress_endpoint(&l.default_endpoint, l.port, &proxy.ip),
            });
        }
        out.sort_by_key(|p| p.number);
        return out;
    }
    let Some(workload) = ctx.workload(&proxy.workload, &proxy.namespace) else {
        return Vec::new();
    };
    let key = format!("{}/{}", workload.namespace, workload.name);
    let mut out: Vec<InboundPort> = Vec::new();
    for (name, number) in workload.ports.iter() {
        let Some(number) = valid_port(*number) else {
            continue;
        };
        let declared = ctx
            .services_of_workload(&key)
            .flat_map(|s| &s.ports)
            .find(|p| &p.name == name)
            .map(|p| p.protocol);
        let protocol = declared.unwrap_or_else(|| Protocol::from_port(None, name));
        if protocol == Protocol::Udp || out.iter().any(|p| p.number == number) {
            continue;
        }
        out.push(InboundPort {
            number,
            protocol,
            endpoint: format!("127.0.0.1:{number}"),
        });
    }
    // A service port the workload does not name is taken on the service's target port (or
    // its own number), as its endpoints are: a Kubernetes pod names no ports, its Services'
    // target ports are where it listens (Istio builds a pod's inbound side the same way).
    for port in ctx.services_of_workload(&key).flat_map(|s| &s.ports) {
        if workload.ports.contains_key(&port.name) {
            continue;
        }
        let Some(number) = valid_port(port.target_port.unwrap_or(port.number)) else {
            continue;
        };
        if port.protocol == Protocol::Udp || out.iter().any(|p| p.number == number) {
            continue;
        }
        out.push(InboundPort {
            number,
            protocol: port.protocol,
            endpoint: format!("127.0.0.1:{number}"),
        });
    }
    out.sort_by_key(|p| p.number);
    out
}

/// Istio's `defaultEndpoint`: `0.0.0.0:PORT` is the workload's own address, anything else
/// as written; unset is the listener's port on 127.0.0.1.
fn ingress_endpoint(default_endpoint: &str, port: u16, own_ip: &str) -> String {
    match default_endpoint.strip_prefix("0.0.0.0:") {
        _ if default_endpoint.is_empty() => format!("127.0.0.1:{port}"),
        Some(p) => format!("{own_ip}:{p}"),
        None => default_endpoint.to_string(),
    }
}
