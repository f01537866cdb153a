//! Forwarding to a cluster: pick an endpoint, respect the breakers, send on a pooled
//! connection within the route and per-try timeouts, retry as the policy says (with
//! jittered back-off, avoiding previous hosts), feed outlier detection, fire mirrors, and
//! hand WebSocket upgrades over to a byte tunnel.
//!
//! In three parts: [`forward`] is the retry loop; `one_try` sends one try and races it
//! against the timeouts; `classify` (pure, table-tested) says what the try came to — an
//! answer, the client's fault, or which failure — which the loop then reports, feeds to
//! outlier detection and asks the retry policy about.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use bowline_model as model;
use model::route::{Forward, RetryPolicy, UpstreamOutcome};

use super::body::{
    complete_body, ClientBody, ClientBodyState, ResponseBody, UpstreamBody, UpstreamResponse,
};
use super::conn::Conn;
use super::hash::request_hash;
use super::headers::{is_upgrade, strip_hop_by_hop};
use super::local;
use super::mirror::send_mirror;
use super::stream_info::{details, StreamInfo};
use super::upstream_request::{upstream_request, upstream_request_owned};
use crate::config::Config;
use crate::upstream::circuit::Overflow;
use crate::upstream::cluster::{Cluster, Discovery, Endpoint};
use crate::upstream::lb::Policy;
use crate::upstream::outlier::LocalOrigin;
use crate::upstream::pool::{Pool, PooledBody, UpstreamError};
use bowline_telemetry::ResponseFlag;

/// Bodies up to this size are buffered when a retry or mirror may need to send them again;
/// larger or unknown-length bodies stream and are not retried.
const MAX_BUFFERED_BODY: u64 = 64 * 1024;

/// Where a request goes.
pub struct Target<'a> {
    pub cluster: Arc<Cluster>,
    pub forward: &'a Forward,
    pub snapshot: &'a Config,
}

pub async fn forward(
    conn: &Conn,
    target: Target<'_>,
    mut req: Request<Incoming>,
    info: &mut StreamInfo,
) -> Response<ResponseBody> {
    let cluster = &target.cluster;
    let fwd = target.forward;
    let router = conn.http.router;
    let upgrading = req.version() == Version::HTTP_11 && is_upgrade(req.headers());
    let mut downstream_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrading);

    let wants_copies = fwd.retry.is_some() || !fwd.mirrors.is_empty();
    if info.detailed {
        info.received = Some(Default::default());
    }
    let (body, mut body_state) = match prepare_body(body, wants_copies, info.received.clone()).await
    {
        Ok(prepared) => prepared,
        Err(()) => return local::bad_request(local::BAD_REQUEST),
    };
    let replay = match &body {
        UpstreamBody::Buffered(bytes) => Some(bytes.clone()),
        UpstreamBody::Streamed(_) => None,
    };
    if let Some(bytes) = &replay {
        for mirror in &fwd.mirrors {
            if mirror.fraction.hits(rand::random()) {
                send_mirror(
                    conn,
                    target.snapshot,
                    &mirror.cluster,
                    &parts,
                    bytes.clone(),
                );
            }
        }
    }

    let grpc_timeout = parts.headers.get("grpc-timeout").map(|v| v.as_bytes());
    let timeout = fwd.effective_timeout(grpc_timeout);
    // A streamed body can be sent once: no retries then.
    let retry = fwd.retry.as_ref().filter(|_| replay.is_some());
    let (hash, mut set_cookie) = match cluster.policy {
        Policy::RingHash { .. } | Policy::Maglev { .. } => {
            request_hash(&fwd.hash_policy, &parts, conn.peer)
        }
        _ => (None, None),
    };
    let mut parts = Some(parts);
    let mut body = Some(body);
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut retries_done = 0u32;
    // The retry breaker's slot for the retry in flight (Envoy counts outstanding retries).
    let mut retry_slot: Option<crate::upstream::circuit::Slot> = None;
    let stats = &cluster.stats;
    // The retry loop: pick a host, make one try, classify what it came to, then answer or
    // retry after the back-off.
    loop {
        let exclude: &[SocketAddr] = if retry.is_some_and(|r| r.avoid_previous_hosts) {
            &tried
        } else {
            &[]
        };
        let endpoint = match &cluster.discovery {
            Discovery::OriginalDst { .. } => {
                Some(Arc::new(Endpoint::new(conn.destination, 1, true)))
            }
            _ => cluster.pick(hash, rand::random(), exclude),
        };
        let Some(endpoint) = endpoint else {
            stats.upstream_cx_none_healthy.inc();
            info.fail(
                ResponseFlag::NoHealthyUpstream,
                details::NO_HEALTHY_UPSTREAM,
            );
            return local::reply(StatusCode::SERVICE_UNAVAILABLE, local::NO_HEALTHY_UPSTREAM);
        };
        info.upstream_host = Some(endpoint.addr);
        if info.detailed {
            info.upstream_peer.clone_from(&endpoint.peer);
        }
        let Ok(_slot) = cluster
            .usage
            .acquire(Overflow::Requests, cluster.thresholds.max_requests)
        else {
            stats.upstream_rq_pending_overflow.inc();
            return fail(info, NoResponse::Overflow, false, || overloaded(conn));
        };
        let last_try = retry.is_none_or(|r| retries_done >= r.num_retries);
        let try_body = match &replay {
            Some(bytes) => UpstreamBody::Buffered(bytes.clone()),
            None => body.take().unwrap_or_else(UpstreamBody::empty),
        };
        let request = if last_try {
            upstream_request_owned(
                parts.take().expect("parts until the last try"),
                try_body,
                cluster.protocol,
            )
        } else {
            upstream_request(
                parts.as_ref().expect("parts until the last try"),
                try_body,
                cluster.protocol,
            )
        };
        if retry.is_some() {
            tried.push(endpoint.addr);
        }

        let try_started = Instant::now();
        let times = TryTimeouts {
            route: timeout,
            per_try: retry.and_then(|r| r.per_try_timeout),
            started: try_started,
        };
        let result = one_try(conn, cluster, &endpoint, request, &mut body_state, times).await;
        // The route deadline, once the client has sent its whole request.
        let deadline = completed_at(&body_state).zip(timeout).map(|(at, t)| at + t);
        let client = *body_state.borrow();
        let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);

        // Whether a retry may follow `outcome`: the policy asks for one, tries remain, and
        // the cluster's retry breaker (`max_retries`, or its retry budget) has room. The slot
        // is held through the retry, until its own outcome is known; as in Envoy, the slot of
        // the retry just done is released before the next one asks.
        let mut retry_exhausted = false;
        let mut may_retry = |outcome: UpstreamOutcome| -> Option<&RetryPolicy> {
            let wanted = retry.filter(|r| r.retry_on(outcome));
            // Envoy's URX: the policy would retry this, but no try is left.
            retry_exhausted = wanted.is_some() && last_try;
            let policy = wanted.filter(|_| !last_try)?;
            retry_slot = None;
            match cluster.usage.acquire_retry(&cluster.thresholds) {
                Ok(slot) => {
                    retry_slot = Some(slot);
                    Some(policy)
                }
                Err(_) => {
                    stats.upstream_rq_retry_overflow.inc();
                    None
                }
            }
        };
        let policy = match classify(result, client, past_deadline) {
            // The client broke its request off (aborted, or sent a malformed body): the
            // exchange failed because of the client, so nothing counts against the upstream —
            // no outlier detection, no retry — and the client gets Envoy's 400.
            Tried::ClientBroke => {
                conn.http.stats.downstream_rq_rx_reset.inc();
                return local::bad_request(local::BAD_REQUEST);
            }
            Tried::Answered(response, outcome) => {
                let status = response.status().as_u16();
                cluster.record(&endpoint, status);
                // The router's `dynamic_stats`: per-cluster counts by response code.
                if router.dynamic_stats {
                    stats.upstream_rq_xx.record(status);
                }
                match may_retry(outcome) {
                    // Retried: this response is dropped (its connection closes).
                    Some(policy) => policy,
                    None => {
                        if info.keep_names {
                            info.response_started = Some(std::time::Instant::now());
                        }
                        info.details = details::VIA_UPSTREAM;
                        if retry_exhausted {
                            info.flags.insert(ResponseFlag::UpstreamRetryLimitExceeded);
                        }
                        // An upstream that answers before the upload ends: the route
                        // timeout runs from now.
                        let deadline = deadline.or_else(|| timeout.map(|t| Instant::now() + t));
                        let mut response =
                            downstream_response(response, downstream_upgrade.take(), deadline);
                        if !router.suppress_envoy_headers {
                            // Envoy's router: how long the upstream took, in milliseconds.
                            let ms = try_started.elapsed().as_millis();
                            response.headers_mut().insert(
                                "x-envoy-upstream-service-time",
                                http::HeaderValue::from(ms as u64),
                            );
                        }
                        if let Some(cookie) = set_cookie.take() {
                            response
                                .headers_mut()
                                .append(http::header::SET_COOKIE, cookie);
                        }
                        return response;
                    }
                }
            }
            Tried::NoResponse(NoResponse::Overflow) => {
                return fail(info, NoResponse::Overflow, retry_exhausted, || {
                    overloaded(conn)
                });
            }
            Tried::NoResponse(NoResponse::RouteTimeout) => {
                stats.upstream_rq_timeout.inc();
                return fail(info, NoResponse::RouteTimeout, false, || {
                    NoResponse::RouteTimeout.reply()
                });
            }
            Tried::NoResponse(failure) => {
                // Outlier detection hears of it as a local-origin failure.
                let origin = if failure == NoResponse::PerTryTimeout {
                    stats.upstream_rq_per_try_timeout.inc();
                    LocalOrigin::Timeout
                } else {
                    LocalOrigin::ConnectFailed
                };
                cluster.record_local(&endpoint, origin);
                match failure.outcome().and_then(&mut may_retry) {
                    Some(policy) => policy,
                    None => return fail(info, failure, retry_exhausted, || failure.reply()),
                }
            }
        };
        stats.upstream_rq_retry.inc();
        let wait = policy.backoff.delay(retries_done, rand::random());
        retries_done += 1;
        if deadline.is_some_and(|d| Instant::now() + wait >= d) {
            stats.upstream_rq_timeout.inc();
            return fail(info, NoResponse::RouteTimeout, false, || {
                NoResponse::RouteTimeout.reply()
            });
        }
        tokio::time::sleep(wait).await;
    }
}

/// A try's timeouts: the route's and the per-try one, and when the try started.
#[derive(Debug, Clone, Copy)]
struct TryTimeouts {
    route: Option<Duration>,
    per_try: Option<Duration>,
    started: Instant,
}

/// One try: the request sent to `endpoint` on a pooled connection, raced against the route
/// and per-try timeouts. `None` when a timeout fired first. Counts the try as active on the
/// cluster and the endpoint (least-request balancing reads the latter) while it runs.
async fn one_try(
    conn: &Conn,
    cluster: &Cluster,
    endpoint: &Endpoint,
    request: Request<UpstreamBody>,
    body_state: &mut watch::Receiver<ClientBodyState>,
    times: TryTimeouts,
) -> Option<Result<Response<PooledBody>, UpstreamError>> {
    let stats = &cluster.stats;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    endpoint.active.fetch_add(1, Ordering::Relaxed);
    let send = conn.pool.send(endpoint.addr, cluster, request);
    let result = if times.route.is_none() && times.per_try.is_none() {
        Some(send.await)
    } else {
        tokio::select! {
            result = send => Some(result),
            () = expiry(body_state, times.route, times.per_try, times.started) => None,
        }
    };
    endpoint.active.fetch_sub(1, Ordering::Relaxed);
    stats.upstream_rq_active.dec();
    result
}

/// What a try came to, in the router's terms (`B`: the upstream response's body).
#[derive(Debug)]
enum Tried<B> {
    /// The client broke its request off: nothing counts against the upstream.
    ClientBroke,
    /// The upstream answered; the outcome is what a retry policy is asked about.
    Answered(Response<B>, UpstreamOutcome),
    /// No response, and how it failed.
    NoResponse(NoResponse),
}

/// Classifies a try's `result` (`None`: a timeout fired first), given how the client's
/// body stands and whether the route deadline has passed. A client that broke its body off
/// explains any failure; a timeout is the route's once its deadline has passed, else the
/// per-try timeout's. Pure.
fn classify<B>(
    result: Option<Result<Response<B>, UpstreamError>>,
    client: ClientBodyState,
    past_deadline: bool,
) -> Tried<B> {
    match result {
        Some(Ok(response)) => {
            let outcome = UpstreamOutcome::Response {
                status: response.status().as_u16(),
                grpc_status: super::router::grpc_status(response.headers()),
                envoy_ratelimited: response.headers().contains_key("x-envoy-ratelimited"),
            };
            Tried::Answered(response, outcome)
        }
        _ if client == ClientBodyState::Broken => Tried::ClientBroke,
        Some(Err(error)) => Tried::NoResponse(NoResponse::of_error(&error)),
        None if past_deadline => Tried::NoResponse(NoResponse::RouteTimeout),
        None => Tried::NoResponse(NoResponse::PerTryTimeout),
    }
}

/// How a try that got no response failed, in Envoy's terms: what the retry policy sees, what
/// the client is answered, and the response flag and details the request is reported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoResponse {
    /// A circuit breaker refused the request (not retried).
    Overflow,
    ConnectFailure,
    /// The connection ended before a response (HTTP/1 `connection termination`).
    Reset,
    /// The route timeout passed (not retried: no time is left).
    RouteTimeout,
    PerTryTimeout,
}

impl NoResponse {
    fn of_error(error: &UpstreamError) -> NoResponse {
        match error {
            UpstreamError::Overflow => NoResponse::Overflow,
            e if e.is_connect_failure() => NoResponse::ConnectFailure,
            _ => NoResponse::Reset,
        }
    }

    /// What a retry policy's `retry_on` is asked about; `None` when no retry can follow.
    fn outcome(self) -> Option<UpstreamOutcome> {
        match self {
            NoResponse::Overflow | NoResponse::RouteTimeout => None,
            NoResponse::ConnectFailure => Some(UpstreamOutcome::ConnectFailure),
            NoResponse::Reset => Some(UpstreamOutcome::Reset { request_sent: true }),
            NoResponse::PerTryTimeout => Some(UpstreamOutcome::PerTryTimeout),
        }
    }

    /// Envoy's flag and response code details.
    fn flag(self) -> (ResponseFlag, &'static str) {
        match self {
            NoResponse::Overflow => (ResponseFlag::UpstreamOverflow, details::OVERFLOW),
            NoResponse::ConnectFailure => (
                ResponseFlag::UpstreamConnectionFailure,
                details::CONNECT_FAILURE,
            ),
            NoResponse::Reset => (
                ResponseFlag::UpstreamConnectionTermination,
                details::CONNECTION_TERMINATION,
            ),
            NoResponse::RouteTimeout => (
                ResponseFlag::UpstreamRequestTimeout,
                details::RESPONSE_TIMEOUT,
            ),
            NoResponse::PerTryTimeout => (
                ResponseFlag::UpstreamRequestTimeout,
                details::PER_TRY_TIMEOUT,
            ),
        }
    }

    /// Envoy's local reply (the overflow reply depends on the router: see [`overloaded`]).
    fn reply(self) -> Response<ResponseBody> {
        let (status, text) = self.status_and_text();
        local::reply(status, text)
    }

    fn status_and_text(self) -> (StatusCode, &'static str) {
        match self {
            NoResponse::Overflow => (StatusCode::SERVICE_UNAVAILABLE, local::OVERFLOW),
            NoResponse::ConnectFailure => (StatusCode::SERVICE_UNAVAILABLE, local::CONNECT_FAILURE),
            NoResponse::Reset => (StatusCode::SERVICE_UNAVAILABLE, local::RESET),
            NoResponse::RouteTimeout | NoResponse::PerTryTimeout => {
                (StatusCode::GATEWAY_TIMEOUT, local::UPSTREAM_TIMEOUT)
            }
        }
    }
}

/// The request ends with `failure`: reported with its flag (and `URX` when the policy would
/// have retried it but no try was left), answered with `reply`.
fn fail(
    info: &mut StreamInfo,
    failure: NoResponse,
    retry_exhausted: bool,
    reply: impl FnOnce() -> Response<ResponseBody>,
) -> Response<ResponseBody> {
    let (flag, why) = failure.flag();
    info.fail(flag, why);
    if retry_exhausted {
        info.flags.insert(ResponseFlag::UpstreamRetryLimitExceeded);
    }
    reply()
}

/// Circuit-breaker overflow: Envoy's 503, with `x-envoy-overloaded` unless the router
/// suppresses its headers.
fn overloaded(conn: &Conn) -> Response<ResponseBody> {
    let mut response = local::overloaded();
    if conn.http.router.suppress_envoy_headers {
        response.headers_mut().remove("x-envoy-overloaded");
    }
    response
}

/// The body to send and how the client is getting on with it: nothing when the request has
/// none, buffered when it may be sent more than once and is small enough, else streamed.
/// `Err` when the client's body broke while it was being buffered.
async fn prepare_body(
    body: Incoming,
    wants_copies: bool,
    received: Option<Arc<std::sync::atomic::AtomicU64>>,
) -> Result<(UpstreamBody, watch::Receiver<ClientBodyState>), ()> {
    if body.is_end_stream() {
        return Ok((UpstreamBody::empty(), complete_body()));
    }
    let small = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_BUFFERED_BODY);
    if !(wants_copies && small) {
        let (body, state) = ClientBody::new(body, received);
        return Ok((UpstreamBody::Streamed(body), state));
    }
    let bytes = body.collect().await.map_err(|_| ())?.to_bytes();
    if let Some(received) = received {
        received.store(bytes.len() as u64, Ordering::Relaxed);
    }
    let body = UpstreamBody::Buffered((!bytes.is_empty()).then_some(bytes));
    Ok((body, complete_body()))
}

/// When the client finished sending its request, if it has.
fn completed_at(state: &watch::Receiver<ClientBodyState>) -> Option<Instant> {
    match *state.borrow() {
        ClientBodyState::Complete(at) => Some(at),
        ClientBodyState::Streaming | ClientBodyState::Broken => None,
    }
}

/// Resolves when a try has run out of time. As in Envoy, the route timeout counts from the
/// moment the client finished sending its request (a slow upload is not the upstream's
/// slowness), and the per-try timeout from then or from the try's start, whichever is later.
/// Never resolves while the body is still arriving or after the client broke it off.
async fn expiry(
    state: &mut watch::Receiver<ClientBodyState>,
    timeout: Option<Duration>,
    per_try: Option<Duration>,
    try_started: Instant,
) {
    let complete = match state.wait_for(|s| *s != ClientBodyState::Streaming).await {
        Ok(s) => match *s {
            ClientBodyState::Complete(at) => Some(at),
            _ => None,
        },
        // The body was dropped unfinished: the try ends with the exchange itself.
        Err(_) => None,
    };
    let Some(complete) = complete else {
        return std::future::pending().await;
    };
    let route = timeout.map(|t| complete + t);
    let try_ = per_try.map(|t| complete.max(try_started) + t);
    match route.into_iter().chain(try_).min() {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The upstream's response on its way down: hop-by-hop headers off; a 101 hands both
/// connections to a tunnel. The HTTP version is the downstream connection's business, not
/// the upstream's (as in Envoy): an HTTP/1.0 upstream must not turn the client's HTTP/1.1
/// answer into HTTP/1.0, which would also close its keep-alive connection after each
/// response. hyper writes a response marked HTTP/1.1 in the downstream's own version.
fn downstream_response(
    response: Response<PooledBody>,
    downstream_upgrade: Option<hyper::upgrade::OnUpgrade>,
    deadline: Option<Instant>,
) -> Response<ResponseBody> {
    let mut response = response;
    *response.version_mut() = hyper::Version::HTTP_11;
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(response.headers_mut(), switching);
    if switching {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut response);
            Pool::detach(response.body_mut());
            tokio::spawn(async move {
                let (Ok(down), Ok(up)) = tokio::join!(downstream, upstream) else {
                    return;
                };
                let _ = crate::tcp::proxy(TokioIo::new(down), TokioIo::new(up), None).await;
            });
        }
    }
    let deadline = if switching { None } else { deadline };
    response.map(|body| ResponseBody::Upstream(UpstreamResponse::new(body, deadline)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A try's result in the router's terms: an answer is an answer (whatever the client
    /// did), a broken client body explains any failure, a timeout is the route's only once
    /// its deadline has passed.
    #[test]
    fn tries_are_classified_as_envoys_router_does() {
        use ClientBodyState::Broken;
        let sent = ClientBodyState::Complete(Instant::now());
        let answer = |status: u16, grpc: Option<&str>| {
            let mut response = Response::builder().status(status);
            if let Some(code) = grpc {
                response = response.header("grpc-status", code);
            }
            Some(Ok(response.body(()).unwrap()))
        };
        let shown = |tried: Tried<()>| match tried {
            Tried::ClientBroke => "client broke".to_string(),
            Tried::Answered(_, outcome) => format!("answered {outcome:?}"),
            Tried::NoResponse(failure) => format!("{failure:?}"),
        };
        let timed_out = || None::<Result<Response<()>, UpstreamError>>;
        let table = [
            (
                answer(503, None),
                Broken,
                false,
                "answered Response { status: 503, grpc_status: None, envoy_ratelimited: false }",
            ),
            (
                answer(200, Some("14")),
                sent,
                false,
                "answered Response { status: 200, grpc_status: Some(14), envoy_ratelimited: false }",
            ),
            (Some(Err(UpstreamError::Overflow)), sent, false, "Overflow"),
            (Some(Err(UpstreamError::Overflow)), Broken, false, "client broke"),
            (timed_out(), Broken, true, "client broke"),
            (timed_out(), sent, true, "RouteTimeout"),
            (timed_out(), sent, false, "PerTryTimeout"),
        ];
        for (result, client, past_deadline, want) in table {
            assert_eq!(shown(classify(result, client, past_deadline)), want);
        }
    }

    /// Each failure as Envoy reports it: the status and body the client gets, the flag and
    /// details in the access line, and whether a retry policy is asked.
    #[test]
    fn failures_are_answered_and_reported_as_envoy_does() {
        use NoResponse::*;
        let table = [
            (
                Overflow,
                503,
                local::OVERFLOW,
                "UO",
                details::OVERFLOW,
                None,
            ),
            (
                ConnectFailure,
                503,
                local::CONNECT_FAILURE,
                "UF",
                details::CONNECT_FAILURE,
                Some(UpstreamOutcome::ConnectFailure),
            ),
            (
                Reset,
                503,
                local::RESET,
                "UC",
                details::CONNECTION_TERMINATION,
                Some(UpstreamOutcome::Reset { request_sent: true }),
            ),
            (
                RouteTimeout,
                504,
                local::UPSTREAM_TIMEOUT,
                "UT",
                "response_timeout",
                None,
            ),
            (
                PerTryTimeout,
                504,
                local::UPSTREAM_TIMEOUT,
                "UT",
                "upstream_per_try_timeout",
                Some(UpstreamOutcome::PerTryTimeout),
            ),
        ];
        for (failure, status, text, flag, why, outcome) in table {
            assert_eq!(
                failure.status_and_text(),
                (StatusCode::from_u16(status).unwrap(), text)
            );
            let (f, d) = failure.flag();
            assert_eq!((f.short(), d), (flag, why), "{failure:?}");
            assert_eq!(failure.outcome(), outcome, "{failure:?}");
            let mut info = StreamInfo::new(true, true);
            let reply = fail(&mut info, failure, true, || failure.reply());
            assert_eq!(reply.status().as_u16(), status);
            // URX after the failure's own flag: Envoy's printing order.
            assert_eq!(info.flags.to_string(), format!("{flag},URX"));
        }
    }
}
