//! CDS: one cluster per service port, one per DestinationRule subset and port, and one per
//! port of the proxy's own workload.

mod traffic;

use crate::endpoints::{lb_endpoint, load_assignment, Addressing};
use crate::inbound::inbound_ports;
use crate::mtls;
use crate::naming;
use crate::policy::{effective_policy, host_policy, EffectivePolicy};
use crate::proto::{ads_config_source, seconds, socket_address};
use crate::services::PortOf;
use crate::{ProxyView, PushContext};
use bowline_config::common::selector_matches;
use bowline_config::istio::destination_rule::{SimpleLb, Subset};
use bowline_config::istio::service_entry::Resolution;
use bowline_registry::{Endpoint, Protocol};
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::core::v3::TransportSocket;
use bowline_xds::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, LocalityLbEndpoints};

/// Istio's default upstream connect timeout.
const DEFAULT_CONNECT_TIMEOUT_SECS: i64 = 10;

/// How Envoy learns a cluster's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discovery {
    /// From us, over ADS (the ClusterLoadAssignment of [`crate::endpoints`]).
    Eds,
    /// DestinationRule `PASSTHROUGH`, or ServiceEntry `resolution: NONE` (a headless
    /// service): the connection's original destination.
    OriginalDst,
    /// ServiceEntry `resolution: DNS`: Envoy resolves every endpoint hostname.
    StrictDns,
    /// ServiceEntry `resolution: DNS_ROUND_ROBIN`: Envoy resolves the single endpoint.
    LogicalDns,
}

/// One outbound cluster before it becomes protobuf; shared by CDS and EDS so both agree on
/// which clusters exist and which take endpoints over EDS.
#[derive(Debug, Clone)]
pub(crate) struct OutboundCluster<'a> {
    pub name: String,
    pub at: PortOf<'a>,
    pub subset: Option<&'a Subset>,
    pub policy: EffectivePolicy<'a>,
    pub discovery: Discovery,
    /// TLS the cluster originates (mesh mTLS or the DestinationRule's); `None` = plaintext.
    pub transport: Option<TransportSocket>,
    /// Locality load balancing for the asking proxy (EDS priorities or weights).
    pub locality: crate::locality::Plan<'a>,
}

/// Every cluster the proxy gets, sorted by name.
pub fn clusters(ctx: &PushContext, proxy: &ProxyView) -> Vec<Cluster> {
    let mut out = outbound_cds(&outbound_clusters(ctx, proxy));
    out.extend(local_clusters(ctx, proxy));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The outbound clusters as CDS resources, in the order given.
pub(crate) fn outbound_cds(clusters: &[OutboundCluster<'_>]) -> Vec<Cluster> {
    clusters.iter().map(outbound).collect()
}

/// What only this proxy gets: `inbound|<port>||` for every port of its own workload, in
/// port order, and a sidecar's [`crate::passthrough`] clusters.
pub(crate) fn local_clusters(ctx: &PushContext, proxy: &ProxyView) -> Vec<Cluster> {
    let mut out: Vec<Cluster> = inbound_ports(ctx, proxy)
        .into_iter()
        .map(|p| inbound(&p))
        .collect();
    if proxy.gateway.is_none() {
        out.extend(crate::passthrough::clusters());
    }
    out
}

/// The default cluster of every service port, then one per subset of the DestinationRule
/// in force for the host (see [`host_policy`]).
pub(crate) fn outbound_clusters<'a>(
    ctx: &'a PushContext,
    proxy: &ProxyView,
) -> Vec<OutboundCluster<'a>> {
    outbound_clusters_of(ctx, proxy, ctx.outbound_ports(proxy))
}

/// The endpoints of a service port's cluster: all of them, or those of `subset`.
pub(crate) fn cluster_endpoints<'a>(at: &PortOf<'a>, subset: Option<&Subset>) -> Vec<&'a Endpoint> {
    at.service
        .endpoints
        .iter()
        .filter(|e| subset.is_none_or(|s| selector_matches(&s.labels, &e.labels)))
        .collect()
}

/// [`outbound_clusters`] of some service ports only.
pub(crate) fn outbound_clusters_of<'a>(
    ctx: &'a PushContext,
    proxy: &ProxyView,
    ports: Vec<PortOf<'a>>,
) -> Vec<OutboundCluster<'a>> {
    let mut out = Vec::new();
    for at in ports {
        let host = &at.service.hostname;
        let rule = host_policy(ctx, proxy, host, &at.service.namespace);
        let subsets = std::iter::once(None).chain(rule.subsets.iter().map(|s| Some(*s)));
        for subset in subsets {
            let policy = effective_policy(&rule, subset, at.port.number);
            let name = naming::outbound_cluster(
                at.port.number,
                subset.map(|s| s.name.as_str()).unwrap_or(""),
                host,
            );
            let discovery = discovery(&at, &policy);
            let endpoints = cluster_endpoints(&at, subset);
            let sni = format!(
                "outbound_.{}_.{}_.{host}",
                at.port.number,
                subset.map(|s| s.name.as_str()).unwrap_or("")
            );
            // A passthrough cluster (ORIGINAL_DST) goes wherever the client went, which for a
            // headless service is one of its endpoints: auto mTLS decides over them as for
            // any cluster, and with no endpoints known it stays plaintext.
            let transport = mtls::upstream_transport(
                ctx,
                at.service,
                &endpoints,
                &at.port.name,
                at.port.number,
                policy.tls,
                sni,
            );
            let locality = crate::locality::plan(
                &ctx.snapshot().mesh,
                policy
                    .load_balancer
                    .and_then(|lb| lb.locality_lb_setting.as_ref()),
                policy.outlier_detection.is_some(),
                &proxy.labels,
                &proxy.locality,
            );
            out.push(OutboundCluster {
                name,
                at,
                subset,
                discovery,
                policy,
                transport,
                locality,
            });
        }
    }
    out
}

fn discovery(at: &PortOf<'_>, policy: &EffectivePolicy<'_>) -> Discovery {
    let lb = policy.load_balancer.and_then(|lb| lb.simple);
    if lb == Some(SimpleLb::Passthrough) {
        return Discovery::OriginalDst;
    }
    match at.service.resolution {
        // DYNAMIC_DNS needs Envoy's dynamic forward proxy; until then resolve like DNS.
        Resolution::Dns | Resolution::DynamicDns => Discovery::StrictDns,
        Resolution::DnsRoundRobin => Discovery::LogicalDns,
        // Istio: the caller already chose the address (a pod IP, as StatefulSet clients
        // do, or a VIP something else resolves), so the proxy does not balance.
        Resolution::None => Discovery::OriginalDst,
        Resolution::Static => Discovery::Eds,
    }
}

fn outbound(c: &OutboundCluster<'_>) -> Cluster {
    let mut cluster = base(&c.name);
    match c.discovery {
        Discovery::Eds => {
            cluster.cluster_discovery_type = discovery_type(cluster::DiscoveryType::Eds);
            cluster.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads_config_source()),
                service_name: c.name.clone(),
            });
        }
        Discovery::OriginalDst => {
            cluster.cluster_discovery_type = discovery_type(cluster::DiscoveryType::OriginalDst);
        }
        Discovery::StrictDns | Discovery::LogicalDns => {
            let assignment = dns_assignment(c);
            // Envoy refuses a LOGICAL_DNS cluster without exactly one host; with none (a
            // wildcard host and no endpoints) STRICT_DNS with no hosts is the honest answer.
            let kind = if c.discovery == Discovery::LogicalDns && host_count(&assignment) == 1 {
                cluster::DiscoveryType::LogicalDns
            } else {
                cluster::DiscoveryType::StrictDns
            };
            cluster.cluster_discovery_type = discovery_type(kind);
            cluster.load_assignment = Some(assignment);
            cluster.dns_lookup_family = cluster::DnsLookupFamily::V4Only as i32;
        }
    }
    traffic::apply(&mut cluster, &c.policy, c.at.port.protocol);
    if c.locality.weighted() && c.discovery == Discovery::Eds {
        // `distribute`: balance by the locality weights EDS carries.
        let common = cluster
            .common_lb_config
            .get_or_insert_with(Default::default);
        common.locality_config_specifier = Some(
            cluster::common_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(
                Default::default(),
            ),
        );
    }
    cluster.transport_socket = c.transport.clone();
    cluster
}

/// DNS clusters carry their hosts inline. With no endpoints the service's own hostname is
/// the host (Istio's rule), unless it is a wildcard. LOGICAL_DNS keeps only the first host.
fn dns_assignment(c: &OutboundCluster<'_>) -> ClusterLoadAssignment {
    let labels = c.subset.map(|s| s.labels.clone()).unwrap_or_default();
    // DNS clusters flatten their localities: no locality load balancing.
    let mut assignment = load_assignment(
        &c.name,
        c.at,
        &labels,
        Addressing::Hostnames,
        &crate::locality::Plan::Off,
    );
    let host = &c.at.service.hostname;
    if c.at.service.endpoints.is_empty() && !host.starts_with('*') {
        let addr = socket_address(host, c.at.number);
        assignment.endpoints = vec![LocalityLbEndpoints {
            lb_endpoints: vec![lb_endpoint(addr, 1)],
            ..Default::default()
        }];
    }
    if c.discovery == Discovery::LogicalDns {
        assignment.endpoints.truncate(1);
        if let Some(first) = assignment.endpoints.first_mut() {
            first.lb_endpoints.truncate(1);
        }
    }
    assignment
}

fn host_count(assignment: &ClusterLoadAssignment) -> usize {
    assignment
        .endpoints
        .iter()
        .map(|l| l.lb_endpoints.len())
        .sum()
}

/// `inbound|<port>||`: the local application where the port says (127.0.0.1:<port> unless
/// a Sidecar ingress listener names another endpoint).
fn inbound(port: &crate::inbound::InboundPort) -> Cluster {
    let name = naming::inbound_cluster(u32::from(port.number));
    let mut cluster = base(&name);
    cluster.cluster_discovery_type = discovery_type(cluster::DiscoveryType::Static);
    let address = match port.endpoint.strip_prefix("unix://") {
        Some(_) => {
            crate::endpoints::endpoint_address(&port.endpoint, port.number, Addressing::IpOnly)
        }
        None => port
            .endpoint
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| socket_address(&a.ip().to_string(), a.port())),
    };
    // Validation refused any other form; should one slip through, the application's own
    // port on 127.0.0.1 is the honest default.
    let address = address.unwrap_or_else(|| socket_address("127.0.0.1", port.number));
    cluster.load_assignment = Some(ClusterLoadAssignment {
        cluster_name: name,
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![lb_endpoint(address, 1)],
            ..Default::default()
        }],
        ..Default::default()
    });
    with_default_traffic(&mut cluster, port.protocol);
    cluster
}

/// What every cluster has: name and Istio's connect timeout.
pub(crate) fn base(name: &str) -> Cluster {
    Cluster {
        name: name.to_string(),
        connect_timeout: Some(seconds(DEFAULT_CONNECT_TIMEOUT_SECS)),
        ..Default::default()
    }
}

/// Istio's defaults for a cluster no DestinationRule governs: its (unlimited) circuit
/// breakers and load balancer.
pub(crate) fn with_default_traffic(cluster: &mut Cluster, protocol: Protocol) {
    traffic::apply(cluster, &EffectivePolicy::default(), protocol);
}

pub(crate) fn discovery_type(
    kind: cluster::DiscoveryType,
) -> Option<cluster::ClusterDiscoveryType> {
    Some(cluster::ClusterDiscoveryType::Type(kind as i32))
}
