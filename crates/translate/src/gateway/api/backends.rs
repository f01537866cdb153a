//! A route's backendRef (or mirror backendRef) resolved to a cluster, or why it cannot be
//! (the Gateway API's `ResolvedRefs` reasons).
//!
//! Only `Service` backends (core group) are read: `<name>.<namespace>.svc.cluster.local`
//! at `port`, which must be a service (a ServiceEntry host) with that port in the registry.
//! A backend in another namespace needs a ReferenceGrant there. Checked in the order
//! kind, grant, existence: a refused reference reveals nothing about the target.

use super::attach::RouteKind;
use super::grants::{permitted, Referent, Referrer, GATEWAY_GROUP};
use crate::naming;
use bowline_config::gateway_api::{BackendRef, HttpBackendRef};
use bowline_registry::Snapshot;

/// Why a backendRef does not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// A kind other than a core `Service`.
    InvalidKind,
    /// In another namespace, and no ReferenceGrant there permits it.
    RefNotPermitted,
    /// No such service, or it has no such port.
    BackendNotFound,
}

impl Unresolved {
    /// The condition reason, as the Gateway API spells it.
    pub fn reason(self) -> &'static str {
        match self {
            Unresolved::InvalidKind => "InvalidKind",
            Unresolved::RefNotPermitted => "RefNotPermitted",
            Unresolved::BackendNotFound => "BackendNotFound",
        }
    }
}

/// The fields every kind of backend reference has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackendTarget<'a> {
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub port: Option<i32>,
}

impl<'a> From<&'a HttpBackendRef> for BackendTarget<'a> {
    fn from(b: &'a HttpBackendRef) -> Self {
        BackendTarget {
            group: b.group.as_deref(),
            kind: b.kind.as_deref(),
            name: &b.name,
            namespace: b.namespace.as_deref(),
            port: b.port,
        }
    }
}

impl<'a> From<&'a BackendRef> for BackendTarget<'a> {
    fn from(b: &'a BackendRef) -> Self {
        BackendTarget {
            group: b.group.as_deref(),
            kind: b.kind.as_deref(),
            name: &b.name,
            namespace: b.namespace.as_deref(),
            port: b.port,
        }
    }
}

/// A backend that resolved: the service host, its port and the cluster serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub host: String,
    pub port: u32,
    pub cluster: String,
}

/// Resolves a backend of a `route_kind` route in `route_ns`.
pub(crate) fn resolve(
    snapshot: &Snapshot,
    route_kind: RouteKind,
    route_ns: &str,
    target: BackendTarget<'_>,
) -> Result<Resolved, Unresolved> {
    let group = target.group.unwrap_or("");
    let kind = target.kind.unwrap_or("Service");
    if !(group.is_empty() || group == "core") || kind != "Service" {
        return Err(Unresolved::InvalidKind);
    }
    let ns = target.namespace.unwrap_or(route_ns);
    let from = Referrer {
        group: GATEWAY_GROUP,
        kind: route_kind.as_str(),
        namespace: route_ns,
    };
    let to = Referent {
        group: "",
        kind: "Service",
        namespace: ns,
        name: target.name,
    };
    if !permitted(&snapshot.config, from, to) {
        return Err(Unresolved::RefNotPermitted);
    }
    let host = format!("{}.{ns}.svc.cluster.local", target.name);
    let port = target
        .port
        .and_then(|p| u32::try_from(p).ok())
        .ok_or(Unresolved::BackendNotFound)?;
    let service = snapshot.service(&host).ok_or(Unresolved::BackendNotFound)?;
    if !service.ports.iter().any(|p| p.number == port) {
        return Err(Unresolved::BackendNotFound);
    }
    Ok(Resolved {
        cluster: naming::outbound_cluster(port, "", &host),
        host,
        port,
    })
}
