//! Istio's TCP metrics, both reporters: a client's connection crosses an outbound tcp_proxy
//! chain (reporter `source`, its cluster's endpoint named by Istio's endpoint metadata) and
//! an inbound one (reporter `destination`) to an echo server. Both count the connection
//! opened and closed and the bytes each way, and the client side names the server's
//! workload and service.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bowline_model as model;
use bowline_proxy::config::Change;
use bowline_testkit::wait_until;
use model::istio_stats::{EndpointWorkload, IstioStats, LocalWorkload, StatsReporter};
use model::ClusterSpecifier;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVICE: &str = "details.default.svc.cluster.local";

fn tcp(cluster: &str) -> model::NetworkFilter {
    model::NetworkFilter::Tcp(model::TcpProxy {
        stat_prefix: cluster.into(),
        cluster: ClusterSpecifier::Cluster(cluster.into()),
        idle_timeout: None,
        access_log: Vec::new(),
    })
}

fn stats(reporter: StatsReporter, workload: &str, app: &str) -> Arc<IstioStats> {
    Arc::new(IstioStats {
        reporter,
        local: LocalWorkload {
            node_id: format!("sidecar~127.0.0.1~{workload}.default~default.svc.cluster.local"),
            name: workload.into(),
            workload: workload.into(),
            namespace: "default".into(),
            cluster: "Kubernetes".into(),
            service_account: app.into(),
            principal: format!("spiffe://cluster.local/ns/default/sa/{app}"),
            labels: vec![("app".into(), app.into()), ("version".into(), "v1".into())],
        },
        service: (reporter == StatsReporter::Destination).then(|| SERVICE.into()),
        disabled_metrics: Vec::new(),
        tag_overrides: Default::default(),
    })
}

/// The value of the one series of `family` whose labels include every `want`.
fn sample(text: &str, family: &str, want: &[&str]) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| want.iter().all(|w| l.contains(w)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_bytes_and_connections_are_counted_by_both_reporters() {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });

    // The server side: inbound chain (destination reporter) to the echo server.
    let mut inbound = listener("inbound", tcp("inbound|9080||"));
    inbound.filter_chains[0].istio_stats =
        Some(stats(StatsReporter::Destination, "details-v1", "details"));
    let (proxy, inbound_addr) = start(vec![inbound], vec![cluster("inbound|9080||", &[echo_addr])]);

    // The client side: outbound chain (source reporter) to the service's cluster, whose
    // endpoint (the inbound listener) carries Istio's endpoint metadata.
    let outbound_cluster = format!("outbound|9080||{SERVICE}");
    let mut endpoints = cluster(&outbound_cluster, &[inbound_addr]);
    if let model::cluster::Discovery::Static(cla) = &mut endpoints.discovery {
        cla.endpoints[0].lb_endpoints[0].workload = Some(Arc::new(EndpointWorkload {
            workload: "details-v1".into(),
            namespace: "default".into(),
            canonical_service: "details".into(),
            canonical_revision: "v1".into(),
            cluster: "Kubernetes".into(),
        }));
    }
    let mut outbound = listener("outbound", tcp(&outbound_cluster));
    outbound.filter_chains[0].istio_stats = Some(stats(
        StatsReporter::Source,
        "productpage-v1",
        "productpage",
    ));
    let errors = proxy.apply(Change {
        listeners: vec![outbound],
        clusters: vec![endpoints],
        ..Change::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    let outbound_addr = proxy.state().bound_listeners()["outbound"];

    let mut client = tokio::net::TcpStream::connect(outbound_addr).await.unwrap();
    let payload = vec![b'x'; 1000];
    client.write_all(&payload).await.unwrap();
    let mut echoed = vec![0u8; payload.len()];
    client.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, payload);
    drop(client);

    let service = format!("destination_service=\"{SERVICE}\"");
    let text = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let text = proxy.state().stats.prometheus();
            for reporter in ["source", "destination"] {
                let at = format!("reporter=\"{reporter}\"");
                let closed = sample(&text, "istio_tcp_connections_closed_total", &[&at]);
                anyhow::ensure!(closed == Some(1), "{reporter}: closed {closed:?}\n{text}");
            }
            Ok(text)
        },
    )
    .await
    .unwrap();
    for reporter in ["source", "destination"] {
        let at = format!("reporter=\"{reporter}\"");
        let want = [
            at.as_str(),
            service.as_str(),
            "destination_workload=\"details-v1\"",
            "destination_app=\"details\"",
            "request_protocol=\"tcp\"",
        ];
        for family in [
            "istio_tcp_connections_opened_total",
            "istio_tcp_connections_closed_total",
        ] {
            assert_eq!(
                sample(&text, family, &want),
                Some(1),
                "{family} {at}\n{text}"
            );
        }
        for family in [
            "istio_tcp_sent_bytes_total",
            "istio_tcp_received_bytes_total",
        ] {
            assert_eq!(
                sample(&text, family, &want),
                Some(payload.len() as u64),
                "{family} {at}\n{text}"
            );
        }
    }
    // The client side names itself as the source.
    let source = [
        "reporter=\"source\"",
        "source_workload=\"productpage-v1\"",
        "source_app=\"productpage\"",
    ];
    assert!(
        sample(&text, "istio_tcp_sent_bytes_total", &source).is_some(),
        "{text}"
    );
}
