//! Each scenario runs in both flavors.

use bowline_xds::client::AdsFlavor::{self, Delta, Sotw};
use bowline_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};

use crate::harness::{all_acked, held_names, Client, Mesh, Server};

const ALL: [&str; 4] = ["CDS", "EDS", "LDS", "RDS"];

/// Two clusters, a listener whose routes come from RDS `r1`, and `r1`.
fn mesh() -> Mesh {
    Mesh::new(1)
        .cluster("a", &[8080])
        .cluster("b", &[9090, 9091])
        .listener("l1", "r1")
        .route("r1", "a")
}

async fn initial_sync(flavor: AdsFlavor) {
    let server = Server::start(mesh()).await;
    let client = Client::start(server.addr, flavor, None);

    let state = client
        .wait("everything held and ACKed", |s| {
            s.connected
                && held_names(s, ENDPOINT) == ["a", "b"]
                && held_names(s, ROUTE) == ["r1"]
                && [CLUSTER, ENDPOINT, LISTENER, ROUTE]
                    .iter()
                    .all(|t| s.types[*t].acked_version.is_some())
        })
        .await;
    assert_eq!(held_names(&state, CLUSTER), ["a", "b"]);
    assert_eq!(held_names(&state, LISTENER), ["l1"]);
    assert!(state.types[CLUSTER].wildcard && !state.types[ENDPOINT].wildcard);
    assert_eq!(state.connections, 1);
    let proxy = server
        .wait_for_proxy(|p| p.applied_generation == Some(1) && all_acked(p, &ALL))
        .await;
    assert!(ALL.iter().all(|t| proxy.types[*t].last_nack.is_none()));

    {
        let held = client.held.lock().unwrap();
        assert_eq!(held.ports("b"), [9090, 9091]);
        assert!(held.routes.contains_key("r1"));
        // Clusters before the endpoints they need, listeners before their routes.
        let first = |short: &str| held.log.iter().position(|(t, _, _)| *t == short).unwrap();
        assert!(first("CDS") < first("EDS"), "{:?}", held.log);
        assert!(first("LDS") < first("RDS"), "{:?}", held.log);
    }

    // Shutdown is prompt and hands back the handler with the last good config.
    let proxy = client.stop().await;
    assert_eq!(proxy.held.lock().unwrap().clusters.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn sotw_initial_sync_cds_eds_lds_rds() {
    initial_sync(Sotw).await;
}

#[tokio::test]
async fn delta_initial_sync_cds_eds_lds_rds() {
    initial_sync(Delta).await;
}

async fn one_bad_cluster(flavor: AdsFlavor) {
    let server = Server::start(mesh().cluster("bad", &[1])).await;
    let client = Client::start(server.addr, flavor, Some("bad"));

    let proxy = server
        .wait_for_proxy(|p| p.types.get("CDS").is_some_and(|t| t.last_nack.is_some()))
        .await;
    let nack = proxy.types["CDS"].last_nack.clone().unwrap();
    assert!(
        nack.message
            .contains("bad: port 70000 is out of range (test)"),
        "{}",
        nack.message
    );
    assert!(!nack.message.contains("\na:"), "{}", nack.message);
    let state = client
        .wait("the good clusters applied with their endpoints", |s| {
            held_names(s, CLUSTER) == ["a", "b"] && held_names(s, ENDPOINT) == ["a", "b"]
        })
        .await;
    let cds = &state.types[CLUSTER];
    assert_eq!(cds.acked_version, None, "nothing of CDS was fully good yet");
    assert!(cds.last_nack.as_ref().unwrap().message.contains("bad"));
    assert!(!state.types[ENDPOINT].names.contains("bad"));

    // The control plane fixes it: the next push is ACKed and the NACK clears.
    server.publish(mesh().next().without_cluster("bad"));
    client
        .wait("CDS ACKed after the fix", |s| {
            let cds = &s.types[CLUSTER];
            cds.acked_version.is_some() && cds.last_nack.is_none()
        })
        .await;
    server
        .wait_for_proxy(|p| p.applied_generation == Some(2) && all_acked(p, &ALL))
        .await;
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn sotw_a_rejected_cluster_is_nacked_by_name_and_the_others_apply() {
    one_bad_cluster(Sotw).await;
}

#[tokio::test]
async fn delta_a_rejected_cluster_is_nacked_by_name_and_the_others_apply() {
    one_bad_cluster(Delta).await;
}

async fn server_restart(flavor: AdsFlavor) {
    let server = Server::start(mesh()).await;
    let addr = server.addr;
    let client = Client::start(addr, flavor, None);
    client
        .wait("first sync", |s| {
            held_names(s, ROUTE) == ["r1"] && held_names(s, ENDPOINT) == ["a", "b"]
        })
        .await;

    server.stop().await;
    client.wait("disconnected", |s| !s.connected).await;
    let seen_before_restart = client.held.lock().unwrap().log.len();
    // While disconnected the proxy keeps its last good config.
    assert_eq!(client.held.lock().unwrap().clusters.len(), 2);

    // The restarted control plane has one cluster changed and one added.
    let changed = mesh().cluster("b", &[9092]).cluster("c", &[7070]);
    let server = Server::restart_on(addr, changed).await;
    let state = client
        .wait("resynced on the new server", |s| {
            s.connected
                && s.connections == 2
                && held_names(s, ENDPOINT) == ["a", "b", "c"]
                && s.types[ROUTE].acked_version.is_some()
        })
        .await;
    assert_eq!(held_names(&state, CLUSTER), ["a", "b", "c"]);
    assert_eq!(client.held.lock().unwrap().ports("b"), [9092]);
    server
        .wait_for_proxy(|p| p.applied_generation == Some(1) && all_acked(p, &ALL))
        .await;

    if flavor == Delta {
        // initial_resource_versions told the new server what was held: unchanged resources
        // are not sent again.
        let held = client.held.lock().unwrap();
        let after: Vec<_> = held.log[seen_before_restart..].to_vec();
        let given = |short: &str| -> Vec<String> {
            after
                .iter()
                .filter(|(t, _, _)| *t == short)
                .flat_map(|(_, names, _)| names.clone())
                .collect()
        };
        assert_eq!(given("CDS"), ["c"], "{after:?}");
        assert_eq!(given("EDS"), ["b", "c"], "{after:?}");
        assert!(
            given("LDS").is_empty() && given("RDS").is_empty(),
            "{after:?}"
        );
    }
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn sotw_reconnects_after_a_server_restart_and_resyncs() {
    server_restart(Sotw).await;
}

#[tokio::test]
async fn delta_reconnects_after_a_server_restart_and_resyncs() {
    server_restart(Delta).await;
}

async fn eds_follows_clusters(flavor: AdsFlavor) {
    let server = Server::start(mesh()).await;
    let client = Client::start(server.addr, flavor, None);
    client
        .wait("first sync", |s| held_names(s, ENDPOINT) == ["a", "b"])
        .await;

    // Cluster b goes: its endpoints are unsubscribed and forgotten.
    server.publish(mesh().next().without_cluster("b"));
    let state = client
        .wait("b unsubscribed", |s| {
            s.types[ENDPOINT].names.iter().eq(["a"]) && held_names(s, CLUSTER) == ["a"]
        })
        .await;
    assert_eq!(held_names(&state, ENDPOINT), ["a"]);
    let log_at_unsubscribe = client.held.lock().unwrap().log.len();

    // Cluster c comes: its endpoints are subscribed and delivered; b's never come back.
    let third = Mesh::new(3)
        .cluster("a", &[8080])
        .cluster("c", &[7070])
        .listener("l1", "r1")
        .route("r1", "a");
    server.publish(third);
    client
        .wait("c subscribed and held", |s| {
            s.types[ENDPOINT].names.iter().eq(["a", "c"]) && held_names(s, ENDPOINT) == ["a", "c"]
        })
        .await;
    server
        .wait_for_proxy(|p| p.applied_generation == Some(3) && all_acked(p, &ALL))
        .await;
    {
        let held = client.held.lock().unwrap();
        assert_eq!(held.ports("c"), [7070]);
        let eds_since: Vec<_> = held.log[log_at_unsubscribe..]
            .iter()
            .filter(|(t, _, _)| *t == "EDS")
            .collect();
        assert!(
            eds_since
                .iter()
                .all(|(_, names, _)| !names.contains(&"b".to_string())),
            "{eds_since:?}"
        );
    }
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn sotw_eds_subscriptions_follow_the_clusters() {
    eds_follows_clusters(Sotw).await;
}

#[tokio::test]
async fn delta_eds_subscriptions_follow_the_clusters() {
    eds_follows_clusters(Delta).await;
}

#[tokio::test]
async fn a_client_started_before_its_control_plane_keeps_retrying_until_it_is_up() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let client = Client::start(addr, Delta, None);
    let refused = client
        .wait("a failed connect", |s| s.last_error.is_some())
        .await;
    assert!(!refused.connected);
    assert!(
        refused.last_error.unwrap().contains("connect failed"),
        "{:?}",
        client.status.get()
    );

    let server = Server::restart_on(addr, mesh()).await;
    let state = client
        .wait("synced once the server is up", |s| {
            held_names(s, ROUTE) == ["r1"] && held_names(s, ENDPOINT) == ["a", "b"]
        })
        .await;
    assert_eq!(state.connections, 1, "failed connects are not connections");
    client.stop().await;
    server.stop().await;
}
