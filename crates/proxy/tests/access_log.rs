//! Access lines with Envoy's response flags: a request that is answered, and one that fails
//! in each of three ways — no healthy upstream (`UH`), the upstream resetting the connection
//! before it answers (`UC`), the route timeout (`UT`) — each gives one JSON line in the
//! connection manager's access log with its status, flag, details, route, cluster and
//! request id. The lines are written off the request path, so the test waits for them.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bowline_model as model;
use bowline_testkit::{get, wait_until};
use model::access_log::{AccessLog, AccessLogFormat};
use model::route::RouteAction;
use serde_json::{json, Value};
use support::*;
use tokio::io::AsyncReadExt;

/// A server that reads a request and closes the connection without answering.
async fn resetting_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    addr
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_response_flag_in_the_access_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let ok = Upstream::start("ok").await;
    let reset = resetting_upstream().await;
    let to = |cluster: &str, timeout: Option<Duration>| {
        let mut f = forward(model::ClusterSpecifier::Cluster(cluster.into()));
        f.timeout = timeout;
        RouteAction::Forward(f)
    };
    let routes = route_config(
        "r",
        &["*"],
        vec![
            route("ok", prefix("/ok"), to("ok", None)),
            route("empty", prefix("/empty"), to("empty", None)),
            route("reset", prefix("/reset"), to("reset", None)),
            route(
                "slow",
                prefix("/slow"),
                to("ok", Some(Duration::from_millis(200))),
            ),
        ],
    );
    let mut listener = http_listener("in", routes);
    let model::NetworkFilter::Http(hcm) = &mut listener.filter_chains[0].network else {
        unreachable!()
    };
    hcm.generate_request_id = true;
    let serde_json::Value::Object(format) = json!({
        "code": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "details": "%RESPONSE_CODE_DETAILS%",
        "route": "%ROUTE_NAME%",
        "cluster": "%UPSTREAM_CLUSTER%",
        "host": "%UPSTREAM_HOST%",
        "path": "%REQ(:PATH)%",
        "id": "%REQ(X-REQUEST-ID)%",
        "sent": "%BYTES_SENT%",
        "received": "%BYTES_RECEIVED%",
    }) else {
        unreachable!()
    };
    hcm.access_log = vec![AccessLog {
        path: path.display().to_string(),
        format: AccessLogFormat::Json(format),
        filter: None,
    }];
    let (_proxy, addr) = start(
        vec![listener],
        vec![
            cluster("ok", &[ok.addr]),
            cluster("empty", &[]),
            cluster("reset", &[reset]),
        ],
    );

    let cases = [
        ("/ok", 200, "-", "via_upstream"),
        ("/empty", 503, "UH", "no_healthy_upstream"),
        (
            "/reset",
            503,
            "UC",
            "upstream_reset_before_response_started{connection_termination}",
        ),
        ("/slow?delay_ms=2000", 504, "UT", "response_timeout"),
    ];
    for (n, (path_and_query, status, flags, details)) in cases.iter().enumerate() {
        let response = get(addr, path_and_query, &[], Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(response.status, *status, "{path_and_query}");
        let line = wait_until(
            Duration::from_secs(5),
            Duration::from_millis(20),
            || async {
                let all = lines(&path);
                anyhow::ensure!(all.len() > n, "{} lines", all.len());
                Ok(all[n].clone())
            },
        )
        .await
        .unwrap();
        eprintln!("{line}");
        let route = path_and_query[1..].split('?').next().unwrap();
        assert_eq!(line["code"], *status, "{line}");
        assert_eq!(line["flags"], *flags, "{line}");
        assert_eq!(line["details"], *details, "{line}");
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["path"], *path_and_query, "{line}");
        let cluster = match route {
            "slow" => "ok",
            other => other,
        };
        assert_eq!(line["cluster"], cluster, "{line}");
        assert_eq!(
            line["id"].as_str().map(str::len),
            Some(36),
            "a request id: {line}"
        );
        match route {
            "empty" => assert_eq!(line["host"], Value::Null, "{line}"),
            "reset" => assert_eq!(line["host"], reset.to_string(), "{line}"),
            _ => assert_eq!(line["host"], ok.addr.to_string(), "{line}"),
        }
        assert_eq!(
            line["sent"].as_u64(),
            Some(response.body.len() as u64),
            "{line}"
        );
        assert_eq!(line["received"], 0, "{line}");
    }

    // A chunked upload: the bytes received are counted as they stream upstream.
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /ok/upload HTTP/1.1\r\nhost: ok\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let line = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async {
            let all = lines(&path);
            anyhow::ensure!(all.len() > cases.len(), "{} lines", all.len());
            Ok(all[cases.len()].clone())
        },
    )
    .await
    .unwrap();
    assert_eq!(line["path"], "/ok/upload", "{line}");
    assert_eq!(line["received"], 11, "{line}");
}

/// A tcp_proxy's line per connection: bytes both ways for a relayed one, `UF` when the
/// upstream refuses the connection, `UH` when the cluster has no endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_have_their_access_lines() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcp.log");
    let ok = Upstream::start("ok").await;
    // A port nothing listens on: bound, then released.
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let serde_json::Value::Object(format) = json!({
        "flags": "%RESPONSE_FLAGS%",
        "cluster": "%UPSTREAM_CLUSTER%",
        "received": "%BYTES_RECEIVED%",
        "sent": "%BYTES_SENT%",
        "protocol": "%PROTOCOL%",
    }) else {
        unreachable!()
    };
    let tcp = |name: &str, cluster: &str| {
        let mut l = listener(
            name,
            model::NetworkFilter::Tcp(model::TcpProxy {
                stat_prefix: name.into(),
                cluster: model::ClusterSpecifier::Cluster(cluster.into()),
                idle_timeout: None,
                access_log: vec![AccessLog {
                    path: path.display().to_string(),
                    format: AccessLogFormat::Json(format.clone()),
                    filter: None,
                }],
            }),
        );
        l.name = name.into();
        l
    };
    let proxy = bowline_proxy::Proxy::start(&bowline_proxy::Options::default()).unwrap();
    let errors = proxy.apply(bowline_proxy::config::Change {
        listeners: vec![
            tcp("to-ok", "ok"),
            tcp("to-refused", "refused"),
            tcp("to-empty", "empty"),
        ],
        clusters: vec![
            cluster("ok", &[ok.addr]),
            cluster("refused", &[refused]),
            cluster("empty", &[]),
        ],
        ..Default::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    let bound = proxy.state().bound_listeners();

    let request = b"GET /ok HTTP/1.1\r\nhost: ok\r\nconnection: close\r\n\r\n";
    let mut stream = tokio::net::TcpStream::connect(bound["to-ok"])
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    drop(stream);
    for name in ["to-refused", "to-empty"] {
        let mut stream = tokio::net::TcpStream::connect(bound[name]).await.unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    }
    let all = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async {
            let all = lines(&path);
            anyhow::ensure!(all.len() == 3, "{} lines", all.len());
            Ok(all)
        },
    )
    .await
    .unwrap();
    for line in &all {
        eprintln!("{line}");
    }
    let find = |cluster: &str| {
        all.iter()
            .find(|l| l["cluster"] == cluster)
            .unwrap_or_else(|| panic!("no line for {cluster}: {all:?}"))
            .clone()
    };
    let ok_line = find("ok");
    assert_eq!(ok_line["flags"], "-");
    assert_eq!(ok_line["received"], request.len() as u64);
    assert_eq!(ok_line["sent"], answer.len() as u64);
    assert_eq!(ok_line["protocol"], Value::Null, "TCP has no protocol");
    assert_eq!(find("refused")["flags"], "UF");
    assert_eq!(find("empty")["flags"], "UH");
}

/// Envoy's CEL access-log filter (what Istio's Telemetry `filter.expression` becomes): only
/// the requests for which it is true get a line. Two logs on one connection manager, one
/// filtered on the status and one on a request header, see the same four requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cel_filter_logs_only_the_requests_it_is_true_for() {
    let dir = tempfile::tempdir().unwrap();
    let failures = dir.path().join("failures.log");
    let flagged = dir.path().join("flagged.log");
    let ok = Upstream::start("ok").await;
    let to = |cluster: &str| {
        RouteAction::Forward(forward(model::ClusterSpecifier::Cluster(cluster.into())))
    };
    let routes = route_config(
        "r",
        &["*"],
        vec![
            route("ok", prefix("/ok"), to("ok")),
            route("empty", prefix("/empty"), to("empty")),
        ],
    );
    let mut listener = http_listener("in", routes);
    let model::NetworkFilter::Http(hcm) = &mut listener.filter_chains[0].network else {
        unreachable!()
    };
    let serde_json::Value::Object(format) =
        json!({"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%"})
    else {
        unreachable!()
    };
    let log = |path: &std::path::Path, filter: &str| AccessLog {
        path: path.display().to_string(),
        format: AccessLogFormat::Json(format.clone()),
        filter: Some(filter.into()),
    };
    hcm.access_log = vec![
        log(&failures, "response.code >= 500"),
        log(
            &flagged,
            "request.headers['x-log'] == 'yes' && request.url_path.startsWith('/ok')",
        ),
    ];
    let (_proxy, addr) = start(
        vec![listener],
        vec![cluster("ok", &[ok.addr]), cluster("empty", &[])],
    );
    // The last two are sentinels, one for each log: a sink writes in order, so once a
    // sentinel's line is there, so is every line before it.
    type Request = (&'static str, &'static [(&'static str, &'static str)], u16);
    let requests: [Request; 6] = [
        ("/ok/a", &[], 200),
        ("/empty/b", &[], 503),
        ("/ok/c?q=1", &[("x-log", "yes")], 200),
        ("/empty/d", &[("x-log", "yes")], 503),
        ("/empty/end", &[], 503),
        ("/ok/end", &[("x-log", "yes")], 200),
    ];
    for (path, headers, status) in requests {
        let response = get(addr, path, headers, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(response.status, status, "{path}");
    }
    let logged = |file: &std::path::Path, last: &'static str| {
        let file = file.to_path_buf();
        async move {
            let all = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                let all = lines(&file);
                async move {
                    anyhow::ensure!(
                        all.last().is_some_and(|l| l["path"] == last),
                        "{} lines, no {last} yet",
                        all.len()
                    );
                    Ok(all)
                }
            })
            .await
            .unwrap();
            all.iter()
                .map(|l| l["path"].as_str().unwrap().to_string())
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(
        logged(&failures, "/empty/end").await,
        ["/empty/b", "/empty/d", "/empty/end"]
    );
    assert_eq!(logged(&flagged, "/ok/end").await, ["/ok/c?q=1", "/ok/end"]);
}
