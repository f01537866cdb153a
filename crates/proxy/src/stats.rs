//! Counters and gauges under Envoy's names, kept in a [`Stats`] registry that outlives config
//! snapshots (a cluster's counters survive a CDS update) and rendered in Prometheus text.
//!
//! The hot path holds an `Arc` to its cluster's or connection manager's stats and bumps
//! relaxed atomics: no lookup, no lock, no formatting per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Gauge {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Response classes 1xx..5xx, indexed by `status / 100 - 1`.
#[derive(Debug, Default)]
pub struct ByClass([Counter; 5]);

impl ByClass {
    #[inline]
    pub fn record(&self, status: u16) {
        if let Some(counter) = self.0.get((status / 100) as usize - 1) {
            counter.inc();
        }
    }
}

/// `cluster.<name>.*`
#[derive(Debug, Default)]
pub struct ClusterStats {
    pub upstream_rq_total: Counter,
    pub upstream_rq_xx: ByClass,
    pub upstream_rq_active: Gauge,
    pub upstream_rq_pending_active: Gauge,
    pub upstream_rq_timeout: Counter,
    pub upstream_rq_per_try_timeout: Counter,
    pub upstream_rq_retry: Counter,
    pub upstream_rq_retry_overflow: Counter,
    pub upstream_rq_pending_overflow: Counter,
    pub upstream_cx_total: Counter,
    pub upstream_cx_active: Gauge,
    pub upstream_cx_connect_fail: Counter,
    pub upstream_cx_overflow: Counter,
    pub upstream_cx_none_healthy: Counter,
    pub membership_healthy: Gauge,
    pub membership_total: Gauge,
    pub outlier_detection_ejections_active: Gauge,
    pub outlier_detection_ejections_enforced_total: Counter,
}

/// `http.<stat_prefix>.*`
#[derive(Debug, Default)]
pub struct HttpStats {
    pub downstream_rq_total: Counter,
    pub downstream_rq_xx: ByClass,
    pub downstream_rq_active: Gauge,
    pub downstream_cx_total: Counter,
    pub downstream_cx_active: Gauge,
    pub no_route: Counter,
    pub no_cluster: Counter,
    pub rq_direct_response: Counter,
    pub rq_redirect: Counter,
}

/// `listener.<address>.*`
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_active: Gauge,
    pub no_filter_chain_match: Counter,
}

/// The registry: stats by name, created on first use and kept for the process's life.
#[derive(Debug, Default)]
pub struct Stats {
    clusters: Mutex<BTreeMap<String, Arc<ClusterStats>>>,
    http: Mutex<BTreeMap<String, Arc<HttpStats>>>,
    listeners: Mutex<BTreeMap<String, Arc<ListenerStats>>>,
}

fn get_or_create<T: Default>(map: &Mutex<BTreeMap<String, Arc<T>>>, name: &str) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(stats) = map.get(name) {
        return stats.clone();
    }
    let stats = Arc::<T>::default();
    map.insert(name.to_owned(), stats.clone());
    stats
}

impl Stats {
    pub fn cluster(&self, name: &str) -> Arc<ClusterStats> {
        get_or_create(&self.clusters, name)
    }
    pub fn http(&self, stat_prefix: &str) -> Arc<HttpStats> {
        get_or_create(&self.http, stat_prefix)
    }
    pub fn listener(&self, name: &str) -> Arc<ListenerStats> {
        get_or_create(&self.listeners, name)
    }

    /// Prometheus text exposition, Envoy's metric and label names.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        let label = "envoy_cluster_name";
        let counter = |out: &mut String, name: &str, f: &dyn Fn(&ClusterStats) -> u64| {
            family(
                out,
                &format!("envoy_cluster_{name}"),
                "counter",
                label,
                &clusters,
                f,
            )
        };
        counter(&mut out, "upstream_rq_total", &|s| {
            s.upstream_rq_total.get()
        });
        counter(&mut out, "upstream_rq_timeout", &|s| {
            s.upstream_rq_timeout.get()
        });
        counter(&mut out, "upstream_rq_per_try_timeout", &|s| {
            s.upstream_rq_per_try_timeout.get()
        });
        counter(&mut out, "upstream_rq_retry", &|s| {
            s.upstream_rq_retry.get()
        });
        counter(&mut out, "upstream_rq_retry_overflow", &|s| {
            s.upstream_rq_retry_overflow.get()
        });
        counter(&mut out, "upstream_rq_pending_overflow", &|s| {
            s.upstream_rq_pending_overflow.get()
        });
        counter(&mut out, "upstream_cx_total", &|s| {
            s.upstream_cx_total.get()
        });
        counter(&mut out, "upstream_cx_connect_fail", &|s| {
            s.upstream_cx_connect_fail.get()
        });
        counter(&mut out, "upstream_cx_overflow", &|s| {
            s.upstream_cx_overflow.get()
        });
        counter(&mut out, "upstream_cx_none_healthy", &|s| {
            s.upstream_cx_none_healthy.get()
        });
        counter(
            &mut out,
            "outlier_detection_ejections_enforced_total",
            &|s| s.outlier_detection_ejections_enforced_total.get(),
        );
        let gauge = |out: &mut String, name: &str, f: &dyn Fn(&ClusterStats) -> u64| {
            family(
                out,
                &format!("envoy_cluster_{name}"),
                "gauge",
                label,
                &clusters,
                f,
            )
        };
        gauge(&mut out, "upstream_rq_active", &|s| {
            s.upstream_rq_active.get().max(0) as u64
        });
        gauge(&mut out, "upstream_rq_pending_active", &|s| {
            s.upstream_rq_pending_active.get().max(0) as u64
        });
        gauge(&mut out, "upstream_cx_active", &|s| {
            s.upstream_cx_active.get().max(0) as u64
        });
        gauge(&mut out, "membership_healthy", &|s| {
            s.membership_healthy.get().max(0) as u64
        });
        gauge(&mut out, "membership_total", &|s| {
            s.membership_total.get().max(0) as u64
        });
        gauge(&mut out, "outlier_detection_ejections_active", &|s| {
            s.outlier_detection_ejections_active.get().max(0) as u64
        });
        by_class(
            &mut out,
            "envoy_cluster_upstream_rq_xx",
            label,
            &clusters,
            |s| &s.upstream_rq_xx,
        );
        drop(clusters);

        let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let label = "envoy_http_conn_manager_prefix";
        let counter = |out: &mut String, name: &str, f: &dyn Fn(&HttpStats) -> u64| {
            family(
                out,
                &format!("envoy_http_{name}"),
                "counter",
                label,
                &http,
                f,
            )
        };
        counter(&mut out, "downstream_rq_total", &|s| {
            s.downstream_rq_total.get()
        });
        counter(&mut out, "downstream_cx_total", &|s| {
            s.downstream_cx_total.get()
        });
        counter(&mut out, "no_route", &|s| s.no_route.get());
        counter(&mut out, "no_cluster", &|s| s.no_cluster.get());
        counter(&mut out, "rq_direct_response", &|s| {
            s.rq_direct_response.get()
        });
        counter(&mut out, "rq_redirect", &|s| s.rq_redirect.get());
        family(
            &mut out,
            "envoy_http_downstream_rq_active",
            "gauge",
            label,
            &http,
            &|s| s.downstream_rq_active.get().max(0) as u64,
        );
        family(
            &mut out,
            "envoy_http_downstream_cx_active",
            "gauge",
            label,
            &http,
            &|s| s.downstream_cx_active.get().max(0) as u64,
        );
        by_class(&mut out, "envoy_http_downstream_rq_xx", label, &http, |s| {
            &s.downstream_rq_xx
        });
        drop(http);

        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let label = "envoy_listener_address";
        family(
            &mut out,
            "envoy_listener_downstream_cx_total",
            "counter",
            label,
            &listeners,
            &|s| s.downstream_cx_total.get(),
        );
        family(
            &mut out,
            "envoy_listener_downstream_cx_active",
            "gauge",
            label,
            &listeners,
            &|s| s.downstream_cx_active.get().max(0) as u64,
        );
        family(
            &mut out,
            "envoy_listener_no_filter_chain_match",
            "counter",
            label,
            &listeners,
            &|s| s.no_filter_chain_match.get(),
        );
        out
    }
}

fn family<T>(
    out: &mut String,
    metric: &str,
    kind: &str,
    label: &str,
    map: &BTreeMap<String, Arc<T>>,
    value: &dyn Fn(&T) -> u64,
) {
    if map.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE {metric} {kind}");
    for (name, stats) in map {
        let _ = writeln!(
            out,
            "{metric}{{{label}=\"{}\"}} {}",
            escape(name),
            value(stats)
        );
    }
}

fn by_class<T>(
    out: &mut String,
    metric: &str,
    label: &str,
    map: &BTreeMap<String, Arc<T>>,
    classes: impl Fn(&T) -> &ByClass,
) {
    if map.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE {metric} counter");
    for (name, stats) in map {
        for (i, counter) in classes(stats).0.iter().enumerate() {
            let _ = writeln!(
                out,
                "{metric}{{envoy_response_code_class=\"{}\",{label}=\"{}\"}} {}",
                i + 1,
                escape(name),
                counter.get()
            );
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_envoy_names_and_labels() {
        let stats = Stats::default();
        let cluster = stats.cluster("upstream");
        cluster.upstream_rq_total.inc();
        cluster.upstream_rq_xx.record(200);
        stats.http("ingress_http").downstream_rq_total.inc();
        let text = stats.prometheus();
        assert!(
            text.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"upstream\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"upstream\"} 1"
        ));
        assert!(text.contains(
            "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress_http\"} 1"
        ));
        assert!(
            Arc::ptr_eq(&cluster, &stats.cluster("upstream")),
            "one stats object per name"
        );
    }
}
