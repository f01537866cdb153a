//! Istio's egress gateway with TLS origination ("Egress Gateways with TLS Origination" in
//! Istio's docs), its YAML unchanged but for the host, end to end in a transparent
//! `bowline up` mesh whose manifest asks for an egress gateway:
//! - a workload calls `http://external.bowline.test/` in plain HTTP, from behind a real
//!   Envoy sidecar (productpage) and behind bowline-proxy (details);
//! - its sidecar sends the call to the egress gateway over ISTIO_MUTUAL with the external
//!   host as SNI (the DestinationRule's subset);
//! - the gateway's HTTPS server (ISTIO_MUTUAL) takes it, and the gateway originates TLS to
//!   the external server (a DestinationRule with `tls.mode: SIMPLE`), verifying the server's
//!   certificate for that host.
//!
//! The external server is HTTPS only and listens on this machine's loopback, which the
//! workloads' namespaces cannot reach: an answer shows the call went through the gateway and
//! left it in TLS. The `x-forwarded-client-cert` the gateway sets names the calling
//! workload's SPIFFE id, which it can only know from the mutual TLS between sidecar and
//! gateway. The gateway's counters for the external cluster count the calls.

#[path = "up/mesh.rs"]
mod mesh;
#[path = "up/tls_server.rs"]
mod tls_server;
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use anyhow::ensure;
use bowline_testkit::wait_until;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tls_server::{tls_echo, Ca};
use two_sidecars::{in_netns, stat, workload_field, TwoSidecars};

const PROPAGATION: Duration = Duration::from_secs(20);
const HOST: &str = "external.bowline.test";

/// The docs' resources for edition.cnn.com, for `HOST`; the ServiceEntry is STATIC at the
/// test's server (the docs resolve DNS), and the origination DestinationRule trusts the
/// test's CA (the docs rely on the system's roots).
fn egress_config(server_port: u16, ca_file: &str) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
spec:
  hosts:
  - {HOST}
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports:
      https-port: {server_port}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: https-port-for-tls-origination
      protocol: HTTPS
    hosts:
    - {HOST}
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-external
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: external
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: {HOST}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-external-through-egress-gateway
spec:
  hosts:
  - {HOST}
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: external
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: {HOST}
        port:
          number: 443
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-external
spec:
  host: {HOST}
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE
        caCertificates: {ca_file}
"#
    )
}

/// Status line and body of `GET http://HOST/` from inside `netns`, sent to `ip`:80 (capture
/// takes it whatever the address; the sidecar routes by Host).
async fn call_from(netns: &str, ip: IpAddr) -> anyhow::Result<(String, String)> {
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/80 || exit 7; printf 'GET /news HTTP/1.1\\r\\nHost: {HOST}\\r\\nConnection: close\\r\\n\\r\\n' >&3; timeout 5 cat <&3"
    );
    let response = in_netns(netns, script).await?;
    let status = response
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, body.to_string()))
}

#[tokio::test(flavor = "multi_thread")]
async fn egress_gateway_with_istio_mutual_in_and_tls_origination_out() {
    let mesh = TwoSidecars::start_with(&|m| format!("{m}egressGateway: {{}}\n")).await;
    let egress = &mesh.state["egress_gateway"];
    let egress_admin = egress["admin"]
        .as_str()
        .expect("an egress gateway")
        .to_string();
    assert!(
        egress["node_id"].as_str().unwrap().starts_with(&format!(
            "router~{}~istio-egressgateway.istio-system",
            mesh.bridge
        )),
        "{egress}"
    );

    let ca = Ca::new();
    let ca_file = mesh.mesh.dir.path().join("external-ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let server = tls_echo(&ca, HOST, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    mesh.mesh.write_config(
        "egress.yaml",
        &egress_config(server.port(), ca_file.to_str().unwrap()),
    );

    let callers = [
        ("productpage-v1-0", "bookinfo-productpage"),
        ("details-v1-0", "bookinfo-details"),
    ];
    for ((who, netns), (workload, account)) in mesh.clients.iter().zip(callers) {
        assert_eq!(workload_field(&mesh.state, workload, "netns"), *netns);
        let (status, body) = wait_until(PROPAGATION, Duration::from_millis(100), || async {
            let (status, body) = call_from(netns, mesh.bridge).await?;
            ensure!(status.starts_with("HTTP/1.1 200"), "{who}: {status} {body}");
            Ok((status, body))
        })
        .await
        .unwrap();
        eprintln!("{who}: {status}");
        let head = body.to_ascii_lowercase();
        assert!(body.starts_with(HOST), "{who}: {body}");
        assert!(head.contains("get /news http/1.1"), "{who}: {body}");
        assert!(head.contains(&format!("host: {HOST}")), "{who}: {body}");
        let caller = format!("uri=spiffe://cluster.local/ns/default/sa/{account}");
        let xfcc = head
            .lines()
            .find(|l| l.starts_with("x-forwarded-client-cert:"))
            .unwrap_or_else(|| panic!("{who}: no x-forwarded-client-cert: {body}"));
        assert!(xfcc.contains(&caller), "{who}: {xfcc}");
    }
    let through_gateway = stat(
        &egress_admin,
        &format!("cluster.outbound|443||{HOST}.upstream_rq_total"),
    )
    .await;
    assert!(through_gateway >= 2, "{through_gateway}");
}
