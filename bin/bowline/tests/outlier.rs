//! Only the upstream's failures count against the upstream, on the real Envoy and on
//! bowline-proxy alike: with outlier detection ejecting a backend after two 5xx in a row,
//! clients that send broken chunked bodies or abort their uploads eject no backend — they
//! get 400 or nothing — and normal requests beside them all succeed.

mod support;

use std::time::Duration;

use bowline_testkit::ProxyKind;
use support::{Ads, Mesh};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOST: &str = "canary.default.svc.cluster.local:9080";

const OUTLIER_DETECTION: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: canary}
spec:
  host: canary
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
"#;

/// What the client does wrong.
#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    /// A chunk size that is not hex, after a good chunk.
    BrokenChunk,
    /// Announces 100,000 bytes, sends 1,000, and hangs up.
    AbortedUpload,
}

/// Sends one misbehaving request through the sidecar, as an `HTTP_PROXY` client does;
/// returns the status it got, if any.
async fn misbehave(mesh: &Mesh, how: Misbehaviour) -> Option<u16> {
    let mut stream = TcpStream::connect(mesh.outbound).await.ok()?;
    let head = |framing: &str| {
        format!("POST http://{HOST}/upload HTTP/1.1\r\nHost: {HOST}\r\n{framing}\r\n\r\n")
    };
    match how {
        Misbehaviour::BrokenChunk => {
            let request = head("Transfer-Encoding: chunked") + "5\r\nhello\r\nzz\r\nmore\r\n";
            stream.write_all(request.as_bytes()).await.ok()?;
        }
        Misbehaviour::AbortedUpload => {
            stream
                .write_all(head("Content-Length: 100000").as_bytes())
                .await
                .ok()?;
            stream.write_all(&[b'x'; 1000]).await.ok()?;
            // Give the proxy time to open the upstream request, then leave.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return None;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

async fn broken_clients_eject_nothing(kind: ProxyKind) {
    let mesh = Mesh::builder(kind, Ads::Delta)
        .backend("canary", "v1", &[])
        .backend("canary", "v2", &[])
        .config("outlier.yaml", OUTLIER_DETECTION)
        .start()
        .await;
    let label = mesh.label();
    for round in 0..10 {
        for how in [Misbehaviour::BrokenChunk, Misbehaviour::AbortedUpload] {
            let status = misbehave(&mesh, how).await;
            if let (Misbehaviour::BrokenChunk, Some(status)) = (how, status) {
                assert_eq!(status, 400, "{label}: round {round}: {how:?}");
            }
        }
    }
    let mut client = mesh.client();
    for i in 0..40 {
        let url = support::url("canary", "/");
        let rsp = client
            .request("GET", &url, &[], support::REQUEST)
            .await
            .unwrap_or_else(|e| panic!("{label}: request {i}: {e:#}"));
        assert_eq!(rsp.status, 200, "{label}: request {i}: {}", rsp.text());
    }
    let stats = mesh.envoy.get_admin("/stats").await.unwrap();
    let ejections: Vec<&str> = stats
        .lines()
        .filter(|l| l.contains("outlier_detection.ejections_enforced_total"))
        .collect();
    assert!(
        !ejections.is_empty(),
        "{label}: the cluster has outlier detection: {stats}"
    );
    for line in ejections {
        assert!(line.ends_with(": 0"), "{label}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_clients_eject_nothing_on_envoy() {
    broken_clients_eject_nothing(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_clients_eject_nothing_on_bowline() {
    broken_clients_eject_nothing(ProxyKind::Bowline).await;
}
