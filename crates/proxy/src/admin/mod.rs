//! The admin listener, answering the paths Envoy's admin does where our tooling reads them:
//! `/ready`, `/stats`, `/stats/prometheus`, `/config_dump`, `/clusters`, `/listeners`, and
//! `POST /quitquitquit`. Shapes follow Envoy so one test harness drives both proxies.

mod pages;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::drain::DrainWatch;
use crate::state::State;

/// Serves admin on `listener` until `drain` is signalled.
pub async fn serve(listener: TcpListener, state: Arc<State>, mut drain: DrainWatch) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = drain.signaled() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    let json = query.split('&').any(|kv| kv == "format=json");
    match (req.method().as_str(), path) {
        (_, "/ready") => {
            if state.is_ready() {
                text(StatusCode::OK, "LIVE\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n")
            }
        }
        (_, "/stats/prometheus") => text(StatusCode::OK, state.stats.prometheus()),
        (_, "/stats") => text(StatusCode::OK, state.stats.envoy_text()),
        (_, "/config_dump") => json_body(pages::config_dump(state)),
        (_, "/certs") => json_body(pages::certs(state)),
        (_, "/listeners") if json => json_body(pages::listeners_json(state)),
        (_, "/listeners") => text(StatusCode::OK, pages::listeners_text(state)),
        (_, "/clusters") => text(StatusCode::OK, pages::clusters_text(state)),
        ("POST", "/quitquitquit") => {
            state.request_shutdown();
            text(StatusCode::OK, "OK\n")
        }
        (_, "/") => text(
            StatusCode::OK,
            "/ready /stats /stats/prometheus /config_dump /certs /clusters /listeners[?format=json] POST /quitquitquit\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "invalid path. admin commands are listed at /\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(Full::new(body.into()))
        .expect("static response")
}

fn json_body(value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        )))
        .expect("static response")
}
