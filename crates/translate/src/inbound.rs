//! The proxy's own workload as the inbound side sees it: which local ports it serves and
//! with which protocol.

use crate::proto::valid_port;
use crate::{ProxyView, PushContext};
use bowline_registry::Protocol;

/// One port of the local application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InboundPort {
    pub number: u16,
    pub protocol: Protocol,
}

/// The ports of the proxy's registry Workload, in port-number order; empty when the workload
/// is unknown (then the proxy gets no inbound listener nor inbound clusters). A port's
/// protocol is the one of the service port of the same name that selects this workload,
/// else Istio's port-name convention (`http-…`, `grpc-…`), else TCP. UDP ports and numbers
/// Envoy refuses are skipped; two names for one number keep the first (name order).
pub(crate) fn inbound_ports(ctx: &PushContext, proxy: &ProxyView) -> Vec<InboundPort> {
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
        out.push(InboundPort { number, protocol });
    }
    out.sort_by_key(|p| p.number);
    out
}
