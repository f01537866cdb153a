//! A last look at generated config for what Envoy would NACK (or serve wrongly) and that
//! proto types cannot express: unique names and domains, ports in range, weights that sum
//! to something, references that resolve. `generate` asserts it in debug builds; tests and
//! the xDS server may run it too.

use crate::Generated;
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::core::v3::{address, socket_address, Address};
use bowline_xds::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use bowline_xds::pb::envoy::config::listener::v3::{filter, FilterChain, Listener};
use bowline_xds::pb::envoy::config::route::v3::{route, route_action, RouteConfiguration};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use bowline_xds::unpack;
use std::collections::HashSet;

/// One broken rule, naming the resource it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub resource: String,
    pub problem: String,
}

/// Every violation found; empty means Envoy should accept the set.
pub fn check(g: &Generated) -> Vec<Violation> {
    let mut out = Checker::default();
    out.unique("cluster", g.clusters.iter().map(|c| c.name.as_str()));
    out.unique(
        "endpoints",
        g.endpoints.iter().map(|c| c.cluster_name.as_str()),
    );
    out.unique("listener", g.listeners.iter().map(|l| l.name.as_str()));
    out.unique(
        "route configuration",
        g.routes.iter().map(|r| r.name.as_str()),
    );
    for c in &g.clusters {
        out.cluster(c, g);
    }
    for cla in &g.endpoints {
        out.assignment(cla, false);
    }
    let route_names: HashSet<&str> = g.routes.iter().map(|r| r.name.as_str()).collect();
    for l in &g.listeners {
        out.listener(l, &route_names);
    }
    for r in &g.routes {
        out.route_config(r);
    }
    out.found
}

#[derive(Default)]
struct Checker {
    found: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, resource: &str, problem: impl Into<String>) {
        self.found.push(Violation {
            resource: resource.to_string(),
            problem: problem.into(),
        });
    }

    fn unique<'a>(&mut self, kind: &str, names: impl Iterator<Item = &'a str>) {
        let mut seen = HashSet::new();
        for name in names {
            if name.is_empty() {
                self.fail(kind, "empty name");
            } else if !seen.insert(name) {
                self.fail(name, format!("duplicate {kind} name"));
            }
        }
    }

    fn cluster(&mut self, c: &Cluster, g: &Generated) {
        if c.connect_timeout
            .is_none_or(|t| t.seconds <= 0 && t.nanos <= 0)
        {
            self.fail(&c.name, "connect_timeout must be > 0");
        }
        let kind = match c.cluster_discovery_type {
            Some(cluster::ClusterDiscoveryType::Type(t)) => {
                cluster::DiscoveryType::try_from(t).ok()
            }
            _ => None,
        };
        match kind {
            Some(cluster::DiscoveryType::Eds) => {
                if !g.endpoints.iter().any(|e| e.cluster_name == c.name) {
                    self.fail(&c.name, "EDS cluster without a ClusterLoadAssignment");
                }
            }
            Some(cluster::DiscoveryType::OriginalDst) => {
                if c.lb_policy != cluster::LbPolicy::ClusterProvided as i32 {
                    self.fail(&c.name, "ORIGINAL_DST needs lb_policy CLUSTER_PROVIDED");
                }
            }
            Some(cluster::DiscoveryType::LogicalDns) => {
                let hosts = c
                    .load_assignment
                    .iter()
                    .flat_map(|a| &a.endpoints)
                    .map(|l| l.lb_endpoints.len())
                    .sum::<usize>();
                if hosts != 1 {
                    self.fail(
                        &c.name,
                        format!("LOGICAL_DNS needs exactly one host, has {hosts}"),
                    );
                }
            }
            Some(_) => {}
            None => self.fail(&c.name, "no discovery type"),
        }
        if let Some(a) = &c.load_assignment {
            let dns = matches!(
                kind,
                Some(cluster::DiscoveryType::StrictDns | cluster::DiscoveryType::LogicalDns)
            );
            self.assignment(a, dns);
        }
    }

    fn assignment(&mut self, cla: &ClusterLoadAssignment, dns: bool) {
        let mut total: u64 = 0;
        for locality in &cla.endpoints {
            for e in &locality.lb_endpoints {
                let weight = e.load_balancing_weight.as_ref().map_or(1, |w| w.value);
                if weight == 0 {
                    self.fail(&cla.cluster_name, "endpoint weight 0");
                }
                total += u64::from(weight);
                match &e.host_identifier {
                    Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => {
                        self.address(&cla.cluster_name, ep.address.as_ref(), false, !dns)
                    }
                    _ => self.fail(&cla.cluster_name, "endpoint without an address"),
                }
            }
        }
        if total > u64::from(u32::MAX) {
            self.fail(&cla.cluster_name, "endpoint weights overflow u32");
        }
    }

    fn address(&mut self, resource: &str, a: Option<&Address>, port_zero_ok: bool, ip_only: bool) {
        match a.and_then(|a| a.address.as_ref()) {
            Some(address::Address::SocketAddress(s)) => {
                let port = match s.port_specifier {
                    Some(socket_address::PortSpecifier::PortValue(p)) => p,
                    _ => 0,
                };
                if port > 65535 || (port == 0 && !port_zero_ok) {
                    self.fail(resource, format!("port {port} out of range"));
                }
                if ip_only && s.address.parse::<std::net::IpAddr>().is_err() {
                    self.fail(resource, format!("{:?} is not an IP address", s.address));
                }
            }
            Some(address::Address::Pipe(p)) if !p.path.is_empty() => {}
            _ => self.fail(resource, "missing or empty address"),
        }
    }

    fn listener(&mut self, l: &Listener, routes: &HashSet<&str>) {
        self.address(&l.name, l.address.as_ref(), true, true);
        if l.filter_chains.is_empty() && l.default_filter_chain.is_none() {
            self.fail(&l.name, "no filter chains");
        }
        let mut matches = HashSet::new();
        let mut names = HashSet::new();
        for chain in &l.filter_chains {
            if !matches.insert(format!("{:?}", chain.filter_chain_match)) {
                self.fail(
                    &l.name,
                    format!("filter chain {} repeats a match", chain.name),
                );
            }
            if !chain.name.is_empty() && !names.insert(chain.name.as_str()) {
                self.fail(
                    &l.name,
                    format!("duplicate filter chain name {}", chain.name),
                );
            }
            if let Some(port) = chain
                .filter_chain_match
                .as_ref()
                .and_then(|m| m.destination_port.as_ref())
            {
                if !(1..=65535).contains(&port.value) {
                    self.fail(
                        &l.name,
                        format!("destination_port {} out of range", port.value),
                    );
                }
            }
        }
        for chain in l.filter_chains.iter().chain(&l.default_filter_chain) {
            self.chain(&l.name, chain, routes);
        }
    }

    fn chain(&mut self, listener: &str, chain: &FilterChain, routes: &HashSet<&str>) {
        if chain.filters.is_empty() {
            self.fail(
                listener,
                format!("filter chain {} has no filters", chain.name),
            );
        }
        for f in &chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                self.fail(listener, format!("filter {} has no typed_config", f.name));
                continue;
            };
            let Ok(hcm) = unpack::<HttpConnectionManager>(any) else {
                continue;
            };
            match &hcm.route_specifier {
                Some(RouteSpecifier::Rds(rds))
                    if !routes.contains(rds.route_config_name.as_str()) =>
                {
                    self.fail(
                        listener,
                        format!(
                            "chain {} asks for route configuration {:?}, which is not generated",
                            chain.name, rds.route_config_name
                        ),
                    )
                }
                Some(RouteSpecifier::RouteConfig(inline)) => self.route_config(inline),
                _ => {}
            }
        }
    }

    fn route_config(&mut self, r: &RouteConfiguration) {
        let mut domains = HashSet::new();
        let mut vhosts = HashSet::new();
        for v in &r.virtual_hosts {
            if !vhosts.insert(v.name.as_str()) {
                self.fail(&r.name, format!("duplicate virtual host {}", v.name));
            }
            if v.domains.is_empty() {
                self.fail(&r.name, format!("virtual host {} has no domains", v.name));
            }
            for d in &v.domains {
                if !domains.insert(d.to_ascii_lowercase()) {
                    self.fail(&r.name, format!("domain {d} appears twice"));
                }
            }
            for rt in &v.routes {
                let Some(action) = &rt.action else {
                    self.fail(&r.name, format!("a route of {} has no action", v.name));
                    continue;
                };
                if let route::Action::Route(a) = action {
                    match &a.cluster_specifier {
                        Some(route_action::ClusterSpecifier::Cluster(c)) if !c.is_empty() => {}
                        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
                            let sum: u64 = w
                                .clusters
                                .iter()
                                .filter_map(|c| c.weight.as_ref())
                                .map(|w| u64::from(w.value))
                                .sum();
                            if sum == 0 || sum > u64::from(u32::MAX) {
                                self.fail(&r.name, format!("weights in {} sum to {sum}", v.name));
                            }
                            if w.clusters.iter().any(|c| c.name.is_empty()) {
                                self.fail(
                                    &r.name,
                                    format!("unnamed weighted cluster in {}", v.name),
                                );
                            }
                        }
                        _ => self.fail(&r.name, format!("a route of {} names no cluster", v.name)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::config::route::v3::VirtualHost;

    #[test]
    fn duplicate_names_and_domains_are_reported() {
        let vhost = |name: &str, domains: &[&str]| VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        let config = RouteConfiguration {
            name: "9080".into(),
            virtual_hosts: vec![vhost("a", &["a", "x"]), vhost("b", &["X"]), vhost("c", &[])],
            ..Default::default()
        };
        let g = Generated {
            routes: vec![config.clone(), config],
            ..Default::default()
        };
        let problems: Vec<String> = check(&g).into_iter().map(|v| v.problem).collect();
        assert!(
            problems.contains(&"duplicate route configuration name".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"domain X appears twice".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"virtual host c has no domains".to_string()),
            "{problems:?}"
        );
    }

    #[test]
    fn eds_clusters_need_their_endpoints() {
        let cluster = Cluster {
            name: "outbound|80||a".into(),
            connect_timeout: Some(crate::proto::seconds(10)),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            )),
            ..Default::default()
        };
        let g = Generated {
            clusters: vec![cluster],
            ..Default::default()
        };
        assert_eq!(
            check(&g)[0].problem,
            "EDS cluster without a ClusterLoadAssignment"
        );
    }
}
