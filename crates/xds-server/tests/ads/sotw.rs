//! State-of-the-world scenarios.

use bowline_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use bowline_xds::type_url::{CLUSTER, ENDPOINT, LISTENER};
use bowline_xds_server::ServerOptions;
use std::time::Duration;

use crate::clients::SotwClient;
use crate::harness::{names_of, node, Server, Snap};

fn mesh() -> Snap {
    Snap::new(1)
        .cluster("a", "v1", &[8080])
        .cluster("b", "v1", &[9090])
        .listener("sidecar-1", "inbound")
        .listener("sidecar-2", "outbound")
}

/// Connects `node_id`, fetches CDS, LDS and EDS for `eds` like Envoy does, ACKs each.
async fn synced_proxy(server: &Server, node_id: &str, eds: &[&str]) -> SotwClient {
    let mut proxy = SotwClient::connect(server, node_id, CLUSTER, &[]).await;
    let cds = proxy.recv().await;
    proxy.ack(&cds, &[]).await;
    proxy.request(LISTENER, &[]).await;
    let lds = proxy.recv().await;
    proxy.ack(&lds, &[]).await;
    proxy.request(ENDPOINT, eds).await;
    let eds_response = proxy.recv().await;
    proxy.ack(&eds_response, eds).await;
    proxy
}

#[tokio::test]
async fn first_requests_are_answered_per_type_with_the_generation_and_fresh_nonces() {
    let server = Server::start(mesh()).await;
    let mut proxy = SotwClient::connect(&server, "sidecar-1", CLUSTER, &[]).await;

    let cds = proxy.recv().await;
    assert_eq!(cds.type_url, CLUSTER);
    assert_eq!(names_of(&cds.resources), ["a", "b"], "CDS is wildcard");
    assert_eq!(cds.version_info, "1");

    proxy.request(LISTENER, &[]).await;
    let lds = proxy.recv().await;
    assert_eq!(lds.type_url, LISTENER);
    assert_eq!(
        names_of(&lds.resources),
        ["inbound"],
        "only this node's listeners"
    );

    proxy.request(ENDPOINT, &["a"]).await;
    let eds = proxy.recv().await;
    assert_eq!(
        names_of(&eds.resources),
        ["a"],
        "EDS sends only what was named"
    );

    let nonces = [&cds.nonce, &lds.nonce, &eds.nonce];
    assert!(nonces.iter().all(|n| !n.is_empty()));
    assert!(cds.nonce != lds.nonce && lds.nonce != eds.nonce && cds.nonce != eds.nonce);
}

#[tokio::test]
async fn an_ack_is_not_answered_and_completes_the_generation() {
    let server = Server::start(mesh()).await;
    let mut proxy = SotwClient::connect(&server, "sidecar-1", CLUSTER, &[]).await;
    let cds = proxy.recv().await;
    proxy.ack(&cds, &[]).await;
    proxy.expect_silence().await;

    let synced = server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(1))
        .await;
    assert_eq!(synced.types["CDS"].acked_version.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_nack_is_recorded_and_leaves_the_applied_generation() {
    let server = Server::start(mesh()).await;
    let mut proxy = synced_proxy(&server, "sidecar-1", &["a"]).await;
    server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(1))
        .await;

    server.publish(mesh().next().cluster("a", "v2", &[8080]));
    let cds = proxy.recv().await;
    assert_eq!(cds.version_info, "2");
    let eds = proxy.recv().await;
    assert_eq!(
        eds.type_url, ENDPOINT,
        "endpoints follow the clusters pushed"
    );
    proxy
        .nack(&cds, "1", "Proto constraint validation failed: port 70000")
        .await;
    proxy.ack(&eds, &["a"]).await;
    proxy.expect_silence().await;

    let status = server
        .wait_for_proxy("sidecar-1", |p| p.types["CDS"].last_nack.is_some())
        .await;
    let nack = status.types["CDS"].last_nack.clone().expect("kept");
    assert_eq!(
        nack.message,
        "Proto constraint validation failed: port 70000"
    );
    assert_eq!(
        (nack.version.as_str(), nack.nonce.as_str()),
        ("2", cds.nonce.as_str())
    );
    assert_eq!(status.types["CDS"].acked_version.as_deref(), Some("1"));
    assert_eq!(status.applied_generation, Some(1));
}

#[tokio::test]
async fn a_snapshot_change_pushes_only_the_changed_types_in_make_before_break_order() {
    let server = Server::start(mesh()).await;
    let mut proxy = synced_proxy(&server, "sidecar-1", &["a"]).await;

    // Endpoints of a subscribed cluster: EDS only.
    let endpoints_moved = mesh().next().cluster("a", "v1", &[8081]);
    server.publish(endpoints_moved.clone());
    let eds = proxy.recv().await;
    assert_eq!(
        (eds.type_url.as_str(), eds.version_info.as_str()),
        (ENDPOINT, "2")
    );
    assert_eq!(names_of(&eds.resources), ["a"]);
    proxy.ack(&eds, &["a"]).await;
    proxy.expect_silence().await;

    // A new cluster and a new listener: CDS (the whole set), then LDS. No EDS: the only
    // endpoints that changed are c's, which this proxy does not ask for, and the clusters
    // it holds did not change (Envoy re-warms only changed clusters).
    let grown = endpoints_moved
        .next()
        .cluster("c", "v1", &[7070])
        .listener("sidecar-1", "inbound-2");
    server.publish(grown.clone());
    let cds = proxy.recv().await;
    let lds = proxy.recv().await;
    assert_eq!(
        (cds.type_url.as_str(), cds.version_info.as_str()),
        (CLUSTER, "3")
    );
    assert_eq!(names_of(&cds.resources), ["a", "b", "c"]);
    assert_eq!(
        (lds.type_url.as_str(), lds.version_info.as_str()),
        (LISTENER, "3")
    );
    assert_eq!(names_of(&lds.resources), ["inbound", "inbound-2"]);
    proxy.ack(&cds, &[]).await;
    proxy.ack(&lds, &[]).await;
    proxy.expect_silence().await;
    server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(3))
        .await;

    // A changed cluster: CDS, then its endpoints (Envoy re-creates it and warms it until
    // they come), and only its endpoints: SotW EDS carries what changed, not the world.
    server.publish(grown.next().cluster("a", "v2", &[8081]));
    let cds = proxy.recv().await;
    let eds = proxy.recv().await;
    assert_eq!(
        (cds.type_url.as_str(), cds.version_info.as_str()),
        (CLUSTER, "4")
    );
    assert_eq!(names_of(&cds.resources), ["a", "b", "c"]);
    assert_eq!(
        (eds.type_url.as_str(), eds.version_info.as_str()),
        (ENDPOINT, "3")
    );
    assert_eq!(names_of(&eds.resources), ["a"]);
    proxy.ack(&cds, &[]).await;
    proxy.ack(&eds, &["a"]).await;
    proxy.expect_silence().await;
    let synced = server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(4))
        .await;
    assert_eq!(synced.types["EDS"].acked_version.as_deref(), Some("3"));
}

#[tokio::test]
async fn a_proxy_whose_view_did_not_change_gets_nothing() {
    let server = Server::start(mesh()).await;
    let mut one = synced_proxy(&server, "sidecar-1", &["a"]).await;
    let mut two = synced_proxy(&server, "sidecar-2", &["a"]).await;

    // Same generation again: not even evaluated.
    server.publish(mesh());
    one.expect_silence().await;

    // A new generation that only changes sidecar-1's listeners.
    server.publish(mesh().next().listener("sidecar-1", "extra"));
    let lds = one.recv().await;
    assert_eq!(names_of(&lds.resources), ["extra", "inbound"]);
    two.expect_silence().await;
    // Nothing was owed to sidecar-2, so it runs generation 2 already.
    server
        .wait_for_proxy("sidecar-2", |p| p.applied_generation == Some(2))
        .await;
}

#[tokio::test]
async fn a_burst_of_snapshots_is_debounced_into_one_evaluation_and_push() {
    let server = Server::start(mesh()).await;
    let mut proxy = synced_proxy(&server, "sidecar-1", &["a"]).await;
    assert_eq!(server.generate_calls(), 1, "evaluated once on connect");

    // Published back to back, with no await in between: the stream sees only the last.
    let mut snapshot = mesh();
    for tag in ["v2", "v3", "v4"] {
        snapshot = snapshot.next().cluster("a", tag, &[8080]);
        server.publish(snapshot.clone());
    }
    let cds = proxy.recv().await;
    assert_eq!(cds.version_info, "4");
    let eds = proxy.recv().await;
    assert_eq!(
        eds.type_url, ENDPOINT,
        "endpoints follow the clusters pushed"
    );
    proxy.ack(&cds, &[]).await;
    proxy.ack(&eds, &["a"]).await;
    // Same generation again: marked seen without evaluating, and nothing is pushed.
    server.publish(snapshot);
    proxy.expect_silence().await;
    assert_eq!(server.generate_calls(), 2);
}

#[tokio::test]
async fn an_eds_subscription_change_is_answered_with_exactly_the_requested_names() {
    let server = Server::start(mesh().cluster("c", "v1", &[7070])).await;
    let mut proxy = SotwClient::connect(&server, "sidecar-1", ENDPOINT, &["a"]).await;
    let first = proxy.recv().await;
    assert_eq!(names_of(&first.resources), ["a"]);

    proxy.ack(&first, &["a", "c"]).await;
    let widened = proxy.recv().await;
    assert_eq!(names_of(&widened.resources), ["a", "c"]);

    // A request carrying the superseded nonce is ignored, names and all.
    proxy.ack(&first, &["b"]).await;
    proxy.expect_silence().await;

    proxy.ack(&widened, &["c"]).await;
    let narrowed = proxy.recv().await;
    assert_eq!(names_of(&narrowed.resources), ["c"]);

    // Endpoints of a cluster no longer named do not wake the proxy.
    proxy.ack(&narrowed, &["c"]).await;
    server.publish(
        mesh()
            .next()
            .cluster("a", "v1", &[1])
            .cluster("c", "v1", &[7070]),
    );
    proxy.expect_silence().await;
}

#[tokio::test]
async fn a_stream_without_a_node_or_type_is_refused_and_the_server_keeps_serving() {
    let server = Server::start(mesh()).await;
    let no_node = DiscoveryRequest {
        type_url: CLUSTER.into(),
        ..Default::default()
    };
    let refused = match SotwClient::connect_with(server.addr, no_node).await {
        Ok(mut stream) => stream.next().await.expect_err("refused"),
        Err(status) => status,
    };
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    let no_type = DiscoveryRequest {
        node: Some(node("sidecar-1")),
        ..Default::default()
    };
    let mut stream = SotwClient::connect_with(server.addr, no_type)
        .await
        .expect("opens");
    let refused = stream.next().await.expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let mut healthy = SotwClient::connect(&server, "sidecar-1", CLUSTER, &[]).await;
    assert_eq!(names_of(&healthy.recv().await.resources), ["a", "b"]);
}

#[tokio::test]
async fn a_disconnected_proxy_leaves_the_sync_status_and_shutdown_ends_open_streams() {
    let server = Server::start(mesh()).await;
    let gone = synced_proxy(&server, "sidecar-1", &["a"]).await;
    let mut staying = synced_proxy(&server, "sidecar-2", &["a"]).await;
    server.wait_for_proxy("sidecar-1", |_| true).await;

    drop(gone);
    let ids = |server: &Server| -> Vec<String> {
        server
            .status
            .proxies()
            .into_iter()
            .map(|p| p.node_id)
            .collect()
    };
    tokio::time::timeout(
        crate::harness::WAIT,
        server
            .status
            .wait_until(|p| p.iter().all(|p| p.node_id != "sidecar-1")),
    )
    .await
    .expect("sidecar-1 removed");
    assert_eq!(ids(&server), ["sidecar-2"]);

    server.stop().await.expect("serve ends cleanly");
    assert!(
        matches!(staying.next().await, Ok(None) | Err(_)),
        "stream ended"
    );
}

#[tokio::test]
async fn a_proxy_that_never_answers_holds_the_push_budget_only_until_its_timeout() {
    // A budget smaller than one response: whoever is in flight blocks everyone else.
    let options = ServerOptions {
        max_bytes_in_flight: 1,
        push_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let server = Server::start_with(mesh(), options).await;
    let mut silent = SotwClient::connect(&server, "sidecar-1", CLUSTER, &[]).await;
    let cds = silent.recv().await;
    assert_eq!(names_of(&cds.resources), ["a", "b"]);

    // The silent proxy never ACKs; the next one is served once its bytes time out.
    let started = std::time::Instant::now();
    let mut other = SotwClient::connect(&server, "sidecar-2", CLUSTER, &[]).await;
    let cds = other.recv().await;
    assert_eq!(names_of(&cds.resources), ["a", "b"]);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "served before the silent proxy's bytes timed out: {:?}",
        started.elapsed()
    );
    // An answering proxy frees the budget at once for the next.
    other.ack(&cds, &[]).await;
    let mut third = SotwClient::connect(&server, "sidecar-3", CLUSTER, &[]).await;
    third.recv().await;
}

#[tokio::test]
async fn a_proxy_asking_for_more_before_answering_is_served_within_a_full_budget() {
    // The budget holds one response. A proxy asks for listeners before it ACKs the clusters
    // (Envoy sends its first requests back to back): the listeners wait for the answer
    // (the clusters' bytes stay booked until then), and come with it — holding the
    // clusters' bytes while waiting for room would wait on itself for good.
    let options = ServerOptions {
        max_bytes_in_flight: 1,
        push_timeout: Duration::from_secs(600),
        ..ServerOptions::default()
    };
    let server = Server::start_with(mesh(), options).await;
    let mut proxy = SotwClient::connect(&server, "sidecar-1", CLUSTER, &[]).await;
    let cds = proxy.recv().await;
    assert_eq!(cds.type_url, CLUSTER);
    proxy.request(LISTENER, &[]).await;
    proxy.ack(&cds, &[]).await;
    let lds = proxy.recv().await;
    assert_eq!(names_of(&lds.resources), ["inbound"]);
}
