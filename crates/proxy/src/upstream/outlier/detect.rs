//! The arithmetic of Envoy's outlier detection, as pure functions: which hosts one
//! interval's statistics single out (success rate, failure percentage), whether one more
//! ejection is allowed, whether a detector enforces, and how long an ejection lasts.
//! Times are whole milliseconds, as in Envoy.

/// A host's requests over the interval just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Volume {
    pub total: u64,
    pub success: u64,
}

impl Volume {
    /// The percentage of requests that succeeded; `None` without requests.
    pub fn success_rate(self) -> Option<f64> {
        (self.total > 0).then(|| self.success as f64 * 100.0 / self.total as f64)
    }
}

/// Success-rate ejection: hosts below mean − (`stdev_factor` / 1000) × stdev of the
/// success rates of hosts with at least `request_volume` requests, judged only when
/// `minimum_hosts` hosts have that many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessRateRule {
    pub minimum_hosts: u64,
    pub request_volume: u64,
    pub stdev_factor: u32,
}

/// Failure-percentage ejection: hosts failing `threshold` % or more of at least
/// `request_volume` requests, judged only when `minimum_hosts` hosts have that many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePercentageRule {
    pub threshold: u32,
    pub minimum_hosts: u64,
    pub request_volume: u64,
}

/// What one interval's statistics say about the hosts (by index, in host order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// The mean success rate and the ejection threshold, when success rates were judged.
    pub success_rate_threshold: Option<(f64, f64)>,
    pub success_rate: Vec<usize>,
    pub failure_percentage: Vec<usize>,
}

/// Envoy's `processSuccessRateEjections` for one kind of result. `hosts` has one entry per
/// host of the cluster: its volume over the interval, or `None` for a host already ejected
/// (not judged, but still counted against the minimum numbers of hosts when deciding
/// whether to look at all, as Envoy counts every host it monitors).
pub fn judge(hosts: &[Option<Volume>], sr: SuccessRateRule, fp: FailurePercentageRule) -> Findings {
    let mut out = Findings::default();
    let monitored = hosts.len() as u64;
    if monitored < sr.minimum_hosts && monitored < fp.minimum_hosts {
        return out;
    }
    let rated: Vec<(usize, f64, u64)> = hosts
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let v = (*v)?;
            Some((i, v.success_rate()?, v.total))
        })
        .collect();
    let sr_hosts: Vec<(usize, f64)> = rated
        .iter()
        .filter(|(_, _, total)| *total >= sr.request_volume)
        .map(|(i, rate, _)| (*i, *rate))
        .collect();
    if !sr_hosts.is_empty() && sr_hosts.len() as u64 >= sr.minimum_hosts {
        let rates: Vec<f64> = sr_hosts.iter().map(|(_, r)| *r).collect();
        let (mean, threshold) = success_rate_threshold(&rates, sr.stdev_factor);
        out.success_rate_threshold = Some((mean, threshold));
        out.success_rate = sr_hosts
            .iter()
            .filter(|(_, rate)| *rate < threshold)
            .map(|(i, _)| *i)
            .collect();
    }
    let fp_hosts: Vec<(usize, f64)> = rated
        .iter()
        .filter(|(_, _, total)| *total >= fp.request_volume)
        .map(|(i, rate, _)| (*i, *rate))
        .collect();
    if !fp_hosts.is_empty() && fp_hosts.len() as u64 >= fp.minimum_hosts {
        out.failure_percentage = fp_hosts
            .iter()
            .filter(|(_, rate)| 100.0 - rate >= f64::from(fp.threshold))
            .map(|(i, _)| *i)
            .collect();
    }
    out
}

/// The mean of `rates` and the ejection threshold mean − (`stdev_factor` / 1000) × their
/// population standard deviation. Envoy's example: {50, 100, 100, 100, 100} with 1900 gives
/// mean 90, stdev 20, threshold 52.
pub fn success_rate_threshold(rates: &[f64], stdev_factor: u32) -> (f64, f64) {
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let factor = f64::from(stdev_factor) / 1000.0;
    (mean, mean - factor * variance.sqrt())
}

/// Whether one more host may be ejected while `ejected` of `hosts` are: the ejected share
/// after it must stay within `max_percent` (capped at 100), unless none is ejected and
/// `always_eject_one_host` says one always may.
pub fn may_eject(
    ejected: usize,
    hosts: usize,
    max_percent: u32,
    always_eject_one_host: bool,
) -> bool {
    if always_eject_one_host && ejected == 0 {
        return true;
    }
    let max = u64::from(max_percent.min(100));
    hosts > 0 && 100 * (ejected as u64 + 1) <= max * hosts as u64
}

/// Whether a detector enforcing `percent` % of its findings enforces this one, given a
/// uniform random `draw` (Envoy's runtime `featureEnabled`: draw mod 100 below the percent).
pub fn enforced(percent: u32, draw: u64) -> bool {
    draw % 100 < u64::from(percent)
}

/// The ejection backoff after one more ejection: it grows by one while base × backoff is
/// below max + base, so the ejection time stops growing once it reaches the cap.
pub fn next_backoff(backoff: u32, base_ms: u64, max_ms: u64) -> u32 {
    if base_ms.saturating_mul(u64::from(backoff)) < max_ms.saturating_add(base_ms) {
        backoff + 1
    } else {
        backoff
    }
}

/// How long an ejection lasts: base × backoff, capped at max, plus the ejection's jitter.
pub fn ejection_time(base_ms: u64, max_ms: u64, backoff: u32, jitter_ms: u64) -> u64 {
    base_ms
        .saturating_mul(u64::from(backoff))
        .min(max_ms)
        .saturating_add(jitter_ms)
}

/// Ejections end only at interval boundaries (`start` + k × `interval`, k ≥ 1): the first
/// one at or after `at`.
pub fn boundary_at_or_after(start: u64, interval: u64, at: u64) -> u64 {
    let interval = interval.max(1);
    let k = at.saturating_sub(start).div_ceil(interval).max(1);
    start + k * interval
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, hosts, rule, hosts expected to be singled out)
    type Case<Rule> = (&'static str, Vec<Option<Volume>>, Rule, Vec<usize>);

    fn v(total: u64, success: u64) -> Option<Volume> {
        Some(Volume { total, success })
    }

    const SR: SuccessRateRule = SuccessRateRule {
        minimum_hosts: 5,
        request_volume: 100,
        stdev_factor: 1900,
    };
    /// Failure percentage off in the success-rate cases (more hosts than there are).
    const NO_FP: FailurePercentageRule = FailurePercentageRule {
        threshold: 85,
        minimum_hosts: 100,
        request_volume: 50,
    };
    const NO_SR: SuccessRateRule = SuccessRateRule {
        minimum_hosts: 100,
        request_volume: 100,
        stdev_factor: 1900,
    };

    #[test]
    fn success_rate_threshold_is_envoys_example() {
        let (mean, threshold) = success_rate_threshold(&[50.0, 100.0, 100.0, 100.0, 100.0], 1900);
        assert_eq!(mean, 90.0);
        assert!((threshold - 52.0).abs() < 1e-9, "{threshold}");
    }

    #[test]
    fn success_rate_ejection_table() {
        let healthy = v(200, 200);
        let cases: Vec<Case<SuccessRateRule>> = vec![
            (
                "a clear outlier among 5 hosts is ejected",
                vec![healthy, healthy, v(200, 100), healthy, healthy],
                SR,
                vec![2],
            ),
            (
                // Rates 100, 100, 100, 100, 95: mean 99, stdev 2, threshold 95.2 with
                // factor 1.9; 95 is below. With factor 2.5 the threshold is 94: within.
                "a host within the band stays",
                vec![healthy, healthy, healthy, healthy, v(200, 190)],
                SuccessRateRule {
                    stdev_factor: 2500,
                    ..SR
                },
                vec![],
            ),
            (
                "the same host is an outlier with the default factor",
                vec![healthy, healthy, healthy, healthy, v(200, 190)],
                SR,
                vec![4],
            ),
            (
                "fewer hosts than success_rate_minimum_hosts: nothing is judged",
                vec![healthy, healthy, v(200, 0), healthy],
                SR,
                vec![],
            ),
            (
                "too few hosts with success_rate_request_volume: nothing is judged",
                vec![healthy, healthy, v(99, 0), healthy, v(50, 50)],
                SR,
                vec![],
            ),
            (
                "a host under the volume is neither judged nor part of the mean",
                vec![healthy, healthy, v(99, 0), healthy, healthy, v(200, 20)],
                SR,
                vec![5],
            ),
            (
                "an ejected host is not judged, and with it too few are left",
                vec![healthy, healthy, None, healthy, v(200, 20)],
                SR,
                vec![],
            ),
            ("all equal: no outlier", vec![healthy; 5], SR, vec![]),
        ];
        for (name, hosts, rule, want) in cases {
            let got = judge(&hosts, rule, NO_FP);
            assert_eq!(got.success_rate, want, "{name}: {got:?}");
            assert!(got.failure_percentage.is_empty(), "{name}");
        }
    }

    #[test]
    fn failure_percentage_ejection_table() {
        let fp = FailurePercentageRule {
            threshold: 50,
            minimum_hosts: 3,
            request_volume: 10,
        };
        let ok = v(20, 20);
        let cases: Vec<Case<FailurePercentageRule>> = vec![
            (
                "above the threshold: ejected",
                vec![ok, v(30, 10), ok],
                fp,
                vec![1],
            ),
            (
                "exactly at the threshold: ejected",
                vec![ok, v(20, 10), ok],
                fp,
                vec![1],
            ),
            (
                "below the threshold: kept",
                vec![ok, v(20, 11), ok],
                fp,
                vec![],
            ),
            (
                "every failing host goes, whatever the others do",
                vec![v(20, 0), v(20, 0), v(20, 0)],
                fp,
                vec![0, 1, 2],
            ),
            (
                "under the request volume: not judged",
                vec![ok, v(9, 0), ok, ok],
                fp,
                vec![],
            ),
            (
                "fewer hosts with the volume than failure_percentage_minimum_hosts",
                vec![ok, v(30, 0), v(5, 5)],
                fp,
                vec![],
            ),
            (
                "Envoy's defaults: 85% over 50 requests on 5 hosts",
                vec![v(50, 50), v(50, 7), v(50, 8), v(60, 60), v(50, 50)],
                FailurePercentageRule {
                    threshold: 85,
                    minimum_hosts: 5,
                    request_volume: 50,
                },
                vec![1],
            ),
        ];
        for (name, hosts, rule, want) in cases {
            let got = judge(&hosts, NO_SR, rule);
            assert_eq!(got.failure_percentage, want, "{name}: {got:?}");
        }
    }

    #[test]
    fn a_host_without_requests_is_skipped() {
        let got = judge(
            &[v(0, 0), v(10, 0), v(10, 10)],
            NO_SR,
            FailurePercentageRule {
                threshold: 50,
                minimum_hosts: 2,
                request_volume: 0,
            },
        );
        assert_eq!(got.failure_percentage, vec![1]);
    }

    #[test]
    fn max_ejection_percent_table() {
        // (ejected, hosts, max %, always_eject_one_host, allowed)
        let cases = [
            (0, 3, 10, false, false),
            (0, 3, 10, true, true),
            (1, 3, 10, true, false),
            (0, 10, 10, false, true),
            (1, 10, 10, false, false),
            (0, 3, 50, false, true),
            (1, 3, 50, false, false),
            (1, 4, 50, false, true),
            (2, 4, 50, false, false),
            (2, 3, 100, false, true),
            (3, 3, 100, false, false),
            (0, 1, 120, false, true),
            (0, 0, 100, false, false),
        ];
        for (ejected, hosts, max, always, want) in cases {
            assert_eq!(
                may_eject(ejected, hosts, max, always),
                want,
                "{ejected} of {hosts} ejected, max {max}%, always one {always}"
            );
        }
    }

    #[test]
    fn enforcing_is_a_percent_chance() {
        assert!((0..100).all(|d| enforced(100, d)));
        assert!((0..100).all(|d| !enforced(0, d)));
        assert_eq!((0..100).filter(|d| enforced(30, *d)).count(), 30);
    }

    #[test]
    fn ejection_time_grows_with_the_backoff_up_to_the_cap() {
        let (base, max) = (30_000, 100_000);
        let mut backoff = 0;
        let mut times = Vec::new();
        for _ in 0..6 {
            backoff = next_backoff(backoff, base, max);
            times.push(ejection_time(base, max, backoff, 0));
        }
        assert_eq!(times, [30_000, 60_000, 90_000, 100_000, 100_000, 100_000]);
        assert_eq!(backoff, 5, "stops growing once base × backoff ≥ max + base");
        assert_eq!(
            ejection_time(base, max, 1, 1_500),
            31_500,
            "jitter is added"
        );
    }

    #[test]
    fn ejections_end_on_interval_boundaries() {
        // Boundaries every 10 s from 5 s: 15 s, 25 s, 35 s...
        let cases = [
            (0, 15_000),
            (5_000, 15_000),
            (15_000, 15_000),
            (15_001, 25_000),
            (31_000, 35_000),
        ];
        for (at, want) in cases {
            assert_eq!(boundary_at_or_after(5_000, 10_000, at), want, "{at}");
        }
    }
}
