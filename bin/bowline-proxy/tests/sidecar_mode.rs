//! `bowline-proxy --sidecar` as injection runs it, with only the pod's environment: against a
//! real `bowline control` (TLS, with its CA) reached by a DNS name (`localhost`), it gets its
//! workload certificate with the token from a file, turns ready on its status port once
//! the first configuration is applied, answers the application's rewritten probes as the
//! application does, serves the admin's metrics, and on SIGTERM turns unready at once,
//! stops accepting inbound while outbound still accepts, then exits 0.
//!
//! Needs the `bowline` binary: `cargo build -p bowline --bin bowline` first.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bowline_testkit::{bowline_binary, bowline_proxy_binary, get, Proc};
use support::{parse_addr, REQUEST, STARTUP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An application whose `/healthz` answers the status in `status`; anything else 404.
async fn app(status: Arc<AtomicU16>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let status = status.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let code =
                    if text.starts_with("GET /healthz ") && text.contains("\r\nx-probe: yes\r\n") {
                        status.load(Ordering::SeqCst)
                    } else {
                        404
                    };
                let answer =
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// Polls `GET path` on `addr` until it answers `want`; the last answer on timeout.
async fn until_status(addr: SocketAddr, path: &str, want: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let last = match get(addr, path, &[], REQUEST).await {
            Ok(rsp) if rsp.status == want => return rsp.text(),
            Ok(rsp) => format!("{} {}", rsp.status, rsp.text()),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            Instant::now() < deadline,
            "GET {path} did not answer {want} within {within:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The address a `listening listener=<name> address=<addr>` log line names.
async fn listener_addr(proxy: &Proc, name: &str) -> SocketAddr {
    let line = proxy
        .wait_for_line(&format!("listener={name} address="), STARTUP)
        .await
        .unwrap();
    parse_addr(&line, "address=").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_mode_from_the_pods_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    // The registry does not know this pod: a Sidecar with an ingress listener gives it
    // `virtualInbound` all the same.
    std::fs::write(
        config.join("sidecar.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec:\n  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:9080\n",
    )
    .unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "sidecar-token spiffe://cluster.local/ns/default/sa/productpage\n",
    )
    .unwrap();
    let mut cmd = Command::new(bowline_binary());
    cmd.args(["control", "--config"])
        .arg(&config)
        .args(["--secure-xds-addr", "127.0.0.1:0"])
        .args(["--debug-addr", "127.0.0.1:0"])
        .arg("--ca-dir")
        .arg(dir.path().join("ca"))
        .arg("--ca-tokens")
        .arg(&tokens);
    let control = Proc::spawn("control", cmd).unwrap();
    let line = control
        .wait_for_line("secure xds listening on ", STARTUP)
        .await
        .unwrap();
    let secure = parse_addr(&line, "secure xds listening on ").unwrap();

    let app_status = Arc::new(AtomicU16::new(200));
    let app_addr = app(app_status.clone()).await;
    // The projected token, as the kubelet writes it (with a trailing newline).
    let token_file = dir.path().join("bowline-token");
    std::fs::write(&token_file, "sidecar-token\n").unwrap();
    let probers = format!(
        r#"{{"/app-health/app/readyz":{{"httpGet":{{"path":"/healthz","port":{port},"scheme":"HTTP","httpHeaders":[{{"name":"x-probe","value":"yes"}}]}},"timeoutSeconds":1}},
            "/app-health/app/livez":{{"tcpSocket":{{"port":{port}}},"timeoutSeconds":1}}}}"#,
        port = app_addr.port()
    );

    let mut cmd = Command::new(bowline_proxy_binary());
    cmd.args(["--sidecar", "--log-level", "info"])
        .env_remove("BOWLINE_CONFIG")
        .env_remove("BOWLINE_CA_TOKEN")
        .env("POD_NAME", "productpage-v1-6b746f74dc-9stvs")
        .env("POD_NAMESPACE", "default")
        .env("INSTANCE_IP", "127.0.0.1")
        .env("SERVICE_ACCOUNT", "productpage")
        .env("NODE_NAME", "node-1")
        // A name, so the proxy resolves it by DNS.
        .env("BOWLINE_XDS_ADDR", format!("localhost:{}", secure.port()))
        // `bowline control`'s certificate names istiod.istio-system.svc only, not localhost.
        .env("BOWLINE_XDS_SERVER_NAME", "istiod.istio-system.svc")
        .env("BOWLINE_CA_ROOT_FILE", dir.path().join("ca/root-cert.pem"))
        .env("BOWLINE_CA_TOKEN_FILE", &token_file)
        .env("BOWLINE_APP_PROBERS", probers)
        .env("BOWLINE_DRAIN_DURATION", "3s")
        // Test-only overrides: the contract's ports are fixed (15000, 15001, 15006, 15020).
        .env("BOWLINE_ADMIN_ADDR", "127.0.0.1:0")
        .env("BOWLINE_STATUS_ADDR", "127.0.0.1:0")
        .env("BOWLINE_OUTBOUND_PORT", "0")
        .env("BOWLINE_INBOUND_PORT", "0")
        .env("BOWLINE_DRAIN_TIME_S", "2");
    let mut proxy = Proc::spawn("sidecar", cmd).unwrap();
    proxy
        .wait_for_line(
            "workload certificate issued identity=spiffe://cluster.local/ns/default/sa/productpage",
            STARTUP,
        )
        .await
        .unwrap();
    let line = proxy
        .wait_for_line("status listening on ", STARTUP)
        .await
        .unwrap();
    let status = parse_addr(&line, "status listening on ").unwrap();

    until_status(status, "/healthz/ready", 200, STARTUP).await;
    assert!(
        proxy.logs().contains("initial configuration applied"),
        "{}",
        proxy.logs()
    );
    let inbound = listener_addr(&proxy, "virtualInbound").await;
    let outbound = listener_addr(&proxy, "virtualOutbound").await;
    assert_eq!(inbound.ip().to_string(), "127.0.0.1", "on INSTANCE_IP");

    // The application's probes follow the application.
    until_status(status, "/app-health/app/readyz", 200, REQUEST).await;
    until_status(status, "/app-health/app/livez", 200, REQUEST).await;
    app_status.store(500, Ordering::SeqCst);
    until_status(status, "/app-health/app/readyz", 500, REQUEST).await;
    app_status.store(302, Ordering::SeqCst);
    until_status(status, "/app-health/app/readyz", 200, REQUEST).await;
    let unknown = get(status, "/app-health/other/readyz", &[], REQUEST)
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    let stats = get(status, "/stats/prometheus", &[], REQUEST)
        .await
        .unwrap();
    assert_eq!(stats.status, 200);
    assert!(
        stats.text().contains("# TYPE envoy_cluster_"),
        "{}",
        stats.text()
    );

    // SIGTERM: unready at once; inbound stops accepting while outbound still does; exit 0.
    let kill = Command::new("kill")
        .args(["-TERM", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let terminated = Instant::now();
    until_status(status, "/healthz/ready", 503, Duration::from_secs(2)).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while tokio::net::TcpStream::connect(inbound).await.is_ok() {
        assert!(Instant::now() < deadline, "inbound still accepting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        terminated.elapsed() < Duration::from_secs(3),
        "checked within the drain duration"
    );
    tokio::net::TcpStream::connect(outbound)
        .await
        .expect("outbound still accepts during BOWLINE_DRAIN_DURATION");
    let exit = loop {
        if let Some(exit) = proxy.try_exit_status().unwrap() {
            break exit;
        }
        assert!(
            terminated.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM: {}",
            proxy.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}: {}", proxy.logs());
    assert!(
        terminated.elapsed() >= Duration::from_secs(3),
        "outbound served for BOWLINE_DRAIN_DURATION before exit"
    );
}

#[tokio::test]
async fn sidecar_mode_names_a_missing_variable() {
    let out = Command::new(bowline_proxy_binary())
        .arg("--sidecar")
        .env_remove("BOWLINE_CONFIG")
        .env("POD_NAME", "productpage-v1")
        .env("POD_NAMESPACE", "default")
        .env_remove("INSTANCE_IP")
        .env("BOWLINE_XDS_ADDR", "localhost:15012")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INSTANCE_IP is not set"), "{stderr}");
}

/// Before any configuration: the status port already answers (readiness 503, the
/// application's probes as the application does) while the control plane is silent. Here
/// in plaintext (no BOWLINE_CA_ROOT_FILE) and without a workload certificate (no
/// BOWLINE_CA_TOKEN_FILE); SIGTERM still ends it with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_config_readiness_is_503_and_probes_answer() {
    // A "control plane" that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let app_status = Arc::new(AtomicU16::new(200));
    let app_addr = app(app_status.clone()).await;
    let probers = format!(
        r#"{{"/app-health/app/livez":{{"httpGet":{{"path":"/healthz","port":{},"httpHeaders":[{{"name":"x-probe","value":"yes"}}]}}}}}}"#,
        app_addr.port()
    );
    let mut cmd = Command::new(bowline_proxy_binary());
    cmd.args(["--sidecar", "--log-level", "info"])
        .env_remove("BOWLINE_CONFIG")
        .env_remove("BOWLINE_CA_TOKEN")
        .env_remove("BOWLINE_CA_ROOT_FILE")
        .env_remove("BOWLINE_CA_TOKEN_FILE")
        .env("POD_NAME", "ratings-v1-0")
        .env("POD_NAMESPACE", "default")
        .env("INSTANCE_IP", "127.0.0.1")
        .env("BOWLINE_XDS_ADDR", format!("localhost:{silent_port}"))
        .env("BOWLINE_APP_PROBERS", probers)
        .env("BOWLINE_DRAIN_DURATION", "100ms")
        .env("BOWLINE_ADMIN_ADDR", "127.0.0.1:0")
        .env("BOWLINE_STATUS_ADDR", "127.0.0.1:0")
        .env("BOWLINE_OUTBOUND_PORT", "0")
        .env("BOWLINE_INBOUND_PORT", "0")
        .env("BOWLINE_DRAIN_TIME_S", "1");
    let mut proxy = Proc::spawn("sidecar", cmd).unwrap();
    let line = proxy
        .wait_for_line("status listening on ", STARTUP)
        .await
        .unwrap();
    let status = parse_addr(&line, "status listening on ").unwrap();
    proxy
        .wait_for_line("following the control plane", STARTUP)
        .await
        .unwrap();

    let ready = get(status, "/healthz/ready", &[], REQUEST).await.unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text());
    until_status(status, "/app-health/app/livez", 200, REQUEST).await;
    app_status.store(503, Ordering::SeqCst);
    until_status(status, "/app-health/app/livez", 503, REQUEST).await;
    let logs = proxy.logs();
    assert!(
        logs.contains("BOWLINE_CA_ROOT_FILE is not set")
            && logs.contains("no workload certificate"),
        "{logs}"
    );
    assert!(!logs.contains("initial configuration applied"), "{logs}");

    let exit = proxy.terminate(Duration::from_secs(15)).unwrap();
    assert!(exit.success(), "{exit:?}: {}", proxy.logs());
    held.abort();
}
