//! Calls from a workload to servers outside the registry, under transparent capture, from
//! behind a real Envoy sidecar (productpage) and behind bowline-proxy (details) in one
//! `bowline up` mesh, with the same outcome on both:
//! - ALLOW_ANY (Istio's default): an HTTP server on a mesh HTTP port (9080) and a
//!   server-first TCP server (a banner, as SMTP or MySQL send) on an undeclared port are
//!   reached at their own address;
//! - REGISTRY_ONLY (a root-namespace Sidecar, written live): the same HTTP call is answered
//!   502 and the TCP connection is closed without the banner;
//! - a ServiceEntry for the server allows both again;
//! - a call to another workload's pod IP (as StatefulSet members are called) is refused
//!   under REGISTRY_ONLY until a headless service (`resolution: NONE`) selects the pods;
//!   then it is answered over mutual TLS (the mesh is STRICT), Envoy → bowline-proxy and
//!   bowline-proxy → Envoy, the callee seeing the caller's SPIFFE id.
//!
//! The servers run in this test, on the mesh bridge's own address (this machine), and the
//! client runs inside each workload's network namespace (`ip netns exec`, bash's /dev/tcp),
//! so its connections are captured like the application's.

#[path = "up/mesh.rs"]
mod mesh;
#[path = "up/two_sidecars.rs"]
mod two_sidecars;

use anyhow::ensure;
use bowline_testkit::wait_until;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use two_sidecars::{in_netns, stat, workload_field, TwoSidecars};

/// How long a config edit may take to reach both sidecars.
const PROPAGATION: Duration = Duration::from_secs(20);
const BANNER: &str = "220 outside ready\r\n";

/// An HTTP/1.1 server answering every request `200 outside` and closing.
async fn http_server(addr: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\noutside",
                    )
                    .await;
            });
        }
    });
    local
}

/// A server-first TCP server: the banner on accept, then an echo.
async fn banner_server(ip: IpAddr) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if stream.write_all(BANNER.as_bytes()).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    local
}

/// What a GET to `addr` with `Host: host` gets from inside `netns`: the status line and
/// body, or "" when the connection closed without an answer.
async fn http_from(netns: &str, addr: SocketAddr, host: &str) -> anyhow::Result<String> {
    let (status, body) = exchange(netns, addr, host).await?;
    Ok(format!("{status} {body}").trim().to_string())
}

/// The status line and body of a GET to `addr` with `Host: host` from inside `netns`.
async fn exchange(netns: &str, addr: SocketAddr, host: &str) -> anyhow::Result<(String, String)> {
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/{port} || exit 7; printf 'GET /outside HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n' >&3; timeout 5 cat <&3",
        ip = addr.ip(),
        port = addr.port()
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

/// The first bytes a TCP connection to `addr` from inside `netns` receives without sending
/// anything ("" when it is closed first).
async fn banner_from(netns: &str, addr: SocketAddr) -> anyhow::Result<String> {
    let script = format!(
        "exec 3<>/dev/tcp/{}/{} || exit 7; timeout 5 head -c {} <&3",
        addr.ip(),
        addr.port(),
        BANNER.len()
    );
    in_netns(netns, script).await
}

/// Waits until both workloads see `want` for the HTTP call and `banner` for the TCP one.
async fn expect(
    clients: &[(&str, String)],
    http: SocketAddr,
    host: &str,
    tcp: SocketAddr,
    want: &str,
    banner: &str,
) {
    for (who, netns) in clients {
        let outcome = wait_until(PROPAGATION, Duration::from_millis(200), || async {
            let got = (
                http_from(netns, http, host).await?,
                banner_from(netns, tcp).await?,
            );
            ensure!(got.0 == want && got.1 == banner, "{who}: {got:?}");
            Ok(got)
        })
        .await;
        outcome.unwrap_or_else(|e| panic!("{who} wanted ({want:?}, {banner:?}): {e:#}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_outside_the_registry_follow_the_outbound_traffic_policy_on_envoy_and_bowline() {
    let TwoSidecars {
        mesh,
        state,
        bridge,
        clients,
    } = TwoSidecars::start().await;
    // On 9080, a port the mesh's HTTP services use: the sidecars route it as HTTP.
    let http = http_server(SocketAddr::new(bridge, 9080)).await;
    let tcp = banner_server(bridge).await;
    let host = http.to_string();

    // ALLOW_ANY: both reach both servers.
    expect(
        &clients,
        http,
        &host,
        tcp,
        "HTTP/1.1 200 OK outside",
        BANNER,
    )
    .await;

    // REGISTRY_ONLY for the whole mesh (a root-namespace Sidecar without egress hosts).
    mesh.write_config(
        "outbound.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: istio-system}\nspec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
    );
    expect(&clients, http, &host, tcp, "HTTP/1.1 502 Bad Gateway", "").await;
    // The mesh itself keeps working.
    mesh.page(None).await.unwrap();

    // A ServiceEntry puts both servers in the registry: allowed again.
    mesh.write_config(
        "outside.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: outside, namespace: default}}\nspec:\n  hosts: [outside.example.com]\n  addresses: [\"{bridge}\"]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 9080, name: http, protocol: HTTP}}\n  - {{number: {tcp_port}, name: tcp-banner, protocol: TCP}}\n  endpoints:\n  - address: \"{bridge}\"\n",
            tcp_port = tcp.port()
        ),
    );
    expect(
        &clients,
        http,
        "outside.example.com",
        tcp,
        "HTTP/1.1 200 OK outside",
        BANNER,
    )
    .await;

    // Pod IPs: productpage (Envoy) calls details' pod, details (bowline) calls productpage's.
    let ip = |name: &str| -> IpAddr { workload_field(&state, name, "ip").parse().unwrap() };
    let calls = [
        (
            &clients[0],
            ip("details-v1-0"),
            "details",
            "bookinfo-productpage",
        ),
        (
            &clients[1],
            ip("productpage-v1-0"),
            "productpage",
            "bookinfo-details",
        ),
    ];
    for ((who, netns), pod, _, _) in &calls {
        let pod = SocketAddr::new(*pod, 9080);
        let (status, _) = exchange(netns, pod, &pod.to_string()).await.unwrap();
        assert_eq!(
            status, "HTTP/1.1 502 Bad Gateway",
            "{who}: a pod IP is no registry host"
        );
    }
    let headless = |app: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {app}-pods, namespace: default}}\nspec:\n  hosts: [{app}-pods.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: NONE\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {app}}}}}\n"
        )
    };
    mesh.write_config(
        "headless.yaml",
        &format!("{}---\n{}", headless("details"), headless("productpage")),
    );
    for ((who, netns), pod, service, caller) in &calls {
        let pod = SocketAddr::new(*pod, 9080);
        let answer = wait_until(PROPAGATION, Duration::from_millis(200), || async {
            let (status, body) = exchange(netns, pod, &pod.to_string()).await?;
            ensure!(status == "HTTP/1.1 200 OK", "{who}: {status} {body}");
            Ok(serde_json::from_str::<Value>(&body)?)
        })
        .await
        .unwrap_or_else(|e| panic!("{who} → {pod}: {e:#}"));
        assert_eq!(answer["service"], *service, "{answer}");
        let xfcc = answer["headers"]["x-forwarded-client-cert"]
            .as_str()
            .unwrap_or_default();
        assert!(
            xfcc.contains(&format!(
                "URI=spiffe://cluster.local/ns/default/sa/{caller}"
            )),
            "{who} → {service}: the callee sees the caller's identity, so mutual TLS: {answer}"
        );
    }
}

/// Istio's protocol sniffing on ports whose protocol nothing declares (a ServiceEntry port
/// named `db` or `web`), on both sidecars: a server-first TCP server's banner arrives after
/// the detection timeout (the delay measured and printed), and an HTTP client that sends its
/// request line in two pieces is still detected as HTTP and routed by a VirtualService
/// (whose response header proves it). Each sidecar counts what it detected.
#[tokio::test(flavor = "multi_thread")]
async fn undeclared_ports_detect_http_and_let_server_first_protocols_through() {
    let mesh = TwoSidecars::start().await;
    let db = banner_server(mesh.bridge).await;
    let web = http_server(SocketAddr::new(mesh.bridge, 0)).await;
    mesh.mesh.write_config(
        "legacy.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: legacy, namespace: default}}\nspec:\n  hosts: [legacy.example.com]\n  addresses: [\"{bridge}\"]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: {db}, name: db}}\n  - {{number: {web}, name: web}}\n  endpoints:\n  - address: \"{bridge}\"\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: legacy, namespace: default}}\nspec:\n  hosts: [legacy.example.com]\n  http:\n  - headers:\n      response:\n        add: {{x-detected: http}}\n    route:\n    - destination: {{host: legacy.example.com, port: {{number: {web}}}}}\n",
            bridge = mesh.bridge,
            db = db.port(),
            web = web.port()
        ),
    );
    let slow_http = format!(
        "exec 3<>/dev/tcp/{ip}/{port} || exit 7; printf 'GET /legacy HT' >&3; sleep 0.03; printf 'TP/1.1\\r\\nHost: legacy.example.com\\r\\nConnection: close\\r\\n\\r\\n' >&3; timeout 5 cat <&3",
        ip = web.ip(),
        port = web.port()
    );
    // Nanoseconds from connecting to the banner's last byte, then the banner.
    let timed_banner = format!(
        "exec 3<>/dev/tcp/{ip}/{port} || exit 7; start=$(date +%s%N); b=$(timeout 5 head -c {n} <&3); end=$(date +%s%N); echo $((end - start)); printf '%s' \"$b\"",
        ip = db.ip(),
        port = db.port(),
        n = BANNER.len()
    );
    for (who, netns) in &mesh.clients {
        // Once the config has arrived, HTTP is detected and routed by the VirtualService.
        let response = wait_until(PROPAGATION, Duration::from_millis(200), || async {
            let response = in_netns(netns, slow_http.clone()).await?;
            ensure!(
                response.to_ascii_lowercase().contains("x-detected: http"),
                "{who}: {response:?}"
            );
            Ok(response)
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(response.starts_with("HTTP/1.1 200"), "{who}: {response}");
        assert!(response.ends_with("outside"), "{who}: {response}");
        // The server speaks first: detection gives up and the banner comes through.
        let mut delays = Vec::new();
        for _ in 0..5 {
            let out = in_netns(netns, timed_banner.clone()).await.unwrap();
            let (nanos, banner) = out.split_once('\n').unwrap_or(("", ""));
            assert_eq!(banner, BANNER.trim_end_matches('\n'), "{who}: {out:?}");
            delays.push(nanos.trim().parse::<u64>().unwrap() / 1_000_000);
        }
        delays.sort();
        eprintln!("{who}: server-first banner after {delays:?} ms (detection timeout 100 ms)");
        assert!(
            delays[0] >= 90,
            "{who}: the banner waits for detection to give up: {delays:?} ms"
        );
    }
    let admin = |name: &str| workload_field(&mesh.state, name, "sidecar_admin");
    for (who, name) in [
        ("Envoy", "productpage-v1-0"),
        ("bowline-proxy", "details-v1-0"),
    ] {
        let admin = admin(name);
        assert!(
            stat(&admin, "http_inspector.http11_found").await >= 1,
            "{who} counts the HTTP it detected"
        );
        assert!(
            stat(&admin, "downstream_pre_cx_timeout").await >= 5,
            "{who} counts the detections that gave up"
        );
    }
}
