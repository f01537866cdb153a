//! The benchmark's static one-hop config (bench/configs/envoy-1hop.yaml.tmpl) converts, with
//! Envoy's defaults where the config is silent.

mod support;

use bowline_model::cluster::{Discovery, Thresholds, UpstreamProtocol};
use bowline_model::route::{ClusterSpecifier, PathMatch, RouteAction, DEFAULT_ROUTE_TIMEOUT};
use bowline_model::{
    Cluster, Codec, DomainMatcher, HttpFilter, Listener, NetworkFilter, RouteSource, Router,
};
use std::time::Duration;

#[test]
fn the_benchmark_listener_converts_with_envoys_defaults() {
    let l = Listener::try_from(&support::bench_listener()).unwrap();
    assert_eq!(l.name, "ingress_http");
    assert_eq!(l.address, "127.0.0.1:10000".parse().unwrap());
    assert!(!l.use_original_dst);
    assert_eq!(l.filter_chains.len(), 1);
    let NetworkFilter::Http(hcm) = &l.filter_chains[0].network else {
        panic!("an HTTP connection manager")
    };
    assert_eq!(hcm.stat_prefix, "ingress_http");
    assert_eq!(hcm.codec, Codec::Auto);
    assert!(!hcm.generate_request_id, "generate_request_id: false");
    assert!(!hcm.normalize_path && !hcm.merge_slashes && !hcm.use_remote_address && !hcm.websocket);
    assert!(hcm.allow_absolute_url, "Envoy's HTTP/1.1 default");
    assert_eq!(
        hcm.http_filters,
        [HttpFilter::Router(Router {
            dynamic_stats: false,
            suppress_envoy_headers: false
        })]
    );
    let RouteSource::Static(rc) = &hcm.route else {
        panic!("an inline route configuration")
    };
    assert_eq!(rc.name, "local_route");
    let vhost = &rc.virtual_hosts[0];
    assert_eq!(vhost.domains, [DomainMatcher::Any]);
    let route = &vhost.routes[0];
    assert_eq!(route.matcher.path, PathMatch::Prefix("/".into()));
    assert!(route.matcher.case_sensitive);
    let RouteAction::Forward(f) = &route.action else {
        panic!("forwards")
    };
    assert_eq!(f.clusters, ClusterSpecifier::Cluster("upstream".into()));
    assert_eq!(
        f.timeout,
        Some(DEFAULT_ROUTE_TIMEOUT),
        "Envoy's 15 s default"
    );
    assert_eq!(f.retry, None);
}

#[test]
fn the_benchmark_cluster_converts_with_envoys_defaults() {
    let c = Cluster::try_from(&support::bench_cluster()).unwrap();
    assert_eq!(c.name, "upstream");
    assert_eq!(c.connect_timeout, Duration::from_secs(1));
    let Discovery::Static(cla) = &c.discovery else {
        panic!("STATIC")
    };
    let endpoint = &cla.endpoints[0].lb_endpoints[0];
    assert_eq!(endpoint.address, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(endpoint.weight, 1);
    assert_eq!(c.lb, bowline_model::cluster::LbPolicy::RoundRobin);
    assert_eq!(c.protocol, UpstreamProtocol::Http1);
    assert_eq!(
        c.circuit_breakers,
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None
        }
    );
    assert_eq!(c.outlier_detection, None);
    assert_eq!(c.healthy_panic_threshold, 50.0);
    assert_eq!(c.connection.idle_timeout, Some(Duration::from_secs(3600)));
}
