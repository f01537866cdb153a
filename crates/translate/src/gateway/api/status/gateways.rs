//! Gateway and listener conditions, and how many routes attach to each listener.
//!
//! A listener is served (`Accepted`, `ResolvedRefs`, `Programmed` all True) when its
//! protocol is HTTP, or HTTPS terminating TLS with a usable certificateRef. Other protocols
//! are `UnsupportedProtocol` (bowline's gateway serves no TCPRoute/TLSRoute/UDPRoute and,
//! having no ambient mode, no HBONE). Two listeners of a Gateway with the same port and
//! hostname are `Conflicted` (`HostnameConflict`, or `ProtocolConflict` when the
//! protocols differ) and not programmed. The Gateway is `Accepted` when it was read and
//! `Programmed` when at least one listener is.

use super::{Condition, GatewayStatus, ListenerStatus, RouteGroupKind};
use crate::gateway::api::attach::{api_routes, attach};
use crate::gateway::api::certificate_ref_ok;
use crate::gateway::api::grants::GATEWAY_GROUP;
use bowline_config::gateway_api::{Gateway, Listener};
use bowline_config::ConfigSet;

const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute"];

pub(super) fn statuses(config: &ConfigSet) -> Vec<GatewayStatus> {
    let routes = api_routes(config);
    config
        .k8s_gateways()
        .map(|(r, g)| {
            let generation = r.meta.generation;
            let listeners: Vec<ListenerStatus> = g
                .listeners
                .iter()
                .map(|l| {
                    let attached = routes
                        .iter()
                        .filter(|route| {
                            route.parent_refs().iter().any(|p| {
                                matches!(attach(config, route, p), Some(Ok(list)) if list.iter().any(|a|
                                    std::ptr::eq(a.listener.listener, l)
                                        && std::ptr::eq(a.listener.gateway, r)))
                            })
                        })
                        .count();
                    listener_status(config, r.namespace(), g, l, attached as u32, generation)
                })
                .collect();
            let programmed = listeners
                .iter()
                .any(|l| l.conditions.iter().any(|c| c.kind == "Programmed" && c.is_true()));
            let conditions = vec![
                Condition::new("Accepted", true, "Accepted", "read by bowline", generation),
                if programmed {
                    Condition::new("Programmed", true, "Programmed", "served by every bowline gateway proxy", generation)
                } else {
                    Condition::new("Programmed", false, "Invalid", "no listener can be served", generation)
                },
            ];
            GatewayStatus {
                namespace: r.namespace().into(),
                name: r.name().into(),
                conditions,
                listeners,
            }
        })
        .collect()
}

fn listener_status(
    config: &ConfigSet,
    ns: &str,
    g: &Gateway,
    l: &Listener,
    attached_routes: u32,
    generation: Option<i64>,
) -> ListenerStatus {
    let c = |kind: &str, ok, reason: &str, message: &str| {
        Condition::new(kind, ok, reason, message, generation)
    };
    let http = l.protocol == "HTTP"
        || (l.protocol == "HTTPS"
            && matches!(
                l.tls.as_ref().and_then(|t| t.mode.as_deref()),
                None | Some("Terminate")
            ));
    let requested: Vec<&str> = l
        .allowed_routes
        .as_ref()
        .map(|a| {
            a.kinds
                .iter()
                .filter(|k| k.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP)
                .map(|k| k.kind.as_str())
                .collect()
        })
        .unwrap_or_default();
    let asked_kinds = l
        .allowed_routes
        .as_ref()
        .is_some_and(|a| !a.kinds.is_empty());
    let supported: Vec<RouteGroupKind> = ROUTE_KINDS
        .iter()
        .filter(|k| http && (!asked_kinds || requested.contains(k)))
        .map(|k| RouteGroupKind {
            group: GATEWAY_GROUP.into(),
            kind: (*k).into(),
        })
        .collect();
    let accepted = if http {
        c("Accepted", true, "Accepted", "served")
    } else {
        c(
            "Accepted",
            false,
            "UnsupportedProtocol",
            "bowline's gateway serves HTTP and HTTPS (Terminate) listeners only",
        )
    };
    let cert = l
        .tls
        .as_ref()
        .filter(|_| l.protocol == "HTTPS")
        .and_then(|t| t.certificate_refs.first())
        .map(|cert| certificate_ref_ok(config, ns, cert));
    let resolved = match cert {
        Some(Err(reason)) => c("ResolvedRefs", false, reason, "the certificateRef is not a Secret, or is in another namespace without a ReferenceGrant there for Gateways"),
        _ if asked_kinds && supported.is_empty() => c("ResolvedRefs", false, "InvalidRouteKinds", "none of allowedRoutes.kinds is served (HTTPRoute, GRPCRoute)"),
        _ => c("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
    };
    let clash = g
        .listeners
        .iter()
        .find(|o| !std::ptr::eq(*o, l) && o.port == l.port && o.hostname == l.hostname);
    let conflicted = match clash {
        Some(o) if o.protocol != l.protocol => c(
            "Conflicted",
            true,
            "ProtocolConflict",
            "another listener uses this port with another protocol",
        ),
        Some(_) => c(
            "Conflicted",
            true,
            "HostnameConflict",
            "another listener has this port and hostname",
        ),
        None => c("Conflicted", false, "NoConflicts", "no conflicts"),
    };
    let programmed = if accepted.is_true() && resolved.is_true() && !conflicted.is_true() {
        c(
            "Programmed",
            true,
            "Programmed",
            "served by every bowline gateway proxy",
        )
    } else {
        c(
            "Programmed",
            false,
            "Invalid",
            "see the Accepted, ResolvedRefs and Conflicted conditions",
        )
    };
    ListenerStatus {
        name: l.name.clone(),
        attached_routes,
        supported_kinds: supported,
        conditions: vec![accepted, resolved, programmed, conflicted],
    }
}
