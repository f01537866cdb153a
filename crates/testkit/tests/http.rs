//! HTTP helpers against a small in-test hyper server that records what it received.

use bowline_testkit::{get, get_h2, proxy_request, send_raw, ProxyClient};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(10);

/// Answers every request with `"<uri> host=<host>"`; with `close: true` it also closes each
/// connection after one response.
async fn recorder(close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<Incoming>| async move {
                        let host = req
                            .headers()
                            .get("host")
                            .map(|h| h.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        let mut response = Response::new(Full::new(Bytes::from(format!(
                            "{} host={host}",
                            req.uri()
                        ))));
                        if close {
                            response
                                .headers_mut()
                                .insert("connection", "close".parse().unwrap());
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn proxy_request_sends_absolute_form_with_host_from_the_url() {
    let proxy = recorder(false).await;
    let url = "http://reviews.default.svc.cluster.local:9080/x?y=1";
    let response = proxy_request(proxy, "GET", url, &[("x-test", "1")], T)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        format!("{url} host=reviews.default.svc.cluster.local:9080")
    );
}

#[tokio::test]
async fn proxy_request_refuses_relative_urls() {
    let proxy = recorder(false).await;
    assert!(proxy_request(proxy, "GET", "/x", &[], T).await.is_err());
}

#[tokio::test]
async fn get_sends_origin_form_and_get_h2_speaks_prior_knowledge() {
    let server = recorder(false).await;
    let response = get(server, "/a?b=c", &[], T).await.unwrap();
    assert_eq!(response.text(), format!("/a?b=c host={server}"));
    let response = get_h2(server, "/h2", &[], T).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), format!("http://{server}/h2 host="));
}

#[tokio::test]
async fn send_raw_returns_what_the_server_answered() {
    let server = recorder(false).await;
    let answer = send_raw(server, b"NOT HTTP AT ALL\r\n\r\n", T)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
}

#[tokio::test]
async fn proxy_client_reuses_one_connection() {
    let proxy = recorder(false).await;
    let mut client = ProxyClient::new(proxy);
    for i in 0..100 {
        let response = client
            .request("GET", &format!("http://svc:80/{i}"), &[], T)
            .await
            .unwrap();
        assert_eq!(response.text(), format!("http://svc:80/{i} host=svc:80"));
    }
    assert_eq!(client.connections_opened(), 1);
}

#[tokio::test]
async fn proxy_client_reconnects_when_the_proxy_closes() {
    let proxy = recorder(true).await;
    let mut client = ProxyClient::new(proxy);
    for i in 0..20 {
        let response = client
            .request("GET", &format!("http://svc:80/{i}"), &[], T)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
    }
    assert_eq!(client.connections_opened(), 20);
}
