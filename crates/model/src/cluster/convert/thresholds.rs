//! Circuit breakers: the DEFAULT-priority thresholds.

use super::super::Thresholds;
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds as PbThresholds, CircuitBreakers,
};
use bowline_xds::pb::envoy::config::core::v3::RoutingPriority;

pub(super) fn thresholds(cb: &CircuitBreakers, at: &At) -> Result<Thresholds, Problem> {
    let CircuitBreakers {
        thresholds,
        per_host_thresholds,
    } = cb;
    refuse_unsupported!(at; per_host_thresholds);
    let mut out = None;
    for (i, t) in thresholds.iter().enumerate() {
        let at = at.index("thresholds", i);
        let PbThresholds {
            priority,
            max_connections,
            max_pending_requests,
            max_requests,
            max_retries,
            track_remaining: _,
            retry_budget,
            max_connection_pools,
        } = t;
        // `track_remaining` only adds "remaining" gauges to the stats: accepted.
        refuse_unsupported!(at; retry_budget, max_connection_pools);
        if *priority != RoutingPriority::Default as i32 {
            return Err(at
                .field("priority")
                .unsupported_because("only DEFAULT priority thresholds are implemented"));
        }
        if out.is_some() {
            return Err(at
                .field("priority")
                .invalid("DEFAULT thresholds are given twice"));
        }
        let d = Thresholds::default();
        let or = |v: &Option<bowline_xds::pb::google::protobuf::UInt32Value>, default| {
            v.as_ref().map_or(default, |v| v.value)
        };
        out = Some(Thresholds {
            max_connections: or(max_connections, d.max_connections),
            max_pending_requests: or(max_pending_requests, d.max_pending_requests),
            max_requests: or(max_requests, d.max_requests),
            max_retries: or(max_retries, d.max_retries),
        });
    }
    Ok(out.unwrap_or_default())
}
