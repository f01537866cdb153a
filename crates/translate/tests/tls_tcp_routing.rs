//! VirtualService `tls` and `tcp` rules at a sidecar: TLS the proxy passes through is
//! routed by the SNI the client sent (a chain per SNI match beside the port's TCP chain,
//! the TLS inspector on that port only), and a VirtualService with only `tls` or `tcp`
//! rules leaves its host's HTTP routing alone. The proxy's own model picks the chains.

mod support;

use bowline_model::route::{ClusterSpecifier, RequestHead, RouteAction, RouteConfig};
use bowline_model::{ConnectionInfo, Listener, NetworkFilter};
use bowline_translate::{generate, Generated, InterceptionMode};
use support::{mesh, proxy, push};

const SERVICES: &str = include_str!("inputs/services.yaml");

const TLS_SERVICE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wiki, namespace: default}
spec:
  hosts: [wiki.example.com]
  addresses: [240.0.0.20]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 10.0.0.20}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wiki-en, namespace: default}
spec:
  hosts: [en.wiki.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 10.0.0.21}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wiki, namespace: default}
spec:
  hosts: [wiki.example.com]
  tls:
  - match:
    - sniHosts: [en.wiki.example.com]
    route:
    - destination: {host: en.wiki.example.com}
  - match:
    - sniHosts: ["*.wiki.example.com"]
      port: 443
    route:
    - destination: {host: wiki.example.com}
      weight: 50
    - destination: {host: en.wiki.example.com}
      weight: 50
"#;

fn captured(yaml: &str) -> Generated {
    let snap = mesh(&format!("{SERVICES}\n---\n{yaml}"));
    let mut p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    p.interception_mode = InterceptionMode::Redirect;
    generate(&push(&snap), &p)
}

fn outbound(config: &Generated) -> Listener {
    let l = config
        .listeners
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .unwrap();
    Listener::try_from(l).expect("the proxy accepts the listener")
}

/// Where a TLS connection to `destination` with SNI `sni` goes: the tcp_proxy's cluster(s).
fn tls_to(listener: &Listener, destination: &str, sni: Option<&str>) -> String {
    let conn = ConnectionInfo {
        destination: destination.parse().unwrap(),
        source: "10.10.0.10:40000".parse().unwrap(),
        server_name: sni,
        transport_protocol: "tls",
        application_protocols: &[],
    };
    match listener.select_chain(&conn).map(|c| &c.network) {
        Some(NetworkFilter::Tcp(t)) => match &t.cluster {
            ClusterSpecifier::Cluster(c) => c.clone(),
            ClusterSpecifier::Weighted(w) => w
                .iter()
                .map(|c| format!("{}={}", c.name, c.weight))
                .collect::<Vec<_>>()
                .join(","),
        },
        other => format!("{other:?}"),
    }
}

#[test]
fn virtual_service_tls_rules_route_by_sni_at_the_sidecar() {
    let config = captured(TLS_SERVICE);
    let listener = outbound(&config);
    let wiki = "outbound|443||wiki.example.com";
    let en = "outbound|443||en.wiki.example.com";
    assert_eq!(
        tls_to(&listener, "240.0.0.20:443", Some("en.wiki.example.com")),
        en
    );
    assert_eq!(
        tls_to(&listener, "240.0.0.20:443", Some("de.wiki.example.com")),
        format!("{wiki}=50,{en}=50"),
        "the wildcard rule"
    );
    assert_eq!(
        tls_to(&listener, "240.0.0.20:443", Some("wiki.example.com")),
        wiki,
        "no rule: the service's own TCP chain"
    );
    assert_eq!(tls_to(&listener, "240.0.0.20:443", None), wiki);
    assert!(listener.tls_inspector, "SNI is read where it routes");
    let disabled = listener.tls_inspector_disabled.as_ref().unwrap();
    assert!(!disabled.matches(443) && disabled.matches(9080) && disabled.matches(3306));
}

#[test]
fn a_virtual_service_with_only_tcp_or_tls_rules_leaves_http_routing_alone() {
    let tcp_only = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-tcp, namespace: default}
spec:
  hosts: [reviews]
  tcp:
  - route:
    - destination: {host: ratings}
"#;
    let config = captured(tcp_only);
    let rc = config.routes.iter().find(|r| r.name == "9080").unwrap();
    let rc = RouteConfig::try_from(rc).unwrap();
    let headers = http::HeaderMap::new();
    let head = RequestHead {
        method: "GET",
        authority: "reviews:9080",
        path: "/",
        scheme: "http",
        headers: &headers,
    };
    let (_, route) = rc.select(&head).expect("reviews is still routed");
    match &route.action {
        RouteAction::Forward(f) => assert_eq!(
            f.clusters,
            ClusterSpecifier::Cluster("outbound|9080||reviews.default.svc.cluster.local".into())
        ),
        other => panic!("{other:?}"),
    }
}
