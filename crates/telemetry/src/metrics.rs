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

/// The series maps hash every label string of a request to find its series: foldhash
/// (randomly seeded) does that several times faster than the default SipHash. Label values
/// come from the mesh's own proxies and registry.
type HashMap<K, V> = foldhash::HashMap<K, V>;
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

pub use labels::{
    Peer, Protocol, Reporter, RequestLabels, SecurityPolicy, TagEdits, TcpLabels,
    REQUEST_LABEL_NAMES, TCP_LABEL_NAMES,
};
pub use series::ENVOY_DEFAULT_BUCKETS;

use labels::{
    request_label_text, request_label_text_edited, tcp_label_text, tcp_label_text_edited,
};
use series::{Histogram, HttpSeries, TcpSeries, TCP_CLOSED, TCP_OPENED, TCP_RECEIVED, TCP_SENT};

pub const REQUESTS_TOTAL: &str = "istio_requests_total";
pub const REQUEST_DURATION_MILLISECONDS: &str = "istio_request_duration_milliseconds";
pub const REQUEST_BYTES: &str = "istio_request_bytes";
pub const RESPONSE_BYTES: &str = "istio_response_bytes";
pub const TCP_CONNECTIONS_OPENED_TOTAL: &str = "istio_tcp_connections_opened_total";
pub const TCP_CONNECTIONS_CLOSED_TOTAL: &str = "istio_tcp_connections_closed_total";
pub const TCP_SENT_BYTES_TOTAL: &str = "istio_tcp_sent_bytes_total";
pub const TCP_RECEIVED_BYTES_TOTAL: &str = "istio_tcp_received_bytes_total";

/// A set of Istio's standard metrics (the Telemetry API's `metric` names): which ones a
/// proxy records. Disabled ones are neither counted nor printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Families(pub u8);

impl Families {
    pub const REQUEST_COUNT: Families = Families(1);
    pub const REQUEST_DURATION: Families = Families(2);
    pub const REQUEST_SIZE: Families = Families(4);
    pub const RESPONSE_SIZE: Families = Families(8);
    pub const TCP_OPENED_CONNECTIONS: Families = Families(16);
    pub const TCP_CLOSED_CONNECTIONS: Families = Families(32);
    pub const TCP_SENT_BYTES: Families = Families(64);
    pub const TCP_RECEIVED_BYTES: Families = Families(128);
    /// The four HTTP metrics.
    pub const HTTP: Families = Families(0x0f);
    pub const ALL: Families = Families(0xff);
    pub const NONE: Families = Families(0);

    /// By the Telemetry API's name (`REQUEST_COUNT`, …; `ALL_METRICS` is every one).
    pub fn by_name(name: &str) -> Option<Families> {
        Some(match name {
            "ALL_METRICS" => Families::ALL,
            "REQUEST_COUNT" => Families::REQUEST_COUNT,
            "REQUEST_DURATION" => Families::REQUEST_DURATION,
            "REQUEST_SIZE" => Families::REQUEST_SIZE,
            "RESPONSE_SIZE" => Families::RESPONSE_SIZE,
            "TCP_OPENED_CONNECTIONS" => Families::TCP_OPENED_CONNECTIONS,
            "TCP_CLOSED_CONNECTIONS" => Families::TCP_CLOSED_CONNECTIONS,
            "TCP_SENT_BYTES" => Families::TCP_SENT_BYTES,
            "TCP_RECEIVED_BYTES" => Families::TCP_RECEIVED_BYTES,
            _ => return None,
        })
    }

    pub fn contains(self, other: Families) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn without(self, other: Families) -> Families {
        Families(self.0 & !other.0)
    }
}

/// Picks one of a series' histograms, or reads one of its counters, for rendering.
type HistogramOf = fn(&HttpSeries) -> &Histogram;
type CounterOf = fn(&TcpSeries) -> u64;

/// Thread-safe store of Istio's standard metrics; one per proxy, shared by every worker.
#[derive(Default)]
pub struct IstioMetrics {
    http: RwLock<HashMap<RequestLabels, HttpSeries>>,
    tcp: RwLock<HashMap<TcpLabels, TcpSeries>>,
    /// Series whose labels the Telemetry API's tag overrides changed, by their label text
    /// (the overrides are evaluated per request, so the text is the key).
    http_edited: RwLock<HashMap<String, HttpSeries>>,
    tcp_edited: RwLock<HashMap<String, TcpSeries>>,
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
        self.record_request_of(
            Families::ALL,
            labels,
            duration,
            request_bytes,
            response_bytes,
        );
    }

    /// [`record_request`](Self::record_request), counting only the HTTP metrics of
    /// `families` (the others stay unprinted for this series).
    pub fn record_request_of(
        &self,
        families: Families,
        labels: &RequestLabels,
        duration: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        self.record_request_edited(
            families,
            labels,
            &[],
            duration,
            request_bytes,
            response_bytes,
        );
    }

    /// [`record_request_of`](Self::record_request_of) with the labels changed by `edits`
    /// (the tag overrides of these metrics, evaluated for this request).
    pub fn record_request_edited(
        &self,
        families: Families,
        labels: &RequestLabels,
        edits: &TagEdits,
        duration: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        let http = families.0 & Families::HTTP.0;
        if http == 0 {
            return;
        }
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let record = |s: &HttpSeries| s.record(http, duration_ms, request_bytes, response_bytes);
        if edits.is_empty() {
            with_series(
                &self.http,
                labels,
                request_label_text,
                HttpSeries::new,
                record,
            );
        } else {
            let text = request_label_text_edited(labels, edits);
            with_series(
                &self.http_edited,
                &text,
                String::clone,
                HttpSeries::new,
                record,
            );
        }
    }

    /// A connection's peer is known (Istio reports the open then, or at close at the latest).
    /// `edits`: the metric's tag overrides for this connection (usually none).
    pub fn tcp_opened(&self, labels: &TcpLabels, edits: &TagEdits) {
        self.with_tcp(labels, edits, TCP_OPENED, |s| {
            s.opened.fetch_add(1, Relaxed);
        });
    }

    pub fn tcp_closed(&self, labels: &TcpLabels, edits: &TagEdits) {
        self.with_tcp(labels, edits, TCP_CLOSED, |s| {
            s.closed.fetch_add(1, Relaxed);
        });
    }

    /// Adds bytes moved since the last call: `sent` to the downstream, `received` from it
    /// (Istio reports deltas every 5 s and at close).
    pub fn tcp_bytes(&self, labels: &TcpLabels, sent: u64, received: u64) {
        self.tcp_bytes_of(Families::ALL, labels, &[], sent, received);
    }

    /// [`tcp_bytes`](Self::tcp_bytes) for the byte counters among `families` only, with the
    /// labels changed by `edits`.
    pub fn tcp_bytes_of(
        &self,
        families: Families,
        labels: &TcpLabels,
        edits: &TagEdits,
        sent: u64,
        received: u64,
    ) {
        let mut which = 0;
        if families.contains(Families::TCP_SENT_BYTES) {
            which |= TCP_SENT;
        }
        if families.contains(Families::TCP_RECEIVED_BYTES) {
            which |= TCP_RECEIVED;
        }
        if which == 0 {
            return;
        }
        self.with_tcp(labels, edits, which, |s| {
            if which & TCP_SENT != 0 {
                s.sent_bytes.fetch_add(sent, Relaxed);
            }
            if which & TCP_RECEIVED != 0 {
                s.received_bytes.fetch_add(received, Relaxed);
            }
        });
    }

    fn with_tcp(&self, labels: &TcpLabels, edits: &TagEdits, which: u8, add: impl Fn(&TcpSeries)) {
        let record = |s: &TcpSeries| {
            s.touch(which);
            add(s);
        };
        if edits.is_empty() {
            with_series(&self.tcp, labels, tcp_label_text, TcpSeries::new, record);
        } else {
            let text = tcp_label_text_edited(labels, edits);
            with_series(
                &self.tcp_edited,
                &text,
                String::clone,
                TcpSeries::new,
                record,
            );
        }
    }

    /// Prometheus text exposition 0.0.4, as Envoy's `/stats/prometheus` prints these: the
    /// counters, then the histograms, each family under its `# TYPE` line in name order,
    /// its series sorted by label text. Families without series are left out.
    pub fn render_prometheus(&self, out: &mut String) {
        let http = read(&self.http);
        let edited = read(&self.http_edited);
        let mut series: Vec<&HttpSeries> = http.values().chain(edited.values()).collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        let of = |family: Families| -> Vec<&HttpSeries> {
            series.iter().copied().filter(|s| s.has(family.0)).collect()
        };
        family(
            out,
            REQUESTS_TOTAL,
            "counter",
            &of(Families::REQUEST_COUNT),
            |s, out| {
                counter_line(out, REQUESTS_TOTAL, &s.labels, s.requests.load(Relaxed));
            },
        );
        self.render_tcp_counters(out);
        let histograms: [(&str, Families, HistogramOf); 3] = [
            (REQUEST_BYTES, Families::REQUEST_SIZE, |s| &s.request_bytes),
            (
                REQUEST_DURATION_MILLISECONDS,
                Families::REQUEST_DURATION,
                |s| &s.duration_ms,
            ),
            (RESPONSE_BYTES, Families::RESPONSE_SIZE, |s| {
                &s.response_bytes
            }),
        ];
        for (name, which, histogram) in histograms {
            family(out, name, "histogram", &of(which), |s, out| {
                histogram(s).render(name, &s.labels, out);
            });
        }
    }

    fn render_tcp_counters(&self, out: &mut String) {
        let tcp = read(&self.tcp);
        let edited = read(&self.tcp_edited);
        let mut series: Vec<&TcpSeries> = tcp.values().chain(edited.values()).collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        let counters: [(&str, u8, CounterOf); 4] = [
            (TCP_CONNECTIONS_CLOSED_TOTAL, TCP_CLOSED, |s| {
                s.closed.load(Relaxed)
            }),
            (TCP_CONNECTIONS_OPENED_TOTAL, TCP_OPENED, |s| {
                s.opened.load(Relaxed)
            }),
            (TCP_RECEIVED_BYTES_TOTAL, TCP_RECEIVED, |s| {
                s.received_bytes.load(Relaxed)
            }),
            (TCP_SENT_BYTES_TOTAL, TCP_SENT, |s| {
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
