//! Outlier detection (Envoy's consecutive-5xx and consecutive-gateway-error detectors):
//! an endpoint that fails N times in a row is ejected for base_ejection_time × (times
//! ejected), capped at max_ejection_time, while no more than max_ejection_percent of the
//! cluster is ejected (at least one host may always be, as in Envoy).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Thresholds; `None` for a detector that is off.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_failure: Option<u32>,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    /// Envoy's defaults when `outlier_detection` is present but empty.
    fn default() -> Self {
        OutlierConfig {
            consecutive_5xx: Some(5),
            consecutive_gateway_failure: None,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

/// One endpoint's detector state, lock-free.
#[derive(Debug, Default)]
pub struct OutlierState {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Milliseconds since [`epoch`] until which the endpoint is ejected (0: not ejected).
    ejected_until: AtomicU64,
    times_ejected: AtomicU32,
}

/// What a result did to the endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    Ejected(Duration),
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    // +1 so that "ejected until 0" never means a real instant.
    Instant::now().duration_since(epoch()).as_millis() as u64 + 1
}

impl OutlierState {
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    /// Records a response status (or a connect failure / reset as 503, as Envoy does) and
    /// ejects when a detector trips. `ejected_now` is how many of `total` hosts are ejected.
    pub fn record(
        &self,
        status: u16,
        config: &OutlierConfig,
        ejected_now: usize,
        total: usize,
    ) -> Outcome {
        let gateway = matches!(status, 502..=504);
        if status < 500 {
            self.consecutive_5xx.store(0, Ordering::Relaxed);
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            return Outcome::Nothing;
        }
        let fives = self.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
        let gateways = if gateway {
            self.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            0
        };
        let tripped = config.consecutive_5xx.is_some_and(|n| fives >= n)
            || config
                .consecutive_gateway_failure
                .is_some_and(|n| gateways >= n);
        if !tripped || self.is_ejected() {
            return Outcome::Nothing;
        }
        let allowed = ejected_now == 0
            || (ejected_now + 1) * 100 <= total * config.max_ejection_percent as usize;
        if !allowed {
            return Outcome::Nothing;
        }
        let times = self.times_ejected.fetch_add(1, Ordering::Relaxed) + 1;
        let time = (config.base_ejection_time * times)
            .min(config.max_ejection_time.max(config.base_ejection_time));
        self.ejected_until
            .store(now_ms() + time.as_millis() as u64, Ordering::Relaxed);
        self.consecutive_5xx.store(0, Ordering::Relaxed);
        self.consecutive_gateway.store(0, Ordering::Relaxed);
        Outcome::Ejected(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn five_5xx_in_a_row_eject_for_a_growing_time() {
        let config = OutlierConfig::default();
        let state = OutlierState::default();
        for _ in 0..4 {
            assert_eq!(state.record(503, &config, 0, 3), Outcome::Nothing);
        }
        assert_eq!(
            state.record(500, &config, 0, 3),
            Outcome::Ejected(Duration::from_secs(30))
        );
        assert!(state.is_ejected());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!state.is_ejected(), "back after the ejection time");
        for _ in 0..5 {
            state.record(503, &config, 0, 3);
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(state.is_ejected(), "the second ejection lasts 60s");
    }

    #[test]
    fn a_success_resets_the_count() {
        let config = OutlierConfig::default();
        let state = OutlierState::default();
        for _ in 0..4 {
            state.record(503, &config, 0, 3);
        }
        state.record(200, &config, 0, 3);
        assert_eq!(state.record(503, &config, 0, 3), Outcome::Nothing);
    }

    #[test]
    fn max_ejection_percent_holds_beyond_the_first_host() {
        let config = OutlierConfig {
            consecutive_5xx: Some(1),
            ..Default::default()
        };
        let state = OutlierState::default();
        assert_eq!(
            state.record(503, &config, 1, 5),
            Outcome::Nothing,
            "10% of 5 is below 2 hosts"
        );
        let first = OutlierState::default();
        assert!(
            matches!(first.record(503, &config, 0, 5), Outcome::Ejected(_)),
            "one host always may"
        );
    }
}
