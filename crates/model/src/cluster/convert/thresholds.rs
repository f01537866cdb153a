//! Circuit breakers: the DEFAULT-priority thresholds, with an optional retry budget.

use super::super::{RetryBudget, Thresholds};
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers::{thresholds::RetryBudget as PbRetryBudget, Thresholds as PbThresholds},
    CircuitBreakers,
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
        refuse_unsupported!(at; max_connection_pools);
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
            retry_budget: match retry_budget {
                Some(b) => budget(b, &at.field("retry_budget"))?,
                None => None,
            },
        });
    }
    Ok(out.unwrap_or_default())
}

/// Envoy applies a budget only when the message sets `budget_percent` or
/// `min_retry_concurrency` (an empty one leaves `max_retries` in force); the unset one takes
/// its default.
fn budget(b: &PbRetryBudget, at: &At) -> Result<Option<RetryBudget>, Problem> {
    let PbRetryBudget {
        budget_percent,
        min_retry_concurrency,
        budget_interval,
    } = b;
    if let Some(interval) = budget_interval {
        let interval = crate::duration::duration(interval, &at.field("budget_interval"))?;
        if !interval.is_zero() {
            return Err(at.field("budget_interval").unsupported_because(
                "budgets over recent requests are not implemented; only requests in flight count",
            ));
        }
    }
    if budget_percent.is_none() && min_retry_concurrency.is_none() {
        return Ok(None);
    }
    let d = RetryBudget::default();
    let percent = budget_percent
        .as_ref()
        .map_or(d.budget_percent, |p| p.value);
    // `envoy.type.v3.Percent`: 0 ≤ value ≤ 100.
    if !(0.0..=100.0).contains(&percent) {
        return Err(at
            .field("budget_percent")
            .invalid(format!("{percent} is not in 0..=100")));
    }
    Ok(Some(RetryBudget {
        budget_percent: percent,
        min_retry_concurrency: min_retry_concurrency
            .as_ref()
            .map_or(d.min_retry_concurrency, |v| v.value),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::r#type::v3::Percent;
    use bowline_xds::pb::google::protobuf::{Duration as PbDuration, UInt32Value};

    fn with_budget(b: PbRetryBudget) -> Result<Thresholds, String> {
        let cb = CircuitBreakers {
            thresholds: vec![PbThresholds {
                max_retries: Some(UInt32Value { value: 7 }),
                retry_budget: Some(b),
                ..Default::default()
            }],
            ..Default::default()
        };
        thresholds(&cb, &At::root("circuit_breakers")).map_err(|p| p.to_string())
    }

    #[test]
    fn a_budget_takes_envoys_defaults_for_what_it_leaves_out() {
        let percent = |value| Some(Percent { value });
        let cases = [
            (
                PbRetryBudget {
                    budget_percent: percent(25.0),
                    ..Default::default()
                },
                Some(RetryBudget {
                    budget_percent: 25.0,
                    min_retry_concurrency: 3,
                }),
            ),
            (
                PbRetryBudget {
                    min_retry_concurrency: Some(UInt32Value { value: 1 }),
                    ..Default::default()
                },
                Some(RetryBudget {
                    budget_percent: 20.0,
                    min_retry_concurrency: 1,
                }),
            ),
            // Neither field: Envoy keeps max_retries.
            (PbRetryBudget::default(), None),
        ];
        for (pb, want) in cases {
            let got = with_budget(pb).unwrap();
            assert_eq!((got.retry_budget, got.max_retries), (want, 7));
        }
    }

    #[test]
    fn out_of_range_percents_and_budget_intervals_are_refused() {
        let high = with_budget(PbRetryBudget {
            budget_percent: Some(Percent { value: 120.0 }),
            ..Default::default()
        });
        assert!(high.unwrap_err().contains("retry_budget.budget_percent"));
        let interval = with_budget(PbRetryBudget {
            budget_interval: Some(PbDuration {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        });
        assert!(interval.unwrap_err().contains(
            "unsupported field circuit_breakers.thresholds[0].retry_budget.budget_interval"
        ));
    }
}
