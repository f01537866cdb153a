//! Counters and gauges under Envoy's names, kept in a [`Stats`] registry that outlives config
//! snapshots (a cluster's counters survive a CDS update) and rendered in Prometheus text.
//!
//! The hot path holds an `Arc` to its cluster's or connection manager's stats and bumps
//! relaxed atomics: no lookup, no lock, no formatting per request.

use std::collections::{BTreeMap, HashMap};
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
    /// Requests that had to wait for a connection (or for their own to open).
    pub upstream_rq_pending_total: Counter,
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
    /// Ejections refused because `max_ejection_percent` of the hosts are already ejected.
    pub outlier_detection_ejections_overflow: Counter,
    /// Per detector (see [`EJECTION_TYPES`]): outliers found, and ejections carried out.
    pub outlier_detection_ejections_detected: ByEjectionType,
    pub outlier_detection_ejections_enforced: ByEjectionType,
}

/// Envoy's outlier detectors, in the order [`ByEjectionType`] counts them: the suffix of
/// `outlier_detection.ejections_detected_*` and `ejections_enforced_*`.
pub const EJECTION_TYPES: [&str; 7] = [
    "consecutive_5xx",
    "consecutive_gateway_failure",
    "consecutive_local_origin_failure",
    "success_rate",
    "local_origin_success_rate",
    "failure_percentage",
    "local_origin_failure_percentage",
];

const EJECTIONS_DETECTED: [&str; 7] = [
    "outlier_detection.ejections_detected_consecutive_5xx",
    "outlier_detection.ejections_detected_consecutive_gateway_failure",
    "outlier_detection.ejections_detected_consecutive_local_origin_failure",
    "outlier_detection.ejections_detected_success_rate",
    "outlier_detection.ejections_detected_local_origin_success_rate",
    "outlier_detection.ejections_detected_failure_percentage",
    "outlier_detection.ejections_detected_local_origin_failure_percentage",
];

const EJECTIONS_ENFORCED: [&str; 7] = [
    "outlier_detection.ejections_enforced_consecutive_5xx",
    "outlier_detection.ejections_enforced_consecutive_gateway_failure",
    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
    "outlier_detection.ejections_enforced_success_rate",
    "outlier_detection.ejections_enforced_local_origin_success_rate",
    "outlier_detection.ejections_enforced_failure_percentage",
    "outlier_detection.ejections_enforced_local_origin_failure_percentage",
];

/// One counter per outlier detector, indexed as [`EJECTION_TYPES`].
#[derive(Debug, Default)]
pub struct ByEjectionType(pub [Counter; 7]);

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
    /// The RBAC filter's decisions (Envoy's `rbac.allowed` / `rbac.denied`, and the shadow
    /// engine's).
    pub rbac_allowed: Counter,
    pub rbac_denied: Counter,
    pub rbac_shadow_allowed: Counter,
    pub rbac_shadow_denied: Counter,
    /// Requests the JWT filter refused.
    pub jwt_denied: Counter,
    /// Requests whose body the client broke off (an abort or a framing error), Envoy's
    /// `downstream_rq_rx_reset`: counted here, never against the upstream.
    pub downstream_rq_rx_reset: Counter,
}

/// `rbac_policy.<policy>.*`: what one authorization policy rule decided, named as Istio names
/// it (`ns[<ns>]-policy[<name>]-rule[<i>]`), so a denial's cause shows in the metrics.
#[derive(Debug, Default)]
pub struct RbacPolicyStats {
    pub denied: Counter,
    /// Matched by a LOG (AUDIT) policy.
    pub logged: Counter,
    /// Would have denied (dry-run / shadow rules).
    pub shadow_denied: Counter,
}

/// `listener.<address>.*`
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_active: Gauge,
    pub no_filter_chain_match: Counter,
    /// Envoy's `listener.<name>.ssl.handshake` / `ssl.connection_error`.
    pub ssl_handshake: Counter,
    pub ssl_handshake_error: Counter,
    /// Inspection (listener filters) outlasted `listener_filters_timeout`.
    pub downstream_pre_cx_timeout: Counter,
    /// What the HTTP inspector decided: Envoy's global `http_inspector.*` counters, kept
    /// per listener here (`listener.<name>.http_inspector.http11_found`).
    pub http_inspector_http10_found: Counter,
    pub http_inspector_http11_found: Counter,
    pub http_inspector_http2_found: Counter,
    pub http_inspector_http_not_found: Counter,
    /// Established tcp_proxy connections the proxy shut down, after the drain time, because
    /// a config push made them wrong (`downstream_cx_closed_by_config.<reason>`, see
    /// `listener::recheck`): their cluster was removed, their filter chain's network RBAC
    /// now denies them, or their filter chain (or listener) was removed. A connection that
    /// ends by itself within the drain time is not counted.
    pub closed_by_config_cluster_removed: Counter,
    pub closed_by_config_rbac_denied: Counter,
    pub closed_by_config_filter_chain_removed: Counter,
}

/// The registry: stats by name, created on first use and kept for the process's life.
#[derive(Debug, Default)]
pub struct Stats {
    clusters: Mutex<BTreeMap<String, Arc<ClusterStats>>>,
    http: Mutex<BTreeMap<String, Arc<HttpStats>>>,
    listeners: Mutex<BTreeMap<String, Arc<ListenerStats>>>,
    rbac_policies: Mutex<BTreeMap<String, Arc<RbacPolicyStats>>>,
    /// Istio's standard metrics (`istio_*`), recorded by chains with `istio.stats`.
    pub istio: Arc<bowline_telemetry::metrics::IstioMetrics>,
    /// Peers named by metadata-exchange headers, decoded once each.
    pub peers: Arc<crate::istio_metrics::PeerCache>,
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
    pub fn rbac_policy(&self, name: &str) -> Arc<RbacPolicyStats> {
        get_or_create(&self.rbac_policies, name)
    }

    /// Prometheus text exposition, Envoy's metric and label names
    /// (`envoy_cluster_upstream_rq_total{envoy_cluster_name="…"}`), then Istio's standard
    /// metrics.
    pub fn prometheus(&self) -> String {
        let mut families: Vec<(String, Kind, Vec<String>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.visit(&mut |scope, name, sample| {
            // Envoy's stat names nest with dots (`outlier_detection.ejections_active`);
            // Prometheus names cannot.
            let metric = format!("envoy_{}_{}", scope.prefix, sample.stat.replace('.', "_"));
            let labels = match sample.class {
                Some(class) => format!(
                    "envoy_response_code_class=\"{class}\",{}=\"{}\"",
                    scope.label,
                    escape(name)
                ),
                None => format!("{}=\"{}\"", scope.label, escape(name)),
            };
            let at = *index.entry(metric.clone()).or_insert_with(|| {
                families.push((metric.clone(), sample.kind, Vec::new()));
                families.len() - 1
            });
            families[at]
                .2
                .push(format!("{metric}{{{labels}}} {}", sample.value));
        });
        let mut out = String::new();
        for (metric, kind, lines) in families {
            let kind = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
        self.istio.render_prometheus(&mut out);
        out
    }

    /// Envoy's plain `/stats` text: `cluster.<name>.upstream_rq_2xx: 5`, sorted.
    pub fn envoy_text(&self) -> String {
        let mut lines = Vec::new();
        self.visit(&mut |scope, name, sample| {
            let stat = match sample.class {
                Some(class) => sample.stat.replace("_xx", &format!("_{class}xx")),
                None => sample.stat.to_string(),
            };
            lines.push(format!("{}.{name}.{stat}: {}", scope.prefix, sample.value));
        });
        lines.sort();
        lines.join("\n") + "\n"
    }

    fn visit(&self, f: &mut dyn FnMut(&ScopeKind, &str, Sample)) {
        fn each<T>(
            map: &Mutex<BTreeMap<String, Arc<T>>>,
            scope: &ScopeKind,
            samples: fn(&T, &mut dyn FnMut(Sample)),
            f: &mut dyn FnMut(&ScopeKind, &str, Sample),
        ) {
            let map = map.lock().unwrap_or_else(|e| e.into_inner());
            for (name, stats) in map.iter() {
                samples(stats, &mut |sample| f(scope, name, sample));
            }
        }
        each(&self.clusters, &CLUSTER, ClusterStats::samples, f);
        each(&self.http, &HTTP, HttpStats::samples, f);
        each(&self.listeners, &LISTENER, ListenerStats::samples, f);
        each(
            &self.rbac_policies,
            &RBAC_POLICY,
            RbacPolicyStats::samples,
            f,
        );
        // Process-wide: lines the file access loggers could not queue (see `access_log`).
        f(
            &ACCESS_LOGS,
            "file",
            Sample {
                stat: "dropped",
                kind: Kind::Counter,
                class: None,
                value: crate::access_log::DROPPED.load(std::sync::atomic::Ordering::Relaxed),
            },
        );
    }
}

/// Where a family of stats lives: Envoy's stat prefix and the Prometheus label naming it.
struct ScopeKind {
    prefix: &'static str,
    label: &'static str,
}

const CLUSTER: ScopeKind = ScopeKind {
    prefix: "cluster",
    label: "envoy_cluster_name",
};
const HTTP: ScopeKind = ScopeKind {
    prefix: "http",
    label: "envoy_http_conn_manager_prefix",
};
const RBAC_POLICY: ScopeKind = ScopeKind {
    prefix: "rbac_policy",
    label: "bowline_rbac_policy",
};
const ACCESS_LOGS: ScopeKind = ScopeKind {
    prefix: "access_logs",
    label: "bowline_access_logger",
};
const LISTENER: ScopeKind = ScopeKind {
    prefix: "listener",
    label: "envoy_listener_address",
};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One value: its stat name, kind, response class (for `*_xx`), value.
struct Sample {
    stat: &'static str,
    kind: Kind,
    class: Option<u8>,
    value: u64,
}

fn counter(stat: &'static str, c: &Counter) -> Sample {
    Sample {
        stat,
        kind: Kind::Counter,
        class: None,
        value: c.get(),
    }
}

fn gauge(stat: &'static str, g: &Gauge) -> Sample {
    Sample {
        stat,
        kind: Kind::Gauge,
        class: None,
        value: g.get().max(0) as u64,
    }
}

fn classes(stat: &'static str, by: &ByClass, f: &mut dyn FnMut(Sample)) {
    for (i, c) in by.0.iter().enumerate() {
        f(Sample {
            stat,
            kind: Kind::Counter,
            class: Some(i as u8 + 1),
            value: c.get(),
        });
    }
}

impl ClusterStats {
    fn samples(&self, f: &mut dyn FnMut(Sample)) {
        f(counter("upstream_rq_total", &self.upstream_rq_total));
        f(counter("upstream_rq_timeout", &self.upstream_rq_timeout));
        f(counter(
            "upstream_rq_per_try_timeout",
            &self.upstream_rq_per_try_timeout,
        ));
        f(counter("upstream_rq_retry", &self.upstream_rq_retry));
        f(counter(
            "upstream_rq_retry_overflow",
            &self.upstream_rq_retry_overflow,
        ));
        f(counter(
            "upstream_rq_pending_total",
            &self.upstream_rq_pending_total,
        ));
        f(counter(
            "upstream_rq_pending_overflow",
            &self.upstream_rq_pending_overflow,
        ));
        f(counter("upstream_cx_total", &self.upstream_cx_total));
        f(counter(
            "upstream_cx_connect_fail",
            &self.upstream_cx_connect_fail,
        ));
        f(counter("upstream_cx_overflow", &self.upstream_cx_overflow));
        f(counter(
            "upstream_cx_none_healthy",
            &self.upstream_cx_none_healthy,
        ));
        f(counter(
            "outlier_detection.ejections_enforced_total",
            &self.outlier_detection_ejections_enforced_total,
        ));
        f(counter(
            "outlier_detection.ejections_overflow",
            &self.outlier_detection_ejections_overflow,
        ));
        for (i, c) in self
            .outlier_detection_ejections_detected
            .0
            .iter()
            .enumerate()
        {
            f(counter(EJECTIONS_DETECTED[i], c));
        }
        for (i, c) in self
            .outlier_detection_ejections_enforced
            .0
            .iter()
            .enumerate()
        {
            f(counter(EJECTIONS_ENFORCED[i], c));
        }
        f(gauge("upstream_rq_active", &self.upstream_rq_active));
        f(gauge(
            "upstream_rq_pending_active",
            &self.upstream_rq_pending_active,
        ));
        f(gauge("upstream_cx_active", &self.upstream_cx_active));
        f(gauge("membership_healthy", &self.membership_healthy));
        f(gauge("membership_total", &self.membership_total));
        f(gauge(
            "outlier_detection.ejections_active",
            &self.outlier_detection_ejections_active,
        ));
        classes("upstream_rq_xx", &self.upstream_rq_xx, f);
    }
}

impl HttpStats {
    fn samples(&self, f: &mut dyn FnMut(Sample)) {
        f(counter("downstream_rq_total", &self.downstream_rq_total));
        f(counter("downstream_cx_total", &self.downstream_cx_total));
        f(counter("no_route", &self.no_route));
        f(counter("no_cluster", &self.no_cluster));
        f(counter("rq_direct_response", &self.rq_direct_response));
        f(counter("rq_redirect", &self.rq_redirect));
        f(counter("rbac_allowed", &self.rbac_allowed));
        f(counter("rbac_denied", &self.rbac_denied));
        f(counter("rbac_shadow_allowed", &self.rbac_shadow_allowed));
        f(counter("rbac_shadow_denied", &self.rbac_shadow_denied));
        f(counter("jwt_denied", &self.jwt_denied));
        f(counter(
            "downstream_rq_rx_reset",
            &self.downstream_rq_rx_reset,
        ));
        f(gauge("downstream_rq_active", &self.downstream_rq_active));
        f(gauge("downstream_cx_active", &self.downstream_cx_active));
        classes("downstream_rq_xx", &self.downstream_rq_xx, f);
    }
}

impl RbacPolicyStats {
    fn samples(&self, f: &mut dyn FnMut(Sample)) {
        f(counter("denied", &self.denied));
        f(counter("logged", &self.logged));
        f(counter("shadow_denied", &self.shadow_denied));
    }
}

impl ListenerStats {
    fn samples(&self, f: &mut dyn FnMut(Sample)) {
        f(counter("downstream_cx_total", &self.downstream_cx_total));
        f(gauge("downstream_cx_active", &self.downstream_cx_active));
        f(counter(
            "no_filter_chain_match",
            &self.no_filter_chain_match,
        ));
        f(counter("ssl_handshake", &self.ssl_handshake));
        f(counter("ssl_connection_error", &self.ssl_handshake_error));
        f(counter(
            "downstream_pre_cx_timeout",
            &self.downstream_pre_cx_timeout,
        ));
        f(counter(
            "http_inspector.http10_found",
            &self.http_inspector_http10_found,
        ));
        f(counter(
            "http_inspector.http11_found",
            &self.http_inspector_http11_found,
        ));
        f(counter(
            "http_inspector.http2_found",
            &self.http_inspector_http2_found,
        ));
        f(counter(
            "http_inspector.http_not_found",
            &self.http_inspector_http_not_found,
        ));
        f(counter(
            "downstream_cx_closed_by_config.cluster_removed",
            &self.closed_by_config_cluster_removed,
        ));
        f(counter(
            "downstream_cx_closed_by_config.rbac_denied",
            &self.closed_by_config_rbac_denied,
        ));
        f(counter(
            "downstream_cx_closed_by_config.filter_chain_removed",
            &self.closed_by_config_filter_chain_removed,
        ));
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

    #[test]
    fn ejection_stats_are_named_per_detector() {
        for (i, kind) in EJECTION_TYPES.iter().enumerate() {
            assert!(EJECTIONS_DETECTED[i].ends_with(&format!("_detected_{kind}")));
            assert!(EJECTIONS_ENFORCED[i].ends_with(&format!("_enforced_{kind}")));
        }
        let stats = Stats::default();
        stats.cluster("c").outlier_detection_ejections_enforced.0[5].inc();
        let text = stats.envoy_text();
        assert!(
            text.contains("cluster.c.outlier_detection.ejections_enforced_failure_percentage: 1"),
            "{text}"
        );
    }
}
