//! `bowline echo`: a small HTTP server (HTTP/1.1 and h2c prior knowledge) that answers every
//! request with JSON describing it. Tests use it as the workload behind a proxy; flags and
//! request headers make it slow or failing on demand.

mod call;
mod decide;
mod describe;
mod duration;

use bytes::Bytes;
use call::{call_all, parse_call, Call};
use decide::{decide, parse_status, Behaviour, Decision};
use describe::{describe, Identity};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long in-flight requests may finish after SIGTERM/SIGINT before the process exits.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Flags of `bowline echo`. Request headers override per request: `x-echo-status: 418`
/// forces the status, `x-echo-delay: 2s` the delay, and `x-echo-set-header: A:1,B:2` adds
/// those response headers (the Gateway API conformance echo's header of that name). Every answer is JSON
/// `{"service","version","instance","method","path","host","headers"}` (plus `calls` in chain
/// mode) with response headers
/// `x-echo-service`, `x-echo-version` and `x-echo-instance`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one). Once bound, prints exactly one line
    /// `listening on <ip:port>` to stdout: the readiness signal.
    #[arg(long)]
    listen: SocketAddr,
    /// Service name reported in the body and `x-echo-service`.
    #[arg(long)]
    service: String,
    /// Version reported in the body and `x-echo-version` (e.g. v1).
    #[arg(long)]
    version: String,
    /// Instance id reported in the body and `x-echo-instance` [default: <hostname>-<pid>].
    #[arg(long)]
    instance: Option<String>,
    /// Status every request is answered with, 200–599 (unless it fails or overrides it).
    #[arg(long, default_value = "200", value_parser = parse_status)]
    status: StatusCode,
    /// Share of requests, 0.0–1.0, answered with --fail-status, chosen at random.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    fail_rate: f64,
    /// Status of the failing share, 200–599.
    #[arg(long, default_value = "503", value_parser = parse_status)]
    fail_status: StatusCode,
    /// Wait before every answer: 250ms, 2s, 1.5s, 1m (x-echo-delay overrides it).
    #[arg(long, default_value = "0", value_parser = duration::parse_duration)]
    delay: Duration,
    /// Chain mode: before answering, GET this URL (`NAME=http://host:port/path`; repeat for
    /// several, called in order) and include each answer under `calls` in the body. The
    /// request's `end-user` and tracing headers are forwarded; `HTTP_PROXY` is honoured.
    #[arg(long = "call", value_name = "NAME=URL", value_parser = parse_call)]
    calls: Vec<Call>,
    /// Serve this file's content at this path instead of the JSON description
    /// (`/jwks.json=keys.json`; repeatable): a static document such as a JWKS. Read once at
    /// start.
    #[arg(long = "file", value_name = "PATH=FILE", value_parser = parse_file)]
    files: Vec<(String, String)>,
}

struct State {
    identity: Identity,
    behaviour: Behaviour,
    calls: Vec<Call>,
    /// Request path → the content served there.
    files: std::collections::BTreeMap<String, Bytes>,
}

fn parse_file(s: &str) -> Result<(String, String), String> {
    let (path, file) = s
        .split_once('=')
        .ok_or_else(|| format!("expected PATH=FILE, got {s:?}"))?;
    if !path.starts_with('/') {
        return Err(format!("the path must start with '/': {path:?}"));
    }
    Ok((path.to_string(), file.to_string()))
}

/// Parse → bind → serve → drain. Exit 0 after SIGTERM/SIGINT, 1 if binding fails.
pub fn run(args: Args) -> ExitCode {
    let instance = args.instance.clone().unwrap_or_else(default_instance);
    let mut files = std::collections::BTreeMap::new();
    for (path, file) in &args.files {
        match std::fs::read(file) {
            Ok(content) => {
                files.insert(path.clone(), Bytes::from(content));
            }
            Err(e) => {
                eprintln!("bowline echo: cannot read {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let state = Arc::new(State {
        identity: Identity {
            service: args.service,
            version: args.version,
            instance,
        },
        behaviour: Behaviour {
            status: args.status,
            fail_rate: args.fail_rate,
            fail_status: args.fail_status,
            delay: args.delay,
        },
        calls: args.calls,
        files,
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bowline echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bowline echo: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {local}").and_then(|()| stdout.flush());
        drop(stdout);
        serve(listener, state, shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// Accepts connections until `shutdown` completes, then lets in-flight exchanges finish
/// (bounded by [`DRAIN_GRACE`]).
async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down; draining connections");
    if tokio::time::timeout(DRAIN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_GRACE:?}; exiting anyway");
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, mut body) = req.into_parts();
    // Read the request body to its end (discarding it) so the connection can be reused.
    while let Some(frame) = body.frame().await {
        if let Err(e) = frame {
            return Ok(error_response(
                &state,
                StatusCode::BAD_REQUEST,
                &format!("bad request body: {e}"),
            ));
        }
    }
    let Decision { status, delay } =
        match decide(&parts.headers, &state.behaviour, rand::random::<f64>()) {
            Ok(decision) => decision,
            Err(bad) => return Ok(error_response(&state, StatusCode::BAD_REQUEST, &bad.0)),
        };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(content) = state.files.get(parts.uri.path()) {
        return Ok(json_response(
            &state,
            status,
            String::from_utf8_lossy(content).into_owned(),
        ));
    }
    let mut body = describe(&parts, &state.identity);
    if !state.calls.is_empty() {
        body["calls"] = serde_json::Value::Array(call_all(&state.calls, &parts.headers).await);
    }
    let body = body.to_string();
    let mut response = json_response(&state, status, body);
    add_requested_headers(&parts.headers, response.headers_mut());
    Ok(response)
}

/// `x-echo-set-header: Name:value,Other:value` on the request → those response headers
/// (appended; entries that are not valid headers are skipped).
fn add_requested_headers(request: &http::HeaderMap, response: &mut http::HeaderMap) {
    for value in request.get_all("x-echo-set-header") {
        let Ok(text) = value.to_str() else { continue };
        for entry in text.split(',') {
            let Some((name, value)) = entry.split_once(':') else {
                continue;
            };
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.trim().as_bytes()),
                http::HeaderValue::from_str(value.trim()),
            ) {
                response.append(name, value);
            }
        }
    }
}

fn error_response(state: &State, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(
        state,
        status,
        serde_json::json!({ "error": message }).to_string(),
    )
}

fn json_response(state: &State, status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let id = &state.identity;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    for (name, value) in [
        ("x-echo-service", &id.service),
        ("x-echo-version", &id.version),
        ("x-echo-instance", &id.instance),
    ] {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("invalid rate {text:?}: expected a number from 0.0 to 1.0"))
}

fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "echo".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_response_headers_are_added() {
        let mut request = http::HeaderMap::new();
        request.insert(
            "x-echo-set-header",
            http::HeaderValue::from_static("X-A:1, x-b: two ,bad name:3,no-colon"),
        );
        let mut response = http::HeaderMap::new();
        response.insert("x-a", http::HeaderValue::from_static("0"));
        add_requested_headers(&request, &mut response);
        let a: Vec<&str> = response
            .get_all("x-a")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(a, ["0", "1"]);
        assert_eq!(response["x-b"], "two");
        assert_eq!(response.len(), 3, "{response:?}");
    }
}
