//! Route parent conditions: `Accepted` (did the parentRef attach, and if not why) and
//! `ResolvedRefs` (does every backendRef, mirror backendRef included, resolve).

use super::{Condition, ParentRef, RouteParentStatus, RouteStatus, CONTROLLER_NAME};
use crate::gateway::api::attach::{api_routes, attach, ApiRoute, NotAttached, RouteSpec};
use crate::gateway::api::backends::{resolve, BackendTarget, Unresolved};
use crate::gateway::api::grants::GATEWAY_GROUP;
use bowline_config::gateway_api::{HttpBackendRef, HttpRouteFilter};
use bowline_registry::Snapshot;

pub(super) fn statuses(snapshot: &Snapshot) -> Vec<RouteStatus> {
    let config = &snapshot.config;
    api_routes(config)
        .into_iter()
        .map(|r| {
            let generation = r.resource.meta.generation;
            let resolved = resolved_refs(snapshot, &r, generation);
            let parents = r
                .parent_refs()
                .iter()
                .filter_map(|p| {
                    let outcome = attach(config, &r, p)?;
                    let accepted = match outcome {
                        Ok(list) => Condition::new(
                            "Accepted",
                            true,
                            "Accepted",
                            format!("attached to {} listener(s)", list.len()),
                            generation,
                        ),
                        Err(why) => not_accepted(why, generation),
                    };
                    Some(RouteParentStatus {
                        parent_ref: ParentRef {
                            group: p.group.clone().unwrap_or_else(|| GATEWAY_GROUP.into()),
                            kind: p.kind.clone().unwrap_or_else(|| "Gateway".into()),
                            namespace: p
                                .namespace
                                .clone()
                                .unwrap_or_else(|| r.namespace().to_string()),
                            name: p.name.clone(),
                            section_name: p.section_name.clone(),
                            port: p.port,
                        },
                        controller_name: CONTROLLER_NAME.into(),
                        conditions: vec![accepted, resolved.clone()],
                    })
                })
                .collect();
            RouteStatus {
                kind: r.kind().as_str().into(),
                namespace: r.namespace().into(),
                name: r.resource.name().into(),
                parents,
            }
        })
        .collect()
}

fn not_accepted(why: NotAttached, generation: Option<i64>) -> Condition {
    let (reason, message) = match why {
        NotAttached::NoMatchingParent => (
            "NoMatchingParent",
            "no such Gateway, or no listener of it with this sectionName/port",
        ),
        NotAttached::NotAllowedByListeners => (
            "NotAllowedByListeners",
            "the listeners' protocol or allowedRoutes (namespaces, kinds) do not admit this route",
        ),
        NotAttached::NoMatchingListenerHostname => (
            "NoMatchingListenerHostname",
            "no listener hostname intersects the route's hostnames",
        ),
    };
    Condition::new("Accepted", false, reason, message, generation)
}

/// `ResolvedRefs`: False with the first failing reference's reason (in rule order), the
/// message naming every failing one.
fn resolved_refs(snapshot: &Snapshot, r: &ApiRoute<'_>, generation: Option<i64>) -> Condition {
    let mut problems: Vec<(Unresolved, String)> = Vec::new();
    let mut check = |field: String, target: BackendTarget<'_>| {
        if let Err(why) = resolve(snapshot, r.kind(), r.namespace(), target) {
            problems.push((why, format!("{field} ({}): {}", target.name, message(why))));
        }
    };
    let rules: Vec<(&[HttpRouteFilter], &[HttpBackendRef])> = match r.spec {
        RouteSpec::Http(h) => h
            .rules
            .iter()
            .map(|x| (&x.filters[..], &x.backend_refs[..]))
            .collect(),
        RouteSpec::Grpc(g) => g
            .rules
            .iter()
            .map(|x| (&x.filters[..], &x.backend_refs[..]))
            .collect(),
    };
    for (i, (filters, backends)) in rules.iter().enumerate() {
        for (k, b) in backends.iter().enumerate() {
            check(format!("spec.rules[{i}].backendRefs[{k}]"), b.into());
            for (f, filter) in b.filters.iter().enumerate() {
                if let Some(m) = &filter.request_mirror {
                    let field = format!(
                        "spec.rules[{i}].backendRefs[{k}].filters[{f}].requestMirror.backendRef"
                    );
                    check(field, (&m.backend_ref).into());
                }
            }
        }
        for (f, filter) in filters.iter().enumerate() {
            if let Some(m) = &filter.request_mirror {
                check(
                    format!("spec.rules[{i}].filters[{f}].requestMirror.backendRef"),
                    (&m.backend_ref).into(),
                );
            }
        }
    }
    match problems.first() {
        None => Condition::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all references resolved",
            generation,
        ),
        Some((why, _)) => {
            let all: Vec<String> = problems.iter().map(|(_, m)| m.clone()).collect();
            Condition::new(
                "ResolvedRefs",
                false,
                why.reason(),
                all.join("; "),
                generation,
            )
        }
    }
}

fn message(why: Unresolved) -> &'static str {
    match why {
        Unresolved::InvalidKind => "only core Services are supported as backends",
        Unresolved::RefNotPermitted => {
            "a Service in another namespace needs a ReferenceGrant there that lets this route kind refer to it"
        }
        Unresolved::BackendNotFound => {
            "no such service with this port (bowline's services are ServiceEntry hosts <name>.<namespace>.svc.cluster.local)"
        }
    }
}
