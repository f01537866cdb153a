//! EDS: the endpoints of each outbound cluster, grouped by locality (and, under
//! `failoverPriority`, by rank within a locality: see [`crate::locality`]).

use crate::clusters::{outbound_clusters, Discovery, OutboundCluster};
use crate::locality::Plan;
use crate::proto::{socket_address, u32_value, valid_port};
use crate::services::PortOf;
use crate::weights::fit_u32;
use crate::{ProxyView, PushContext};
use bowline_config::common::{selector_matches, Labels};
use bowline_xds::pb::envoy::config::core::v3::{address, Address, Locality, Pipe};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// How an endpoint's address may be written for the cluster type that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressing {
    /// EDS and STATIC clusters: Envoy refuses anything but an IP (or a unix socket path).
    IpOnly,
    /// STRICT_DNS / LOGICAL_DNS clusters: Envoy resolves hostnames itself; no unix sockets.
    Hostnames,
}

/// One ClusterLoadAssignment per EDS cluster of [`crate::clusters`], sorted by name.
pub fn endpoints(ctx: &PushContext, proxy: &ProxyView) -> Vec<ClusterLoadAssignment> {
    outbound_eds(&outbound_clusters(ctx, proxy))
}

/// The ClusterLoadAssignments of the EDS clusters among `clusters`, sorted by name.
pub(crate) fn outbound_eds(clusters: &[OutboundCluster<'_>]) -> Vec<ClusterLoadAssignment> {
    let mut out: Vec<ClusterLoadAssignment> = clusters
        .iter()
        .filter(|c| c.discovery == Discovery::Eds)
        .map(|c| {
            let mut cla = load_assignment(
                &c.name,
                c.at,
                subset_labels(c),
                Addressing::IpOnly,
                &c.locality,
            );
            crate::locality::apply(&c.locality, &mut cla);
            cla
        })
        .collect();
    out.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    out
}

/// The labels a cluster's endpoints are selected by: its subset's, else none (all).
pub(crate) fn subset_labels<'a>(c: &OutboundCluster<'a>) -> &'a Labels {
    static EMPTY: Labels = Labels::new();
    c.subset.map(|s| &s.labels).unwrap_or(&EMPTY)
}

/// The service's endpoints whose labels match `selector` (a subset's labels; empty = all),
/// each dialled at `address:port_for(port)`, grouped by locality and by the `locality`
/// plan's [`Plan::label_rank`] (in that order), the rank as the group's priority; a group
/// weighs the sum of its endpoints' weights. [`crate::locality::apply`] finishes the
/// priorities. Endpoints Envoy would refuse (bad port, non-IP address on an IP-only
/// cluster) are left out.
pub(crate) fn load_assignment(
    cluster_name: &str,
    at: PortOf<'_>,
    selector: &Labels,
    addressing: Addressing,
    locality: &Plan<'_>,
) -> ClusterLoadAssignment {
    let mut groups: BTreeMap<(&str, u32), Vec<(Address, u64, _)>> = BTreeMap::new();
    for e in &at.service.endpoints {
        if !selector_matches(selector, &e.labels) {
            continue;
        }
        let Some(port) = valid_port(e.port_for(at.port)) else {
            continue;
        };
        let Some(addr) = endpoint_address(&e.address, port, addressing) else {
            continue;
        };
        let rank = locality.label_rank(&e.labels, &e.locality);
        groups
            .entry((e.locality.as_str(), rank))
            .or_default()
            .push((
                addr,
                u64::from(e.weight.max(1)),
                crate::istio_stats::endpoint_metadata(e),
            ));
    }
    // Envoy refuses a locality whose weights overflow u32; scale them down if they would.
    let all: Vec<u64> = groups.values().flatten().map(|(_, w, _)| *w).collect();
    let mut fitted = fit_u32(&all).into_iter();
    let endpoints = groups
        .into_iter()
        .map(|((locality, rank), eps)| {
            let lb_endpoints: Vec<LbEndpoint> = eps
                .into_iter()
                .map(|(addr, _, metadata)| LbEndpoint {
                    metadata,
                    ..lb_endpoint(addr, fitted.next().unwrap_or(1))
                })
                .collect();
            let total: u64 = lb_endpoints
                .iter()
                .filter_map(|e| e.load_balancing_weight.as_ref())
                .map(|w| u64::from(w.value))
                .sum();
            LocalityLbEndpoints {
                locality: parse_locality(locality),
                lb_endpoints,
                load_balancing_weight: u32_value(u32::try_from(total).unwrap_or(u32::MAX).max(1)),
                priority: rank,
                ..Default::default()
            }
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: cluster_name.to_string(),
        endpoints,
        ..Default::default()
    }
}

pub(crate) fn lb_endpoint(address: Address, weight: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(address),
            ..Default::default()
        })),
        load_balancing_weight: u32_value(weight.max(1)),
        ..Default::default()
    }
}

/// `unix:///path` becomes a pipe (IP-only clusters), an IP a socket address; a hostname is a
/// socket address only where Envoy resolves DNS itself.
pub(crate) fn endpoint_address(raw: &str, port: u16, addressing: Addressing) -> Option<Address> {
    if let Some(path) = raw.strip_prefix("unix://") {
        return (addressing == Addressing::IpOnly && !path.is_empty()).then(|| Address {
            address: Some(address::Address::Pipe(Pipe {
                path: path.to_string(),
                mode: 0,
            })),
        });
    }
    let is_ip = raw.parse::<IpAddr>().is_ok();
    let is_host = !raw.is_empty() && !raw.contains(['/', ':', ' ', '*']);
    match addressing {
        Addressing::IpOnly if is_ip => Some(socket_address(raw, port)),
        Addressing::Hostnames if is_ip || is_host => Some(socket_address(raw, port)),
        _ => None,
    }
}

/// `region/zone/subzone` (any suffix may be missing); empty = no locality.
pub(crate) fn parse_locality(raw: &str) -> Option<Locality> {
    if raw.is_empty() {
        return None;
    }
    let mut parts = raw.splitn(3, '/');
    let mut next = || parts.next().unwrap_or_default().to_string();
    Some(Locality {
        region: next(),
        zone: next(),
        sub_zone: next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localities_parse_region_zone_subzone() {
        let cases = [
            ("", None),
            ("us-east", Some(("us-east", "", ""))),
            ("us-east/us-east-1a", Some(("us-east", "us-east-1a", ""))),
            ("r/z/s", Some(("r", "z", "s"))),
            ("r/z/s/extra", Some(("r", "z", "s/extra"))),
        ];
        for (raw, want) in cases {
            let got = parse_locality(raw);
            let got = got
                .as_ref()
                .map(|l| (l.region.as_str(), l.zone.as_str(), l.sub_zone.as_str()));
            assert_eq!(got, want, "{raw:?}");
        }
    }

    #[test]
    fn addresses_fit_the_cluster_type() {
        use Addressing::*;
        let cases = [
            ("10.0.0.1", IpOnly, true),
            ("fd00::1", IpOnly, true),
            ("reviews.example.com", IpOnly, false),
            ("reviews.example.com", Hostnames, true),
            ("unix:///var/run/app.sock", IpOnly, true),
            ("unix:///var/run/app.sock", Hostnames, false),
            ("", Hostnames, false),
            ("*.example.com", Hostnames, false),
        ];
        for (raw, addressing, ok) in cases {
            assert_eq!(
                endpoint_address(raw, 80, addressing).is_some(),
                ok,
                "{raw} {addressing:?}"
            );
        }
    }
}
