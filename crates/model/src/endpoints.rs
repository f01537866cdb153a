//! Cluster load assignments (EDS, or inline in STATIC clusters): the hosts of a cluster by
//! locality and priority.

mod convert;

pub(crate) use convert::{assignment_parts, load_assignment as load_assignment_at};

use std::net::SocketAddr;

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct ClusterLoadAssignment {
    pub cluster_name: String,
    pub endpoints: Vec<LocalityLbEndpoints>,
    /// `policy.overprovisioning_factor`, in percent (at least 1): a priority level or locality
    /// counts as fully available while its healthy share × this is at least 100%. Envoy's
    /// default: 140.
    pub overprovisioning_factor: u32,
}

/// Envoy's default overprovisioning factor, in percent (1.4).
pub(crate) const DEFAULT_OVERPROVISIONING_FACTOR: u32 = 140;

/// Hosts sharing a locality and priority.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct LocalityLbEndpoints {
    pub locality: Option<Locality>,
    /// 0 is the highest priority (Envoy's default).
    pub priority: u32,
    /// Locality weight (at least 1; used only with locality-weighted balancing); `None` when
    /// unset. Envoy takes it only from entries that also name a `locality`: an unweighted
    /// locality gets no traffic under locality-weighted balancing.
    pub weight: Option<u32>,
    pub lb_endpoints: Vec<LbEndpoint>,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct LbEndpoint {
    pub address: SocketAddr,
    /// At least 1. Envoy's default: 1.
    pub weight: u32,
    pub health: HealthStatus,
    /// Who the endpoint is (its `istio` metadata), for Istio's metrics.
    pub workload: Option<std::sync::Arc<crate::istio_stats::EndpointWorkload>>,
}

/// The health the control plane reports (EDS), Envoy's `HealthStatus`.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthStatus {
    /// Envoy's default: treated as healthy.
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
    Draining,
    Timeout,
    Degraded,
}

impl HealthStatus {
    /// Whether the balancer may pick the host (Envoy: UNKNOWN and HEALTHY are healthy;
    /// DEGRADED only when no healthy host is left, which the balancer decides).
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Unknown | HealthStatus::Healthy)
    }
}
