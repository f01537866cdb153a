//! A config push closes a connection it makes wrong, after the drain time, on a real Envoy
//! sidecar and on bowline-proxy alike: a TCP connection to a service whose ServiceEntry is
//! then deleted ends within the drain (5 s for both sidecars in `bowline up`); the delay is
//! measured and printed. The TCP server is this test's, on the mesh bridge's address; the
//! clients run inside each workload's network namespace.

#[path = "up/mesh.rs"]
mod mesh;
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use two_sidecars::TwoSidecars;

/// The drain `bowline up` gives both kinds of sidecar.
const DRAIN: Duration = Duration::from_secs(5);

/// A TCP server that greets each connection and then echoes it.
async fn greeter(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            if stream.write_all(b"hello\n").await.is_err() {
                return;
            }
            let mut buf = [0u8; 256];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A client in `netns` holding a connection to `to` open: it prints `READY` once greeted
/// and `CLOSED` when the connection ends (or after 60 s).
fn hold_open(netns: &str, to: SocketAddr) -> tokio::process::Child {
    let script = format!(
        "exec 3<>/dev/tcp/{}/{} || exit 7; head -n 1 <&3 >/dev/null; echo READY; timeout 60 cat <&3 >/dev/null; echo CLOSED",
        to.ip(),
        to.port()
    );
    tokio::process::Command::new("ip")
        .args(["netns", "exec", netns, "bash", "-c", &script])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_service_closes_its_open_tcp_connections_within_the_drain() {
    let mesh = TwoSidecars::start().await;
    let listener = TcpListener::bind((mesh.bridge, 0)).await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(greeter(listener));
    mesh.mesh.write_config(
        "ledger.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: ledger, namespace: default}}\nspec:\n  hosts: [ledger.example.com]\n  addresses: [\"{ip}\"]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{{number: {port}, name: tcp-ledger, protocol: TCP}}]\n  endpoints: [{{address: \"{ip}\"}}]\n",
            ip = server.ip(),
            port = server.port()
        ),
    );
    // Each sidecar's stats show its connection through the ledger's own cluster once the
    // ServiceEntry has arrived; until then a connection would be passed through.
    let cluster = format!("outbound|{}||ledger.example.com", server.port());
    let mut held = Vec::new();
    for (who, netns) in &mesh.clients {
        let admin = if who.contains("Envoy") {
            two_sidecars::workload_field(&mesh.state, "productpage-v1-0", "sidecar_admin")
        } else {
            two_sidecars::workload_field(&mesh.state, "details-v1-0", "sidecar_admin")
        };
        let through_cluster = bowline_testkit::wait_until(
            Duration::from_secs(20),
            Duration::from_millis(200),
            || async {
                let mut child = hold_open(netns, server);
                let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
                let ready = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await;
                anyhow::ensure!(
                    matches!(ready, Ok(Ok(Some(ref l))) if l == "READY"),
                    "{who}: {ready:?}"
                );
                let active =
                    two_sidecars::stat(&admin, &format!("{cluster}.upstream_cx_active")).await;
                anyhow::ensure!(active >= 1, "{who}: not through {cluster} yet");
                Ok((child, lines))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        held.push((*who, through_cluster));
    }

    // The ServiceEntry goes; the connections made through it end within the drain.
    std::fs::remove_file(mesh.mesh.dir.path().join("config/ledger.yaml")).unwrap();
    let deleted = Instant::now();
    // Each connection watched on its own, so each close is timed when it happens.
    let watches: Vec<_> = held
        .into_iter()
        .map(|(who, (child, mut lines))| {
            tokio::spawn(async move {
                let line =
                    tokio::time::timeout(DRAIN + Duration::from_secs(10), lines.next_line()).await;
                drop(child);
                (who, line.map(|l| l.ok().flatten()), deleted.elapsed())
            })
        })
        .collect();
    for watch in watches {
        let (who, line, after) = watch.await.unwrap();
        let line = line.unwrap_or_else(|_| panic!("{who}: still open {after:?} after the delete"));
        assert_eq!(line.as_deref(), Some("CLOSED"), "{who}");
        eprintln!("{who}: closed {after:?} after the ServiceEntry was deleted (drain {DRAIN:?})");
        assert!(
            after >= DRAIN - Duration::from_millis(500),
            "{who}: closed before the drain ended ({after:?})"
        );
    }
}
