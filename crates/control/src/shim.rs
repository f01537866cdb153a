//! TEMPORARY: the translate API the generator is written against, until translate's push
//! context lands. Everything here is computed the slow way.

use std::collections::BTreeSet;
use std::sync::Arc;

use bowline_registry::Snapshot;
pub use bowline_translate::ProxyView;
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::envoy::config::route::v3::RouteConfiguration;

pub struct PushContext {
    snapshot: Arc<Snapshot>,
}

impl PushContext {
    pub fn new(snapshot: Arc<Snapshot>) -> PushContext {
        PushContext { snapshot }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundKey(String);

pub fn outbound_key(_ctx: &PushContext, proxy: &ProxyView) -> OutboundKey {
    OutboundKey(format!(
        "{:?}|{:?}|{:?}",
        proxy.namespace, proxy.labels, proxy.gateway
    ))
}

pub struct Outbound {
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub routes: Vec<RouteConfiguration>,
}

pub struct Local {
    pub clusters: Vec<Cluster>,
    pub listeners: Vec<Listener>,
}

pub fn generate_outbound(ctx: &PushContext, proxy: &ProxyView) -> Outbound {
    let g = bowline_translate::generate(&ctx.snapshot, proxy);
    Outbound {
        clusters: g
            .clusters
            .into_iter()
            .filter(|c| !c.name.starts_with("inbound|"))
            .collect(),
        endpoints: g.endpoints,
        routes: g.routes,
    }
}

pub fn generate_outbound_for_hosts(
    ctx: &PushContext,
    proxy: &ProxyView,
    hosts: &BTreeSet<String>,
) -> Outbound {
    let host_of = |name: &str| name.splitn(4, '|').nth(3).map(str::to_string);
    let all = generate_outbound(ctx, proxy);
    Outbound {
        clusters: all
            .clusters
            .into_iter()
            .filter(|c| host_of(&c.name).is_some_and(|h| hosts.contains(&h)))
            .collect(),
        endpoints: all
            .endpoints
            .into_iter()
            .filter(|c| host_of(&c.cluster_name).is_some_and(|h| hosts.contains(&h)))
            .collect(),
        routes: Vec::new(),
    }
}

pub fn generate_local(ctx: &PushContext, proxy: &ProxyView) -> Local {
    let g = bowline_translate::generate(&ctx.snapshot, proxy);
    Local {
        clusters: g
            .clusters
            .into_iter()
            .filter(|c| c.name.starts_with("inbound|"))
            .collect(),
        listeners: g.listeners,
    }
}
