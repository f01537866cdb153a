//! Istio's standard metrics, as its stats filter reports them, so Istio's dashboards and
//! PromQL work unchanged against bowline-proxy.
//!
//! - HTTP and gRPC: `istio_requests_total` (counter), `istio_request_duration_milliseconds`,
//!   `istio_request_bytes` and `istio_response_bytes` (histograms).
//! - TCP: `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`,
//!   `istio_tcp_sent_bytes_total`, `istio_tcp_received_bytes_total` (counters).
//!
//! Label names, their order and the values printed for unknowns are Istio's
//! ([`REQUEST_LABEL_NAMES`], [`TCP_LABEL_NAMES`]); histograms use Envoy's default buckets
//! ([`ENVOY_DEFAULT_BUCKETS`]). The store is a map from a label set to its series: recording
//! an existing series takes a read lock, hashes the borrowed labels and adds atomically —
//! no allocation; only a new label set takes the write lock and renders its label text once.
//! Hashing the ~25 label strings (std's SipHash, kept for its resistance to chosen keys: a
//! `Host` header can reach `destination_service`) is most of a record's cost; a folded-
//! multiply hasher measured no faster on these short strings.
//! There is no expiry: label sets are as many as the (workload × service × code × flags)
//! combinations seen, as with Istio without its `rotation_interval`.

mod labels;
mod series;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

pub use labels::{
    Peer, Protocol, Reporter, RequestLabels, SecurityPolicy, TcpLabels, REQUEST_LABEL_NAMES,
    TCP_LABEL_NAMES,
};
pub use series::ENVOY_DEFAULT_BUCKETS;

use labels::{request_label_text, tcp_label_text};
use series::{Histogram, HttpSeries, TcpSeries, TCP_BYTES, TCP_CLOSED, TCP_OPENED};

pub const REQUESTS_TOTAL: &str = "istio_requests_total";
pub const REQUEST_DURATION_MILLISECONDS: &str = "istio_request_duration_milliseconds";
pub const REQUEST_BYTES: &str = "istio_request_bytes";
pub const RESPONSE_BYTES: &str = "istio_response_bytes";
pub const TCP_CONNECTIONS_OPENED_TOTAL: &str = "istio_tcp_connections_opened_total";
pub const TCP_CONNECTIONS_CLOSED_TOTAL: &str = "istio_tcp_connections_closed_total";
pub const TCP_SENT_BYTES_TOTAL: &str = "istio_tcp_sent_bytes_total";
pub const TCP_RECEIVED_BYTES_TOTAL: &str = "istio_tcp_received_bytes_total";

/// Picks one of a series' histograms, or reads one of its counters, for rendering.
type HistogramOf = fn(&HttpSeries) -> &Histogram;
type CounterOf = fn(&TcpSeries) -> u64;

/// Thread-safe store of Istio's standard metrics; one per proxy, shared by every worker.
#[derive(Default)]
pub struct IstioMetrics {
    http: RwLock<HashMap<RequestLabels, HttpSeries>>,
    tcp: RwLock<HashMap<TcpLabels, TcpSeries>>,
}

impl std::fmt::Debug for IstioMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstioMetrics")
            .field("http_series", &read(&self.http).len())
            .field("tcp_series", &read(&self.tcp).len())
            .finish()
    }
}

impl IstioMetrics {
    pub fn new() -> IstioMetrics {
        IstioMetrics::default()
    }

    /// Records one finished HTTP/gRPC request. `duration` runs from the first byte of the
    /// request to the last byte of the response and is recorded in whole milliseconds,
    /// truncated, as Istio does. Istio records the downstream *wire* bytes (headers and
    /// body) received and sent, despite its docs saying "body sizes"; pass the same.
    pub fn record_request(
        &self,
        labels: &RequestLabels,
        duration: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        with_series(
            &self.http,
            labels,
            request_label_text,
            HttpSeries::new,
            |s| s.record(duration_ms, request_bytes, response_bytes),
        );
    }

    /// A connection's peer is known (Istio reports the open then, or at close at the latest).
    pub fn tcp_opened(&self, labels: &TcpLabels) {
        self.with_tcp(labels, TCP_OPENED, |s| {
            s.opened.fetch_add(1, Relaxed);
        });
    }

    pub fn tcp_closed(&self, labels: &TcpLabels) {
        self.with_tcp(labels, TCP_CLOSED, |s| {
            s.closed.fetch_add(1, Relaxed);
        });
    }

    /// Adds bytes moved since the last call: `sent` to the downstream, `received` from it
    /// (Istio reports deltas every 5 s and at close).
    pub fn tcp_bytes(&self, labels: &TcpLabels, sent: u64, received: u64) {
        self.with_tcp(labels, TCP_BYTES, |s| {
            s.sent_bytes.fetch_add(sent, Relaxed);
            s.received_bytes.fetch_add(received, Relaxed);
        });
    }

    fn with_tcp(&self, labels: &TcpLabels, which: u8, add: impl Fn(&TcpSeries)) {
        with_series(&self.tcp, labels, tcp_label_text, TcpSeries::new, |s| {
            s.touch(which);
            add(s);
        });
    }

    /// Prometheus text exposition 0.0.4, as Envoy's `/stats/prometheus` prints these: the
    /// counters, then the histograms, each family under its `# TYPE` line in name order,
    /// its series sorted by label text. Families without series are left out.
    pub fn render_prometheus(&self, out: &mut String) {
        let http = read(&self.http);
        let mut series: Vec<&HttpSeries> = http.values().collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        family(out, REQUESTS_TOTAL, "counter", &series, |s, out| {
            counter_line(out, REQUESTS_TOTAL, &s.labels, s.requests.load(Relaxed));
        });
        self.render_tcp_counters(out);
        let histograms: [(&str, HistogramOf); 3] = [
            (REQUEST_BYTES, |s| &s.request_bytes),
            (REQUEST_DURATION_MILLISECONDS, |s| &s.duration_ms),
            (RESPONSE_BYTES, |s| &s.response_bytes),
        ];
        for (name, histogram) in histograms {
            family(out, name, "histogram", &series, |s, out| {
                histogram(s).render(name, &s.labels, out);
            });
        }
    }

    fn render_tcp_counters(&self, out: &mut String) {
        let tcp = read(&self.tcp);
        let mut series: Vec<&TcpSeries> = tcp.values().collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        let counters: [(&str, u8, CounterOf); 4] = [
            (TCP_CONNECTIONS_CLOSED_TOTAL, TCP_CLOSED, |s| {
                s.closed.load(Relaxed)
            }),
            (TCP_CONNECTIONS_OPENED_TOTAL, TCP_OPENED, |s| {
                s.opened.load(Relaxed)
            }),
            (TCP_RECEIVED_BYTES_TOTAL, TCP_BYTES, |s| {
                s.received_bytes.load(Relaxed)
            }),
            (TCP_SENT_BYTES_TOTAL, TCP_BYTES, |s| {
                s.sent_bytes.load(Relaxed)
            }),
        ];
        for (name, which, value) in counters {
            let present: Vec<&TcpSeries> =
                series.iter().copied().filter(|s| s.has(which)).collect();
            family(out, name, "counter", &present, |s, out| {
                counter_line(out, name, &s.labels, value(s));
            });
        }
    }
}

/// Finds the series of `labels` under the read lock (no allocation), or makes it under the
/// write lock, then applies `record` to it.
fn with_series<L, S>(
    map: &RwLock<HashMap<L, S>>,
    labels: &L,
    label_text: fn(&L) -> String,
    make: fn(String) -> S,
    record: impl FnOnce(&S),
) where
    L: Hash + Eq + Clone,
{
    if let Some(series) = read(map).get(labels) {
        record(series);
        return;
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    let series = map
        .entry(labels.clone())
        .or_insert_with(|| make(label_text(labels)));
    record(series);
}

/// A poisoned lock still holds consistent data: every write under it is a whole insert.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn family<S>(
    out: &mut String,
    name: &str,
    kind: &str,
    series: &[&S],
    mut line: impl FnMut(&S, &mut String),
) {
    if series.is_empty() {
        return;
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
    for s in series {
        line(s, out);
    }
}

fn counter_line(out: &mut String, name: &str, labels: &str, value: u64) {
    use std::fmt::Write;
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}
