//! The `/debug/syncz` document (the control plane serves it; crates/control/src/api.rs).

use bowline_xds::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use bowline_xds::type_url::{CLUSTER, LISTENER};

use crate::clients::{DeltaClient, SotwClient};
use crate::harness::{node, Server, Snap};

#[tokio::test]
async fn syncz_lists_every_connected_proxy_in_the_documented_shape() {
    let server = Server::start(
        Snap::new(4)
            .cluster("a", "v1", &[80])
            .listener("sotw-1", "l"),
    )
    .await;
    let status = server.status.clone();

    let mut sotw = SotwClient::connect(&server, "sotw-1", CLUSTER, &[]).await;
    let cds = sotw.recv().await;
    sotw.ack(&cds, &[]).await;
    sotw.request(LISTENER, &[]).await;
    let lds = sotw.recv().await; // left un-ACKed on purpose
    let mut fresh = SotwClient::connect(&server, "sotw-0", CLUSTER, &[]).await;
    let _never_acked = fresh.recv().await;
    let mut delta = DeltaClient::connect(
        &server,
        DeltaDiscoveryRequest {
            node: Some(node("delta-1")),
            type_url: CLUSTER.into(),
            ..Default::default()
        },
    )
    .await;
    let delta_cds = delta.recv().await;
    delta.ack(&delta_cds).await;
    server
        .wait_for_proxy("delta-1", |p| p.applied_generation == Some(4))
        .await;
    server
        .wait_for_proxy("sotw-1", |p| p.types.contains_key("LDS"))
        .await;
    server
        .wait_for_proxy("sotw-0", |p| p.types.contains_key("CDS"))
        .await;

    // What the control plane serves at `/debug/syncz`.
    let json = status.to_json();
    assert_eq!(json["generation"], 4);
    let proxies = json["proxies"].as_array().expect("proxies");
    assert_eq!(proxies.len(), 3);

    let (delta_json, fresh_json, sotw_json) = (&proxies[0], &proxies[1], &proxies[2]);
    assert_eq!(delta_json["node_id"], "delta-1");
    assert_eq!(delta_json["protocol"], "delta");
    assert!(delta_json["connected_at"].as_u64().expect("unix ms") > 1_600_000_000_000);
    assert_eq!(delta_json["applied_generation"], 4);

    assert_eq!(sotw_json["node_id"], "sotw-1");
    assert_eq!(sotw_json["protocol"], "sotw");
    // CDS was ACKed before LDS was asked for; the outstanding LDS does not take that back.
    assert_eq!(sotw_json["applied_generation"], 4);
    assert_eq!(fresh_json["node_id"], "sotw-0");
    assert!(
        fresh_json["applied_generation"].is_null(),
        "nothing ACKed yet"
    );
    assert!(fresh_json["types"]["CDS"]["acked_version"].is_null());
    let cds_json = &sotw_json["types"]["CDS"];
    assert_eq!(cds_json["sent_version"], "4");
    assert_eq!(cds_json["sent_nonce"], cds.nonce.as_str());
    assert_eq!(cds_json["acked_version"], "4");
    assert!(cds_json["last_nack"].is_null());
    let lds_json = &sotw_json["types"]["LDS"];
    assert_eq!(lds_json["sent_nonce"], lds.nonce.as_str());
    assert!(lds_json["acked_version"].is_null());
}
