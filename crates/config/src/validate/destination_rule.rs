//! DestinationRule checks: host, subsets, and traffic policies (load balancing, connection
//! pools, outlier detection, client TLS), following Istio's `ValidateDestinationRule`.

use super::fields::{self, Findings};
use super::labels;
use crate::diag::{code, Finding};
use crate::istio::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, DestinationRule, LoadBalancerSettings,
    OutlierDetection, RetryBudget, TrafficPolicy,
};
use std::collections::HashSet;

pub fn check(dr: &DestinationRule) -> Vec<Finding> {
    let mut out = Findings::default();
    if dr.host.is_empty() {
        out.error(
            code::REQUIRED,
            "spec.host",
            "a DestinationRule needs a host",
        );
    } else {
        out.push(fields::wildcard_host(&dr.host, "spec.host"));
    }
    if let Some(tp) = &dr.traffic_policy {
        traffic_policy(tp, "spec.trafficPolicy", &mut out);
    }
    if let Some(sel) = &dr.workload_selector {
        labels::selector(
            &sel.match_labels,
            "spec.workloadSelector.matchLabels",
            &mut out,
        );
    }
    let mut seen = HashSet::new();
    for (i, subset) in dr.subsets.iter().enumerate() {
        let p = format!("spec.subsets[{i}]");
        if subset.name.is_empty() {
            out.error(
                code::REQUIRED,
                format!("{p}.name"),
                "subset name is required",
            );
        } else if !fields::is_dns1123_label(&subset.name) {
            out.error(
                code::HOST,
                format!("{p}.name"),
                format!("subset name {:?} must be a DNS label", subset.name),
            );
        }
        if !subset.name.is_empty() && !seen.insert(subset.name.as_str()) {
            out.error(
                code::DUPLICATE,
                format!("{p}.name"),
                format!("duplicate subset name {:?}", subset.name),
            );
        }
        labels::selector(&subset.labels, &format!("{p}.labels"), &mut out);
        if let Some(tp) = &subset.traffic_policy {
            traffic_policy(tp, &format!("{p}.trafficPolicy"), &mut out);
        }
    }
    out.0
}

fn traffic_policy(tp: &TrafficPolicy, q: &str, out: &mut Findings) {
    for (set, name, what) in [
        (
            tp.tunnel.is_some(),
            "tunnel",
            "tunnel (traffic is sent directly, not through a CONNECT tunnel)",
        ),
        (
            tp.proxy_protocol.is_some(),
            "proxyProtocol",
            "proxyProtocol (no PROXY protocol header is sent upstream)",
        ),
    ] {
        if set {
            out.not_applied(format!("{q}.{name}"), what);
        }
    }
    if let Some(budget) = &tp.retry_budget {
        retry_budget(budget, &format!("{q}.retryBudget"), out);
    }
    policies(
        tp.load_balancer.as_ref(),
        tp.connection_pool.as_ref(),
        tp.outlier_detection.as_ref(),
        tp.tls.as_ref(),
        q,
        out,
    );
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let p = format!("{q}.portLevelSettings[{i}]");
        match &pl.port {
            None => out.error(
                code::REQUIRED,
                format!("{p}.port"),
                "port is required in portLevelSettings",
            ),
            Some(port) => out.push(fields::port(
                port.number.into(),
                &format!("{p}.port.number"),
            )),
        }
        policies(
            pl.load_balancer.as_ref(),
            pl.connection_pool.as_ref(),
            pl.outlier_detection.as_ref(),
            pl.tls.as_ref(),
            &p,
            out,
        );
    }
}

fn retry_budget(budget: &RetryBudget, q: &str, out: &mut Findings) {
    if let Some(percent) = budget.percent {
        out.push(fields::percent(percent, &format!("{q}.percent")));
    }
    if let Some(interval) = &budget.budget_interval {
        // 0 (the default) means requests in flight, which is what the proxy counts.
        if !interval.as_std().is_zero() {
            out.not_applied(
                format!("{q}.budgetInterval"),
                "budgetInterval (the budget counts the requests in flight only)",
            );
        }
    }
}

fn policies(
    lb: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    tls: Option<&ClientTlsSettings>,
    q: &str,
    out: &mut Findings,
) {
    if let Some(lb) = lb {
        super::load_balancer::check(lb, &format!("{q}.loadBalancer"), out);
    }
    if let Some(pool) = pool {
        connection_pool(pool, &format!("{q}.connectionPool"), out);
    }
    if let Some(od) = outlier {
        outlier_detection(od, &format!("{q}.outlierDetection"), out);
    }
    if let Some(tls) = tls {
        client_tls(tls, &format!("{q}.tls"), out);
    }
}

fn non_negative(value: Option<i32>, field: String, out: &mut Findings) {
    if let Some(v) = value.filter(|v| *v < 0) {
        out.error(
            code::NOT_ALLOWED,
            field,
            format!("{v} must not be negative"),
        );
    }
}

fn connection_pool(pool: &ConnectionPoolSettings, q: &str, out: &mut Findings) {
    if let Some(tcp) = &pool.tcp {
        let p = format!("{q}.tcp");
        non_negative(tcp.max_connections, format!("{p}.maxConnections"), out);
        // A tcp idleTimeout of 0s disables the timeout (as in Istio).
        let idle = tcp.idle_timeout.as_ref().filter(|d| !d.as_std().is_zero());
        for (d, name) in [
            (tcp.connect_timeout.as_ref(), "connectTimeout"),
            (
                tcp.max_connection_duration.as_ref(),
                "maxConnectionDuration",
            ),
            (idle, "idleTimeout"),
        ] {
            if let Some(d) = d {
                out.push(fields::duration(d, &format!("{p}.{name}")));
            }
        }
        if let Some(ka) = &tcp.tcp_keepalive {
            for (d, name) in [(&ka.time, "time"), (&ka.interval, "interval")] {
                if let Some(d) = d {
                    out.push(fields::duration(d, &format!("{p}.tcpKeepalive.{name}")));
                }
            }
        }
    }
    if let Some(http) = &pool.http {
        let p = format!("{q}.http");
        for (v, name) in [
            (http.http1_max_pending_requests, "http1MaxPendingRequests"),
            (http.http2_max_requests, "http2MaxRequests"),
            (http.max_requests_per_connection, "maxRequestsPerConnection"),
            (http.max_retries, "maxRetries"),
            (http.max_concurrent_streams, "maxConcurrentStreams"),
        ] {
            non_negative(v, format!("{p}.{name}"), out);
        }
        if let Some(d) = &http.idle_timeout {
            out.push(fields::duration(d, &format!("{p}.idleTimeout")));
        }
        if let Some(ka) = &http.http2_keep_alive {
            let k = format!("{p}.http2KeepAlive");
            for (d, name) in [(&ka.interval, "interval"), (&ka.timeout, "timeout")] {
                match d {
                    None => out.error(
                        code::REQUIRED,
                        format!("{k}.{name}"),
                        format!("http2KeepAlive.{name} is required"),
                    ),
                    Some(d) => out.push(fields::duration(d, &format!("{k}.{name}"))),
                }
            }
            out.not_applied(
                k,
                "HTTP/2 keepalive PINGs (idle upstream HTTP/2 connections are not probed)",
            );
        }
        if http.h2_upgrade_policy.as_deref() == Some("UPGRADE")
            && http.use_client_protocol == Some(true)
        {
            out.error(
                code::CONFLICT,
                format!("{p}.useClientProtocol"),
                "useClientProtocol must not be true when h2UpgradePolicy is UPGRADE",
            );
        }
        if let Some(policy) = &http.h2_upgrade_policy {
            if !["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"].contains(&policy.as_str()) {
                out.error(
                    code::NOT_ALLOWED,
                    format!("{p}.h2UpgradePolicy"),
                    format!("{policy:?} must be DEFAULT, DO_NOT_UPGRADE or UPGRADE"),
                );
            }
        }
    }
}

fn outlier_detection(od: &OutlierDetection, q: &str, out: &mut Findings) {
    for (i, c) in od.outlier_detection_http_error_codes.iter().enumerate() {
        if !(100..=599).contains(c) {
            out.error(
                code::STATUS_CODE,
                format!("{q}.outlierDetectionHttpErrorCodes[{i}]"),
                format!("status {c} is outside 100–599"),
            );
        }
    }
    if !od.outlier_detection_http_error_codes.is_empty() {
        out.not_applied(
            format!("{q}.outlierDetectionHttpErrorCodes"),
            "custom error codes for outlier detection (5xx responses count as errors)",
        );
    }
    non_negative(od.consecutive_errors, format!("{q}.consecutiveErrors"), out);
    for (v, name) in [
        (od.max_ejection_percent, "maxEjectionPercent"),
        (od.min_health_percent, "minHealthPercent"),
    ] {
        if let Some(v) = v {
            out.push(fields::percent(v.into(), &format!("{q}.{name}")));
        }
    }
    for (d, name) in [
        (&od.interval, "interval"),
        (&od.base_ejection_time, "baseEjectionTime"),
    ] {
        if let Some(d) = d {
            out.push(fields::duration(d, &format!("{q}.{name}")));
        }
    }
}

/// Client TLS as Istio's `validateTLS`: MUTUAL needs a certificate and key unless a
/// credentialName supplies them; ISTIO_MUTUAL brings its own and refuses others.
fn client_tls(tls: &ClientTlsSettings, q: &str, out: &mut Findings) {
    let mode = tls.mode.as_deref().unwrap_or("DISABLE");
    match mode {
        "DISABLE" | "SIMPLE" => {}
        "MUTUAL" if tls.credential_name.is_empty() => {
            out.require(
                tls.client_certificate.is_empty(),
                format!("{q}.clientCertificate"),
                "MUTUAL TLS needs clientCertificate (or credentialName)",
            );
            out.require(
                tls.private_key.is_empty(),
                format!("{q}.privateKey"),
                "MUTUAL TLS needs privateKey (or credentialName)",
            );
        }
        "MUTUAL" => {}
        "ISTIO_MUTUAL" => {
            let custom = !tls.client_certificate.is_empty()
                || !tls.private_key.is_empty()
                || !tls.ca_certificates.is_empty()
                || !tls.credential_name.is_empty();
            if custom {
                out.error(
                    code::CONFLICT,
                    q,
                    "ISTIO_MUTUAL uses the mesh's own certificates; remove clientCertificate, privateKey, caCertificates and credentialName (or use MUTUAL)",
                );
            }
        }
        other => out.error(
            code::NOT_ALLOWED,
            format!("{q}.mode"),
            format!("TLS mode {other:?} must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL"),
        ),
    }
}
