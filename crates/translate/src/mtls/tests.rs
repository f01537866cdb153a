//! PeerAuthentication precedence, what outbound clusters originate (auto mTLS and the
//! DestinationRule's modes) and the inbound chains per mode — each output also accepted by
//! bowline-proxy's model.

use super::*;
use crate::generate;
use bowline_model::tls::{CertificateSource, SanKind, TrustSource};
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::path::Path;

const SERVICES: &str = include_str!("../../tests/inputs/services.yaml");

fn mesh(yaml: &str) -> Snapshot {
    let loaded =
        bowline_config::load_str(Path::new("mesh.yaml"), &format!("{SERVICES}\n---\n{yaml}"));
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && !d.is_analysis())
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    Snapshot::build(1, loaded.config)
}

/// The sidecar of WorkloadEntry `workload` under iptables capture.
fn proxy(snapshot: &Snapshot, ip: &str, workload: &str) -> ProxyView {
    let string = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    let node = Node {
        id: format!("sidecar~{ip}~{workload}.default~default.svc.cluster.local"),
        metadata: Some(Struct {
            fields: [("INTERCEPTION_MODE".to_string(), string("REDIRECT"))]
                .into_iter()
                .collect(),
        }),
        ..Default::default()
    };
    ProxyView::from_node(&node, snapshot).expect("valid node")
}

fn pa(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}\n---\n"
    )
}

fn mode_of(snapshot: &Snapshot, labels: &[(&str, &str)], port: u32) -> PeerMode {
    let labels: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    peer_mode(&crate::PushContext::of(snapshot), "default", &labels, port)
}

/// (what, config, workload labels, port, expected mode)
type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], u32, PeerMode);

#[test]
fn peer_authentication_follows_istios_precedence() {
    let productpage = [("app", "productpage")];
    let reviews = [("app", "reviews")];
    let mesh_strict = pa("default", "istio-system", "  mtls: {mode: STRICT}");
    let ns_permissive = pa("default", "default", "  mtls: {mode: PERMISSIVE}");
    let workload = pa(
        "pp",
        "default",
        "  selector: {matchLabels: {app: productpage}}\n  mtls: {mode: DISABLE}\n  portLevelMtls:\n    9080: {mode: STRICT}",
    );
    let unset = pa(
        "pp",
        "default",
        "  selector: {matchLabels: {app: productpage}}\n  mtls: {mode: UNSET}",
    );
    let ns_strict = pa("default", "default", "  mtls: {mode: STRICT}");
    let cases: Vec<Case> = vec![
        (
            "nothing: PERMISSIVE",
            String::new(),
            &productpage,
            9080,
            PeerMode::Permissive,
        ),
        (
            "mesh-wide",
            mesh_strict.clone(),
            &productpage,
            9080,
            PeerMode::Strict,
        ),
        (
            "namespace over mesh",
            format!("{mesh_strict}{ns_permissive}"),
            &productpage,
            9080,
            PeerMode::Permissive,
        ),
        (
            "workload port level",
            workload.clone(),
            &productpage,
            9080,
            PeerMode::Strict,
        ),
        (
            "workload mode elsewhere",
            workload.clone(),
            &productpage,
            9999,
            PeerMode::Disable,
        ),
        (
            "workload policy selects only its workload",
            format!("{ns_strict}{workload}"),
            &reviews,
            9080,
            PeerMode::Strict,
        ),
        (
            "UNSET defers",
            format!("{ns_strict}{unset}"),
            &productpage,
            9999,
            PeerMode::Strict,
        ),
    ];
    for (what, yaml, labels, port, want) in cases {
        let snapshot = mesh(&yaml);
        assert_eq!(mode_of(&snapshot, labels, port), want, "{what}");
    }
}

/// The WorkloadEntries of services.yaml carry no sidecar label; these do.
const SIDECARS: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: shop}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: shop-v1, namespace: default}
spec:
  address: 10.10.0.50
  serviceAccount: shop
  labels: {app: shop, version: v1, security.istio.io/tlsMode: istio}
---
";

fn cluster(snapshot: &Snapshot, name: &str) -> bowline_model::Cluster {
    let generated = generate(
        &crate::PushContext::of(snapshot),
        &proxy(snapshot, "10.10.0.10", "productpage-v1"),
    );
    let pb = generated
        .clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"));
    bowline_model::Cluster::try_from(pb).expect("the proxy accepts it")
}

const SHOP: &str = "outbound|8080||shop.default.svc.cluster.local";

fn dr(tls: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: shop, namespace: default}}\nspec:\n  host: shop.default.svc.cluster.local\n  trafficPolicy:\n    tls: {tls}\n---\n"
    )
}

#[test]
fn auto_mtls_goes_to_sidecars_and_checks_their_spiffe_id() {
    let plain = mesh("");
    assert!(
        cluster(&plain, "outbound|9080||reviews.default.svc.cluster.local")
            .tls
            .is_none(),
        "no sidecar label: plaintext"
    );
    let snapshot = mesh(SIDECARS);
    let tls = cluster(&snapshot, SHOP).tls.expect("mutual TLS");
    assert_eq!(
        tls.certificate,
        Some(CertificateSource::Sds("default".into()))
    );
    assert_eq!(tls.trust, Some(TrustSource::Sds("ROOTCA".into())));
    assert_eq!(tls.subject_alt_names.len(), 1);
    assert_eq!(tls.subject_alt_names[0].kind, SanKind::Uri);
    assert!(tls.subject_alt_names[0]
        .matcher
        .matches("spiffe://cluster.local/ns/default/sa/shop"));
    assert_eq!(
        tls.sni.as_deref(),
        Some("outbound_.8080_._.shop.default.svc.cluster.local")
    );

    // The destination turned mTLS off: auto mTLS follows.
    let disabled = mesh(&format!(
        "{SIDECARS}{}",
        pa(
            "shop",
            "default",
            "  selector: {matchLabels: {app: shop}}\n  mtls: {mode: DISABLE}"
        )
    ));
    assert!(cluster(&disabled, SHOP).tls.is_none());
}

#[test]
fn destination_rule_tls_modes_win_over_auto_mtls() {
    let off = mesh(&format!("{SIDECARS}{}", dr("{mode: DISABLE}")));
    assert!(cluster(&off, SHOP).tls.is_none(), "DISABLE");

    let forced = mesh(&format!(
        "{}{}",
        SIDECARS.replace(", security.istio.io/tlsMode: istio", ""),
        dr("{mode: ISTIO_MUTUAL}")
    ));
    let tls = cluster(&forced, SHOP)
        .tls
        .expect("ISTIO_MUTUAL without the label");
    assert_eq!(tls.trust, Some(TrustSource::Sds("ROOTCA".into())));

    let simple = mesh(&format!(
        "{SIDECARS}{}",
        dr("{mode: SIMPLE, caCertificates: /etc/shop/ca.pem, sni: shop.example.com, subjectAltNames: [shop.example.com]}")
    ));
    let tls = cluster(&simple, SHOP).tls.expect("SIMPLE");
    assert!(tls.certificate.is_none(), "SIMPLE presents no certificate");
    assert_eq!(
        tls.trust,
        Some(TrustSource::Pem(bowline_model::tls::PemSource::File(
            "/etc/shop/ca.pem".into()
        )))
    );
    assert_eq!(tls.sni.as_deref(), Some("shop.example.com"));
    assert!(tls
        .subject_alt_names
        .iter()
        .any(|m| m.kind == SanKind::Dns && m.matcher.matches("shop.example.com")));

    let mutual = mesh(&format!(
        "{SIDECARS}{}",
        dr("{mode: MUTUAL, clientCertificate: /etc/shop/cert.pem, privateKey: /etc/shop/key.pem, caCertificates: /etc/shop/ca.pem}")
    ));
    let tls = cluster(&mutual, SHOP).tls.expect("MUTUAL");
    assert!(matches!(
        tls.certificate,
        Some(CertificateSource::Pem { .. })
    ));
}

fn inbound(snapshot: &Snapshot) -> Listener {
    generate(
        &crate::PushContext::of(snapshot),
        &proxy(snapshot, "10.10.0.10", "productpage-v1"),
    )
    .listeners
    .into_iter()
    .find(|l| l.name == "virtualInbound")
    .expect("an inbound listener")
}

#[test]
fn inbound_chains_follow_the_mode() {
    let transports = |snapshot: &Snapshot| -> Vec<(u32, String, bool)> {
        let listener = inbound(snapshot);
        let model = bowline_model::Listener::try_from(&listener).expect("the proxy accepts it");
        assert!(model.tls_inspector || model.filter_chains.iter().all(|c| c.tls.is_none()));
        listener
            .filter_chains
            .iter()
            .map(|c| {
                let m = c.filter_chain_match.clone().unwrap_or_default();
                (
                    m.destination_port.map_or(0, |p| p.value),
                    m.transport_protocol,
                    c.transport_socket.is_some(),
                )
            })
            .filter(|(port, _, _)| *port == 9080)
            .collect()
    };
    let tls = |p: &str| (9080, p.to_string(), p == "tls");
    assert_eq!(
        transports(&mesh("")),
        [tls("tls"), tls("raw_buffer")],
        "PERMISSIVE: both"
    );
    let strict = mesh(&pa("default", "istio-system", "  mtls: {mode: STRICT}"));
    assert_eq!(transports(&strict), [tls("tls")], "STRICT: mTLS only");
    let off = mesh(&pa("default", "default", "  mtls: {mode: DISABLE}"));
    assert_eq!(
        transports(&off),
        [(9080, String::new(), false)],
        "DISABLE: plaintext"
    );
}
