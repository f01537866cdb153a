//! Where a gateway proxies bytes: a PASSTHROUGH server's TLS by the SNI the client sent
//! (VirtualService `tls` rules), a TCP server's connections (`tcp` rules). As for HTTP, a
//! VirtualService reaches a server when its `gateways` name the server's Gateway; a rule's
//! match applies as an HTTP one does at a gateway (`applies_at_gateway`: port, source
//! labels and namespace, and its `gateways`, if set, naming the Gateway). SNI names are narrowed to what the server's `hosts` expose.

use super::{exposed, names_gateway, BoundServer, NamedVs};
use crate::routes::virtual_service::{applies_at_gateway, Source};
use crate::routes::RouteContext;
use crate::tcp::destinations;
use crate::{ProxyView, PushContext};
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};

/// One SNI route of a PASSTHROUGH server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SniRoute {
    pub server_names: Vec<String>,
    pub tcp_proxy: TcpProxy,
}

/// The SNI routes of a port's PASSTHROUGH servers: VirtualServices in load order, their
/// `tls` rules in order, one route per match; an SNI name belongs to the first route that
/// claims it (Envoy refuses two chains with one match).
pub(crate) fn passthrough_routes(
    push: &PushContext,
    proxy: &ProxyView,
    services: &[NamedVs],
    port: u32,
    servers: &[BoundServer<'_>],
) -> Vec<SniRoute> {
    let mut out: Vec<SniRoute> = Vec::new();
    let mut claimed: Vec<String> = Vec::new();
    for vs in services {
        for bound in servers.iter().filter(|b| bound_to(vs, b)) {
            let ctx = context(push, proxy, vs, port);
            for rule in &vs.spec.tls {
                let Some(chosen) = destinations(&ctx, &rule.route) else {
                    continue;
                };
                for m in &rule.matches {
                    if !applies_at_gateway(Source::from(m), port, proxy, named(vs, bound)) {
                        continue;
                    }
                    let mut names: Vec<String> = m
                        .sni_hosts
                        .iter()
                        .flat_map(|sni| exposed(bound, &sni.to_ascii_lowercase(), &vs.namespace))
                        .filter(|n| !claimed.contains(n))
                        .collect();
                    names.sort();
                    names.dedup();
                    if names.is_empty() {
                        continue;
                    }
                    claimed.extend(names.iter().cloned());
                    out.push(SniRoute {
                        server_names: names,
                        tcp_proxy: tcp_proxy(chosen.clone()),
                    });
                }
            }
        }
    }
    out
}

/// Where a TCP server's connections go: the first `tcp` rule that applies, of the first
/// VirtualService bound to the server (with a host the server exposes) that has one.
pub(crate) fn tcp_route(
    push: &PushContext,
    proxy: &ProxyView,
    services: &[NamedVs],
    port: u32,
    bound: &BoundServer<'_>,
) -> Option<TcpProxy> {
    services
        .iter()
        .filter(|vs| bound_to(vs, bound))
        .filter(|vs| {
            vs.spec
                .hosts
                .iter()
                .any(|h| !exposed(bound, h, &vs.namespace).is_empty())
        })
        .find_map(|vs| {
            let ctx = context(push, proxy, vs, port);
            vs.spec
                .tcp
                .iter()
                .filter(|rule| {
                    rule.matches.is_empty()
                        || rule.matches.iter().any(|m| {
                            applies_at_gateway(Source::from(m), port, proxy, named(vs, bound))
                        })
                })
                .find_map(|rule| destinations(&ctx, &rule.route))
        })
        .map(tcp_proxy)
}

fn bound_to(vs: &NamedVs, bound: &BoundServer<'_>) -> bool {
    vs.spec
        .gateways
        .iter()
        .any(|g| names_gateway(g, &vs.namespace, bound))
}

/// Whether a match's `gateways` entry names the server's Gateway.
fn named<'a>(vs: &'a NamedVs, bound: &'a BoundServer<'_>) -> impl Fn(&str) -> bool + 'a {
    move |g| names_gateway(g, &vs.namespace, bound)
}

fn context<'a>(
    push: &'a PushContext,
    proxy: &'a ProxyView,
    vs: &'a NamedVs,
    port: u32,
) -> RouteContext<'a> {
    RouteContext {
        push,
        proxy,
        vs_namespace: &vs.namespace,
        port,
    }
}

/// A tcp_proxy to `chosen`, its stat prefix the (first) cluster's name, as Istio's.
fn tcp_proxy(chosen: ClusterSpecifier) -> TcpProxy {
    let stat_prefix = match &chosen {
        ClusterSpecifier::Cluster(c) => c.clone(),
        ClusterSpecifier::WeightedClusters(w) => w
            .clusters
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    };
    TcpProxy {
        stat_prefix,
        cluster_specifier: Some(chosen),
        ..Default::default()
    }
}
