//! Building a run-time [`Cluster`] from its model: defaults resolved, stats attached,
//! static endpoints filled in; EDS and DNS clusters start empty and fill when their
//! endpoints arrive.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use bowline_model as model;
use model::cluster::{Discovery as ModelDiscovery, LbPolicy, UpstreamProtocol};

use super::circuit::{RetryBudget, Thresholds};
use super::cluster::{Cluster, Discovery, EndpointSet, HostSpec, Hosts};
use super::lb::Policy;
use super::outlier::Detector;
use super::pool::Protocol;
use super::priority::{HostHealth, Placement};
use crate::stats::Stats;

/// Envoy's default `dns_refresh_rate`.
pub const DNS_REFRESH: Duration = Duration::from_secs(5);

/// A STRICT_DNS cluster to keep resolved (the task stops when the cluster is gone).
#[derive(Debug, Clone)]
pub struct DnsTarget {
    pub cluster: Weak<Cluster>,
    /// (hostname, port, weight of every address it resolves to).
    pub hosts: Vec<(String, u16, u32)>,
    pub refresh: Duration,
    /// Which addresses of an answer count.
    pub family: model::cluster::DnsLookupFamily,
}

/// Fails (naming the file or secret) when the cluster's TLS cannot be built: the cluster is
/// then refused, as Envoy refuses it.
pub fn cluster(
    source: model::Cluster,
    stats: &Stats,
    identity: Option<&bowline_identity::IdentityHandle>,
) -> Result<Cluster, String> {
    // Where each field of the model goes (exhaustive: a field the model gains is a compile
    // error here until the data path consumes it). The run-time cluster keeps `source` and
    // reads `connection` (pool limits), `healthy_panic_threshold` and `locality_weighted_lb`
    // (the balancer, see Cluster::set_endpoints) and `dns_lookup_family` (the DNS task) from
    // it; the rest is converted below.
    let model::Cluster {
        name: _,
        discovery: _,
        connect_timeout: _,
        lb: _,
        protocol: _,
        circuit_breakers: _,
        outlier_detection: _,
        healthy_panic_threshold: _,
        locality_weighted_lb: _,
        connection: _,
        dns_lookup_family: _,
        tls: _,
    } = &source;
    let tls = source
        .tls
        .as_ref()
        .map(|tls| crate::tls::client_config(tls, identity))
        .transpose()
        .map_err(|e| format!("transport_socket: {e}"))?;
    let policy = match source.lb {
        LbPolicy::RoundRobin | LbPolicy::ClusterProvided => Policy::RoundRobin,
        LbPolicy::LeastRequest { choice_count } => Policy::LeastRequest {
            choices: choice_count,
        },
        LbPolicy::Random => Policy::Random,
        LbPolicy::RingHash {
            min_ring_size,
            max_ring_size,
        } => Policy::RingHash {
            min_ring_size,
            max_ring_size,
        },
        LbPolicy::Maglev { table_size } => Policy::Maglev { table_size },
    };
    let protocol = match source.protocol {
        UpstreamProtocol::Http1 => Protocol::Http1,
        // UseDownstream: HTTP/1.1 upstream is always acceptable; h2 downstreams of such
        // clusters still work, only without multiplexing upstream.
        UpstreamProtocol::UseDownstream { .. } => Protocol::Http1,
        UpstreamProtocol::Http2 { .. } => Protocol::Http2,
    };
    let discovery = match &source.discovery {
        ModelDiscovery::Static(_) => Discovery::Static,
        ModelDiscovery::Eds { service_name } => Discovery::Eds(if service_name.is_empty() {
            source.name.clone()
        } else {
            service_name.clone()
        }),
        ModelDiscovery::StrictDns(hosts) => Discovery::StrictDns {
            hosts: hosts
                .iter()
                .map(|h| (h.host.hostname.clone(), h.host.port, h.weight))
                .collect(),
            refresh: DNS_REFRESH,
        },
        ModelDiscovery::LogicalDns(host) => Discovery::StrictDns {
            hosts: vec![(host.hostname.clone(), host.port, 1)],
            refresh: DNS_REFRESH,
        },
        ModelDiscovery::OriginalDst => Discovery::OriginalDst {
            use_http_header: false,
        },
    };
    let t = source.circuit_breakers;
    let outlier = source
        .outlier_detection
        .as_ref()
        .map(|o| Detector::new(o.into()));
    let cluster_stats = stats.cluster(&source.name);
    // The stats outlive the cluster; a new cluster starts with no host ejected.
    cluster_stats.outlier_detection_ejections_active.set(0);
    let cluster = Cluster {
        name: source.name.clone(),
        service: crate::istio_metrics::ServiceLabels::of_cluster(&source.name).map(Arc::new),
        outside: Default::default(),
        mtls: source.tls.as_ref().is_some_and(|t| t.certificate.is_some()),
        stats: cluster_stats,
        discovery,
        protocol,
        connect_timeout: source.connect_timeout,
        policy,
        thresholds: Thresholds {
            max_connections: t.max_connections,
            max_pending_requests: t.max_pending_requests,
            max_requests: t.max_requests,
            max_retries: t.max_retries,
            retry_budget: t.retry_budget.map(|b| RetryBudget {
                budget_percent: b.budget_percent,
                min_retry_concurrency: b.min_retry_concurrency,
            }),
        },
        outlier,
        usage: Arc::default(),
        endpoints: ArcSwap::from_pointee(EndpointSet::empty(policy)),
        assignment: ArcSwapOption::empty(),
        tls,
        source,
    };
    if let ModelDiscovery::Static(cla) = &cluster.source.discovery {
        cluster.set_endpoints(hosts(cla));
    }
    Ok(cluster)
}

/// The EDS service name of an EDS cluster.
pub fn eds_service(cluster: &Cluster) -> Option<&str> {
    match &cluster.discovery {
        Discovery::Eds(service) => Some(service),
        _ => None,
    }
}

pub fn dns_target(cluster: &Arc<Cluster>) -> Option<DnsTarget> {
    match &cluster.discovery {
        Discovery::StrictDns { hosts, refresh } => Some(DnsTarget {
            cluster: Arc::downgrade(cluster),
            hosts: hosts.clone(),
            refresh: *refresh,
            family: cluster.source.dns_lookup_family,
        }),
        _ => None,
    }
}

/// Applies an EDS assignment unless it is the one already applied.
pub fn apply_assignment(cluster: &Cluster, cla: Option<&Arc<model::ClusterLoadAssignment>>) {
    let current = cluster.assignment.load();
    let same = match (current.as_ref(), cla) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => return,
        _ => false,
    };
    if same {
        return;
    }
    cluster.assignment.store(cla.cloned());
    cluster.set_endpoints(cla.map(|c| hosts(c)).unwrap_or_default());
}

/// Every endpoint of a load assignment, with its priority and locality, for the balancer
/// to choose among (see [`super::priority`]; endpoint and locality weights stay apart).
///
/// As in Envoy, entries without a `locality` share the empty locality, and a locality's
/// weight comes only from entries that name the locality (the last one given wins): under
/// locality-weighted balancing an unweighted locality gets no traffic.
pub fn hosts(cla: &model::ClusterLoadAssignment) -> Hosts {
    let model::ClusterLoadAssignment {
        cluster_name: _,
        endpoints,
        overprovisioning_factor,
    } = cla;
    // Locality ids by first appearance; (priority, locality id, weight) in the order given.
    let mut localities: Vec<&model::Locality> = Vec::new();
    let mut weights: Vec<(u32, usize, u32)> = Vec::new();
    let mut placed: Vec<(usize, &model::LocalityLbEndpoints)> = Vec::new();
    let unnamed = model::Locality::default();
    for l in endpoints {
        let model::LocalityLbEndpoints {
            locality,
            priority,
            weight,
            lb_endpoints: _,
        } = l;
        let named = locality.as_ref().unwrap_or(&unnamed);
        let locality_id = match localities.iter().position(|known| *known == named) {
            Some(at) => at,
            None => {
                localities.push(named);
                localities.len() - 1
            }
        };
        if let (Some(_), Some(w)) = (locality, weight) {
            weights.push((*priority, locality_id, *w));
        }
        placed.push((locality_id, l));
    }
    let weight_of = |priority: u32, locality: usize| {
        weights
            .iter()
            .rev()
            .find(|(p, l, _)| *p == priority && *l == locality)
            .map_or(0, |(_, _, w)| *w)
    };
    let endpoints = placed
        .into_iter()
        .flat_map(|(locality, l)| {
            let placement = Placement {
                priority: l.priority,
                locality,
                locality_weight: weight_of(l.priority, locality),
            };
            l.lb_endpoints.iter().map(move |e| {
                let model::LbEndpoint {
                    address,
                    weight,
                    health,
                    workload,
                } = e;
                HostSpec {
                    addr: *address,
                    weight: *weight,
                    health: host_health(*health),
                    placement,
                    peer: workload
                        .as_deref()
                        .map(|w| Arc::new(crate::istio_metrics::KnownPeer::of_endpoint(w))),
                }
            })
        })
        .collect();
    Hosts {
        endpoints,
        overprovisioning_factor: *overprovisioning_factor,
    }
}

/// Envoy: UNKNOWN and HEALTHY hosts are healthy, DEGRADED ones degraded, the rest unhealthy.
fn host_health(status: model::HealthStatus) -> HostHealth {
    use model::HealthStatus::*;
    match status {
        Unknown | Healthy => HostHealth::Healthy,
        Degraded => HostHealth::Degraded,
        Unhealthy | Draining | Timeout => HostHealth::Unhealthy,
    }
}

/// Keeps a STRICT_DNS cluster's endpoints resolved until the cluster is dropped.
pub async fn resolve_forever(target: DnsTarget) {
    loop {
        let Some(cluster) = target.cluster.upgrade() else {
            return;
        };
        let mut found = Vec::new();
        for (host, port, weight) in &target.hosts {
            if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), *port)).await {
                let answer: Vec<SocketAddr> = addrs.collect();
                let kept = target.family.pick(&answer);
                found.extend(kept.into_iter().map(|a| (a, *weight, true)));
            }
        }
        found.sort();
        found.dedup();
        let current: Vec<SocketAddr> = cluster
            .endpoints
            .load()
            .endpoints
            .iter()
            .map(|e| e.addr)
            .collect();
        let fresh: Vec<SocketAddr> = found.iter().map(|e| e.0).collect();
        // A failed lookup keeps the last answer, as Envoy does.
        if !found.is_empty() && current != fresh {
            cluster.set_endpoints(Hosts::flat(found));
        }
        drop(cluster);
        tokio::time::sleep(target.refresh).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use model::{ClusterLoadAssignment, HealthStatus, LbEndpoint, LocalityLbEndpoints};

    pub(crate) fn model_cluster(name: &str, addr: &str) -> model::Cluster {
        model::Cluster {
            name: name.into(),
            discovery: ModelDiscovery::Static(cla(name, &[(addr, 0)])),
            connect_timeout: Duration::from_secs(1),
            lb: LbPolicy::RoundRobin,
            protocol: UpstreamProtocol::Http1,
            circuit_breakers: Default::default(),
            outlier_detection: None,
            healthy_panic_threshold: 50.0,
            locality_weighted_lb: false,
            connection: Default::default(),
            dns_lookup_family: Default::default(),
            tls: None,
        }
    }

    pub(crate) fn cla(name: &str, endpoints: &[(&str, u32)]) -> ClusterLoadAssignment {
        ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: endpoints
                .iter()
                .map(|(addr, priority)| LocalityLbEndpoints {
                    locality: None,
                    priority: *priority,
                    weight: None,
                    lb_endpoints: vec![LbEndpoint {
                        address: addr.parse().unwrap(),
                        weight: 1,
                        health: HealthStatus::Healthy,
                        workload: None,
                    }],
                })
                .collect(),
            overprovisioning_factor: 140,
        }
    }

    #[test]
    fn a_static_cluster_has_its_endpoints_at_once() {
        let c = cluster(
            model_cluster("up", "127.0.0.1:8080"),
            &Stats::default(),
            None,
        )
        .unwrap();
        assert_eq!(
            c.endpoints.load().endpoints[0].addr,
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(c.stats.membership_total.get(), 1);
    }

    fn zone(name: &str) -> Option<model::Locality> {
        Some(model::Locality {
            zone: name.into(),
            ..Default::default()
        })
    }

    fn entry(
        locality: Option<model::Locality>,
        priority: u32,
        weight: Option<u32>,
        hosts: &[(&str, u32, HealthStatus)],
    ) -> LocalityLbEndpoints {
        LocalityLbEndpoints {
            locality,
            priority,
            weight,
            lb_endpoints: hosts
                .iter()
                .map(|(addr, weight, health)| LbEndpoint {
                    address: addr.parse().unwrap(),
                    weight: *weight,
                    health: *health,
                    workload: None,
                })
                .collect(),
        }
    }

    #[test]
    fn every_priority_is_kept_and_weights_stay_apart() {
        use HealthStatus::*;
        let cla = ClusterLoadAssignment {
            cluster_name: "x".into(),
            endpoints: vec![
                entry(zone("a"), 1, Some(5), &[("10.0.0.1:80", 2, Unhealthy)]),
                entry(zone("b"), 0, Some(3), &[("10.0.0.2:80", 1, Degraded)]),
                // The same locality and priority again: its weight (the last given) wins.
                entry(zone("b"), 0, Some(7), &[("10.0.0.3:80", 4, Unknown)]),
                // No locality: the empty one, and no weight from this entry.
                entry(None, 0, Some(9), &[("10.0.0.4:80", 1, Draining)]),
            ],
            overprovisioning_factor: 120,
        };
        let hosts = hosts(&cla);
        assert_eq!(hosts.overprovisioning_factor, 120);
        let got: Vec<(u16, u32, HostHealth, u32, usize, u32)> = hosts
            .endpoints
            .iter()
            .map(|h| {
                let p = h.placement;
                let last = h.addr.ip().to_string().rsplit('.').next().unwrap().parse();
                (
                    last.unwrap(),
                    h.weight,
                    h.health,
                    p.priority,
                    p.locality,
                    p.locality_weight,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, 2, HostHealth::Unhealthy, 1, 0, 5),
                (2, 1, HostHealth::Degraded, 0, 1, 7),
                (3, 4, HostHealth::Healthy, 0, 1, 7),
                (4, 1, HostHealth::Unhealthy, 0, 2, 0),
            ]
        );
    }
}
