//! bowline-proxy as both sidecars of the benchmark's two-hop mTLS pair, from the very Envoy
//! bootstraps the harness uses: the client sidecar originates mutual TLS and checks the
//! server's SPIFFE id, the server sidecar requires a client certificate from the CA whose
//! SPIFFE id is the expected one. A client with another identity, or a server with
//! another identity, gets no connection.

mod support;

use std::path::Path;

use bowline_testkit::get;
use support::{echo, mtls_templates, proxy, REQUEST, STARTUP};

const CLIENT_ID: &str = "spiffe://cluster.local/ns/default/sa/client";
const SERVER_ID: &str = "spiffe://cluster.local/ns/default/sa/server";

/// A CA that writes certificate directories laid out as the harness's gen_certs.sh lays
/// them out (`ca.crt`, `client.{crt,key}`, `server.{crt,key}`).
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bench CA");
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem,
        }
    }

    /// A directory whose client and server certificates carry these SPIFFE ids.
    fn dir(&self, client_id: &str, server_id: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), &self.pem).unwrap();
        for (name, id) in [("client", client_id), ("server", server_id)] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.subject_alt_names = vec![rcgen::SanType::URI(id.try_into().unwrap())];
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        dir
    }
}

/// Starts the pair in front of `upstream` with certificates from `server_certs` /
/// `client_certs`; returns the client sidecar's entry and both proxies.
async fn pair(
    upstream: std::net::SocketAddr,
    server_certs: &Path,
    client_certs: &Path,
) -> (
    std::net::SocketAddr,
    bowline_testkit::Envoy,
    bowline_testkit::Envoy,
) {
    let (client, server) = mtls_templates();
    let server = server
        .replace("{{admin_port}}", "0")
        .replace("{{listen_port}}", "0")
        .replace("{{upstream_port}}", &upstream.port().to_string())
        .replace("{{cert_dir}}", server_certs.to_str().unwrap());
    let server = proxy(&server).await.unwrap();
    server.wait_ready(STARTUP).await.unwrap();
    let inbound = server.listener_addr("inbound_mtls", STARTUP).await.unwrap();
    let client = client
        .replace("{{admin_port}}", "0")
        .replace("{{listen_port}}", "0")
        .replace("{{peer_port}}", &inbound.port().to_string())
        .replace("{{cert_dir}}", client_certs.to_str().unwrap());
    let client = proxy(&client).await.unwrap();
    client.wait_ready(STARTUP).await.unwrap();
    let entry = client
        .listener_addr("outbound_http", STARTUP)
        .await
        .unwrap();
    (entry, client, server)
}

/// One counter of an admin `/stats` page (0 when absent).
fn stat(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_mtls_pair_checks_both_identities() {
    let backend = echo("app", "v1").await.unwrap();
    let ca = TestCa::new();
    let good = ca.dir(CLIENT_ID, SERVER_ID);
    let other = "spiffe://cluster.local/ns/default/sa/other";

    let (entry, _client, server) = pair(backend.addr, good.path(), good.path()).await;
    for _ in 0..3 {
        let r = get(entry, "/hello", &[], REQUEST).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["path"], "/hello");
    }
    let stats = server.get_admin("/stats").await.unwrap();
    assert!(
        stats.contains("listener.inbound_mtls.ssl_handshake: 1"),
        "one mTLS connection, kept alive: {stats}"
    );

    // A client sidecar with another identity from the same CA: the server refuses it.
    let wrong_client = ca.dir(other, SERVER_ID);
    let (entry, _client, server) = pair(backend.addr, good.path(), wrong_client.path()).await;
    let r = get(entry, "/hello", &[], REQUEST).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let stats = server.get_admin("/stats").await.unwrap();
    assert!(
        stat(&stats, "listener.inbound_mtls.ssl_connection_error") >= 1,
        "the server refused the handshake: {stats}"
    );

    // A server with another identity: the client sidecar refuses it.
    let wrong_server = ca.dir(CLIENT_ID, other);
    let (entry, client, _server) = pair(backend.addr, wrong_server.path(), good.path()).await;
    let r = get(entry, "/hello", &[], REQUEST).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let stats = client.get_admin("/stats").await.unwrap();
    assert!(
        stat(&stats, "cluster.peer_server.upstream_cx_connect_fail") >= 1,
        "the client refused the server: {stats}"
    );
}
