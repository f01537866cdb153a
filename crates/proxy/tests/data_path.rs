//! The data path end to end in one process: real sockets, a [`Proxy`] configured from model
//! values, hyper upstreams. Each test reads as a scenario.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bowline_model as model;
use bowline_proxy::Change;
use bowline_testkit::{get, send_raw, ProxyClient};
use model::route::{
    Abort, ClusterSpecifier, DirectResponse, FaultAbort, FaultDelay, FaultPolicy, PathRewrite,
    RetryOn, RetryPolicy, RouteAction, WeightedCluster,
};
use support::*;

fn to(cluster: &str) -> RouteAction {
    RouteAction::Forward(forward(ClusterSpecifier::Cluster(cluster.into())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_to_the_upstream_and_reuses_its_connection() {
    let up = Upstream::start("a").await;
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (_proxy, addr) = start(
        vec![http_listener("l", routes)],
        vec![cluster("up", &[up.addr])],
    );

    let mut client = ProxyClient::new(addr);
    for i in 0..20 {
        let url = format!("http://example.com/item/{i}?x=1");
        let rsp = client.request("GET", &url, &[], TIMEOUT).await.unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text());
        assert_eq!(
            rsp.text(),
            format!("/item/{i}?x=1"),
            "origin-form path upstream"
        );
        assert_eq!(
            rsp.header("x-seen-host"),
            Some("example.com"),
            "Host from the absolute URI"
        );
        assert_eq!(rsp.header("x-seen-proto"), Some("http"));
    }
    assert_eq!(client.connections_opened(), 1, "downstream keep-alive");
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "upstream keep-alive pool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_404_unknown_cluster_503_and_empty_cluster_no_healthy_upstream() {
    let routes = route_config(
        "r",
        &["known.example"],
        vec![
            route("ghost", prefix("/ghost"), to("nope")),
            route("empty", prefix("/empty"), to("empty")),
        ],
    );
    let (proxy, addr) = start(
        vec![http_listener("l", routes)],
        vec![cluster("empty", &[])],
    );

    let rsp = get(addr, "/", &[("host", "other.example")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.status, 404);
    let rsp = get(addr, "/elsewhere", &[("host", "known.example")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.status, 404);
    let rsp = get(addr, "/ghost", &[("host", "known.example")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.status, 503);
    let rsp = get(addr, "/empty", &[("host", "known.example")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        (rsp.status, rsp.text().as_str()),
        (503, "no healthy upstream")
    );

    let text = proxy.state().stats.prometheus();
    assert!(
        text.contains("envoy_http_downstream_rq_xx{envoy_response_code_class=\"4\",envoy_http_conn_manager_prefix=\"ingress_http\"} 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400() {
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (_proxy, addr) = start(vec![http_listener("l", routes)], vec![cluster("up", &[])]);
    let answer = send_raw(addr, b"GARBAGE\r\n\r\n", TIMEOUT).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    let answer = send_raw(addr, b"GET / HTTP/1.1\r\n\r\n", TIMEOUT)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "no Host: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_clusters_split_traffic() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let split = ClusterSpecifier::Weighted(vec![
        WeightedCluster {
            name: "a".into(),
            weight: 80,
            headers: Default::default(),
            host_rewrite: None,
        },
        WeightedCluster {
            name: "b".into(),
            weight: 20,
            headers: Default::default(),
            host_rewrite: None,
        },
    ]);
    let routes = route_config(
        "r",
        &["*"],
        vec![route(
            "all",
            prefix("/"),
            RouteAction::Forward(forward(split)),
        )],
    );
    let (_proxy, addr) = start(
        vec![http_listener("l", routes)],
        vec![cluster("a", &[a.addr]), cluster("b", &[b.addr])],
    );
    let mut client = ProxyClient::new(addr);
    let mut to_a = 0;
    for _ in 0..1000 {
        let rsp = client
            .request("GET", "http://x/", &[], TIMEOUT)
            .await
            .unwrap();
        to_a += usize::from(rsp.header("x-upstream") == Some("a"));
    }
    assert!((750..=850).contains(&to_a), "a got {to_a} of 1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeout_is_504_and_retries_mask_failures() {
    let up = Upstream::start("a").await;
    let mut slow = forward(ClusterSpecifier::Cluster("up".into()));
    slow.timeout = Some(Duration::from_millis(300));
    let mut retried = forward(ClusterSpecifier::Cluster("up".into()));
    retried.retry = Some(RetryPolicy {
        num_retries: 3,
        retry_on: [RetryOn::FiveXx].into_iter().collect(),
        retriable_status_codes: Vec::new(),
        per_try_timeout: None,
        backoff: model::route::Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        avoid_previous_hosts: false,
        host_selection_retry_max_attempts: 1,
    });
    let routes = route_config(
        "r",
        &["*"],
        vec![
            route("slow", prefix("/slow"), RouteAction::Forward(slow)),
            route("retried", prefix("/retried"), RouteAction::Forward(retried)),
        ],
    );
    let (proxy, addr) = start(
        vec![http_listener("l", routes)],
        vec![cluster("up", &[up.addr])],
    );

    let started = Instant::now();
    let rsp = get(addr, "/slow?delay_ms=2000", &[], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        (rsp.status, rsp.text().as_str()),
        (504, "upstream request timeout")
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // The route timeout covers the whole response: a body still streaming at the deadline
    // is cut (the client sees the stream end early, as with Envoy's reset).
    let started = Instant::now();
    let cut = get(addr, "/slow?body_delay_ms=2000", &[], TIMEOUT).await;
    assert!(cut.is_err(), "the body was cut: {cut:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // The upstream's request counter is shared: fail the next 2 requests it sees.
    let n = up.requests.load(Ordering::SeqCst);
    let rsp = get(
        addr,
        &format!("/retried?fail_first={}", n + 2),
        &[],
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(
        rsp.status, 200,
        "two failures, then success on the third try"
    );
    let text = proxy.state().stats.prometheus();
    assert!(
        text.contains("envoy_cluster_upstream_rq_retry{envoy_cluster_name=\"up\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("envoy_cluster_upstream_rq_timeout{envoy_cluster_name=\"up\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_direct_responses_redirects_rewrites_and_header_ops() {
    let up = Upstream::start("a").await;
    let mut abort = route("abort", prefix("/abort"), to("up"));
    abort.fault = Some(FaultPolicy {
        delay: None,
        abort: Some(FaultAbort {
            abort: Abort::Http(418),
            fraction: model::Fraction::ALL,
        }),
    });
    let mut delay = route("delay", prefix("/delay"), to("up"));
    delay.fault = Some(FaultPolicy {
        delay: Some(FaultDelay {
            duration: Duration::from_millis(300),
            fraction: model::Fraction::ALL,
        }),
        abort: None,
    });
    let direct = route(
        "direct",
        prefix("/direct"),
        RouteAction::DirectResponse(DirectResponse {
            status: 200,
            body: Some(b"hello".to_vec()),
        }),
    );
    let redirect = route(
        "redirect",
        prefix("/old"),
        RouteAction::Redirect(model::route::Redirect {
            scheme: None,
            host: Some("new.example".into()),
            port: None,
            path: None,
            code: 302,
            strip_query: false,
        }),
    );
    let mut rewritten = forward(ClusterSpecifier::Cluster("up".into()));
    rewritten.path_rewrite = Some(PathRewrite::Prefix("/v2/".into()));
    rewritten.host_rewrite = Some("backend.internal".into());
    let mut rewrite = route("rewrite", prefix("/v1/"), RouteAction::Forward(rewritten));
    rewrite
        .headers
        .request_add
        .push(model::route::HeaderAppend {
            name: http::HeaderName::from_static("x-added"),
            value: http::HeaderValue::from_static("yes"),
            action: Default::default(),
            keep_empty_value: false,
        });
    rewrite
        .headers
        .request_remove
        .push(http::HeaderName::from_static("x-removed"));
    rewrite
        .headers
        .response_remove
        .push(http::HeaderName::from_static("x-upstream"));
    let routes = route_config("r", &["*"], vec![abort, delay, direct, redirect, rewrite]);
    let fault_filter = model::HttpFilter::Fault(FaultPolicy::default());
    let network = model::NetworkFilter::Http(hcm(
        model::RouteSource::Static(std::sync::Arc::new(routes)),
        vec![fault_filter],
    ));
    let (_proxy, addr) = start(
        vec![listener("l", network)],
        vec![cluster("up", &[up.addr])],
    );

    let rsp = get(addr, "/abort", &[], TIMEOUT).await.unwrap();
    assert_eq!((rsp.status, rsp.header("x-upstream")), (418, None));
    let started = Instant::now();
    let rsp = get(addr, "/delay", &[], TIMEOUT).await.unwrap();
    assert_eq!(rsp.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(290));
    let rsp = get(addr, "/direct", &[], TIMEOUT).await.unwrap();
    assert_eq!((rsp.status, rsp.text().as_str()), (200, "hello"));
    let rsp = get(addr, "/old/page?q=1", &[("host", "old.example")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.status, 302);
    assert_eq!(
        rsp.header("location"),
        Some("http://new.example/old/page?q=1")
    );
    let rsp = get(addr, "/v1/thing?q=1", &[("x-removed", "1")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.text(), "/v2/thing?q=1");
    assert_eq!(rsp.header("x-seen-host"), Some("backend.internal"));
    assert_eq!(rsp.header("x-seen-added"), Some("yes"));
    assert_eq!(rsp.header("x-removed-leaked"), None);
    assert_eq!(rsp.header("x-upstream"), None, "response header removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_downstream_and_h2_upstream() {
    let up = Upstream::start("a").await;
    let mut h2 = cluster("up", &[up.addr]);
    h2.protocol = model::cluster::UpstreamProtocol::Http2 {
        max_concurrent_streams: 100,
    };
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (_proxy, addr) = start(vec![http_listener("l", routes)], vec![h2]);
    let rsp = bowline_testkit::get_h2(addr, "/h2", &[], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.header("x-seen-version"), Some("HTTP/2.0"));
    let rsp = get(addr, "/h1", &[], TIMEOUT).await.unwrap();
    assert_eq!(
        rsp.header("x-seen-version"),
        Some("HTTP/2.0"),
        "HTTP/1.1 in, HTTP/2 out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_listener_stops_accepting_but_finishes_its_requests() {
    let up = Upstream::start("a").await;
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (proxy, addr) = start(
        vec![http_listener("l", routes)],
        vec![cluster("up", &[up.addr])],
    );
    let in_flight = tokio::spawn(get(addr, "/?delay_ms=500", &[], TIMEOUT));
    // Wait until the request reached the upstream, then remove the listener.
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(5), || async {
        anyhow::ensure!(up.requests.load(Ordering::SeqCst) == 1);
        Ok(())
    })
    .await
    .unwrap();
    proxy.apply(Change {
        removed_listeners: vec!["l".into()],
        ..Change::default()
    });
    let rsp = in_flight.await.unwrap().unwrap();
    assert_eq!(rsp.status, 200, "the in-flight request finished");
    assert!(
        get(addr, "/", &[], Duration::from_secs(2)).await.is_err(),
        "no longer accepting"
    );
    assert!(proxy.state().bound_listeners().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_proxy_copies_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = echo.accept().await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let network = model::NetworkFilter::Tcp(model::TcpProxy {
        stat_prefix: "tcp".into(),
        cluster: ClusterSpecifier::Cluster("echo".into()),
        idle_timeout: Some(Duration::from_secs(5)),
        access_log: Vec::new(),
    });
    let (_proxy, addr) = start(
        vec![listener("t", network)],
        vec![cluster("echo", &[echo_addr])],
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"hello over tcp").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"hello over tcp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_breaker_queues_the_next_request() {
    // Envoy queues a request that cannot have a connection (pending, up to
    // max_pending_requests) instead of refusing it; crates/proxy/tests/pending.rs has more.
    let up = Upstream::start("a").await;
    let mut limited = cluster("up", &[up.addr]);
    limited.circuit_breakers.max_connections = 1;
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (proxy, addr) = start(vec![http_listener("l", routes)], vec![limited]);
    let slow = tokio::spawn(get(addr, "/?delay_ms=500", &[], TIMEOUT));
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(5), || async {
        anyhow::ensure!(up.requests.load(Ordering::SeqCst) == 1);
        Ok(())
    })
    .await
    .unwrap();
    let rsp = get(addr, "/", &[], TIMEOUT).await.unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(slow.await.unwrap().unwrap().status, 200);
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "it waited for the one"
    );
    let text = proxy.state().stats.prometheus();
    assert!(
        text.contains("envoy_cluster_upstream_cx_overflow{envoy_cluster_name=\"up\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_get_a_shadow_copy_and_dns_clusters_resolve() {
    let (main, shadow) = (
        Upstream::start("main").await,
        Upstream::start("shadow").await,
    );
    let mut mirrored = forward(ClusterSpecifier::Cluster("main".into()));
    mirrored.mirrors.push(model::route::Mirror {
        cluster: "shadow".into(),
        fraction: model::Fraction::ALL,
    });
    let mut dns = cluster("dns", &[]);
    dns.discovery = model::cluster::Discovery::StrictDns(vec![model::cluster::DnsEndpoint {
        host: model::DnsHost {
            hostname: "localhost".into(),
            port: main.addr.port(),
        },
        weight: 1,
    }]);
    let routes = route_config(
        "r",
        &["*"],
        vec![
            route(
                "mirrored",
                prefix("/mirrored"),
                RouteAction::Forward(mirrored),
            ),
            route("dns", prefix("/dns"), to("dns")),
        ],
    );
    let (_proxy, addr) = start(
        vec![http_listener("l", routes)],
        vec![
            cluster("main", &[main.addr]),
            cluster("shadow", &[shadow.addr]),
            dns,
        ],
    );
    let rsp = get(addr, "/mirrored", &[("host", "app.local:8080")], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        rsp.header("x-upstream"),
        Some("main"),
        "the client gets the main answer"
    );
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(5), || async {
        anyhow::ensure!(
            shadow.requests.load(Ordering::SeqCst) == 1,
            "no shadow request yet"
        );
        Ok(())
    })
    .await
    .unwrap();

    // STRICT_DNS resolves in the background: poll until it routes.
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(10), || async {
        let rsp = get(addr, "/dns", &[], TIMEOUT).await?;
        anyhow::ensure!(rsp.status == 200, "not resolved yet: {}", rsp.status);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retry_budget_the_upstream_answer_is_returned() {
    let up = Upstream::start("a").await;
    let mut no_budget = cluster("up", &[up.addr]);
    no_budget.circuit_breakers.max_retries = 0;
    let mut retried = forward(ClusterSpecifier::Cluster("up".into()));
    retried.retry = Some(RetryPolicy {
        num_retries: 3,
        retry_on: [RetryOn::FiveXx].into_iter().collect(),
        retriable_status_codes: Vec::new(),
        per_try_timeout: None,
        backoff: Default::default(),
        avoid_previous_hosts: false,
        host_selection_retry_max_attempts: 1,
    });
    let routes = route_config(
        "r",
        &["*"],
        vec![route("all", prefix("/"), RouteAction::Forward(retried))],
    );
    let (proxy, addr) = start(vec![http_listener("l", routes)], vec![no_budget]);
    let rsp = get(addr, "/?status=503", &[], TIMEOUT).await.unwrap();
    assert_eq!(
        (rsp.status, rsp.header("x-upstream")),
        (503, Some("a")),
        "the upstream's own 503"
    );
    assert_eq!(up.requests.load(Ordering::SeqCst), 1, "not retried");
    let text = proxy.state().stats.prometheus();
    assert!(
        text.contains("envoy_cluster_upstream_rq_retry_overflow{envoy_cluster_name=\"up\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_per_connection_and_idle_timeout_retire_upstream_connections() {
    let (up, mut client, _proxy) =
        pooled_upstream(|c| c.connection.max_requests_per_connection = Some(2)).await;
    send_ok(&mut client, 6).await;
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        3,
        "6 requests at 2 per connection take 3 upstream connections"
    );

    let (up, mut client, _proxy) =
        pooled_upstream(|c| c.connection.idle_timeout = Some(Duration::from_millis(200))).await;
    send_ok(&mut client, 3).await;
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "reused while fresh"
    );
    // Let the pooled connection sit idle past the timeout (the scenario itself, not a sync).
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_ok(&mut client, 1).await;
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        2,
        "an upstream connection idle past the timeout is not reused"
    );
}

/// A proxy in front of one upstream whose cluster `tune` adjusts, and a keep-alive client.
async fn pooled_upstream(
    tune: impl FnOnce(&mut model::Cluster),
) -> (Upstream, ProxyClient, bowline_proxy::Proxy) {
    let up = Upstream::start("a").await;
    let mut upstream = cluster("up", &[up.addr]);
    tune(&mut upstream);
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (proxy, addr) = start(vec![http_listener("l", routes)], vec![upstream]);
    (up, ProxyClient::new(addr), proxy)
}

async fn send_ok(client: &mut ProxyClient, n: usize) {
    for _ in 0..n {
        let rsp = client
            .request("GET", "http://example.com/", &[], TIMEOUT)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200);
    }
}

/// `max_concurrent_streams` caps the streams open on one upstream HTTP/2 connection: past
/// it, the pool opens another connection (as Envoy's does); under it, requests share one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_max_concurrent_streams_opens_another_connection() {
    for (max, want_connections) in [(1, 2), (100, 1)] {
        let up = Upstream::start("a").await;
        let mut h2 = cluster("up", &[up.addr]);
        h2.protocol = model::cluster::UpstreamProtocol::Http2 {
            max_concurrent_streams: max,
        };
        let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
        let (_proxy, addr) = start(vec![http_listener("l", routes)], vec![h2]);
        // Warm one connection, then two requests in flight at once.
        let rsp = get(addr, "/warm", &[], TIMEOUT).await.unwrap();
        assert_eq!(rsp.status, 200);
        let a = tokio::spawn(get(addr, "/?delay_ms=300", &[], TIMEOUT));
        let b = tokio::spawn(get(addr, "/?delay_ms=300", &[], TIMEOUT));
        assert_eq!(a.await.unwrap().unwrap().status, 200);
        assert_eq!(b.await.unwrap().unwrap().status, 200);
        assert_eq!(
            up.connections.load(Ordering::SeqCst),
            want_connections,
            "max_concurrent_streams {max}"
        );
    }
}

/// The HTTP inspector picks the chain by what the client speaks: HTTP/1.1 and h2c go to the
/// HTTP chain, anything else to the default chain (here a TCP proxy to an echo server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_inspector_sends_http_and_raw_tcp_to_different_chains() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("a").await;
    let echo_addr = tcp_echo().await;
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let mut l = http_listener("l", routes);
    l.http_inspector = true;
    l.filter_chains[0].matcher.application_protocols =
        vec!["http/1.1".into(), "http/1.0".into(), "h2c".into()];
    l.default_filter_chain = Some(model::FilterChain {
        name: "raw".into(),
        matcher: Default::default(),
        tls: None,
        network_rbac: Vec::new(),
        network: model::NetworkFilter::Tcp(model::TcpProxy {
            stat_prefix: "raw".into(),
            cluster: ClusterSpecifier::Cluster("echo".into()),
            idle_timeout: None,
            access_log: Vec::new(),
        }),
        istio_stats: None,
    });
    let (_proxy, addr) = start(
        vec![l],
        vec![cluster("up", &[up.addr]), cluster("echo", &[echo_addr])],
    );
    let rsp = get(addr, "/http", &[], TIMEOUT).await.unwrap();
    assert_eq!(
        rsp.header("x-upstream"),
        Some("a"),
        "HTTP/1.1 → the HTTP chain"
    );
    let rsp = bowline_testkit::get_h2(addr, "/h2", &[], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(rsp.header("x-upstream"), Some("a"), "h2c → the HTTP chain");

    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"\x00\x01 not http at all\n").await.unwrap();
    let mut got = [0u8; 19];
    tokio::time::timeout(TIMEOUT, raw.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &got, b"\x00\x01 not http at all\n",
        "raw bytes → the TCP chain"
    );
}

/// Network RBAC on a TCP chain decides once per connection: a DENY rule that matches closes
/// the connection before a byte reaches the upstream, counted against the rule; an ALLOW
/// rule that matches the client's address lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_rbac_closes_denied_connections_and_names_the_rule() {
    use model::rbac::{Permission, Policy, Principal, Rbac, RbacAction, RbacRules};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo_addr = tcp_echo().await;
    let rbac = |action, principal| Rbac {
        rules: Some(RbacRules {
            action,
            policies: [(
                "ns[default]-policy[tcp]-rule[0]".to_string(),
                Policy {
                    permissions: vec![Permission::Any],
                    principals: vec![principal],
                },
            )]
            .into_iter()
            .collect(),
        }),
        shadow_rules: None,
        rules_stat_prefix: String::new(),
        shadow_rules_stat_prefix: String::new(),
    };
    let listener = |name: &str, rbac: Rbac| {
        let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("echo"))]);
        let mut l = http_listener(name, routes);
        l.filter_chains[0].network_rbac = vec![rbac];
        l.filter_chains[0].network = model::NetworkFilter::Tcp(model::TcpProxy {
            stat_prefix: "raw".into(),
            cluster: ClusterSpecifier::Cluster("echo".into()),
            idle_timeout: None,
            access_log: Vec::new(),
        });
        l
    };
    let roundtrip = |addr| async move {
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = raw.write_all(b"ping\n").await;
        let mut got = Vec::new();
        let mut buf = [0u8; 5];
        match tokio::time::timeout(TIMEOUT, raw.read_exact(&mut buf)).await {
            Ok(Ok(_)) => got.extend_from_slice(&buf),
            Ok(Err(_)) => {}
            Err(_) => panic!("neither an answer nor a close"),
        }
        got
    };

    let (proxy, addr) = start(
        vec![listener("deny", rbac(RbacAction::Deny, Principal::Any))],
        vec![cluster("echo", &[echo_addr])],
    );
    assert!(
        roundtrip(addr).await.is_empty(),
        "denied: closed without an echo"
    );
    let stats = proxy.state().stats.envoy_text();
    assert!(
        stats.contains("rbac_policy.ns[default]-policy[tcp]-rule[0].denied: 1"),
        "{stats}"
    );

    let localhost =
        Principal::DirectRemoteIp(model::Cidr::new("127.0.0.1".parse().unwrap(), 32).unwrap());
    let (_proxy, addr) = start(
        vec![listener("allow", rbac(RbacAction::Allow, localhost))],
        vec![cluster("echo", &[echo_addr])],
    );
    assert_eq!(roundtrip(addr).await, b"ping\n", "allowed: echoed");
}

/// A TCP server that echoes every byte back.
async fn tcp_echo() -> std::net::SocketAddr {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An upstream that speaks HTTP/1.0: answers one request per connection, then closes.
async fn http10_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_upstream_leaves_the_client_on_http11_keep_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = http10_upstream().await;
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to("up"))]);
    let (_proxy, addr) = start(vec![http_listener("l", routes)], vec![cluster("up", &[up])]);
    // As Envoy: the answer to an HTTP/1.1 request is HTTP/1.1, and the downstream
    // connection stays open for the next request (only the upstream one closes).
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    for i in 0..3 {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"\r\n\r\nok") {
            let n = tokio::time::timeout(TIMEOUT, client.read(&mut buf))
                .await
                .expect("an answer in time")
                .unwrap();
            assert!(n > 0, "request {i}: the proxy closed the connection");
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "request {i}: {text}");
        assert!(
            !text.to_ascii_lowercase().contains("connection: close"),
            "request {i}: {text}"
        );
    }
}
