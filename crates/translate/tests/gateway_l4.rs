//! Gateway servers beyond HTTP and SIMPLE TLS: PASSTHROUGH (TLS routed untouched by its
//! SNI, VirtualService `tls` rules), TCP (`tcp` rules), MUTUAL and OPTIONAL_MUTUAL (client
//! certificates against the credential's `ca.crt`) and ISTIO_MUTUAL (the mesh's own
//! certificates). The proxy's model picks the chains; the real Envoy accepts the config.

mod support;

use bowline_model::route::ClusterSpecifier;
use bowline_model::tls::{CertificateSource, PemSource, TrustSource};
use bowline_model::{ConnectionInfo, Listener, NetworkFilter};
use bowline_translate::Generated;
use support::bootstrap::{as_served, envoy_validate, inlined};
use support::{gateway_proxy, mesh};

const GATEWAY: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wiki, namespace: default}
spec:
  hosts: [en.wiki.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 10.0.0.21}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls-wiki, protocol: TLS}
    hosts: ["*.wiki.example.com"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
  - port: {number: 8443, name: https-mutual, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: MUTUAL, credentialName: shop-cert}
  - port: {number: 9443, name: https-optional, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: OPTIONAL_MUTUAL, credentialName: shop-cert}
  - port: {number: 15443, name: https-mesh, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wiki, namespace: default}
spec:
  hosts: ["*.wiki.example.com"]
  gateways: [istio-system/edge]
  tls:
  - match:
    - sniHosts: [en.wiki.example.com]
    route:
    - destination: {host: en.wiki.example.com}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  tcp:
  - match:
    - port: 31400
    route:
    - destination: {host: tcp-echo, port: {number: 9000}}
  http:
  - route:
    - destination: {host: reviews}
"#;

/// The gateway's config, its certificate files real (Envoy loads them).
fn generated(dir: &std::path::Path) -> Generated {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["shop.example.com".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let shop = dir.join("shop-cert");
    std::fs::create_dir_all(&shop).unwrap();
    for (file, text) in [
        ("tls.crt", cert.pem()),
        ("tls.key", key.serialize_pem()),
        ("ca.crt", cert.pem()),
    ] {
        std::fs::write(shop.join(file), text).unwrap();
    }
    let snap = mesh(&format!(
        "{}\n---\n{GATEWAY}",
        include_str!("inputs/services.yaml")
    ));
    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "",
        &dir.display().to_string(),
    );
    bowline_translate::generate(&support::push(&snap), &gw)
}

fn listener(config: &Generated, port: u16) -> Listener {
    let name = format!("0.0.0.0_{port}");
    let l = config
        .listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name}"));
    Listener::try_from(l).expect("the proxy accepts it")
}

/// What serves a connection: `tcp <cluster>`, `http <route config>` or `closed`, and
/// whether TLS is terminated.
fn serves(listener: &Listener, sni: Option<&str>, transport: &str) -> String {
    let conn = ConnectionInfo {
        destination: format!("10.10.0.2:{}", listener.address.port())
            .parse()
            .unwrap(),
        source: "10.1.1.1:40000".parse().unwrap(),
        server_name: sni,
        transport_protocol: transport,
        application_protocols: &[],
    };
    let Some(chain) = listener.select_chain(&conn) else {
        return "closed".into();
    };
    let terminated = if chain.tls.is_some() {
        " (terminated)"
    } else {
        ""
    };
    match &chain.network {
        NetworkFilter::Tcp(t) => match &t.cluster {
            ClusterSpecifier::Cluster(c) => format!("tcp {c}{terminated}"),
            other => format!("tcp {other:?}"),
        },
        NetworkFilter::Http(h) => format!("http {:?}{terminated}", h.route),
    }
}

#[test]
fn gateway_servers_pass_tls_through_by_sni_proxy_tcp_and_ask_for_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let config = generated(dir.path());

    let passthrough = listener(&config, 443);
    assert_eq!(
        serves(&passthrough, Some("en.wiki.example.com"), "tls"),
        "tcp outbound|443||en.wiki.example.com",
        "passed through: not terminated"
    );
    assert_eq!(
        serves(&passthrough, Some("fr.wiki.example.com"), "tls"),
        "closed",
        "no tls rule for that name"
    );

    let tcp = listener(&config, 31400);
    assert_eq!(
        serves(&tcp, None, "raw_buffer"),
        "tcp outbound|9000||tcp-echo.default.svc.cluster.local"
    );

    for (port, required) in [(8443, true), (9443, false)] {
        let l = listener(&config, port);
        let chain = &l.filter_chains[0];
        let tls = chain.tls.as_ref().expect("terminated");
        assert_eq!(tls.require_client_certificate, required, "{port}");
        let ca = dir.path().join("shop-cert/ca.crt");
        assert_eq!(
            tls.client_ca,
            Some(TrustSource::Pem(PemSource::File(ca))),
            "{port}"
        );
    }

    let mesh = listener(&config, 15443);
    let tls = mesh.filter_chains[0].tls.as_ref().unwrap();
    assert!(tls.require_client_certificate);
    assert_eq!(
        tls.certificate,
        CertificateSource::Sds("default".into()),
        "the gateway's own workload certificate"
    );
    assert_eq!(tls.client_ca, Some(TrustSource::Sds("ROOTCA".into())));
}

#[test]
fn envoy_accepts_gateway_passthrough_tcp_and_mutual_servers() {
    let dir = tempfile::tempdir().unwrap();
    let config = generated(dir.path());
    let violations = bowline_translate::check(&config);
    assert!(violations.is_empty(), "{violations:#?}");
    for (variant, bootstrap) in [
        ("inlined", inlined(&config)),
        ("as served", as_served(&config)),
    ] {
        if let Err(output) = envoy_validate(&bootstrap) {
            panic!("Envoy rejected the gateway ({variant}):\n{output}");
        }
    }
}
