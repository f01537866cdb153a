//! Ejection by statistics and retry budgets, end to end in one process against real
//! upstreams on 127.0.0.1:0.
//!
//! - One of several upstreams fails most of its requests but never twice in a row, so the
//!   consecutive-5xx detector never trips: failure-percentage ejection (and, in the other
//!   scenario, success-rate ejection) ejects it after an interval, and traffic avoids it.
//! - A retry budget of 20% with a minimum of 1: ten requests fail at once; only as many
//!   retries as the budget allows start, the rest are refused and counted.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use bowline_model as model;
use bowline_testkit::{get, wait_until, ProxyClient};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use model::cluster::{OutlierDetection, RetryBudget};
use model::route::{ClusterSpecifier, RetryOn, RetryPolicy, RouteAction};
use support::*;
use tokio::sync::{Notify, Semaphore};

/// Serves HTTP/1.1 on 127.0.0.1:0 with `answer` (given the request's headers) until dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = Arc<
    dyn Fn(http::HeaderMap) -> std::pin::Pin<Box<dyn std::future::Future<Output = u16> + Send>>
        + Send
        + Sync,
>;

impl Server {
    async fn start(name: &'static str, answer: Answer) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let status = answer(req.headers().clone());
                        async move {
                            let status = status.await;
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("x-upstream", name)
                                    .body(Full::new(Bytes::from(name)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, task }
    }

    /// Answers 503 except every `period`-th request, counting them in `served`: with a
    /// period of 2 or 3, most requests fail but never `period` in a row.
    async fn flaky(name: &'static str, period: usize, served: Arc<AtomicUsize>) -> Server {
        let answer: Answer = Arc::new(move |_| {
            let n = served.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n % period == period - 1 {
                    200
                } else {
                    503
                }
            })
        });
        Server::start(name, answer).await
    }
}

fn proxy_to(
    cluster: model::Cluster,
    retry: Option<RetryPolicy>,
) -> (bowline_proxy::Proxy, SocketAddr) {
    let mut fwd = forward(ClusterSpecifier::Cluster(cluster.name.clone()));
    fwd.retry = retry;
    let routes = route_config(
        "r",
        &["*"],
        vec![route("all", prefix("/"), RouteAction::Forward(fwd))],
    );
    start(vec![http_listener("l", routes)], vec![cluster])
}

/// Sends `n` requests on one connection; counts answers by (upstream, status).
async fn send(client: &mut ProxyClient, n: usize) -> BTreeMap<(String, u16), usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let rsp = client
            .request("GET", "http://app/", &[], TIMEOUT)
            .await
            .unwrap();
        let upstream = rsp.header("x-upstream").unwrap_or("-").to_owned();
        *seen.entry((upstream, rsp.status)).or_default() += 1;
    }
    seen
}

/// The value of cluster `cluster`'s `stat` in the proxy's Prometheus text (0 when absent).
fn stat(proxy: &bowline_proxy::Proxy, cluster: &str, stat: &str) -> u64 {
    let text = proxy.state().stats.prometheus();
    let prefix = format!("envoy_cluster_{stat}{{envoy_cluster_name=\"{cluster}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

/// Sends traffic until `detector`'s enforced ejections reach one (interval boundaries are
/// judged as requests arrive), then checks that the flaky host gets no more of it.
async fn flaky_host_is_ejected(
    proxy: &bowline_proxy::Proxy,
    addr: SocketAddr,
    detector: &str,
    flaky: &Arc<AtomicUsize>,
) {
    let enforced = format!("outlier_detection_ejections_enforced_{detector}");
    wait_until(Duration::from_secs(20), Duration::from_millis(10), || {
        let mut client = ProxyClient::new(addr);
        let ejections = stat(proxy, "svc", &enforced);
        async move {
            if ejections == 0 {
                send(&mut client, 20).await;
                bail!("not ejected yet");
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    assert_eq!(stat(proxy, "svc", &enforced), 1);
    assert_eq!(
        stat(
            proxy,
            "svc",
            "outlier_detection_ejections_enforced_consecutive_5xx"
        ),
        0,
        "never two failures in a row"
    );
    let before = flaky.load(Ordering::SeqCst);
    let seen = send(&mut ProxyClient::new(addr), 60).await;
    assert!(
        seen.keys()
            .all(|(upstream, status)| upstream != "flaky" && *status == 200),
        "traffic avoids the ejected host: {seen:?}"
    );
    assert_eq!(flaky.load(Ordering::SeqCst), before);
}

/// Always 200.
fn ok() -> Answer {
    Arc::new(|_| Box::pin(async { 200 }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_percentage_ejects_a_host_failing_two_requests_in_three() {
    let served = Arc::new(AtomicUsize::new(0));
    let flaky = Server::flaky("flaky", 3, served.clone()).await;
    let a = Server::start("a", ok()).await;
    let b = Server::start("b", ok()).await;
    let mut svc = cluster("svc", &[a.addr, flaky.addr, b.addr]);
    svc.outlier_detection = Some(OutlierDetection {
        interval: Duration::from_millis(500),
        enforcing_success_rate: 0,
        failure_percentage_threshold: 50,
        failure_percentage_minimum_hosts: 3,
        failure_percentage_request_volume: 10,
        enforcing_failure_percentage: 100,
        max_ejection_percent: 50,
        ..Default::default()
    });
    let (proxy, addr) = proxy_to(svc, None);
    flaky_host_is_ejected(&proxy, addr, "failure_percentage", &served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_rate_ejects_the_host_below_the_others() {
    let served = Arc::new(AtomicUsize::new(0));
    let flaky = Server::flaky("flaky", 2, served.clone()).await;
    let mut healthy = Vec::new();
    for name in ["a", "b", "c", "d"] {
        healthy.push(Server::start(name, ok()).await);
    }
    let mut addrs: Vec<SocketAddr> = healthy.iter().map(|s| s.addr).collect();
    addrs.insert(2, flaky.addr);
    let mut svc = cluster("svc", &addrs);
    // Envoy's success-rate defaults but for the request volume.
    svc.outlier_detection = Some(OutlierDetection {
        interval: Duration::from_millis(500),
        success_rate_request_volume: 10,
        max_ejection_percent: 20,
        ..Default::default()
    });
    let (proxy, addr) = proxy_to(svc, None);
    flaky_host_is_ejected(&proxy, addr, "success_rate", &served).await;
}

/// Ten requests fail at once; with a budget of 20% of the ten in flight (at least one), only
/// two retries may start. The upstream fails every request's first try, once all ten have
/// arrived, and holds the retries until the test has counted them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_beyond_the_budget_are_refused_and_counted() {
    const CLIENTS: usize = 10;
    let tries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let first_tries = Arc::new(AtomicUsize::new(0));
    let all_arrived = Arc::new(Notify::new());
    let release = Arc::new(Semaphore::new(0));
    let answer: Answer = {
        let (tries, first_tries) = (tries.clone(), first_tries.clone());
        let (all_arrived, release) = (all_arrived.clone(), release.clone());
        Arc::new(move |headers| {
            let client = headers
                .get("x-client")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            let attempt = {
                let mut tries = tries.lock().unwrap();
                let n = tries.entry(client).or_default();
                *n += 1;
                *n
            };
            let (first_tries, all_arrived, release) =
                (first_tries.clone(), all_arrived.clone(), release.clone());
            Box::pin(async move {
                if attempt > 1 {
                    let _released = release.acquire().await;
                    return 200;
                }
                let waiting = all_arrived.notified();
                if first_tries.fetch_add(1, Ordering::SeqCst) + 1 == CLIENTS {
                    all_arrived.notify_waiters();
                } else {
                    waiting.await;
                }
                503
            })
        })
    };
    let up = Server::start("up", answer).await;
    let mut svc = cluster("svc", &[up.addr]);
    svc.circuit_breakers.retry_budget = Some(RetryBudget {
        budget_percent: 20.0,
        min_retry_concurrency: 1,
    });
    let retry = RetryPolicy {
        num_retries: 3,
        retry_on: [RetryOn::FiveXx].into_iter().collect(),
        retriable_status_codes: Vec::new(),
        per_try_timeout: None,
        backoff: Default::default(),
        avoid_previous_hosts: false,
        host_selection_retry_max_attempts: 1,
    };
    let (proxy, addr) = proxy_to(svc, Some(retry));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(async move {
                let id = i.to_string();
                get(addr, "/", &[("x-client", id.as_str())], TIMEOUT).await
            })
        })
        .collect();

    // Every first try failed; each was retried or refused.
    let (retried, refused) = wait_until(TIMEOUT, Duration::from_millis(10), || {
        let counts = (
            stat(&proxy, "svc", "upstream_rq_retry"),
            stat(&proxy, "svc", "upstream_rq_retry_overflow"),
        );
        async move {
            if counts.0 + counts.1 < CLIENTS as u64 {
                bail!("{counts:?}");
            }
            Ok(counts)
        }
    })
    .await
    .unwrap();
    eprintln!("retried {retried}, refused {refused}");
    // Two retries fit the budget while all ten are in flight; one may find a retried request
    // between its tries (not counted), leaving a budget of 1.
    assert!(
        (1..=2).contains(&retried) && retried + refused == CLIENTS as u64,
        "retried {retried}, refused {refused}"
    );
    let retries_seen = wait_until(TIMEOUT, Duration::from_millis(10), || {
        let seen = tries.lock().unwrap().values().filter(|n| **n > 1).count() as u64;
        async move {
            if seen < retried {
                bail!("{seen} retries arrived");
            }
            Ok(seen)
        }
    })
    .await
    .unwrap();
    assert_eq!(
        retries_seen, retried,
        "refused retries never reach the upstream"
    );

    release.add_permits(CLIENTS);
    let mut statuses = BTreeMap::<u16, u64>::new();
    for client in clients {
        let rsp = client.await.unwrap().unwrap();
        *statuses.entry(rsp.status).or_default() += 1;
    }
    assert_eq!(
        statuses,
        BTreeMap::from([(200, retried), (503, refused)]),
        "the retried requests succeed, the others get the upstream's 503"
    );
}
