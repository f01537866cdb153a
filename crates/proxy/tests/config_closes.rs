//! A config push closes the established TCP connections it makes wrong — and only those —
//! after the drain time: a tcp_proxy connection whose cluster was removed, one that its
//! chain's network RBAC now denies, one whose listener was removed. Every other push leaves
//! connections alone. Real sockets in one process; the drain time is shortened to
//! [`DRAIN`] and each close is timed from the push.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bowline_model as model;
use bowline_proxy::{Change, Proxy};
use model::rbac::{Permission, Policy, Principal, Rbac, RbacAction, RbacRules};
use model::route::{ClusterSpecifier, WeightedCluster};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DRAIN: Duration = Duration::from_millis(300);

/// A TCP echo server that counts the connections that ended.
struct Echo {
    addr: std::net::SocketAddr,
    ended: Arc<AtomicUsize>,
}

impl Echo {
    async fn start() -> Echo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ended = Arc::new(AtomicUsize::new(0));
        let counter = ended.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Echo { addr, ended }
    }
}

fn tcp_to(cluster: ClusterSpecifier) -> model::NetworkFilter {
    model::NetworkFilter::Tcp(model::TcpProxy {
        stat_prefix: "tcp".into(),
        cluster,
        idle_timeout: None,
        access_log: Vec::new(),
    })
}

fn to(cluster: &str) -> model::NetworkFilter {
    tcp_to(ClusterSpecifier::Cluster(cluster.into()))
}

fn weighted(clusters: &[(&str, u32)]) -> model::NetworkFilter {
    tcp_to(ClusterSpecifier::Weighted(
        clusters
            .iter()
            .map(|(name, weight)| WeightedCluster {
                name: (*name).into(),
                weight: *weight,
                headers: Default::default(),
                host_rewrite: None,
            })
            .collect(),
    ))
}

/// A connection through the proxy, checked to echo.
async fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    echoes(&mut s, "hello").await;
    s
}

async fn echoes(s: &mut TcpStream, what: &str) {
    s.write_all(what.as_bytes()).await.unwrap();
    let mut back = vec![0u8; what.len()];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut back))
        .await
        .unwrap_or_else(|_| panic!("no echo of {what:?} within {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("no echo of {what:?}: {e}"));
    assert_eq!(back, what.as_bytes());
}

/// Waits (bounded) for the proxy to close `s`; returns how long after `since` it did.
async fn closed(s: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(DRAIN + TIMEOUT, s.read(&mut buf))
        .await
        .expect("the connection is still open");
    // EOF, or a reset: closed either way; no stray bytes.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    since.elapsed()
}

fn stats(proxy: &Proxy) -> String {
    proxy.state().stats.envoy_text()
}

async fn until_stat(proxy: &Proxy, line: &str) {
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(5), || async {
        let text = stats(proxy);
        anyhow::ensure!(text.contains(line), "{line:?} not in\n{text}");
        Ok(())
    })
    .await
    .unwrap();
}

async fn upstream_closed(echo: &Echo, what: &str) {
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(5), || async {
        anyhow::ensure!(echo.ended.load(Ordering::SeqCst) == 1, "not yet: {what}");
        Ok(())
    })
    .await
    .unwrap();
}

fn closes(listener: &str, reason: &str) -> String {
    format!("listener.{listener}.downstream_cx_closed_by_config.{reason}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_cluster_closes_only_its_connections_after_the_drain_time() {
    let (a, b) = (Echo::start().await, Echo::start().await);
    let (proxy, to_a) = start(
        vec![listener("ta", to("a")), listener("tb", to("b"))],
        vec![cluster("a", &[a.addr]), cluster("b", &[b.addr])],
    );
    proxy.state().live.set_drain_time(DRAIN);
    let to_b = proxy.state().bound_listeners()["tb"];
    let mut via_a = connect(to_a).await;
    let mut via_b = connect(to_b).await;
    assert_eq!(proxy.state().live.len(), 2);

    // Weights on one chain, the other chain's settings, a new cluster: nothing removed.
    let mut tb = listener("tb", to("b"));
    if let model::NetworkFilter::Tcp(tcp) = &mut tb.filter_chains[0].network {
        tcp.idle_timeout = Some(Duration::from_secs(600));
    }
    let errors = proxy.apply(Change {
        listeners: vec![listener("ta", weighted(&[("a", 3), ("c", 1)])), tb],
        clusters: vec![cluster("c", &[a.addr])],
        ..Change::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(proxy.state().live.closing(), 0, "nothing ordered to close");
    echoes(&mut via_a, "after the weights changed").await;
    echoes(&mut via_b, "after the weights changed").await;

    // The cluster B's connection uses goes away (its ServiceEntry was deleted).
    let pushed = Instant::now();
    let errors = proxy.apply(Change {
        removed_clusters: vec!["b".into()],
        ..Change::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(proxy.state().live.closing(), 1, "only B's connection");
    echoes(&mut via_b, "while draining").await;
    let delay = closed(&mut via_b, pushed).await;
    eprintln!("cluster removed: B's connection closed {delay:?} after the push (drain {DRAIN:?})");
    assert!(delay >= DRAIN, "closed before the drain time: {delay:?}");
    assert!(delay < DRAIN + Duration::from_secs(2), "{delay:?}");
    until_stat(&proxy, &format!("{}: 1", closes("tb", "cluster_removed"))).await;
    upstream_closed(&b, "B's upstream side closed too").await;

    // A's connection outlived the drain time of both pushes.
    echoes(&mut via_a, "after B was closed").await;
    let text = stats(&proxy);
    for line in [
        format!("{}: 0", closes("ta", "cluster_removed")),
        format!("{}: 0", closes("tb", "rbac_denied")),
        format!("{}: 0", closes("tb", "filter_chain_removed")),
    ] {
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert_eq!(a.ended.load(Ordering::SeqCst), 0);
    assert_eq!(
        proxy.state().live.len(),
        1,
        "B's connection left the registry"
    );
    drop(via_a);
    bowline_testkit::wait_until(TIMEOUT, Duration::from_millis(5), || async {
        anyhow::ensure!(proxy.state().live.is_empty());
        Ok(())
    })
    .await
    .unwrap();
}

fn rbac(policy: &str, action: RbacAction, principal: Principal) -> Rbac {
    Rbac {
        rules: Some(RbacRules {
            action,
            policies: [(
                policy.to_string(),
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
    }
}

fn from(cidr: &str) -> Principal {
    let (ip, len) = cidr.split_once('/').unwrap();
    Principal::DirectRemoteIp(model::Cidr::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap())
}

fn guarded(rbac: Rbac) -> model::Listener {
    let mut l = listener("db", to("echo"));
    l.filter_chains[0].network_rbac = vec![rbac];
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_now_denies_a_connection_closes_it_after_the_drain_time() {
    const ALLOW: &str = "ns[default]-policy[allow-local]-rule[0]";
    const DENY: &str = "ns[default]-policy[deny-local]-rule[0]";
    let echo = Echo::start().await;
    let (proxy, addr) = start(
        vec![guarded(rbac(
            ALLOW,
            RbacAction::Allow,
            from("127.0.0.1/32"),
        ))],
        vec![cluster("echo", &[echo.addr])],
    );
    proxy.state().live.set_drain_time(DRAIN);
    let mut conn = connect(addr).await;

    // Another policy, still allowing this client.
    let errors = proxy.apply(Change {
        listeners: vec![guarded(rbac(ALLOW, RbacAction::Allow, from("127.0.0.0/8")))],
        ..Change::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(proxy.state().live.closing(), 0, "still allowed");
    echoes(&mut conn, "still allowed").await;

    // Now a DENY that matches it.
    let pushed = Instant::now();
    let errors = proxy.apply(Change {
        listeners: vec![guarded(rbac(DENY, RbacAction::Deny, from("127.0.0.1/32")))],
        ..Change::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(proxy.state().live.closing(), 1);
    let delay = closed(&mut conn, pushed).await;
    eprintln!("RBAC now denies: connection closed {delay:?} after the push (drain {DRAIN:?})");
    assert!(delay >= DRAIN, "closed before the drain time: {delay:?}");
    assert!(delay < DRAIN + Duration::from_secs(2), "{delay:?}");
    until_stat(&proxy, &format!("{}: 1", closes("db", "rbac_denied"))).await;
    let text = stats(&proxy);
    assert!(
        text.contains(&format!("rbac_policy.{DENY}.denied: 1")),
        "the denial is counted against the policy:\n{text}"
    );
    assert!(text.contains(&format!("{}: 0", closes("db", "cluster_removed"))));
    upstream_closed(&echo, "the upstream side closed too").await;

    // A new connection is refused at once, as before.
    let mut refused = TcpStream::connect(addr).await.unwrap();
    let _ = refused.write_all(b"ping").await;
    let delay = closed(&mut refused, Instant::now()).await;
    assert!(delay < DRAIN, "refused at accept, not drained: {delay:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_listener_closes_its_tcp_connections_after_the_drain_time() {
    let echo = Echo::start().await;
    let (proxy, addr) = start(
        vec![listener("t", to("echo"))],
        vec![cluster("echo", &[echo.addr])],
    );
    proxy.state().live.set_drain_time(DRAIN);
    let mut conn = connect(addr).await;
    let pushed = Instant::now();
    proxy.apply(Change {
        removed_listeners: vec!["t".into()],
        ..Change::default()
    });
    echoes(&mut conn, "while draining").await;
    let delay = closed(&mut conn, pushed).await;
    eprintln!("listener removed: connection closed {delay:?} after the push (drain {DRAIN:?})");
    assert!(delay >= DRAIN, "{delay:?}");
    assert!(delay < DRAIN + Duration::from_secs(2), "{delay:?}");
    until_stat(
        &proxy,
        &format!("{}: 1", closes("t", "filter_chain_removed")),
    )
    .await;
}
