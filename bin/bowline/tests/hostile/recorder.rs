//! The upstream of the hostile-client scenarios: an in-process HTTP/1.1 server on
//! 127.0.0.1:0 that answers every request with what it received — the request target and the
//! route the proxy tagged it with — and keeps a log of every request that reached it, so a
//! test can tell a request the proxy refused from one it let through.
//!
//! `GET /status/503` answers 503 (an unhealthy host for outlier detection); a request with a
//! body is answered once the whole body has arrived, with its length.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the upstream saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The request target exactly as received (origin-form for HTTP/1.1).
    pub target: String,
    pub host: String,
    /// The `x-route` header the proxy's route added.
    pub route: String,
    /// The caller's identity as the proxy forwarded it.
    pub xfcc: Option<String>,
}

pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    pub async fn start() -> Result<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| answer(log.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Recorder { addr, seen, task })
    }

    /// Every request that reached the upstream so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    log: Arc<Mutex<Vec<Seen>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let seen = Seen {
        method: req.method().to_string(),
        target: req.uri().to_string(),
        host: header("host").unwrap_or_default(),
        route: header("x-route").unwrap_or_default(),
        xfcc: header("x-forwarded-client-cert"),
    };
    log.lock().unwrap().push(seen.clone());
    let status = if seen.target == "/status/503" {
        503
    } else {
        200
    };
    let body = req.into_body().collect().await?.to_bytes();
    let text = format!("{}\n{}\n{}\n", seen.target, seen.route, body.len());
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(response)
}
