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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Check, Prober};
    use http_body_util::{BodyExt, Empty};
    use std::time::Duration;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::get(path)
            .header(http::header::HOST, "status")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readiness_follows_the_first_config_and_draining() {
        let state = State::new();
        let app = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app_port = app.local_addr().unwrap().port();
        let closed_port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let tcp = |port| Prober {
            check: Check::Tcp { host: None, port },
            timeout: Duration::from_secs(5),
        };
        let probers = Probers::from([
            ("/app-health/app/livez".to_string(), tcp(app_port)),
            ("/app-health/app/readyz".to_string(), tcp(closed_port)),
        ]);
        let draining = Draining::default();
        let server = StatusServer::new(
            "127.0.0.1:0".parse().unwrap(),
            state.clone(),
            probers,
            "127.0.0.1".parse().unwrap(),
            draining.clone(),
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));

        assert_eq!(
            get(addr, "/healthz/ready").await.0,
            503,
            "before any config"
        );
        state.set_ready();
        assert_eq!(get(addr, "/healthz/ready").await.0, 200);
        assert_eq!(get(addr, "/app-health/app/livez").await.0, 200);
        let (code, body) = get(addr, "/app-health/app/readyz").await;
        assert_eq!(code, 503, "{body}");
        assert!(
            body.contains(&format!("connect to port {closed_port}")),
            "{body}"
        );
        assert_eq!(get(addr, "/app-health/other/livez").await.0, 404);
        assert_eq!(get(addr, "/nothing").await.0, 404);
        assert_eq!(get(addr, "/stats/prometheus").await.0, 200);
        draining.start();
        assert_eq!(
            get(addr, "/healthz/ready").await,
            (503, "draining\n".into())
        );

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("run returns on shutdown")
            .unwrap();
        drop(app);
    }
}
