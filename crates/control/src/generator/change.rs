//! What changed between two generations, as the generator needs to know it: only
//! endpoints, only routes, or everything. Decided once per generation: from the registry's
//! own account of the change when only its kinds were written (O(change): the common case
//! of endpoints moving), else by comparing what the translator reads (O(mesh)).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bowline_config::istio::service_entry::Resolution;
use bowline_config::{Kind, Spec};
use bowline_registry::is_registry_kind;
use bowline_registry::{Service, Snapshot};

/// What differs between a generation and the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Only services' endpoints (and the workloads behind them): `hosts` are the services
    /// whose endpoints differ, `workloads` (`namespace/name`) every workload added, removed
    /// or changed, or an endpoint of one of those services before or after.
    Endpoints {
        hosts: BTreeSet<String>,
        workloads: BTreeSet<String>,
    },
    /// Only VirtualServices: routes change, clusters do not; listeners only if
    /// `listeners_kept` is false (see [`listeners_kept`]). `hosts`: every host named by a
    /// VirtualService that was added, removed or changed, fully qualified and lower-cased,
    /// when all of them are exact hosts; `None` when some is a wildcard or has no hosts (a
    /// delegate), whose reach is not a host list.
    Routes {
        listeners_kept: bool,
        hosts: Option<BTreeSet<String>>,
    },
    /// Anything else: routing or policy config, mesh config, service ports or addresses.
    Everything,
}

/// What changed from `before` to `after`: [`Change::Endpoints`] when they differ only in
/// services' endpoints and the workloads behind them.
pub(crate) fn change_between(before: &Snapshot, after: &Snapshot) -> Change {
    known_change(before, after).unwrap_or_else(|| compare(before, after))
}

/// The change when it is known in O(change): everything when the mesh config differs, else
/// the registry's own account ([`registry_change`]); `None` when only [`compare`] would tell.
pub(crate) fn known_change(before: &Snapshot, after: &Snapshot) -> Option<Change> {
    if before.mesh != after.mesh {
        return Some(Change::Everything);
    }
    registry_change(before, after)
}

/// The change as the registry accounts for it ([`bowline_registry::Changes`]), when `after`
/// directly follows `before` and only the registry's kinds were written: then every other
/// resource is the same, and only the services the registry names can differ. `None` when
/// that does not hold. Costs the changed services, not the mesh.
pub(super) fn registry_change(before: &Snapshot, after: &Snapshot) -> Option<Change> {
    let changed = after.changes_since(before)?;
    if !changed
        .resources
        .iter()
        .all(|key| is_registry_kind(key.kind))
    {
        return None;
    }
    let mut hosts = BTreeSet::new();
    let mut workloads: BTreeSet<String> = changed
        .resources
        .iter()
        .filter(|key| key.kind == Kind::WorkloadEntry)
        .map(|key| format!("{}/{}", key.namespace, key.name))
        .collect();
    for host in &changed.services {
        let (Some(old), Some(new)) = (before.service(host), after.service(host)) else {
            return Some(Change::Everything); // a service added or removed
        };
        if !same_but_endpoints(old, new) {
            return Some(Change::Everything);
        }
        hosts.insert(host.clone());
        for endpoint in old.endpoints.iter().chain(&new.endpoints) {
            if let Some(workload) = &endpoint.workload {
                workloads.insert(workload.clone());
            }
        }
    }
    Some(Change::Endpoints { hosts, workloads })
}

/// Compares everything the translator reads; O(resources).
pub(super) fn compare(before: &Snapshot, after: &Snapshot) -> Change {
    // What the translator reads directly: only VirtualServices differing is a routes change,
    // anything else there changes everything. Where a resource was written (`origin`) is
    // not read by the translator: a line shift in a file is no change.
    let (old, new): (Vec<_>, Vec<_>) = (others(before).collect(), others(after).collect());
    if !same_resources(&old, &new) {
        let not_routes =
            |r: &&&Arc<bowline_config::Resource>| !matches!(r.spec, Spec::VirtualService(_));
        let old: Vec<_> = old.iter().filter(not_routes).copied().collect();
        let new: Vec<_> = new.iter().filter(not_routes).copied().collect();
        let registry_same =
            before.services == after.services && before.workloads == after.workloads;
        return if same_resources(&old, &new) && registry_same {
            Change::Routes {
                listeners_kept: listeners_kept(before, after),
                hosts: changed_route_hosts(before, after),
            }
        } else {
            Change::Everything
        };
    }
    if before.services.len() != after.services.len() {
        return Change::Everything;
    }
    let mut hosts = BTreeSet::new();
    let mut workloads = BTreeSet::new();
    for (old, new) in before.services.iter().zip(&after.services) {
        if old == new {
            continue;
        }
        if !same_but_endpoints(old, new) {
            return Change::Everything;
        }
        hosts.insert(new.hostname.clone());
        for endpoint in old.endpoints.iter().chain(&new.endpoints) {
            if let Some(workload) = &endpoint.workload {
                workloads.insert(workload.clone());
            }
        }
    }
    // Workloads are sorted by namespace then name: walk both lists side by side.
    let (old, new) = (&before.workloads, &after.workloads);
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) => (&o.namespace, &o.name).cmp(&(&n.namespace, &n.name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let touched = match order {
            std::cmp::Ordering::Less => Some(&old[i]),
            std::cmp::Ordering::Greater => Some(&new[j]),
            std::cmp::Ordering::Equal => (old[i] != new[j]).then_some(&new[j]),
        };
        if let Some(w) = touched {
            workloads.insert(format!("{}/{}", w.namespace, w.name));
        }
        i += usize::from(order != std::cmp::Ordering::Greater);
        j += usize::from(order != std::cmp::Ordering::Less);
    }
    Change::Endpoints { hosts, workloads }
}

/// Whether a change of VirtualServices leaves every sidecar's listeners as they were. A
/// sidecar's listeners read VirtualServices only for TCP service ports: which one claims a
/// host first (its position, hosts, `gateways`, `exportTo`) and its `tcp` rules. Same list
/// in the same order with those parts equal: same listeners, whatever the `http` rules.
fn listeners_kept(before: &Snapshot, after: &Snapshot) -> bool {
    let (old, new): (Vec<_>, Vec<_>) = (
        before.config.virtual_services().collect(),
        after.config.virtual_services().collect(),
    );
    old.len() == new.len()
        && old.iter().zip(&new).all(|((ro, o), (rn, n))| {
            ro.key() == rn.key()
                && o.hosts == n.hosts
                && o.gateways == n.gateways
                && o.export_to == n.export_to
                && o.tcp == n.tcp
        })
}

/// The hosts of every VirtualService that differs between the two snapshots (see
/// [`Change::Routes`]); `None` when one of them names a wildcard host or none.
fn changed_route_hosts(before: &Snapshot, after: &Snapshot) -> Option<BTreeSet<String>> {
    fn index(s: &Snapshot) -> BTreeMap<bowline_config::ResourceKey, &bowline_config::Resource> {
        s.config
            .resources
            .iter()
            .filter(|r| matches!(r.spec, Spec::VirtualService(_)))
            .map(|r| (r.key(), &**r))
            .collect()
    }
    let (old, new) = (index(before), index(after));
    let changed = |key: &bowline_config::ResourceKey| {
        old.get(key).map(|r| &r.spec) != new.get(key).map(|r| &r.spec)
    };
    // Which VirtualService claims a host first follows load order: the unchanged ones must
    // keep theirs.
    let order = |s: &Snapshot| -> Vec<bowline_config::ResourceKey> {
        s.config
            .virtual_services()
            .map(|(r, _)| r.key())
            .filter(|k| !changed(k))
            .collect()
    };
    if order(before) != order(after) {
        return None;
    }
    let mut hosts = BTreeSet::new();
    for key in old.keys().chain(new.keys()) {
        if !changed(key) {
            continue;
        }
        let (a, b) = (old.get(key), new.get(key));
        for r in a.into_iter().chain(b) {
            let Spec::VirtualService(vs) = &r.spec else {
                continue;
            };
            if vs.hosts.is_empty() {
                return None;
            }
            for host in &vs.hosts {
                let host = bowline_config::common::fqdn(host, r.namespace()).to_ascii_lowercase();
                if host.contains('*') {
                    return None;
                }
                hosts.insert(host);
            }
        }
    }
    Some(hosts)
}

/// Same list, resource by resource: shared (unchanged in the store) or equal but for where
/// it was written.
fn same_resources(
    a: &[&Arc<bowline_config::Resource>],
    b: &[&Arc<bowline_config::Resource>],
) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            Arc::ptr_eq(a, b)
                || (a.api_version == b.api_version && a.meta == b.meta && a.spec == b.spec)
        })
}

/// The resources the translator reads directly: all but the registry kinds, which reach it
/// only as `services` and workloads.
fn others(snapshot: &Snapshot) -> impl Iterator<Item = &Arc<bowline_config::Resource>> {
    snapshot
        .config
        .resources
        .iter()
        .filter(|r| !is_registry_kind(r.kind()))
}

/// Whether two versions of a service differ at most in endpoints that only clusters and
/// EDS read (so routes and listeners stay as they were).
fn same_but_endpoints(a: &Service, b: &Service) -> bool {
    let Service {
        hostname,
        namespace,
        addresses,
        ports,
        location,
        resolution,
        export_to,
        endpoints: _,
    } = a;
    *hostname == b.hostname
        && *namespace == b.namespace
        && *addresses == b.addresses
        && *ports == b.ports
        && *location == b.location
        && *resolution == b.resolution
        && *export_to == b.export_to
        // A headless service's endpoint addresses are domains of its virtual hosts.
        && *resolution != Resolution::None
}
