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
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use anyhow::{ensure, Context};
use bowline_testkit::wait_until;
use rcgen::{CertificateParams, IsCa, KeyPair};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use two_sidecars::{in_netns, TwoSidecars};

const PROPAGATION: Duration = Duration::from_secs(20);

/// A CA for this test, signing the backends' and clients' certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bowline test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `name`: (certificate PEM, key PEM).
    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(self.cert.der(), &self.key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// An HTTPS server with a certificate for `name` answering every request with `name`.
async fn tls_backend(ca: &Ca, name: &str, ip: IpAddr) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = ca.issue(name);
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = name.to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

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
