//! Incremental (delta) scenarios.

use std::collections::HashMap;

use bowline_xds::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use bowline_xds::type_url::{CLUSTER, ENDPOINT};

use crate::clients::{delta_versions, DeltaClient};
use crate::harness::{nack_detail, node, strings, Server, Snap};

fn mesh() -> Snap {
    Snap::new(1)
        .cluster("a", "v1", &[8080])
        .cluster("b", "v1", &[9090])
}

fn first_request(type_url: &str, subscribe: &[&str]) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: Some(node("sidecar-1")),
        type_url: type_url.into(),
        resource_names_subscribe: strings(subscribe),
        ..Default::default()
    }
}

#[tokio::test]
async fn wildcard_cds_sends_everything_once_then_only_what_changed() {
    let server = Server::start(mesh()).await;
    let mut proxy = DeltaClient::connect(&server, first_request(CLUSTER, &[])).await;

    let initial = proxy.recv().await;
    assert_eq!(initial.system_version_info, "1");
    let versions = delta_versions(&initial);
    assert_eq!(versions.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(initial.removed_resources.is_empty());
    proxy.ack(&initial).await;
    proxy.expect_silence().await;
    server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(1))
        .await;

    server.publish(mesh().next().cluster("b", "v2", &[9090]));
    let update = proxy.recv().await;
    assert_eq!(update.system_version_info, "2");
    let changed = delta_versions(&update);
    assert_eq!(changed.keys().collect::<Vec<_>>(), ["b"], "a is unchanged");
    assert_ne!(changed["b"], versions["b"]);

    // A NACK is booked and leaves the applied generation alone.
    proxy
        .send(DeltaDiscoveryRequest {
            type_url: CLUSTER.into(),
            response_nonce: update.nonce.clone(),
            error_detail: nack_detail("cluster b: invalid"),
            ..Default::default()
        })
        .await;
    proxy.expect_silence().await;
    let status = server
        .wait_for_proxy("sidecar-1", |p| p.types["CDS"].last_nack.is_some())
        .await;
    assert_eq!(status.protocol, bowline_xds_server::Protocol::Delta);
    assert_eq!(status.applied_generation, Some(1));
    let nack = status.types["CDS"].last_nack.as_ref().expect("kept");
    assert_eq!(
        (nack.message.as_str(), nack.version.as_str()),
        ("cluster b: invalid", "2")
    );
}

#[tokio::test]
async fn a_change_that_does_not_concern_a_proxy_is_neither_generated_nor_sent() {
    let server = Server::start(mesh()).await;
    let mut proxy = DeltaClient::connect(&server, first_request(CLUSTER, &[])).await;
    let initial = proxy.recv().await;
    proxy.ack(&initial).await;
    server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(1))
        .await;
    let calls = server.generate_calls();

    // The generator vouches that generation 2 gives this proxy what it holds: it runs
    // generation 2 without a generation or a response.
    server.publish(mesh().next().not_concerning("sidecar-1"));
    server
        .wait_for_proxy("sidecar-1", |p| p.applied_generation == Some(2))
        .await;
    proxy.expect_silence().await;
    assert_eq!(server.generate_calls(), calls);

    // The next change that concerns it is generated and sent as usual.
    server.publish(mesh().next().next().cluster("b", "v3", &[9090]));
    let update = proxy.recv().await;
    assert_eq!(update.system_version_info, "3");
    assert_eq!(delta_versions(&update).keys().collect::<Vec<_>>(), ["b"]);
    assert!(server.generate_calls() > calls);
}

#[tokio::test]
async fn a_deleted_resource_is_listed_in_removed_resources() {
    let server = Server::start(mesh()).await;
    let mut proxy = DeltaClient::connect(&server, first_request(CLUSTER, &["*"])).await;
    let initial = proxy.recv().await;
    assert_eq!(delta_versions(&initial).len(), 2);
    proxy.ack(&initial).await;

    server.publish(mesh().next().without_cluster("a"));
    let update = proxy.recv().await;
    assert!(update.resources.is_empty(), "b did not change");
    assert_eq!(update.removed_resources, ["a"]);
}

#[tokio::test]
async fn a_reconnecting_proxy_gets_only_what_it_lacks() {
    let server = Server::start(mesh()).await;
    let mut before = DeltaClient::connect(&server, first_request(CLUSTER, &[])).await;
    let held = delta_versions(&before.recv().await);
    drop(before);

    // While the proxy was away: b changed, c appeared, a stayed.
    server.publish(
        mesh()
            .next()
            .cluster("b", "v2", &[9090])
            .cluster("c", "v1", &[1]),
    );
    let mut initial_resource_versions: HashMap<String, String> = held.into_iter().collect();
    initial_resource_versions.insert("gone".into(), "0123456789abcdef".into());
    let reconnect = DeltaDiscoveryRequest {
        initial_resource_versions,
        ..first_request(CLUSTER, &[])
    };
    let mut after = DeltaClient::connect(&server, reconnect).await;

    let catch_up = after.recv().await;
    assert_eq!(
        delta_versions(&catch_up).keys().collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(catch_up.removed_resources, ["gone"]);
}

#[tokio::test]
async fn a_reconnecting_proxy_that_has_everything_gets_an_empty_answer() {
    let server = Server::start(mesh()).await;
    let mut before = DeltaClient::connect(&server, first_request(CLUSTER, &[])).await;
    let held = delta_versions(&before.recv().await);
    drop(before);

    let reconnect = DeltaDiscoveryRequest {
        initial_resource_versions: held.into_iter().collect(),
        ..first_request(CLUSTER, &[])
    };
    let mut after = DeltaClient::connect(&server, reconnect).await;
    let answer = after.recv().await;
    assert!(answer.resources.is_empty() && answer.removed_resources.is_empty());
}

#[tokio::test]
async fn endpoints_follow_explicit_subscribe_and_unsubscribe() {
    let server = Server::start(mesh()).await;
    let mut proxy = DeltaClient::connect(&server, first_request(ENDPOINT, &["a"])).await;
    let initial = proxy.recv().await;
    assert_eq!(delta_versions(&initial).keys().collect::<Vec<_>>(), ["a"]);

    proxy
        .send(DeltaDiscoveryRequest {
            type_url: ENDPOINT.into(),
            response_nonce: initial.nonce.clone(),
            resource_names_subscribe: strings(&["b"]),
            resource_names_unsubscribe: strings(&["a"]),
            ..Default::default()
        })
        .await;
    let switched = proxy.recv().await;
    assert_eq!(delta_versions(&switched).keys().collect::<Vec<_>>(), ["b"]);
    assert!(
        switched.removed_resources.is_empty(),
        "unsubscribing is the client's own act"
    );
    proxy.ack(&switched).await;

    // a is no longer wanted: its endpoints moving wakes nobody.
    server.publish(mesh().next().cluster("a", "v1", &[1]));
    proxy.expect_silence().await;
}
