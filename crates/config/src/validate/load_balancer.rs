//! A DestinationRule's `loadBalancer` (Istio's `validateLoadBalancer` and the CRD's rules):
//! one of `simple` or `consistentHash`, a hash key, slow start, locality failover rules, and
//! the settings bowline reads but does not apply yet (a warning each).

use super::fields::{self, Findings};
use crate::diag::code;
use crate::istio::destination_rule::{LoadBalancerSettings, SimpleLb, Warmup};
use crate::mesh_config::LocalityLbSetting;

/// `loadBalancer` of a traffic policy (`q` is its path).
pub(super) fn check(lb: &LoadBalancerSettings, q: &str, out: &mut Findings) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        out.error(
            code::CONFLICT,
            q,
            "loadBalancer takes one of `simple` or `consistentHash`",
        );
    }
    if let Some(ch) = &lb.consistent_hash {
        let p = format!("{q}.consistentHash");
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip == Some(true),
            ch.http_query_parameter_name.is_some(),
        ];
        match keys.iter().filter(|k| **k).count() {
            0 => out.error(
                code::REQUIRED,
                &p,
                "consistentHash needs a key: httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName",
            ),
            1 => {}
            _ => out.error(code::CONFLICT, &p, "consistentHash takes exactly one hash key"),
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            out.error(
                code::CONFLICT,
                &p,
                "consistentHash takes one of `ringHash` or `maglev`",
            );
        }
        if let Some(cookie) = &ch.http_cookie {
            out.require(
                cookie.name.is_empty(),
                format!("{p}.httpCookie.name"),
                "httpCookie.name is required",
            );
        }
    }
    if lb.simple == Some(SimpleLb::Passthrough) {
        out.not_applied(
            format!("{q}.simple"),
            "PASSTHROUGH (connections are balanced as LEAST_REQUEST over the known endpoints, not sent to the original destination)",
        );
    }
    if let Some(w) = &lb.warmup_duration_secs {
        out.push(fields::duration(w, &format!("{q}.warmupDurationSecs")));
        out.not_applied(
            format!("{q}.warmupDurationSecs"),
            "slow start (new endpoints get their full share at once)",
        );
    }
    if let Some(w) = &lb.warmup {
        warmup(w, &format!("{q}.warmup"), out);
    }
    if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
        out.error(
            code::CONFLICT,
            q,
            "set only one of localityLbSetting and zoneAwareLbSetting",
        );
    }
    if let Some(locality) = &lb.locality_lb_setting {
        locality_lb_setting(locality, &format!("{q}.localityLbSetting"), out);
    }
    for (set, name, what) in [
        (
            lb.zone_aware_lb_setting.is_some(),
            "zoneAwareLbSetting",
            "zone-aware balancing (endpoints of every zone are used alike)",
        ),
        (
            lb.backend_utilization.is_some(),
            "backendUtilization",
            "utilization-based weights (endpoints keep their configured weights)",
        ),
    ] {
        if set {
            out.not_applied(format!("{q}.{name}"), what);
        }
    }
}

/// Istio's `ValidateLocalityLbSetting`, for what bowline does not check elsewhere: with
/// `failover`, `failoverPriority` may not name the region, zone or subzone label (the two
/// would rank localities twice).
fn locality_lb_setting(setting: &LocalityLbSetting, q: &str, out: &mut Findings) {
    const TOPOLOGY: [&str; 3] = [
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.istio.io/subzone",
    ];
    if setting.failover.is_empty() {
        return;
    }
    if let Some((i, label)) = (setting.failover_priority.iter().enumerate())
        .find(|(_, label)| TOPOLOGY.contains(&label.as_str()))
    {
        out.error(
            code::CONFLICT,
            format!("{q}.failoverPriority[{i}]"),
            format!("`failover` and the topology label {label} in `failoverPriority` cannot be set together; rank regions with one or the other"),
        );
    }
}

/// Slow start, as Istio's CRD and `validateLoadBalancer` check it.
fn warmup(w: &Warmup, q: &str, out: &mut Findings) {
    match &w.duration {
        None => out.error(
            code::REQUIRED,
            format!("{q}.duration"),
            "warmup.duration is required (e.g. 60s)",
        ),
        Some(d) => out.push(fields::duration(d, &format!("{q}.duration"))),
    }
    if let Some(p) = w.minimum_percent {
        out.push(fields::percent(p, &format!("{q}.minimumPercent")));
    }
    if let Some(a) = w.aggression.filter(|a| *a <= 0.0) {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.aggression"),
            format!("aggression {a} must be greater than 0 (1 ramps up linearly)"),
        );
    }
    out.not_applied(q, "slow start (new endpoints get their full share at once)");
}
