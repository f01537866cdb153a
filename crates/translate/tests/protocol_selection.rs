//! Istio's protocol selection: a port's declared `protocol`, a Kubernetes `appProtocol`, or
//! its name's prefix decide; when none does, a captured sidecar detects HTTP per connection
//! (the HTTP inspector, on those ports only, giving up after the detection timeout so that
//! server-first protocols continue as TCP). The proxy's own model picks the chains.

mod support;

use bowline_model::{ConnectionInfo, Listener, NetworkFilter};
use bowline_registry::{Protocol, Snapshot};
use bowline_translate::{generate, Generated, InterceptionMode};
use support::{mesh, proxy, push};

const SERVICES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.default.svc.cluster.local]
  addresses: [240.0.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 8000, name: web}
  - {number: 3306, name: mysql}
  - {number: 9000, name: http-api}
  - {number: 7000, name: tcp-raw}
  - {number: 7100, name: grpc, protocol: GRPC}
  endpoints: [{address: 10.0.0.5}]
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: default}
spec:
  clusterIP: 240.0.0.11
  ports:
  - {name: api, port: 8080, appProtocol: http}
  - {name: stream, port: 8001}
"#;

fn protocols(snap: &Snapshot) -> Vec<(u32, Protocol)> {
    snap.services
        .iter()
        .flat_map(|s| s.ports.iter().map(|p| (p.number, p.protocol)))
        .collect()
}

fn captured(snap: &Snapshot) -> Generated {
    let mut p = proxy(snap, "10.0.0.9", "client", "default");
    p.interception_mode = InterceptionMode::Redirect;
    generate(&push(snap), &p)
}

/// The chain the outbound listener gives a connection to `destination` whose first bytes
/// the HTTP inspector named `alpn` (none: not HTTP, or it gave up): `http <route>` or
/// `tcp <cluster>`.
fn chain_for(listener: &Listener, destination: &str, alpn: &[&str]) -> String {
    let conn = ConnectionInfo {
        destination: destination.parse().unwrap(),
        source: "10.0.0.9:40000".parse().unwrap(),
        server_name: None,
        transport_protocol: "raw_buffer",
        application_protocols: alpn,
    };
    match listener.select_chain(&conn).map(|c| &c.network) {
        Some(NetworkFilter::Http(h)) => format!("http {:?}", h.route),
        Some(NetworkFilter::Tcp(t)) => format!("tcp {:?}", t.cluster),
        None => "closed".into(),
    }
}

#[test]
fn ports_take_their_protocol_by_istios_rules() {
    let snap = mesh(SERVICES);
    let mut got = protocols(&snap);
    got.sort_by_key(|(n, _)| *n);
    assert_eq!(
        got,
        [
            (3306, Protocol::Tcp),
            (7000, Protocol::Tcp),
            (7100, Protocol::Grpc),
            (8000, Protocol::Unspecified),
            (8001, Protocol::Unspecified),
            (8080, Protocol::Http),
            (9000, Protocol::Http),
        ]
    );
}

#[test]
fn unspecified_ports_are_sniffed_under_capture_and_nowhere_else() {
    let snap = mesh(SERVICES);
    let config = captured(&snap);
    let pb = config
        .listeners
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .unwrap();
    let listener = Listener::try_from(pb).expect("the proxy accepts the listener");
    assert!(listener.http_inspector);
    let disabled = listener.http_inspector_disabled.as_ref().unwrap();
    for (port, sniffed) in [
        (8000, true),
        (8001, true),
        (3306, false),
        (9000, false),
        (443, false),
    ] {
        assert_eq!(!disabled.matches(port), sniffed, "port {port}");
    }
    assert_eq!(
        listener.inspection_timeout,
        Some(std::time::Duration::from_millis(100)),
        "bowline's floor when MeshConfig leaves protocolDetectionTimeout at 0"
    );
    assert!(listener.continue_on_inspection_timeout);

    let http = |port: u16| format!("http Rds(\"{port}\")");
    // An unspecified port: HTTP by its first bytes, TCP otherwise, at the VIP or elsewhere.
    assert_eq!(
        chain_for(&listener, "240.0.0.10:8000", &["http/1.1"]),
        http(8000)
    );
    assert_eq!(chain_for(&listener, "10.0.0.5:8000", &["h2c"]), http(8000));
    assert!(chain_for(&listener, "240.0.0.10:8000", &[]).starts_with("tcp "));
    // Declared ports do not depend on detection.
    assert!(chain_for(&listener, "240.0.0.10:3306", &[]).starts_with("tcp "));
    assert_eq!(chain_for(&listener, "240.0.0.10:9000", &[]), http(9000));
    // The route configuration of a sniffed port routes the service by Host.
    let routes = config.routes.iter().find(|r| r.name == "8000").unwrap();
    assert!(routes.virtual_hosts.iter().any(|v| v
        .domains
        .iter()
        .any(|d| d == "shop.default.svc.cluster.local:8000")));

    // Explicit mode (no original destination): no inspector.
    let explicit = generate(&push(&snap), &proxy(&snap, "10.0.0.9", "client", "default"));
    let pb = explicit
        .listeners
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .unwrap();
    assert!(pb.listener_filters.is_empty());
}
