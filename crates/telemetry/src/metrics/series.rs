//! One series' values: lock-free counters and fixed-bucket histograms. Recording is a few
//! relaxed atomic adds; rendering reads each atomic once.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Envoy's default histogram bucket bounds (`HistogramSettingsImpl::defaultBuckets`). Istio
/// sets no `histogram_bucket_settings` by default (only the
/// `sidecar.istio.io/statsHistogramBuckets` annotation does), so its duration (ms) and byte
/// histograms both use these.
pub const ENVOY_DEFAULT_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

const BUCKETS: usize = ENVOY_DEFAULT_BUCKETS.len();

/// A histogram of integer samples over [`ENVOY_DEFAULT_BUCKETS`]. Each slot counts the
/// samples of its own bucket (the last one: above every bound); rendering accumulates them,
/// and `_count` is their total, so one rendering is always self-consistent.
pub(crate) struct Histogram {
    slots: [AtomicU64; BUCKETS + 1],
    sum: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, value: u64) {
        // `le` is inclusive: a sample equal to a bound falls in that bound's bucket.
        let slot = ENVOY_DEFAULT_BUCKETS.partition_point(|bound| *bound < value as f64);
        self.slots[slot].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// Appends `_bucket` (cumulative, then `+Inf`), `_sum` and `_count` lines.
    pub(crate) fn render(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0u64;
        for (bound, slot) in ENVOY_DEFAULT_BUCKETS.iter().zip(&self.slots) {
            cumulative += slot.load(Relaxed);
            // f64's Display never uses an exponent: 3600000, 0.5 — Envoy prints the same.
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.slots[BUCKETS].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum.load(Relaxed));
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The four metrics of one HTTP label set.
pub(crate) struct HttpSeries {
    /// The rendered labels, escaped, without braces: computed once, when the series is made.
    pub(crate) labels: String,
    pub(crate) requests: AtomicU64,
    pub(crate) duration_ms: Histogram,
    pub(crate) request_bytes: Histogram,
    pub(crate) response_bytes: Histogram,
    /// Which metrics were ever recorded ([`crate::metrics::Families`] bits): a disabled one
    /// is not printed.
    touched: AtomicU8,
}

impl HttpSeries {
    pub(crate) fn new(labels: String) -> HttpSeries {
        HttpSeries {
            labels,
            requests: AtomicU64::new(0),
            duration_ms: Histogram::new(),
            request_bytes: Histogram::new(),
            response_bytes: Histogram::new(),
            touched: AtomicU8::new(0),
        }
    }

    /// Records the metrics of `families` (bits of [`crate::metrics::Families`]).
    pub(crate) fn record(
        &self,
        families: u8,
        duration_ms: u64,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        use crate::metrics::Families as F;
        if self.touched.load(Relaxed) & families != families {
            self.touched.fetch_or(families, Relaxed);
        }
        if families & F::REQUEST_COUNT.0 != 0 {
            self.requests.fetch_add(1, Relaxed);
        }
        if families & F::REQUEST_DURATION.0 != 0 {
            self.duration_ms.record(duration_ms);
        }
        if families & F::REQUEST_SIZE.0 != 0 {
            self.request_bytes.record(request_bytes);
        }
        if families & F::RESPONSE_SIZE.0 != 0 {
            self.response_bytes.record(response_bytes);
        }
    }

    pub(crate) fn has(&self, family: u8) -> bool {
        self.touched.load(Relaxed) & family != 0
    }
}

/// Which of a TCP series' counters exist. Envoy creates a counter on its first add (even of
/// 0) and only then prints it, so an open connection has no `closed` line yet.
pub(crate) const TCP_OPENED: u8 = 1;
pub(crate) const TCP_CLOSED: u8 = 2;
pub(crate) const TCP_SENT: u8 = 4;
pub(crate) const TCP_RECEIVED: u8 = 8;

/// The four counters of one TCP label set.
pub(crate) struct TcpSeries {
    pub(crate) labels: String,
    pub(crate) opened: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) received_bytes: AtomicU64,
    touched: AtomicU8,
}

impl TcpSeries {
    pub(crate) fn new(labels: String) -> TcpSeries {
        TcpSeries {
            labels,
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            touched: AtomicU8::new(0),
        }
    }

    /// Marks counters as existing; a load first, so the common case writes nothing shared.
    pub(crate) fn touch(&self, which: u8) {
        if self.touched.load(Relaxed) & which != which {
            self.touched.fetch_or(which, Relaxed);
        }
    }

    pub(crate) fn has(&self, which: u8) -> bool {
        self.touched.load(Relaxed) & which != 0
    }
}
