//! `bowline echo` as a real process: readiness line, JSON body, status and failure flags,
//! per-request overrides, h2c, malformed input and SIGTERM.

use bowline_testkit::{get, get_h2, send_raw, Proc, Response};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// Starts `bowline echo --listen 127.0.0.1:0 --service reviews --version v2 <extra>` and
/// returns it with the address it printed.
async fn echo(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bowline"));
    command
        .args([
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--service",
            "reviews",
            "--version",
            "v2",
        ])
        .args(extra);
    let proc = Proc::spawn("echo", command).unwrap();
    let line = proc.wait_for_line("listening on ", T).await.unwrap();
    let addr = line.trim_start_matches("listening on ").parse().unwrap();
    (proc, addr)
}

#[tokio::test]
async fn answers_with_json_describing_the_request() {
    let (_echo, addr) = echo(&["--instance", "reviews-v2-0"]).await;
    let response = get(
        addr,
        "/reviews/1?full=yes",
        &[("x-request-id", "abc"), ("x-b3-traceid", "7")],
        T,
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-echo-service"), Some("reviews"));
    assert_eq!(response.header("x-echo-version"), Some("v2"));
    let body = response.json();
    assert_eq!(body["service"], "reviews");
    assert_eq!(body["version"], "v2");
    assert_eq!(body["instance"], "reviews-v2-0");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/reviews/1?full=yes");
    assert_eq!(body["host"], addr.to_string());
    assert_eq!(body["headers"]["x-request-id"], "abc");
    assert_eq!(body["headers"]["x-b3-traceid"], "7");
}

#[tokio::test]
async fn status_flag_and_status_header() {
    let (_echo, addr) = echo(&["--status", "201"]).await;
    assert_eq!(get(addr, "/", &[], T).await.unwrap().status, 201);
    assert_eq!(
        get(addr, "/", &[("x-echo-status", "418")], T)
            .await
            .unwrap()
            .status,
        418
    );
    let bad = get(addr, "/", &[("x-echo-status", "teapot")], T)
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("x-echo-status"),
        "{}",
        bad.text()
    );
}

#[tokio::test]
async fn fail_rate_fails_roughly_that_share() {
    let (_echo, addr) = echo(&["--fail-rate", "0.5", "--fail-status", "503"]).await;
    let mut failures = 0;
    for _ in 0..200 {
        let Response { status, .. } = get(addr, "/", &[], T).await.unwrap();
        assert!(status == 200 || status == 503, "{status}");
        failures += usize::from(status == 503);
    }
    assert!((60..=140).contains(&failures), "{failures} of 200 failed");
}

#[tokio::test]
async fn delay_header_and_flag_delay_the_answer() {
    let (_echo, addr) = echo(&["--delay", "100ms"]).await;
    let started = Instant::now();
    assert_eq!(get(addr, "/", &[], T).await.unwrap().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(100));
    let started = Instant::now();
    assert_eq!(
        get(addr, "/", &[("x-echo-delay", "600ms")], T)
            .await
            .unwrap()
            .status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        get(addr, "/", &[("x-echo-delay", "soon")], T)
            .await
            .unwrap()
            .status,
        400
    );
}

#[tokio::test]
async fn speaks_http2_with_prior_knowledge() {
    let (_echo, addr) = echo(&[]).await;
    let response = get_h2(addr, "/h2?x=1", &[("x-h2", "yes")], T)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["path"], "/h2?x=1");
    assert_eq!(body["host"], addr.to_string());
    assert_eq!(body["headers"]["x-h2"], "yes");
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_server_keeps_serving() {
    let (_echo, addr) = echo(&[]).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let answer = send_raw(addr, garbage, T).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{garbage:?} -> {answer:?}"
        );
    }
    assert_eq!(get(addr, "/", &[], T).await.unwrap().status, 200);
}

#[tokio::test]
async fn sigterm_exits_zero() {
    let (mut echo, addr) = echo(&[]).await;
    assert_eq!(get(addr, "/", &[], T).await.unwrap().status, 200);
    let status = echo.terminate(T).unwrap();
    assert!(status.success(), "{status}; logs:\n{}", echo.logs());
}

#[test]
fn bad_flags_exit_2() {
    let bin = env!("CARGO_BIN_EXE_bowline");
    for extra in [
        &["--fail-rate", "1.5"][..],
        &["--status", "99"],
        &["--delay", "2"],
    ] {
        let output = Command::new(bin)
            .args([
                "echo",
                "--listen",
                "127.0.0.1:0",
                "--service",
                "s",
                "--version",
                "v1",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
