//! `envoy.config.endpoint.v3.ClusterLoadAssignment` → [`ClusterLoadAssignment`].

use super::{
    ClusterLoadAssignment, HealthStatus, LbEndpoint, Locality, LocalityLbEndpoints,
    DEFAULT_OVERPROVISIONING_FACTOR,
};
use crate::address::ip_socket_address;
use crate::error::{At, InvalidEndpoints, Problem};
use crate::istio_stats::{
    endpoint_from_metadata, only_metadata, EndpointWorkload, ENDPOINT_METADATA_KEY,
};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{
    Address, HealthStatus as PbHealth, Locality as PbLocality,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    cluster_load_assignment::Policy, lb_endpoint::HostIdentifier, ClusterLoadAssignment as PbCla,
    Endpoint, LbEndpoint as PbLbEndpoint, LocalityLbEndpoints as PbLocalityEndpoints,
};
use std::sync::Arc;

impl TryFrom<&PbCla> for ClusterLoadAssignment {
    type Error = InvalidEndpoints;

    fn try_from(cla: &PbCla) -> Result<ClusterLoadAssignment, InvalidEndpoints> {
        load_assignment(cla, &At::root("cluster_load_assignment")).map_err(|problem| {
            InvalidEndpoints {
                name: cla.cluster_name.clone(),
                problem,
            }
        })
    }
}

/// A load assignment whose addresses are IPs (EDS, STATIC clusters).
pub(crate) fn load_assignment(cla: &PbCla, at: &At) -> Result<ClusterLoadAssignment, Problem> {
    let parts = assignment_parts(cla, at, ip_socket_address)?;
    Ok(ClusterLoadAssignment {
        cluster_name: parts.cluster_name,
        overprovisioning_factor: parts
            .overprovisioning_factor
            .unwrap_or(DEFAULT_OVERPROVISIONING_FACTOR),
        endpoints: parts
            .localities
            .into_iter()
            .map(|l| LocalityLbEndpoints {
                locality: l.locality,
                priority: l.priority,
                weight: l.weight,
                lb_endpoints: l
                    .endpoints
                    .into_iter()
                    .map(|(address, weight, health, workload)| LbEndpoint {
                        address,
                        weight,
                        health,
                        workload,
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// A load assignment with addresses of type `A` (IP socket addresses, or DNS names for DNS
/// clusters), checked against Envoy's constraints.
pub(crate) struct AssignmentParts<A> {
    pub cluster_name: String,
    pub localities: Vec<LocalityParts<A>>,
    /// `policy.overprovisioning_factor` (percent, at least 1) when set.
    pub overprovisioning_factor: Option<u32>,
}

pub(crate) struct LocalityParts<A> {
    pub locality: Option<Locality>,
    pub priority: u32,
    pub weight: Option<u32>,
    /// (address, weight, health, who the endpoint is).
    pub endpoints: Vec<EndpointParts<A>>,
}

pub(crate) type EndpointParts<A> = (A, u32, HealthStatus, Option<Arc<EndpointWorkload>>);

/// Envoy's priority levels run 0..=128.
const MAX_PRIORITY: u32 = 128;

pub(crate) fn assignment_parts<A>(
    cla: &PbCla,
    at: &At,
    address: impl Fn(&Address, &At) -> Result<A, Problem>,
) -> Result<AssignmentParts<A>, Problem> {
    let PbCla {
        cluster_name,
        endpoints,
        named_endpoints,
        policy,
    } = cla;
    refuse_unsupported!(at; named_endpoints);
    let mut overprovisioning = None;
    if let Some(p) = policy {
        let Policy {
            drop_overloads,
            overprovisioning_factor,
            endpoint_stale_after,
            weighted_priority_health,
        } = p;
        let at = at.field("policy");
        refuse_unsupported!(at; drop_overloads, endpoint_stale_after, weighted_priority_health);
        // Envoy: `uint32 = {gt: 0}`.
        overprovisioning = match overprovisioning_factor {
            Some(f) if f.value == 0 => {
                return Err(at
                    .field("overprovisioning_factor")
                    .invalid("must be at least 1"))
            }
            f => f.as_ref().map(|f| f.value),
        };
    }
    if cluster_name.is_empty() {
        return Err(at.field("cluster_name").invalid("must not be empty"));
    }
    let localities = endpoints
        .iter()
        .enumerate()
        .map(|(i, l)| locality_endpoints(l, &at.index("endpoints", i), &address))
        .collect::<Result<_, _>>()?;
    Ok(AssignmentParts {
        cluster_name: cluster_name.clone(),
        localities,
        overprovisioning_factor: overprovisioning,
    })
}

fn locality_endpoints<A>(
    l: &PbLocalityEndpoints,
    at: &At,
    address: &impl Fn(&Address, &At) -> Result<A, Problem>,
) -> Result<LocalityParts<A>, Problem> {
    let PbLocalityEndpoints {
        locality,
        lb_endpoints,
        load_balancing_weight,
        priority,
        metadata,
        proximity,
        lb_config,
    } = l;
    refuse_unsupported!(at; metadata, proximity, lb_config);
    if *priority > MAX_PRIORITY {
        return Err(at
            .field("priority")
            .invalid(format!("{priority} is above {MAX_PRIORITY}")));
    }
    let weight = match load_balancing_weight {
        Some(w) if w.value == 0 => {
            return Err(at
                .field("load_balancing_weight")
                .invalid("must be at least 1"))
        }
        w => w.as_ref().map(|w| w.value),
    };
    let endpoints = lb_endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| lb_endpoint(e, &at.index("lb_endpoints", i), address))
        .collect::<Result<Vec<_>, _>>()?;
    // Envoy: "The sum of weights of all upstream hosts in a locality exceeds 4294967295".
    if endpoints
        .iter()
        .map(|(_, w, _, _)| u64::from(*w))
        .sum::<u64>()
        > u64::from(u32::MAX)
    {
        return Err(at
            .field("lb_endpoints")
            .invalid("the endpoint weights sum to more than 4294967295"));
    }
    Ok(LocalityParts {
        locality: locality.as_ref().map(|l| {
            let PbLocality {
                region,
                zone,
                sub_zone,
            } = l;
            Locality {
                region: region.clone(),
                zone: zone.clone(),
                sub_zone: sub_zone.clone(),
            }
        }),
        priority: *priority,
        weight,
        endpoints,
    })
}

fn lb_endpoint<A>(
    e: &PbLbEndpoint,
    at: &At,
    address: &impl Fn(&Address, &At) -> Result<A, Problem>,
) -> Result<EndpointParts<A>, Problem> {
    let PbLbEndpoint {
        health_status,
        metadata,
        load_balancing_weight,
        host_identifier,
    } = e;
    let workload = match only_metadata(metadata, ENDPOINT_METADATA_KEY, at)? {
        Some(s) => endpoint_from_metadata(
            s,
            &at.field("metadata")
                .field("filter_metadata")
                .field(ENDPOINT_METADATA_KEY),
        )?,
        None => None,
    };
    let endpoint = match host_identifier {
        Some(HostIdentifier::Endpoint(e)) => e,
        Some(HostIdentifier::EndpointName(_)) => {
            return Err(at.field("endpoint_name").unsupported())
        }
        None => return Err(at.field("endpoint").invalid("is required")),
    };
    let at_endpoint = at.field("endpoint");
    let Endpoint {
        address: addr,
        health_check_config,
        hostname,
        additional_addresses,
        observability_name,
    } = endpoint;
    refuse_unsupported!(at_endpoint; health_check_config, hostname, additional_addresses, observability_name);
    let addr = match addr {
        Some(a) => address(a, &at_endpoint.field("address"))?,
        None => return Err(at_endpoint.field("address").invalid("is required")),
    };
    let weight = match load_balancing_weight {
        None => 1,
        Some(w) if w.value == 0 => {
            return Err(at
                .field("load_balancing_weight")
                .invalid("must be at least 1"))
        }
        Some(w) => w.value,
    };
    let health = match PbHealth::try_from(*health_status) {
        Ok(PbHealth::Unknown) => HealthStatus::Unknown,
        Ok(PbHealth::Healthy) => HealthStatus::Healthy,
        Ok(PbHealth::Unhealthy) => HealthStatus::Unhealthy,
        Ok(PbHealth::Draining) => HealthStatus::Draining,
        Ok(PbHealth::Timeout) => HealthStatus::Timeout,
        Ok(PbHealth::Degraded) => HealthStatus::Degraded,
        Err(_) => {
            return Err(at
                .field("health_status")
                .invalid(format!("unknown value {health_status}")))
        }
    };
    Ok((addr, weight, health, workload))
}
