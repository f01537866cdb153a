//! The status port (15020 in a pod): `GET /healthz/ready` (200 once the first configuration
//! from the control plane is applied, 503 before and while draining),
//! `GET /app-health/<container>/<livez|readyz|startupz>` (the application's probes, run
//! by [`crate::probe`]), `GET /stats/prometheus` (the admin's metrics). Anything else: 404.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bowline_proxy::state::State;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::probe::{self, Probers};

/// Readiness as the status port reports it: the proxy's own (first config applied) unless
/// draining started. Cloned into the drain sequence, which flips it first.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub struct StatusServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    state: Arc<State>,
    probers: Probers,
    pod: IpAddr,
    draining: Draining,
}

impl StatusServer {
    /// Binds `addr`. Probes go to `pod` (the pod's address, `INSTANCE_IP`).
    pub async fn new(
        addr: SocketAddr,
        state: Arc<State>,
        probers: Probers,
        pod: IpAddr,
        draining: Draining,
    ) -> std::io::Result<StatusServer> {
        let listener = TcpListener::bind(addr).await?;
        Ok(StatusServer {
            listener,
            shared: Arc::new(Shared {
                state,
                probers,
                pod,
                draining,
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves (connections in progress finish on their own).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(answer(&shared, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    let path = req.uri().path();
    match path {
        "/healthz/ready" => {
            if shared.draining.is_draining() {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else if shared.state.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no configuration from the control plane yet\n",
                )
            }
        }
        "/stats/prometheus" => text(StatusCode::OK, shared.state.stats.prometheus()),
        _ => match shared.probers.get(path) {
            Some(prober) => {
                let user_agent = req
                    .headers()
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok());
                let outcome = probe::run(prober, shared.pod, user_agent).await;
                let status = probe::verdict(&outcome);
                match outcome {
                    Ok(app) => text(status, format!("application answered {app}\n")),
                    Err(error) => {
                        tracing::debug!(probe = %path, %error, "application probe failed");
                        text(status, format!("{error}\n"))
                    }
                }
            }
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        },
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(Full::new(body.into()))
        .expect("static response")
}
