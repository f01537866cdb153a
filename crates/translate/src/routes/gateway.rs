//! A gateway's route configurations: `http.<port>` for a port's plaintext servers and one
//! per TLS server, each holding a virtual host per (bound VirtualService, allowed host).

use super::delegate::{self, Rule};
use super::domains::claim_unique;
use super::virtual_service::{applies_at_gateway, Source};
use super::{action, matching, RouteContext};
use crate::gateway::{
    api_virtual_hosts, exposed, gateway_config, http_route_name, names_gateway, ports, BoundServer,
    NamedVs, ServerKind,
};
use crate::naming;
use crate::proto::bool_value;
use crate::{ProxyView, PushContext};
use bowline_config::common::fqdn;
use bowline_config::istio::VirtualService;
use bowline_xds::pb::envoy::config::route::v3::{
    virtual_host::TlsRequirementType, Route, RouteConfiguration, VirtualHost,
};

/// Every route configuration of a gateway, sorted by name.
pub(crate) fn routes(push: &PushContext, proxy: &ProxyView) -> Vec<RouteConfiguration> {
    let (gateways, services) = gateway_config(&push.snapshot().config);
    let mut out = Vec::new();
    for plan in ports(&gateways, proxy) {
        if !plan.http.is_empty() {
            let redirect = plan.http.iter().any(|b| {
                matches!(
                    crate::gateway::server_kind(b.server, None),
                    Some(ServerKind::Http {
                        https_redirect: true
                    })
                )
            });
            out.push(route_config(
                http_route_name(plan.port),
                push,
                &services,
                proxy,
                &plan.http,
                plan.port,
                redirect,
            ));
        }
        for tls in &plan.https {
            out.push(route_config(
                tls.route.clone(),
                push,
                &services,
                proxy,
                std::slice::from_ref(&tls.bound),
                plan.port,
                false,
            ));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The virtual hosts of `servers`: VirtualServices in load order; one virtual host per
/// exposed host (routes of several VirtualServices merged in load order), and a domain
/// belongs to the first virtual host that claims it (Envoy refuses duplicates).
fn route_config(
    name: String,
    push: &PushContext,
    services: &[NamedVs],
    proxy: &ProxyView,
    servers: &[BoundServer<'_>],
    port: u32,
    require_tls: bool,
) -> RouteConfiguration {
    let mut vhosts: Vec<(String, Vec<String>, Vec<Route>)> = Vec::new();
    for NamedVs {
        namespace: ns,
        spec: vs,
    } in services
    {
        let bound: Vec<&BoundServer<'_>> = servers
            .iter()
            .filter(|b| vs.gateways.iter().any(|g| names_gateway(g, ns, b)))
            .collect();
        if bound.is_empty() {
            continue;
        }
        let routes = http_routes(push, proxy, vs, ns, port, &bound);
        let mut hosts: Vec<String> = Vec::new();
        for host in &vs.hosts {
            let host = fqdn(host, ns);
            for b in &bound {
                for h in exposed(b, &host, ns) {
                    if !hosts.contains(&h) {
                        hosts.push(h);
                    }
                }
            }
        }
        for host in hosts {
            let domains = gateway_domains(&host, port);
            let name = naming::virtual_host(&host, port);
            // Two VirtualServices reaching one host share its virtual host: the later one's
            // routes follow the earlier one's (Istio merges them the same way).
            match vhosts.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, _, existing)) => existing.extend(routes.iter().cloned()),
                None => vhosts.push((name, domains, routes.clone())),
            }
        }
    }
    // Gateway API routes of these servers' listeners, merged the same way.
    for (name, domains, routes) in api_virtual_hosts(push.snapshot(), servers, port) {
        match vhosts.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, existing)) => existing.extend(routes),
            None => vhosts.push((name, domains, routes)),
        }
    }
    let domains = claim_unique(vhosts.iter().map(|(_, d, _)| d.clone()).collect());
    let virtual_hosts = vhosts
        .into_iter()
        .zip(domains)
        .filter(|(_, domains)| !domains.is_empty())
        .map(|((name, _, routes), domains)| VirtualHost {
            name,
            domains,
            routes,
            require_tls: if require_tls {
                TlsRequirementType::All as i32
            } else {
                TlsRequirementType::None as i32
            },
            ..Default::default()
        })
        .collect();
    RouteConfiguration {
        name,
        virtual_hosts,
        validate_clusters: bool_value(false),
        ..Default::default()
    }
}

/// A VirtualService's `http` rules as the gateway applies them: as for sidecars (delegation
/// included), except a match's `gateways` (when set) must name one of the Gateways the rule
/// is reached through.
fn http_routes(
    push: &PushContext,
    proxy: &ProxyView,
    vs: &VirtualService,
    vs_namespace: &str,
    port: u32,
    bound: &[&BoundServer<'_>],
) -> Vec<Route> {
    let mut out = Vec::new();
    for Rule { namespace, rule } in
        delegate::expand(&push.snapshot().config, vs_namespace, &vs.http)
    {
        let ctx = RouteContext {
            push,
            proxy,
            vs_namespace: namespace,
            port,
        };
        let rule = rule.as_ref();
        if rule.matches.is_empty() {
            out.extend(action::route(&ctx, rule, None, matching::prefix_all()));
            break;
        }
        for m in &rule.matches {
            let named = |g: &str| bound.iter().any(|b| names_gateway(g, vs_namespace, b));
            if !applies_at_gateway(Source::from(m), port, proxy, named) {
                continue;
            }
            if let Some(route_match) = matching::route_match(Some(m)) {
                out.extend(action::route(&ctx, rule, Some(m), route_match));
            }
        }
    }
    out
}

/// The domains of a gateway's virtual host for `host` on server `port`: the host, and the
/// host with any port (Istio's `host:*`), since clients put the port they dialled in `Host`
/// (curl does) and a gateway's Service often maps its port (80 → 8080, or `bowline up`'s
/// 18080): matching only `host:<server port>` answered them 404. A wildcard host keeps
/// `host:<server port>`: Envoy allows one `*` per domain.
fn gateway_domains(host: &str, port: u32) -> Vec<String> {
    if host == "*" {
        vec![host.to_string()]
    } else if host.starts_with('*') {
        vec![host.to_string(), format!("{host}:{port}")]
    } else {
        vec![host.to_string(), format!("{host}:*")]
    }
}
