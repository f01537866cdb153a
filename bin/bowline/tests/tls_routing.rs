//! TLS routed by SNI without terminating it, end to end in a transparent `bowline up` mesh:
//! - at a sidecar (a real Envoy and bowline-proxy, the same outcome): a VirtualService `tls`
//!   rule sends the connections for one SNI name to another backend than the service's own;
//!   the client verifies the certificate of the backend it reached;
//! - at the ingress gateway (bowline-proxy): a PASSTHROUGH server hands the client the
//!   backend's own certificate; a MUTUAL server refuses a client without a certificate and
//!   serves one whose certificate chains to the credential's `ca.crt`.
//!
//! The TLS backends run in this test on the mesh bridge's address (this machine); clients
//! are curl, inside a workload's network namespace or on the host.

#[path = "up/mesh.rs"]
mod mesh;
#[path = "up/tls_server.rs"]
mod tls_server;
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use anyhow::{ensure, Context};
use bowline_testkit::wait_until;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tls_server::{tls_backend, Ca};
use two_sidecars::{in_netns, TwoSidecars};

const PROPAGATION: Duration = Duration::from_secs(20);

/// curl's answer for `https://<name>:<port>/` sent to `to`, verifying against `ca`
/// (optionally with a client certificate): the body, or `error <exit code>`.
fn curl_args(name: &str, port: u16, to: SocketAddr, ca: &Path, client: Option<&Path>) -> String {
    let mut args = format!(
        "curl -sS --max-time 5 --cacert {} --connect-to {name}:{port}:{}:{} https://{name}:{port}/",
        ca.display(),
        to.ip(),
        to.port()
    );
    if let Some(dir) = client {
        args += &format!(
            " --cert {} --key {}",
            dir.join("client.crt").display(),
            dir.join("client.key").display()
        );
    }
    format!("{args}; echo \" exit=$?\"")
}

fn curl_on_host(script: &str) -> String {
    let out = Command::new("timeout")
        .args(["10", "bash", "-c", script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_routing_at_sidecars_and_passthrough_and_mutual_tls_at_the_gateway() {
    let mesh = TwoSidecars::start().await;
    let ca = Ca::new();
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let a = tls_backend(&ca, "a.wiki.test", mesh.bridge).await;
    let b = tls_backend(&ca, "b.wiki.test", mesh.bridge).await;

    // Straight to the backends (no sidecar on the host), each verifies as itself.
    for (name, at) in [("a.wiki.test", a), ("b.wiki.test", b)] {
        let direct = curl_on_host(&curl_args(name, at.port(), at, &ca_file, None));
        assert_eq!(direct, format!("{name} exit=0"), "{name} directly");
    }

    // a.wiki.test is the service at the bridge's address; b.wiki.test another backend on
    // the same service port (its endpoint maps the port to b's). The VirtualService sends
    // SNI b.wiki.test to the latter.
    let port = a.port();
    mesh.mesh.write_config(
        "wiki.yaml",
        &format!(
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: wiki-a, namespace: default}}
spec:
  hosts: [a.wiki.test]
  addresses: ["{bridge}"]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: tls, protocol: TLS}}]
  endpoints: [{{address: "{bridge}"}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: wiki-b, namespace: default}}
spec:
  hosts: [b.wiki.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: tls, protocol: TLS}}]
  endpoints: [{{address: "{bridge}", ports: {{tls: {b_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: wiki, namespace: default}}
spec:
  hosts: ["*.wiki.test"]
  gateways: [mesh, edge]
  tls:
  - match:
    - sniHosts: [b.wiki.test]
    route:
    - destination: {{host: b.wiki.test}}
  - match:
    - sniHosts: [a.wiki.test]
      gateways: [edge]
    route:
    - destination: {{host: a.wiki.test}}
"#,
            bridge = mesh.bridge,
            b_port = b.port()
        ),
    );
    for (who, netns) in &mesh.clients {
        for (name, want) in [
            ("b.wiki.test", "b.wiki.test"),
            ("a.wiki.test", "a.wiki.test"),
        ] {
            let script = curl_args(name, port, a, &ca_file, None);
            let got = wait_until(PROPAGATION, Duration::from_millis(200), || async {
                let got = in_netns(netns, script.clone()).await?.trim().to_string();
                ensure!(got == format!("{want} exit=0"), "{who} {name}: {got}");
                Ok(got)
            })
            .await;
            got.unwrap_or_else(|e| panic!("{e:#}"));
        }
    }

    // The gateway: PASSTHROUGH for *.wiki.test, MUTUAL for secure.test, both on 443.
    let credentials = mesh.mesh.dir.path().join("certs/secure-cert");
    std::fs::create_dir_all(&credentials).unwrap();
    let (server_cert, server_key) = ca.issue("secure.test");
    let (client_cert, client_key) = ca.issue("client.test");
    for (file, text) in [
        ("tls.crt", &server_cert),
        ("tls.key", &server_key),
        ("ca.crt", &ca.cert.pem()),
    ] {
        std::fs::write(credentials.join(file), text).unwrap();
    }
    std::fs::write(files.path().join("client.crt"), client_cert).unwrap();
    std::fs::write(files.path().join("client.key"), client_key).unwrap();
    mesh.mesh.write_config(
        "edge.yaml",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls-wiki, protocol: TLS}
    hosts: ["*.wiki.test"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 443, name: https-secure, protocol: HTTPS}
    hosts: [secure.test]
    tls: {mode: MUTUAL, credentialName: secure-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.test]
  gateways: [edge]
  http:
  - route:
    - destination: {host: details, port: {number: 9080}}
"#,
    );
    let entry = mesh.mesh.https_entry;
    let wiki = curl_args("a.wiki.test", 443, entry, &ca_file, None);
    let got = wait_until(PROPAGATION, Duration::from_millis(200), || async {
        let got = curl_on_host(&wiki);
        ensure!(got == "a.wiki.test exit=0", "passthrough: {got}");
        Ok(got)
    })
    .await;
    got.unwrap_or_else(|e| panic!("the client verifies a.wiki.test's own certificate: {e:#}"));
    let with_cert = curl_args("secure.test", 443, entry, &ca_file, Some(files.path()));
    let answer = wait_until(PROPAGATION, Duration::from_millis(200), || async {
        let got = curl_on_host(&with_cert);
        ensure!(got.ends_with("exit=0"), "mutual: {got}");
        Ok(got)
    })
    .await
    .unwrap_or_else(|e| panic!("a client with a certificate is served: {e:#}"));
    let details: serde_json::Value = serde_json::from_str(answer.trim_end_matches(" exit=0"))
        .context("details answers")
        .unwrap();
    assert_eq!(details["service"], "details", "{answer}");
    let without = curl_on_host(&curl_args("secure.test", 443, entry, &ca_file, None));
    assert!(
        !without.ends_with("exit=0"),
        "a client without a certificate is refused: {without}"
    );
}
