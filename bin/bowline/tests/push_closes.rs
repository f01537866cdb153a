//! A config push closes a connection it makes wrong, after the drain time, on a real Envoy
//! sidecar and on bowline-proxy alike (5 s for both in `bowline up`); each delay is measured
//! and printed:
//! - a TCP connection to a service whose ServiceEntry is then deleted ends (the caller's
//!   sidecar closes it); the server is this test's, on the mesh bridge's address;
//! - a TCP connection to a workload that a new DENY AuthorizationPolicy then forbids ends
//!   (the callee's sidecar closes it); the servers run in the workloads' namespaces.
//!
//! And a push that changes only where new connections go (a TCP route's weights) leaves
//! open connections alone on bowline-proxy; Envoy, whose weights live in the listener's
//! filter chain, drains that chain and closes them (measured and printed here).
//!
//! The clients run inside each workload's network namespace.

#[path = "up/mesh.rs"]
mod mesh;
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use two_sidecars::{workload_field, TwoSidecars};

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

/// One connection from each client to `server`, held open, once it runs through a cluster
/// whose `upstream_cx_active` stat ends with `cluster_suffix` in the client's sidecar (the
/// config has arrived; until then a connection would be passed through).
async fn hold_through(
    mesh: &TwoSidecars,
    server: SocketAddr,
    cluster_suffix: &str,
) -> Vec<(&'static str, Held)> {
    let mut held = Vec::new();
    for (who, netns) in &mesh.clients {
        let workload = if who.contains("Envoy") {
            "productpage-v1-0"
        } else {
            "details-v1-0"
        };
        let admin = workload_field(&mesh.state, workload, "sidecar_admin");
        let connection = bowline_testkit::wait_until(
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
                let suffix = format!("{cluster_suffix}.upstream_cx_active");
                let active = two_sidecars::stat(&admin, &suffix).await;
                anyhow::ensure!(active >= 1, "{who}: not through *{cluster_suffix} yet");
                Ok((child, lines))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        held.push((*who, connection));
    }
    held
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
    let cluster = format!("outbound|{}||ledger.example.com", server.port());
    let held = hold_through(&mesh, server, &cluster).await;

    // The ServiceEntry goes; the connections made through it end within the drain.
    std::fs::remove_file(mesh.mesh.dir.path().join("config/ledger.yaml")).unwrap();
    let deleted = Instant::now();
    expect_closed_after_drain(held, deleted, "the ServiceEntry was deleted").await;
}

/// A TCP greeter like [`greeter`] on 0.0.0.0:`port` inside `netns` (Python, so that it runs
/// in the namespace), once it listens.
async fn greeter_in(netns: &str, port: u16) -> tokio::process::Child {
    let script = format!(
        r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.listen(16)
print("LISTENING", flush=True)
def serve(c):
    try:
        c.sendall(b"hello\n")
        while True:
            d = c.recv(256)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#
    );
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", netns, "python3", "-c", &script])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
    assert!(
        matches!(line, Ok(Ok(Some(ref l))) if l == "LISTENING"),
        "greeter in {netns}: {line:?}"
    );
    child
}

/// A client's process and the lines it prints (see [`hold_open`]).
type Held = (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
);

/// Waits for each held connection's `CLOSED` (bounded) and checks it came after the drain.
async fn expect_closed_after_drain(held: Vec<(&'static str, Held)>, since: Instant, what: &str) {
    // Each connection watched on its own, so each close is timed when it happens.
    let watches: Vec<_> = held
        .into_iter()
        .map(|(who, (child, mut lines))| {
            tokio::spawn(async move {
                let line =
                    tokio::time::timeout(DRAIN + Duration::from_secs(10), lines.next_line()).await;
                drop(child);
                (who, line.map(|l| l.ok().flatten()), since.elapsed())
            })
        })
        .collect();
    for watch in watches {
        let (who, line, after) = watch.await.unwrap();
        let line = line.unwrap_or_else(|_| panic!("{who}: still open {after:?} after {what}"));
        assert_eq!(line.as_deref(), Some("CLOSED"), "{who}");
        eprintln!("{who}: closed {after:?} after {what} (drain {DRAIN:?})");
        assert!(
            after >= DRAIN - Duration::from_millis(500),
            "{who}: closed before the drain ended ({after:?})"
        );
    }
}

/// A connection the callee's sidecar accepted is closed once a DENY AuthorizationPolicy
/// forbids it: Envoy drains the inbound filter chain the policy changed; bowline-proxy
/// re-checks the open connection against the new policy. Both callees have a TCP port
/// (`tcp-greet`, 9090) served in their namespace; each is called by the other's sidecar
/// through the service name, so over mutual TLS.
#[tokio::test(flavor = "multi_thread")]
async fn a_deny_policy_closes_the_open_tcp_connections_it_forbids_within_the_drain() {
    const PORT: u16 = 9090;
    let add_port = |m: &str| {
        m.split_inclusive('\n')
            .scan(false, |in_callee, line| {
                if let Some(name) = line.strip_prefix("- name: ") {
                    *in_callee = name.trim() == "productpage-v1" || name.trim() == "details-v1";
                }
                Some(if *in_callee && line.trim() == "ports: [{name: http, port: 9080}]" {
                    format!("  ports: [{{name: http, port: 9080}}, {{name: tcp-greet, port: {PORT}}}]\n")
                } else {
                    line.to_string()
                })
            })
            .collect::<String>()
    };
    let mesh = TwoSidecars::start_with(&add_port).await;
    let netns = |w: &str| workload_field(&mesh.state, w, "netns");
    let _servers = [
        greeter_in(&netns("productpage-v1-0"), PORT).await,
        greeter_in(&netns("details-v1-0"), PORT).await,
    ];
    // (who is called, its sidecar's admin, the caller's namespace, the service name)
    let calls = [
        (
            "productpage (Envoy) called by details",
            workload_field(&mesh.state, "productpage-v1-0", "sidecar_admin"),
            netns("details-v1-0"),
            "productpage",
        ),
        (
            "details (bowline-proxy) called by productpage",
            workload_field(&mesh.state, "details-v1-0", "sidecar_admin"),
            netns("productpage-v1-0"),
            "details",
        ),
    ];
    let mut held = Vec::new();
    for (who, admin, caller, service) in &calls {
        let script = format!(
            "exec 3<>/dev/tcp/{service}/{PORT} || exit 7; head -n 1 <&3 >/dev/null; echo READY; timeout 60 cat <&3 >/dev/null; echo CLOSED"
        );
        let mut child = tokio::process::Command::new("ip")
            .args(["netns", "exec", caller, "bash", "-c", &script])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref l))) if l == "READY"),
            "{who}: {ready:?}"
        );
        // The callee's sidecar took it on its inbound side, over mutual TLS.
        let inbound = format!("inbound|{PORT}||.upstream_cx_active");
        let active = two_sidecars::stat(admin, &inbound).await;
        assert!(active >= 1, "{who}: no active {inbound}");
        held.push((*who, (child, lines)));
    }

    mesh.mesh.write_config(
        "deny-greet.yaml",
        &format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: deny-greet, namespace: default}}\nspec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        ports: [\"{PORT}\"]\n"
        ),
    );
    let written = Instant::now();
    expect_closed_after_drain(held, written, "the DENY policy was written").await;
}

/// The ledger service of the first test with two subsets of the same endpoint and a TCP
/// route weighting them.
fn weighted_ledger(server: SocketAddr, a: u32, b: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: ledger, namespace: default}}\nspec:\n  hosts: [ledger.example.com]\n  addresses: [\"{ip}\"]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{{number: {port}, name: tcp-ledger, protocol: TCP}}]\n  endpoints: [{{address: \"{ip}\", labels: {{version: v1}}}}]\n---\n\
         apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: ledger, namespace: default}}\nspec:\n  host: ledger.example.com\n  subsets:\n  - {{name: a, labels: {{version: v1}}}}\n  - {{name: b, labels: {{version: v1}}}}\n---\n\
         apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: ledger, namespace: default}}\nspec:\n  hosts: [ledger.example.com]\n  tcp:\n  - route:\n    - {{destination: {{host: ledger.example.com, subset: a}}, weight: {a}}}\n    - {{destination: {{host: ledger.example.com, subset: b}}, weight: {b}}}\n",
        ip = server.ip(),
        port = server.port()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weight_change_leaves_open_tcp_connections_on_bowline_proxy() {
    let mesh = TwoSidecars::start().await;
    let listener = TcpListener::bind((mesh.bridge, 0)).await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(greeter(listener));
    mesh.mesh
        .write_config("ledger.yaml", &weighted_ledger(server, 50, 50));
    // Through one of the two subsets' clusters: the route is in place.
    let held = hold_through(&mesh, server, "|ledger.example.com").await;

    let before = mesh.mesh.syncz().await.unwrap()["generation"]
        .as_u64()
        .unwrap();
    mesh.mesh
        .write_config("ledger.yaml", &weighted_ledger(server, 90, 10));
    let changed = Instant::now();
    let generation = mesh.mesh.wait_synced_after(before).await.unwrap();
    eprintln!("weights 50/50 -> 90/10: generation {generation} applied by every proxy");
    // Watched past the drain: a sidecar that drains the changed chain closes it by then.
    let watches: Vec<_> = held
        .into_iter()
        .map(|(who, (child, mut lines))| {
            tokio::spawn(async move {
                let line =
                    tokio::time::timeout(DRAIN + Duration::from_secs(3), lines.next_line()).await;
                let after = changed.elapsed();
                drop(child);
                (who, line.ok().map(|l| l.ok().flatten()), after)
            })
        })
        .collect();
    for watch in watches {
        let (who, line, after) = watch.await.unwrap();
        match &line {
            None => eprintln!("{who}: still open {after:?} after the weight change"),
            Some(l) => eprintln!("{who}: {l:?} {after:?} after the weight change"),
        }
        if who.contains("bowline") {
            assert_eq!(line, None, "{who}: a weight change closed the connection");
        } else {
            // Envoy: the weights are in the listener's filter chain, which it drains.
            assert_eq!(
                line,
                Some(Some("CLOSED".to_string())),
                "{who}: Envoy kept a connection of a drained filter chain"
            );
        }
    }
}
