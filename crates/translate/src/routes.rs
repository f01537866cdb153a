//! RDS: one route configuration per outbound HTTP port (`"9080"`), holding a virtual host
//! per service on that port and, last, the catch-all for hosts outside the registry (see
//! [`crate::passthrough`]), and `http_proxy`, holding one per (service, HTTP port) for
//! requests that reach the outbound listener itself (absolute-form, `HTTP_PROXY`).

mod action;
mod delegate;
mod destination;
mod domains;
pub(crate) mod filters;
mod gateway;
pub(crate) mod headers;
mod matching;
mod retry;
pub(crate) mod virtual_service;

use crate::naming;
use crate::services::PortOf;
use crate::{ProxyView, PushContext};
use bowline_xds::pb::envoy::config::core::v3::data_source;
use bowline_xds::pb::envoy::config::route::v3::{
    route, Decorator, Route, RouteConfiguration, VirtualHost,
};
use delegate::Rule;
use std::collections::BTreeMap;
use virtual_service::{applies, Source};

pub(crate) use destination::cluster_name;
pub(crate) use domains::short_forms;
pub(crate) use matching::prefix_all;
pub(crate) use retry::default_policy as default_retry_policy;

/// What a route is built against: who asks, where the VirtualService's short names resolve,
/// and the port of the virtual host (the default for destinations without a port).
pub(crate) struct RouteContext<'a> {
    pub push: &'a PushContext,
    pub proxy: &'a ProxyView,
    pub vs_namespace: &'a str,
    pub port: u32,
}

/// Envoy's default cap on direct-response bodies; larger bodies need the cap raised.
const DEFAULT_MAX_DIRECT_RESPONSE_BODY: usize = 4096;

/// Every route configuration the proxy gets, sorted by name.
pub fn routes(ctx: &PushContext, proxy: &ProxyView) -> Vec<RouteConfiguration> {
    if proxy.gateway.is_some() {
        return gateway::routes(ctx, proxy);
    }
    let http: Vec<(PortOf<'_>, Vec<Route>)> = ctx
        .outbound_ports(proxy)
        .into_iter()
        .filter(PortOf::may_be_http)
        .map(|at| (at, http_routes(ctx, proxy, at)))
        .collect();

    let mut by_port: BTreeMap<u16, Vec<&(PortOf<'_>, Vec<Route>)>> = BTreeMap::new();
    for entry in &http {
        by_port.entry(entry.0.number).or_default().push(entry);
    }
    let outside = crate::passthrough::catch_all_virtual_host(
        ctx.outbound_mode(proxy),
        &ctx.outside_cluster(proxy),
    );
    let mut out: Vec<RouteConfiguration> = by_port
        .into_iter()
        .map(|(port, entries)| {
            let vhosts = entries.iter().map(|(at, routes)| {
                let domains = domains::service_domains(at.service, u32::from(port), proxy);
                (*at, domains, routes.clone())
            });
            let mut config =
                route_config(naming::port_route_config(u32::from(port)), vhosts.collect());
            // Hosts outside the registry (Envoy refuses a second `*`, should a service
            // claim it).
            let claimed = config
                .virtual_hosts
                .iter()
                .any(|v| v.domains.iter().any(|d| d == "*"));
            if !claimed {
                config.virtual_hosts.push(outside.clone());
            }
            config
        })
        .collect();
    // The last use of each route list takes it rather than a copy: at 10,000 services the
    // typed routes of one sidecar are ~100 MB, held until packed.
    let proxied = http.into_iter().map(|(at, routes)| {
        let domains = domains::proxy_domains(at.service, at.port.number, proxy);
        (at, domains, routes)
    });
    out.push(route_config(
        naming::HTTP_PROXY_ROUTE.to_string(),
        proxied.collect(),
    ));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A route configuration from (service port, domains, routes) in order; a domain belongs to
/// the first virtual host that claims it, and a virtual host left without domains is dropped
/// (Envoy refuses both duplicates and empty domain lists).
fn route_config(
    name: String,
    vhosts: Vec<(PortOf<'_>, Vec<String>, Vec<Route>)>,
) -> RouteConfiguration {
    let domains = domains::claim_unique(vhosts.iter().map(|(_, d, _)| d.clone()).collect());
    let virtual_hosts: Vec<VirtualHost> = vhosts
        .into_iter()
        .zip(domains)
        .filter(|(_, domains)| !domains.is_empty())
        .map(|((at, _, routes), domains)| VirtualHost {
            name: naming::virtual_host(&at.service.hostname, at.port.number),
            domains,
            routes: decorated(routes, &at.service.hostname, at.port.number),
            ..Default::default()
        })
        .collect();
    let largest_body = virtual_hosts
        .iter()
        .flat_map(|v| &v.routes)
        .filter_map(|r| match &r.action {
            Some(route::Action::DirectResponse(d)) => d.body.as_ref()?.specifier.as_ref(),
            _ => None,
        })
        .map(|body| match body {
            data_source::Specifier::InlineString(s) => s.len(),
            data_source::Specifier::InlineBytes(b) => b.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    RouteConfiguration {
        name,
        virtual_hosts,
        // Clusters may arrive after routes (and a destination may name a subset that does
        // not exist, which Istio answers with 503): do not refuse the configuration for it.
        validate_clusters: crate::proto::bool_value(false),
        max_direct_response_body_size_bytes: (largest_body > DEFAULT_MAX_DIRECT_RESPONSE_BODY)
            .then(|| crate::proto::u32_value(u32::try_from(largest_body).unwrap_or(u32::MAX)))
            .flatten(),
        ..Default::default()
    }
}

/// Istio's span names: every route of a service's virtual host is decorated
/// `<host>:<port>/*` (istiod's `getRouteOperation`), so Envoy and bowline-proxy name the
/// spans of its requests alike.
fn decorated(mut routes: Vec<Route>, host: &str, port: u32) -> Vec<Route> {
    for route in &mut routes {
        route.decorator.get_or_insert_with(|| Decorator {
            operation: format!("{host}:{port}/*"),
            ..Default::default()
        });
    }
    routes
}

/// One service port's virtual host as the per-port route configuration holds it, before
/// domains are shared out between services (its domains, its routes): what a proxyless gRPC
/// client gets alone in the route configuration of that `host:port` (see [`crate::grpc`]).
pub(crate) fn service_virtual_host(
    push: &PushContext,
    proxy: &ProxyView,
    at: PortOf<'_>,
) -> VirtualHost {
    VirtualHost {
        name: naming::virtual_host(&at.service.hostname, at.port.number),
        domains: domains::service_domains(at.service, u32::from(at.number), proxy),
        routes: http_routes(push, proxy, at),
        ..Default::default()
    }
}

/// The routes of one service port's virtual host: the VirtualService's `http` rules in
/// order, delegating rules replaced by their delegate's (see [`delegate`]); first match
/// wins; a rule whose matches all exclude this proxy or port is left out, and nothing after
/// a rule without matches can match. No VirtualService with `http` rules: the default route.
fn http_routes(push: &PushContext, proxy: &ProxyView, at: PortOf<'_>) -> Vec<Route> {
    let host = &at.service.hostname;
    // A VirtualService with only `tls` or `tcp` rules leaves the host's HTTP routing alone.
    let vs = virtual_service::for_host(push, proxy, host).filter(|vs| !vs.spec.http.is_empty());
    let Some(vs) = vs else {
        let ctx = RouteContext {
            push,
            proxy,
            vs_namespace: &at.service.namespace,
            port: at.port.number,
        };
        return vec![action::default_route(&ctx, host)];
    };
    let mut out = Vec::new();
    let config = &push.snapshot().config;
    for Rule { namespace, rule } in delegate::expand(config, vs.namespace, &vs.spec.http) {
        let ctx = RouteContext {
            push,
            proxy,
            vs_namespace: namespace,
            port: at.port.number,
        };
        let rule = rule.as_ref();
        if rule.matches.is_empty() {
            let m = matching::prefix_all();
            out.extend(action::route(&ctx, rule, None, m));
            break;
        }
        for m in rule
            .matches
            .iter()
            .filter(|m| applies(Source::from(*m), at.port.number, proxy))
        {
            if let Some(route_match) = matching::route_match(Some(m)) {
                out.extend(action::route(&ctx, rule, Some(m), route_match));
            }
        }
    }
    out
}
