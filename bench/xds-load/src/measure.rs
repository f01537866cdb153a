//! Turning per-proxy timestamps into the figures the report shows: spreads (p50/p99/max)
//! and bounded waits for a condition over the fleet.

use std::time::{Duration, Instant};

/// p50, p99 and max of a set of samples (nearest-rank), with how many there were.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    /// Over `samples` in any unit; all zero when there are none.
    pub fn of(mut samples: Vec<f64>) -> Spread {
        if samples.is_empty() {
            return Spread::default();
        }
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[i - 1]
        };
        Spread {
            n: samples.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }

    /// Over durations, in milliseconds.
    pub fn of_ms(durations: impl IntoIterator<Item = Duration>) -> Spread {
        Spread::of(
            durations
                .into_iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .collect(),
        )
    }
}

/// Polls `done` every 10 ms until it holds or `deadline` passes; returns whether it held.
/// The latencies measured never depend on this interval: proxies timestamp what they get.
pub async fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!((s.n, s.p50, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        let one = Spread::of(vec![7.0]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Spread::of(vec![]), Spread::default());
    }
}
