//! Pure translation from the mesh model to Envoy xDS v3: `(&PushContext, &ProxyView)` in,
//! clusters, endpoints, listeners and route configurations out. The [`PushContext`] indexes
//! one `Snapshot` once for every proxy; [`outbound_key`] tells which proxies can share
//! their outbound resources.
//!
//! Istio pilot's lesson: a generator reads only its arguments, so its output can be cached by
//! them, and it never does I/O. Everything here is deterministic (resources sorted by name)
//! and emits only what Envoy accepts: input that would make Envoy NACK (a port of 70000, a
//! weight sum of zero, a duplicate domain, an HTTP status outside 200..600) is dropped or
//! defaulted here, with a comment saying which Envoy rule it honours.
//!
//! Naming follows Istio's so that Envoy's stats and admin pages read the same as in Istio:
//! clusters `outbound|<port>|<subset>|<host>` and `inbound|<port>||`, route configurations
//! named by port (`"9080"`) plus `http_proxy`, listeners `virtualOutbound`/`virtualInbound`.
//! A proxyless gRPC client (node metadata `GENERATOR: "grpc"`) gets another shape from the
//! same routing: API listeners named `<host>:<port>` ([`generate_grpc`]).

mod authn;
mod authz;
mod check;
mod clusters;
mod context;
mod endpoints;
mod gateway;
mod grpc;
mod inbound;
mod istio_stats;
mod listeners;
mod locality;
mod mtls;
pub mod naming;
mod passthrough;
mod policy;
mod proto;
mod proxy_view;
mod routes;
mod scope;
mod services;
mod sharing;
mod tcp;
mod telemetry;
mod tracing;
mod weights;

pub use check::{check, Violation};
pub use clusters::clusters;
pub use context::PushContext;
pub use endpoints::endpoints;
/// Gateway API status conditions (see [`gateway_api_status`]).
pub use gateway::api::status as gateway_api;
pub use gateway::api::status::gateway_api_status;
pub use grpc::generate_grpc;
pub use listeners::listeners;
pub use proxy_view::{GatewayView, Generator, InterceptionMode, InvalidNode, ProxyView};
pub use routes::routes;
pub use sharing::{
    cluster_key, generate_clusters, generate_local, generate_outbound, generate_outbound_for_hosts,
    outbound_key, ClusterKey, Local, Outbound, OutboundKey,
};

use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::envoy::config::route::v3::RouteConfiguration;

/// Everything one sidecar gets for one snapshot, each list sorted by resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generated {
    pub clusters: Vec<Cluster>,
    /// One per EDS cluster, named like it.
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteConfiguration>,
}

/// All four resource types for `proxy`: [`generate_outbound`] and [`generate_local`]
/// merged. Equal inputs give equal outputs.
pub fn generate(ctx: &PushContext, proxy: &ProxyView) -> Generated {
    let outbound = generate_outbound(ctx, proxy);
    let local = generate_local(ctx, proxy);
    let mut clusters = outbound.clusters;
    clusters.extend(local.clusters);
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let generated = Generated {
        clusters,
        endpoints: outbound.endpoints,
        listeners: local.listeners,
        routes: outbound.routes,
    };
    debug_assert!(
        check(&generated).is_empty(),
        "translate emitted config Envoy would refuse: {:?}",
        check(&generated)
    );
    generated
}
