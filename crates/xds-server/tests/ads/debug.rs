//! The debug HTTP server and the `/debug/syncz` document.

use std::net::SocketAddr;
use std::sync::Arc;

use bowline_xds::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use bowline_xds::type_url::{CLUSTER, LISTENER};
use bowline_xds_server::{serve_debug, DebugHandler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::clients::{DeltaClient, SotwClient};
use crate::harness::{node, Server, Snap, WAIT};

/// A one-shot HTTP/1.1 GET; returns the status code and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: debug\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("answered in time");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, body.to_string())
}

struct Debug {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_debug(routes: Vec<(String, DebugHandler)>) -> Debug {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_debug(listener, routes, async move {
        let _ = stop.await;
    }));
    Debug {
        addr,
        shutdown,
        task,
    }
}

#[tokio::test]
async fn known_paths_answer_json_unknown_paths_404_and_shutdown_returns() {
    let hello: DebugHandler = Arc::new(|| serde_json::json!({"hello": "mesh"}));
    let debug = start_debug(vec![("/debug/hello".into(), hello)]).await;

    let (code, body) = get(debug.addr, "/debug/hello").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(json["hello"], "mesh");

    let (code, _) = get(debug.addr, "/debug/nope").await;
    assert_eq!(code, 404);

    let _ = debug.shutdown.send(());
    let served = tokio::time::timeout(WAIT, debug.task).await.expect("stops");
    served.expect("no panic").expect("no io error");
}

#[tokio::test]
async fn syncz_lists_every_connected_proxy_in_the_documented_shape() {
    let server = Server::start(
        Snap::new(4)
            .cluster("a", "v1", &[80])
            .listener("sotw-1", "l"),
    )
    .await;
    let status = server.status.clone();
    let syncz: DebugHandler = Arc::new(move || status.to_json());
    let debug = start_debug(vec![("/debug/syncz".into(), syncz)]).await;

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

    let (code, body) = get(debug.addr, "/debug/syncz").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
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
