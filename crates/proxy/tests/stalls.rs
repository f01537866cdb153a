//! Clients that stall: 1,000 connections stopped mid-ClientHello on a listener with the TLS
//! inspector, and 2,000 slowloris connections that never finish their request headers. The
//! proxy keeps serving normal requests beside them, and the stalled heads get 408 once the
//! headers timeout passes. The CPU the proxy spent while they sat there is printed (speed is
//! measured, not asserted, in tests): the inspectors wait for bytes instead of polling.

mod support;

use std::time::Duration;

use bowline_model as model;
use bowline_testkit::get;
use model::route::RouteAction;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STALLED_HELLOS: usize = 1_000;
const SLOWLORIS: usize = 2_000;

/// User plus system CPU time of this process (the proxy runs in it).
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Opens `n` connections to `addr`, each sending `bytes` and then nothing.
async fn stall(addr: std::net::SocketAddr, n: usize, bytes: &'static [u8]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        streams.push(stream);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_and_slowloris_cost_nothing_and_normal_requests_are_served() {
    let upstream = Upstream::start("app").await;
    let routes = route_config(
        "r",
        &["*"],
        vec![route(
            "all",
            prefix("/"),
            RouteAction::Forward(forward(model::ClusterSpecifier::Cluster("app".into()))),
        )],
    );
    let mut inspected = http_listener("inspected", routes.clone());
    inspected.tls_inspector = true;
    let mut plain = http_listener("plain", routes);
    if let model::NetworkFilter::Http(hcm) = &mut plain.filter_chains[0].network {
        hcm.request_headers_timeout = Some(Duration::from_secs(3));
    }
    let (proxy, inspected_addr) = start(
        vec![inspected, plain],
        vec![cluster("app", &[upstream.addr])],
    );
    let plain_addr = proxy.state().bound_listeners()["plain"];

    // A TLS record header announcing a ClientHello, then silence.
    let hellos = stall(
        inspected_addr,
        STALLED_HELLOS,
        b"\x16\x03\x01\x02\x00\x01\x00\x01",
    )
    .await;
    let slow = stall(
        plain_addr,
        SLOWLORIS,
        b"GET / HTTP/1.1\r\nHost: app\r\nx-slow: ",
    )
    .await;

    let before = cpu_time();
    let window = Duration::from_secs(2);
    tokio::time::sleep(window).await;
    let spent = cpu_time() - before;
    println!(
        "{STALLED_HELLOS} stalled ClientHellos + {SLOWLORIS} slowloris connections: \
         {spent:?} of CPU in {window:?}"
    );

    // Normal requests go through on both listeners meanwhile.
    for addr in [inspected_addr, plain_addr] {
        let rsp = get(addr, "/ok", &[("host", "app")], TIMEOUT).await.unwrap();
        assert_eq!(rsp.status, 200, "{addr}: {}", rsp.text());
    }

    // The slowloris connections get 408 once their headers are 3 s late.
    let mut timed_out = 0;
    for mut stream in slow {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer)).await;
        if answer.starts_with(b"HTTP/1.1 408") {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, SLOWLORIS, "every stalled head answered 408");
    drop(hellos);
    drop(proxy);
}
