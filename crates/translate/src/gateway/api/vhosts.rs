//! The virtual hosts a gateway route configuration gets from Gateway API routes: one per
//! hostname the attached routes serve on its listeners, holding every matching rule of
//! every route covering that hostname, in the spec's precedence order.
//!
//! A route hostname covers a virtual host when it is that name or a wildcard over it (a
//! route without hostnames covers every name of its listener), so a request for
//! `a.example.com` tries the rules of routes for `a.example.com` first, then those for
//! `*.example.com`, then those for any host, each group sorted by match precedence.
//!
//! Left out: listener isolation across listeners of one port (a route attached only to a
//! `*` listener also answers hostnames that a more specific listener of the port claims).

use super::action::{route, Rule, Served};
use super::attach::{api_routes, attach, ApiListener, ApiRoute, RouteSpec};
use super::matching::{grpc_match, http_match};
use super::precedence::{MatchRank, Precedence, RouteAge};
use crate::gateway::BoundServer;
use crate::naming;
use bowline_config::common::host_matches;
use bowline_config::gateway_api::{GrpcRouteMatch, HttpRouteMatch};
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::route::v3::{Route, RouteMatch};

/// (virtual host name, domains, routes), as the gateway's route configuration merges them.
pub(crate) type VirtualHostParts = (String, Vec<String>, Vec<Route>);

/// The Gateway API listeners among `servers` (the converted Istio servers of one route
/// configuration), and the virtual hosts their attached routes get on `port`.
pub(crate) fn virtual_hosts(
    snapshot: &Snapshot,
    servers: &[BoundServer<'_>],
    port: u32,
) -> Vec<VirtualHostParts> {
    let config = &snapshot.config;
    let bound = |l: &ApiListener<'_>| {
        servers.iter().any(|b| {
            b.gateway_namespace == l.gateway.namespace()
                && b.gateway_name == super::server_name(l.gateway.name(), &l.listener.name)
        })
    };
    // (route, its most specific hostnames on these listeners, listener scheme)
    let mut attached: Vec<(ApiRoute<'_>, Vec<String>, &'static str)> = Vec::new();
    for r in api_routes(config) {
        for parent in r.parent_refs() {
            let Some(Ok(list)) = attach(config, &r, parent) else {
                continue;
            };
            for a in list.into_iter().filter(|a| bound(&a.listener)) {
                let scheme = if a.listener.listener.protocol == "HTTPS" {
                    "https"
                } else {
                    "http"
                };
                match attached
                    .iter_mut()
                    .find(|(x, _, _)| std::ptr::eq(x.resource, r.resource))
                {
                    Some((_, hosts, _)) => {
                        for h in a.hostnames {
                            if !hosts.contains(&h) {
                                hosts.push(h);
                            }
                        }
                    }
                    None => attached.push((r, a.hostnames, scheme)),
                }
            }
        }
    }
    let mut hosts: Vec<&str> = attached
        .iter()
        .flat_map(|(_, hs, _)| hs.iter().map(String::as_str))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
        .into_iter()
        .map(|host| {
            let mut entries: Vec<(Precedence<'_>, Route)> = Vec::new();
            for (r, hostnames, scheme) in &attached {
                let Some(covering) = most_specific_cover(hostnames, host) else {
                    continue;
                };
                let at = Served {
                    snapshot,
                    route: *r,
                    port,
                    scheme,
                };
                entries.extend(routes_of(&at, covering));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let domains = if host == "*" {
                vec![host.to_string()]
            } else {
                vec![host.to_string(), format!("{host}:{port}")]
            };
            (
                naming::virtual_host(host, port),
                domains,
                entries.into_iter().map(|(_, r)| r).collect(),
            )
        })
        .collect()
}

/// The route hostname that covers `host` most specifically, if any does.
fn most_specific_cover<'a>(hostnames: &'a [String], host: &str) -> Option<&'a str> {
    hostnames
        .iter()
        .filter(|h| *h == host || host_matches(h, host))
        .max_by_key(|h| (!h.starts_with('*'), h.len()))
        .map(String::as_str)
}

/// Every (rule, match) of a route as a sortable Envoy route; matches that cannot be
/// expressed (a bad regex, which validation reports) are left out.
fn routes_of<'a>(at: &Served<'a>, covering: &'a str) -> Vec<(Precedence<'a>, Route)> {
    let meta = &at.route.resource.meta;
    let age = RouteAge::new(
        meta.creation_timestamp.as_deref(),
        &meta.namespace,
        &meta.name,
    );
    let mut out = Vec::new();
    let mut push = |rule_index: usize,
                    match_index: usize,
                    rank,
                    m: Option<RouteMatch>,
                    rule: Rule<'_>,
                    prefix: &str| {
        let Some(m) = m else { return };
        let key = Precedence {
            hostname: covering,
            rank,
            age,
            rule: rule_index,
            match_index,
        };
        out.push((key, route(at, &rule, rule_index, m, prefix)));
    };
    match at.route.spec {
        RouteSpec::Http(spec) => {
            let default = [HttpRouteMatch::default()];
            for (i, rule) in spec.rules.iter().enumerate() {
                let parts = Rule {
                    name: rule.name.as_deref(),
                    filters: &rule.filters,
                    backends: &rule.backend_refs,
                    timeouts: rule.timeouts.as_ref(),
                    retry: rule.retry.as_ref(),
                };
                let matches = if rule.matches.is_empty() {
                    &default[..]
                } else {
                    &rule.matches
                };
                for (j, m) in matches.iter().enumerate() {
                    let prefix = match m.path.as_ref() {
                        Some(p) if matches!(p.match_type.as_deref(), None | Some("PathPrefix")) => {
                            p.value.as_deref().unwrap_or("/")
                        }
                        _ => "/",
                    };
                    push(i, j, MatchRank::http(m), http_match(m), parts, prefix);
                }
            }
        }
        RouteSpec::Grpc(spec) => {
            let default = [GrpcRouteMatch::default()];
            for (i, rule) in spec.rules.iter().enumerate() {
                let parts = Rule {
                    name: rule.name.as_deref(),
                    filters: &rule.filters,
                    backends: &rule.backend_refs,
                    timeouts: None,
                    retry: None,
                };
                let matches = if rule.matches.is_empty() {
                    &default[..]
                } else {
                    &rule.matches
                };
                for (j, m) in matches.iter().enumerate() {
                    push(i, j, MatchRank::grpc(m), grpc_match(m), parts, "/");
                }
            }
        }
    }
    out
}
