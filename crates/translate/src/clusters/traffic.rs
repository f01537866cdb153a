//! A DestinationRule traffic policy applied to a cluster, as Istio's cluster builder does:
//! load balancer, connection pool (circuit breakers with the retry budget, HTTP options,
//! keepalive) and outlier detection. Values Envoy would refuse are left at Envoy's default
//! instead.

use crate::policy::EffectivePolicy;
use crate::proto::{duration, u32_value};
use bowline_config::istio::destination_rule::{
    ConnectionPoolSettings, ConsistentHashLb, LoadBalancerSettings, OutlierDetection, RetryBudget,
    SimpleLb,
};
use bowline_registry::Protocol;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers::{thresholds::RetryBudget as PbRetryBudget, Thresholds},
    cluster, CircuitBreakers, Cluster, UpstreamConnectionOptions,
};
use bowline_xds::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CommonHttpOptions,
    TcpKeepalive,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        UseDownstreamHttpConfig,
    },
    HttpProtocolOptions,
};
use bowline_xds::pb::envoy::r#type::v3::Percent;
use bowline_xds::pb::google::protobuf::UInt64Value;

/// Key of the upstream HTTP options in `typed_extension_protocol_options`.
pub(crate) const HTTP_PROTOCOL_OPTIONS: &str =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Envoy's bounds: ring sizes up to 8M, Maglev tables up to 5000011 and prime.
const MAX_RING_SIZE: u64 = 8_388_608;
const MAX_MAGLEV_TABLE: u64 = 5_000_011;
/// Envoy's own default minimum ring size, which Istio writes out explicitly.
const DEFAULT_RING_SIZE: u64 = 1024;

pub(super) fn apply(c: &mut Cluster, policy: &EffectivePolicy<'_>, protocol: Protocol) {
    load_balancer(c, policy.load_balancer);
    let pool = policy.connection_pool;
    let mut limits = thresholds(pool);
    limits.retry_budget = policy.retry_budget.map(retry_budget);
    c.circuit_breakers = Some(CircuitBreakers {
        thresholds: vec![limits],
        ..Default::default()
    });
    if let Some(tcp) = pool.and_then(|p| p.tcp.as_ref()) {
        // Envoy requires connect_timeout > 0.
        if let Some(t) = tcp.connect_timeout.filter(|t| !t.as_std().is_zero()) {
            c.connect_timeout = Some(duration(t.as_std()));
        }
        if let Some(k) = &tcp.tcp_keepalive {
            c.upstream_connection_options = Some(UpstreamConnectionOptions {
                tcp_keepalive: Some(TcpKeepalive {
                    keepalive_probes: k.probes.and_then(u32_value),
                    keepalive_time: k.time.and_then(|t| u32_value(whole_seconds(t.as_std()))),
                    keepalive_interval: k
                        .interval
                        .and_then(|t| u32_value(whole_seconds(t.as_std()))),
                }),
                ..Default::default()
            });
        }
    }
    if protocol.is_http() {
        if let Some(options) = http_options(pool, protocol) {
            c.typed_extension_protocol_options
                .insert(HTTP_PROTOCOL_OPTIONS.to_string(), pack(&options));
        }
    }
    if let Some(outlier) = policy.outlier_detection {
        outlier_detection(c, outlier);
    }
}

/// Keepalive times are whole seconds in Envoy; round up so that "500ms" does not become 0.
fn whole_seconds(d: std::time::Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

fn load_balancer(c: &mut Cluster, lb: Option<&LoadBalancerSettings>) {
    use cluster::LbPolicy;
    let original_dst = c.cluster_discovery_type
        == Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        ));
    if original_dst {
        // Envoy requires CLUSTER_PROVIDED for ORIGINAL_DST: the destination is the host.
        c.lb_policy = LbPolicy::ClusterProvided as i32;
        return;
    }
    // Istio's default since 1.14 is LEAST_REQUEST.
    c.lb_policy = match lb.and_then(|lb| lb.simple) {
        Some(SimpleLb::RoundRobin) => LbPolicy::RoundRobin,
        Some(SimpleLb::Random) => LbPolicy::Random,
        _ => LbPolicy::LeastRequest,
    } as i32;
    if let Some(hash) = lb.and_then(|lb| lb.consistent_hash.as_ref()) {
        consistent_hash(c, hash);
    }
}

/// Ring hash or Maglev; the key itself is a route `hash_policy` (see routes).
fn consistent_hash(c: &mut Cluster, hash: &ConsistentHashLb) {
    use cluster::{LbConfig, LbPolicy, MaglevLbConfig, RingHashLbConfig};
    if let Some(maglev) = &hash.maglev {
        c.lb_policy = LbPolicy::Maglev as i32;
        let size = maglev
            .table_size
            .filter(|s| *s <= MAX_MAGLEV_TABLE && is_prime(*s));
        c.lb_config = size.map(|value| {
            LbConfig::MaglevLbConfig(MaglevLbConfig {
                table_size: Some(UInt64Value { value }),
            })
        });
        return;
    }
    c.lb_policy = LbPolicy::RingHash as i32;
    let size = match &hash.ring_hash {
        Some(ring) => ring.minimum_ring_size,
        None => Some(hash.minimum_ring_size.unwrap_or(DEFAULT_RING_SIZE)),
    };
    c.lb_config = size
        .filter(|s| (1..=MAX_RING_SIZE).contains(s))
        .map(|value| {
            LbConfig::RingHashLbConfig(RingHashLbConfig {
                minimum_ring_size: Some(UInt64Value { value }),
                ..Default::default()
            })
        });
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// Istio lifts Envoy's small default limits (1024, retries 3) to "unlimited" and lowers
/// only what the user sets; non-positive values are ignored, as Istio does.
fn thresholds(pool: Option<&ConnectionPoolSettings>) -> Thresholds {
    let positive = |v: Option<i32>| v.filter(|v| *v > 0).map(|v| v as u32);
    let http = pool.and_then(|p| p.http.as_ref());
    let tcp = pool.and_then(|p| p.tcp.as_ref());
    Thresholds {
        max_connections: u32_value(
            positive(tcp.and_then(|t| t.max_connections)).unwrap_or(u32::MAX),
        ),
        max_pending_requests: u32_value(
            positive(http.and_then(|h| h.http1_max_pending_requests)).unwrap_or(u32::MAX),
        ),
        max_requests: u32_value(
            positive(http.and_then(|h| h.http2_max_requests)).unwrap_or(u32::MAX),
        ),
        max_retries: u32_value(positive(http.and_then(|h| h.max_retries)).unwrap_or(u32::MAX)),
        track_remaining: true,
        ..Default::default()
    }
}

/// Istio's `applyRetryBudget`, except for an unset `percent`: Istio writes 0.2 there (0.2%
/// in Envoy's units, though its API documents 20%); leaving it unset gives Envoy's default,
/// the documented 20%. `minRetryConcurrency` 0 or unset is Envoy's default, 3; a percent
/// outside 0–100 (Envoy refuses it) is left at the default too. `budgetInterval` is not
/// passed on: the budget counts the requests in flight (the config crate warns).
fn retry_budget(b: &RetryBudget) -> PbRetryBudget {
    let RetryBudget {
        percent,
        min_retry_concurrency,
        budget_interval: _,
    } = b;
    PbRetryBudget {
        budget_percent: percent
            .filter(|p| (0.0..=100.0).contains(p))
            .map(|value| Percent { value }),
        // A budget with neither field set is no budget to Envoy: always name the minimum.
        min_retry_concurrency: u32_value(min_retry_concurrency.filter(|n| *n > 0).unwrap_or(3)),
        budget_interval: None,
    }
}

/// Upstream HTTP options, only when there is something to say: HTTP/2 (GRPC/HTTP2 ports or
/// `h2UpgradePolicy: UPGRADE`), `useClientProtocol`, or per-connection limits.
fn http_options(
    pool: Option<&ConnectionPoolSettings>,
    protocol: Protocol,
) -> Option<HttpProtocolOptions> {
    let http = pool.and_then(|p| p.http.as_ref());
    let tcp = pool.and_then(|p| p.tcp.as_ref());
    let mut common = CommonHttpOptions::default();
    let idle = http
        .and_then(|h| h.idle_timeout)
        .or(tcp.and_then(|t| t.idle_timeout));
    common.idle_timeout = idle.map(|d| duration(d.as_std()));
    common.max_requests_per_connection = http
        .and_then(|h| h.max_requests_per_connection)
        .filter(|n| *n > 0)
        .and_then(|n| u32_value(n as u32));
    common.max_connection_duration = tcp
        .and_then(|t| t.max_connection_duration)
        .map(|d| duration(d.as_std()));
    let has_common = common != CommonHttpOptions::default();

    let upgrade = http.and_then(|h| h.h2_upgrade_policy.as_deref()) == Some("UPGRADE");
    let use_client = http.and_then(|h| h.use_client_protocol) == Some(true);
    let http2 = protocol.is_http2() || upgrade;
    let max_streams = http
        .and_then(|h| h.max_concurrent_streams)
        .filter(|n| *n > 0)
        .and_then(|n| u32_value(n as u32));
    let h2 = Http2ProtocolOptions {
        max_concurrent_streams: max_streams,
        ..Default::default()
    };
    let upstream = if use_client {
        UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
            http_protocol_options: Some(Http1ProtocolOptions::default()),
            http2_protocol_options: Some(h2),
            ..Default::default()
        })
    } else if http2 {
        UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(h2)),
        })
    } else if has_common {
        // Envoy requires one of the upstream protocol choices whenever the message is set.
        UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::HttpProtocolOptions(
                Http1ProtocolOptions::default(),
            )),
        })
    } else {
        return None;
    };
    Some(HttpProtocolOptions {
        common_http_protocol_options: has_common.then_some(common),
        upstream_protocol_options: Some(upstream),
        ..Default::default()
    })
}

/// Istio's `applyOutlierDetection`: consecutive-error ejection only (success-rate ejection
/// off), each enabled detector enforced at 100%, and the panic threshold set from
/// `minHealthPercent` (0 by default: Envoy's 50% panic mode rarely helps small services).
fn outlier_detection(c: &mut Cluster, o: &OutlierDetection) {
    use bowline_xds::pb::envoy::config::cluster::v3::OutlierDetection as Envoy;
    let enforce = |v: u32| u32_value(if v > 0 { 100 } else { 0 });
    let mut out = Envoy {
        enforcing_success_rate: u32_value(0),
        ..Default::default()
    };
    if let Some(n) = o.consecutive_5xx_errors {
        out.consecutive_5xx = u32_value(n);
        out.enforcing_consecutive_5xx = enforce(n);
    }
    // The deprecated `consecutiveErrors` counted gateway errors (502/503/504).
    let gateway = o
        .consecutive_gateway_errors
        .or(o.consecutive_errors.filter(|n| *n > 0).map(|n| n as u32));
    if let Some(n) = gateway {
        out.consecutive_gateway_failure = u32_value(n);
        out.enforcing_consecutive_gateway_failure = enforce(n);
    }
    // Envoy requires both durations to be > 0.
    out.interval = o
        .interval
        .filter(|d| !d.as_std().is_zero())
        .map(|d| duration(d.as_std()));
    out.base_ejection_time = o
        .base_ejection_time
        .filter(|d| !d.as_std().is_zero())
        .map(|d| duration(d.as_std()));
    out.max_ejection_percent = o
        .max_ejection_percent
        .filter(|p| *p > 0)
        .and_then(|p| u32_value(p.min(100) as u32));
    if o.split_external_local_origin_errors == Some(true) {
        out.split_external_local_origin_errors = true;
        if let Some(n) = o.consecutive_local_origin_failures.filter(|n| *n > 0) {
            out.consecutive_local_origin_failure = u32_value(n);
            out.enforcing_consecutive_local_origin_failure = u32_value(100);
        }
        out.enforcing_local_origin_success_rate = u32_value(0);
    }
    c.outlier_detection = Some(out);
    let min_health = o.min_health_percent.unwrap_or(0).clamp(0, 100);
    c.common_lb_config
        .get_or_insert_with(Default::default)
        .healthy_panic_threshold = Some(Percent {
        value: f64::from(min_health),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maglev_tables_must_be_prime() {
        let primes = [2, 3, 65537, 5_000_011];
        let others = [0, 1, 4, 65536, 1_000_000];
        assert!(primes.iter().all(|n| is_prime(*n)));
        assert!(others.iter().all(|n| !is_prime(*n)));
    }

    #[test]
    fn keepalive_rounds_up_to_whole_seconds() {
        use std::time::Duration as D;
        assert_eq!(whole_seconds(D::from_millis(500)), 1);
        assert_eq!(whole_seconds(D::from_secs(7200)), 7200);
        assert_eq!(whole_seconds(D::from_millis(1500)), 2);
        assert_eq!(whole_seconds(D::ZERO), 1);
    }
}
