//! Locality failover end to end, on a real Envoy sidecar and on bowline-proxy in one
//! transparent `bowline up` mesh: both clients run in `us-west/z1/s1` (the manifest's
//! `locality`), the service has one endpoint there and one in `eu`, and its DestinationRule
//! sets outlier detection (Istio's condition for failover). Traffic stays local; when the
//! local endpoint fails it is ejected and traffic moves to the next priority; when it
//! recovers and its ejection ends, traffic returns.
//!
//! The same with `failoverPriority: [rack]` instead of localities: the clients' workloads
//! and one endpoint carry `rack: r1`, the other endpoint `rack: r2`; traffic stays on the
//! same rack while it is healthy.
//!
//! The two endpoints are HTTP servers this test runs on the mesh bridge's address.

#[path = "up/mesh.rs"]
mod mesh;
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use anyhow::ensure;
use bowline_testkit::wait_until;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use two_sidecars::{in_netns, TwoSidecars};

const LOCALITY: &str = "us-west/z1/s1";

/// An HTTP server answering `200 <name>`, or `503` while `failing` is set.
async fn backend(ip: IpAddr, name: &'static str, failing: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let failing = failing.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = match failing.load(Ordering::SeqCst) {
                        true => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nfail"
                            .to_string(),
                        false => format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                            name.len()
                        ),
                    };
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The bodies of `n` GETs for ha.example.com from inside `netns`, each on its own
/// connection (so each is balanced anew).
async fn answers(netns: &str, to: SocketAddr, n: usize) -> anyhow::Result<Vec<String>> {
    let one = format!(
        "exec 3<>/dev/tcp/{}/{} || exit 7; printf 'GET / HTTP/1.1\\r\\nHost: ha.example.com\\r\\nConnection: close\\r\\n\\r\\n' >&3; timeout 5 cat <&3 | tail -n 1; echo",
        to.ip(),
        to.port()
    );
    let script = std::iter::repeat_n(one, n).collect::<Vec<_>>().join("; ");
    let out = in_netns(netns, script).await?;
    Ok(out.lines().map(|l| l.trim().to_string()).collect())
}

/// Waits until 5 requests in a row from each client all reach `want`; when `steady`, checks
/// that the next 20 do too: two endpoints in one priority would pass the wait by chance in a
/// few tries, but not the 20 (2^-20). (Not while an endpoint fails: its ejection ends after
/// `baseEjectionTime`, and the next request it takes fails before it is ejected again.)
async fn all_reach(mesh: &TwoSidecars, to: SocketAddr, want: &str, phase: &str, steady: bool) {
    for (who, netns) in &mesh.clients {
        let got = wait_until(
            Duration::from_secs(30),
            Duration::from_millis(300),
            || async {
                let got = answers(netns, to, 5).await?;
                ensure!(got.iter().all(|a| a == want), "{who}: {got:?}");
                Ok(got)
            },
        )
        .await;
        got.unwrap_or_else(|e| panic!("{phase}: all to {want:?}: {e:#}"));
        if !steady {
            continue;
        }
        let next = answers(netns, to, 20).await.unwrap();
        assert!(
            next.iter().all(|a| a == want),
            "{phase}: {who} strayed from {want:?}: {next:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn traffic_fails_over_to_the_next_locality_and_returns() {
    let mesh = TwoSidecars::start_with(&|m| {
        m.replace(
            "  sidecar: envoy\n",
            &format!("  sidecar: envoy\n  locality: {LOCALITY}\n"),
        )
        .replace(
            "- name: details-v1\n  serviceAccount: bookinfo-details\n",
            &format!(
                "- name: details-v1\n  serviceAccount: bookinfo-details\n  locality: {LOCALITY}\n"
            ),
        )
    })
    .await;
    let failing = Arc::new(AtomicBool::new(false));
    let local = backend(mesh.bridge, "local", failing.clone()).await;
    let remote = backend(mesh.bridge, "remote", Arc::new(AtomicBool::new(false))).await;
    mesh.mesh.write_config(
        "ha.yaml",
        &format!(
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ha, namespace: default}}
spec:
  hosts: [ha.example.com]
  addresses: ["{bridge}"]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: "{bridge}", ports: {{http: {port}}}, locality: {LOCALITY}}}
  - {{address: "{bridge}", ports: {{http: {remote_port}}}, locality: eu/z1/s1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ha, namespace: default}}
spec:
  host: ha.example.com
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}}
"#,
            bridge = mesh.bridge,
            port = local.port(),
            remote_port = remote.port()
        ),
    );
    all_reach(&mesh, local, "local", "the local locality first", true).await;
    failing.store(true, Ordering::SeqCst);
    all_reach(&mesh, local, "remote", "the local endpoint failing", false).await;
    failing.store(false, Ordering::SeqCst);
    all_reach(&mesh, local, "local", "the local endpoint recovered", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_priority_keeps_traffic_on_the_same_rack_until_it_fails() {
    let mesh = TwoSidecars::start_with(&|m| {
        m.replace(
            "labels: {app: productpage, version: v1}",
            "labels: {app: productpage, version: v1, rack: r1}",
        )
        .replace(
            "labels: {app: details, version: v1}",
            "labels: {app: details, version: v1, rack: r1}",
        )
    })
    .await;
    for w in ["productpage-v1-0", "details-v1-0"] {
        let labels = std::fs::read_to_string(mesh.mesh.state_dir().join("registry/mesh.yaml"))
            .unwrap()
            .lines()
            .find(|l| l.contains("WorkloadEntry") && l.contains(&format!("\"{w}\"")))
            .unwrap_or_else(|| panic!("{w} in the registry"))
            .to_string();
        assert!(labels.contains("\"rack\":\"r1\""), "{labels}");
    }
    let failing = Arc::new(AtomicBool::new(false));
    let same = backend(mesh.bridge, "same-rack", failing.clone()).await;
    let other = backend(mesh.bridge, "other-rack", Arc::new(AtomicBool::new(false))).await;
    mesh.mesh.write_config(
        "ha.yaml",
        &format!(
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ha, namespace: default}}
spec:
  hosts: [ha.example.com]
  addresses: ["{bridge}"]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: "{bridge}", ports: {{http: {other_port}}}, labels: {{rack: r2}}}}
  - {{address: "{bridge}", ports: {{http: {port}}}, labels: {{rack: r1}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ha, namespace: default}}
spec:
  host: ha.example.com
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        enabled: true
        failoverPriority: [rack]
    outlierDetection: {{consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}}
"#,
            bridge = mesh.bridge,
            port = same.port(),
            other_port = other.port()
        ),
    );
    all_reach(&mesh, same, "same-rack", "the same rack first", true).await;
    failing.store(true, Ordering::SeqCst);
    all_reach(&mesh, same, "other-rack", "the same rack failing", false).await;
    failing.store(false, Ordering::SeqCst);
    all_reach(&mesh, same, "same-rack", "the same rack recovered", true).await;
}
