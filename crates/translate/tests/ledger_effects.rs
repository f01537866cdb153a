//! The effect of fields the config crate's not-applied ledger lists as applied and that no
//! other test shows (deprecated aliases, less common options, Gateway API filters). Each test
//! is named by the ledger (`crates/config/src/validate/not_applied/`).

mod support;

use bowline_xds::pb::envoy::config::cluster::v3::{cluster::LbConfig, Cluster};
use bowline_xds::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use bowline_xds::pb::envoy::config::route::v3::{route, RouteConfiguration};
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use support::{gateway_proxy, mesh, proxy};

const SERVICES: &str = include_str!("inputs/services.yaml");

fn with(scenario: &str) -> bowline_registry::Snapshot {
    mesh(&format!("{SERVICES}\n---\n{scenario}"))
}

fn cluster<'a>(clusters: &'a [Cluster], name: &str) -> &'a Cluster {
    clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

const RATINGS: &str = "outbound|9080||ratings.default.svc.cluster.local";

#[test]
fn destination_rule_workload_selector_picks_proxies() {
    let snap = with(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pp-only, namespace: default}\nspec:\n  host: ratings\n  workloadSelector: {matchLabels: {app: productpage}}\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n",
    );
    use bowline_xds::pb::envoy::config::cluster::v3::cluster::LbPolicy;
    let lb_for = |workload: &str, ip: &str| {
        let p = proxy(&snap, ip, workload, "default");
        cluster(
            &bowline_translate::clusters(&support::push(&snap), &p),
            RATINGS,
        )
        .lb_policy
    };
    assert_eq!(
        lb_for("productpage-v1", "10.10.0.10"),
        LbPolicy::Random as i32
    );
    assert_eq!(
        lb_for("reviews-v2", "10.10.0.32"),
        LbPolicy::LeastRequest as i32,
        "a proxy the selector does not pick keeps the default"
    );
}

fn ratings_cluster(traffic_policy: &str) -> Cluster {
    let snap = with(&format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r, namespace: default}}\nspec:\n  host: ratings\n  trafficPolicy: {traffic_policy}\n"
    ));
    let p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    cluster(
        &bowline_translate::clusters(&support::push(&snap), &p),
        RATINGS,
    )
    .clone()
}

#[test]
fn deprecated_minimum_ring_size() {
    let c = ratings_cluster(
        "{loadBalancer: {consistentHash: {httpHeaderName: x-user, minimumRingSize: 4096}}}",
    );
    let Some(LbConfig::RingHashLbConfig(ring)) = c.lb_config else {
        panic!("ring hash expected: {:?}", c.lb_config)
    };
    assert_eq!(ring.minimum_ring_size.unwrap().value, 4096);
}

#[test]
fn local_origin_and_deprecated_outlier_fields() {
    let c = ratings_cluster(
        "{outlierDetection: {consecutiveErrors: 4, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 6}}",
    );
    let o = c.outlier_detection.unwrap();
    assert_eq!(o.consecutive_gateway_failure.unwrap().value, 4);
    assert!(o.split_external_local_origin_errors);
    assert_eq!(o.consecutive_local_origin_failure.unwrap().value, 6);
}

#[test]
fn tcp_idle_timeout_on_http_clusters() {
    let c = ratings_cluster("{connectionPool: {tcp: {idleTimeout: 45s}}}");
    let any = &c.typed_extension_protocol_options
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    let options: HttpProtocolOptions = bowline_xds::unpack(any).unwrap();
    let idle = options.common_http_protocol_options.unwrap().idle_timeout;
    assert_eq!(idle.unwrap().seconds, 45);
}

#[test]
fn service_port_target_port() {
    let snap = mesh(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc, namespace: default}\nspec:\n  hosts: [svc.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]\n  endpoints: [{address: 10.0.0.1}, {address: 10.0.0.2, ports: {http: 9090}}]\n",
    );
    let p = proxy(&snap, "10.10.0.10", "anyone", "default");
    let assignment = bowline_translate::endpoints(&support::push(&snap), &p)
        .into_iter()
        .find(|a| a.cluster_name == "outbound|80||svc.default.svc.cluster.local")
        .unwrap();
    let ports: Vec<u32> = assignment.endpoints[0]
        .lb_endpoints
        .iter()
        .map(|e| {
            let Some(HostIdentifier::Endpoint(ep)) = &e.host_identifier else {
                panic!("endpoint expected")
            };
            let address = ep.address.as_ref().unwrap().address.as_ref().unwrap();
            let bowline_xds::pb::envoy::config::core::v3::address::Address::SocketAddress(s) =
                address
            else {
                panic!("socket address expected")
            };
            match s.port_specifier {
                Some(bowline_xds::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p)) => p,
                _ => 0,
            }
        })
        .collect();
    assert_eq!(
        ports,
        [8080, 9090],
        "targetPort unless the endpoint names the port"
    );
}

fn route_config<'a>(configs: &'a [RouteConfiguration], name: &str) -> &'a RouteConfiguration {
    configs
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no route configuration {name}"))
}

#[test]
fn deprecated_mirror_percent_and_cors_fields() {
    let snap = with(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings, namespace: default}\nspec:\n  hosts: [ratings]\n  http:\n  - name: old-style\n    route: [{destination: {host: ratings}}]\n    mirror: {host: details.prod.svc.cluster.local}\n    mirrorPercent: 30\n    corsPolicy: {allowOrigin: [\"https://a.example\"], unmatchedPreflights: IGNORE}\n",
    );
    let p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    let routes = bowline_translate::routes(&support::push(&snap), &p);
    let vhost = route_config(&routes, "9080")
        .virtual_hosts
        .iter()
        .find(|v| {
            v.domains
                .iter()
                .any(|d| d == "ratings.default.svc.cluster.local")
        })
        .unwrap();
    let route = &vhost.routes[0];
    let Some(route::Action::Route(action)) = &route.action else {
        panic!("a forwarding route")
    };
    let mirror = &action.request_mirror_policies[0];
    let fraction = mirror.runtime_fraction.as_ref().unwrap();
    assert_eq!(fraction.default_value.as_ref().unwrap().numerator, 30);
    let cors: CorsPolicy =
        bowline_xds::unpack(&route.typed_per_filter_config["envoy.filters.http.cors"]).unwrap();
    assert_eq!(cors.allow_origin_string_match.len(), 1);
    assert!(format!("{:?}", cors.allow_origin_string_match[0]).contains("https://a.example"));
    assert_eq!(
        cors.forward_not_matching_preflights.map(|b| b.value),
        Some(false)
    );
}

#[test]
fn http_route_fields_reach_the_gateway() {
    let snap = with(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: alt, port: 8080, protocol: HTTP}
---
# The backend in prod lets routes of default reach it (else the route answers 500).
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-default, namespace: prod}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: default}
spec:
  parentRefs: [{name: web, port: 8080}]
  rules:
  - name: api
    matches:
    - path: {type: PathPrefix, value: /x}
      method: POST
      headers: [{type: RegularExpression, name: x-v, value: "v[0-9]"}]
      queryParams: [{type: Exact, name: q, value: "1"}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-add, value: a}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-rs, value: s}], add: [{name: x-ra, value: a}], remove: [x-rm]}
    - type: RequestMirror
      requestMirror: {backendRef: {kind: Service, name: ratings, namespace: default, port: 9080}, percent: 25}
    - type: URLRewrite
      urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backendRefs: [{name: details, namespace: prod, port: 9080}]
    retry: {attempts: 3, codes: [503]}
  - name: moved
    matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: secure.example, port: 8443}
"#,
    );
    let gw = gateway_proxy(&snap, &[], "80:18080,8080:18081", "/certs");
    let routes = bowline_translate::routes(&support::push(&snap), &gw);
    let plain = format!("{:?}", route_config(&routes, "http.80"));
    assert!(
        !plain.contains("\"api\""),
        "bound by port to the 8080 listener only"
    );
    let alt = route_config(&routes, "http.8080");
    let all: Vec<_> = alt.virtual_hosts.iter().flat_map(|v| &v.routes).collect();
    let api = all
        .iter()
        .find(|r| r.name == "default.api.api")
        .expect("rule name");
    let text = format!("{api:?}");
    for want in [
        "POST",
        "v[0-9]",
        "\"q\"",
        "x-add",
        "x-rs",
        "x-ra",
        "x-rm",
        "outbound|9080||ratings.default.svc.cluster.local",
        "outbound|9080||details.prod.svc.cluster.local",
        "internal.example",
        "/v2",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    let Some(route::Action::Route(action)) = &api.action else {
        panic!("a forwarding route")
    };
    let retry = action.retry_policy.as_ref().unwrap();
    assert_eq!(retry.num_retries.unwrap().value, 3);
    assert_eq!(retry.retriable_status_codes, [503]);
    let mirror = &action.request_mirror_policies[0];
    let fraction = mirror.runtime_fraction.as_ref().unwrap();
    assert_eq!(fraction.default_value.as_ref().unwrap().numerator, 25);
    let moved = all.iter().find(|r| r.name == "default.api.moved").unwrap();
    let Some(route::Action::Redirect(redirect)) = &moved.action else {
        panic!("a redirect")
    };
    assert_eq!(redirect.host_redirect, "secure.example");
    assert_eq!(redirect.port_redirect, 8443);
    assert!(format!("{:?}", redirect.scheme_rewrite_specifier).contains("https"));
}
