//! Outlier detection as Envoy does it. Every result feeds the host's streaks and the
//! interval's statistics; a streak reaching its threshold (consecutive 5xx, gateway errors,
//! local-origin failures) ejects the host at once. Every `interval` a sweep ends the
//! ejections that are due, judges the interval's statistics (success rate, failure
//! percentage; see [`detect`]) and ejects the outliers, then shortens the backoff of hosts
//! back for a whole interval. An ejection lasts base_ejection_time × backoff (capped at
//! max_ejection_time, plus jitter) and ends on the first sweep after that, while no more
//! than max_ejection_percent of the hosts are ejected. Each detector ejects only its
//! `enforcing_*` percent of the outliers it finds.
//!
//! The sweeps run on the data path rather than on a timer: the first request (or pick) past
//! an interval boundary runs the sweeps of every boundary passed, each as of its own
//! boundary, before its own result counts. What the balancer sees is thus what Envoy's
//! timer would have made of the same results; only the stats lag behind while no request
//! arrives (an ejection's end is exact regardless: it is fixed when the host is ejected).

mod config;
mod detect;
mod host;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::time::Instant;

use self::detect::Volume;
use self::host::Monitor;
use super::endpoints::Endpoint;
use crate::stats::ClusterStats;

pub use self::config::OutlierConfig;
pub use self::host::OutlierState;

/// What became of one request to a host, as outlier detection counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostResult {
    /// The host answered with this status.
    Response(u16),
    /// The request failed on the way (Envoy's local-origin errors).
    Local(LocalOrigin),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalOrigin {
    /// Connect failure or reset (a 503 unless split).
    ConnectFailed,
    /// The try timed out (a 504 unless split).
    Timeout,
}

/// Envoy's detectors, in the order of [`crate::stats::EJECTION_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionType {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    ConsecutiveLocalOriginFailure,
    SuccessRate,
    LocalOriginSuccessRate,
    FailurePercentage,
    LocalOriginFailurePercentage,
}

/// A cluster's detector: its settings and the clock of its sweeps.
#[derive(Debug)]
pub struct Detector {
    config: OutlierConfig,
    /// Interval boundaries are at `start + k × interval` (milliseconds, see [`now_ms`]).
    start: u64,
    interval: u64,
    /// The first boundary whose sweep has not run.
    next_sweep: AtomicU64,
    /// Serialises sweeps and ejections (Envoy runs both on its main thread).
    lock: Mutex<()>,
}

impl Detector {
    pub fn new(config: OutlierConfig) -> Detector {
        let start = now_ms();
        let interval = (config.interval.as_millis() as u64).max(1);
        Detector {
            config,
            start,
            interval,
            next_sweep: AtomicU64::new(start + interval),
            lock: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &OutlierConfig {
        &self.config
    }

    /// Runs the sweeps of the boundaries passed since the last one; cheap when none is.
    pub fn catch_up(&self, hosts: &[Arc<Endpoint>], stats: &ClusterStats) {
        let now = now_ms();
        if now < self.next_sweep.load(Ordering::Acquire) {
            return;
        }
        let _serial = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.catch_up_locked(hosts, now, stats);
    }

    /// Counts `result` for `host` (one of `hosts`, the cluster's endpoints) after the sweeps
    /// due, and ejects the host if a streak reached its threshold.
    pub fn record(
        &self,
        hosts: &[Arc<Endpoint>],
        host: &Endpoint,
        result: HostResult,
        stats: &ClusterStats,
    ) {
        self.catch_up(hosts, stats);
        let streaks = host
            .outlier
            .count(result, self.config.split_external_local_origin_errors);
        let tripped = [
            (streaks.consecutive_5xx, EjectionType::Consecutive5xx),
            (
                streaks.consecutive_gateway,
                EjectionType::ConsecutiveGatewayFailure,
            ),
            (
                streaks.consecutive_local,
                EjectionType::ConsecutiveLocalOriginFailure,
            ),
        ];
        for (streak, kind) in tripped {
            if streak.is_some_and(|n| n == self.config.consecutive[kind as usize]) {
                self.on_streak(hosts, host, kind, stats);
            }
        }
    }

    fn on_streak(
        &self,
        hosts: &[Arc<Endpoint>],
        host: &Endpoint,
        kind: EjectionType,
        stats: &ClusterStats,
    ) {
        let _serial = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        self.catch_up_locked(hosts, now, stats);
        // Envoy ignores a host gone from the cluster, and one already ejected (whose streak
        // then runs on until it comes back).
        let member = hosts.iter().any(|e| std::ptr::eq(&**e, host));
        if !member || host.outlier.flagged() {
            return;
        }
        stats.outlier_detection_ejections_detected.0[kind as usize].inc();
        self.eject(hosts, &host.outlier, kind, now, stats);
        host.outlier.reset(kind);
    }

    fn catch_up_locked(&self, hosts: &[Arc<Endpoint>], now: u64, stats: &ClusterStats) {
        let first = self.next_sweep.load(Ordering::Acquire);
        if now < first {
            return;
        }
        self.sweep(hosts, first, stats);
        // Every result since then would have run the sweeps first: the intervals after the
        // first one are empty, and their sweeps can only end ejections and shorten backoffs.
        let last = first + (now - first) / self.interval * self.interval;
        if last > first {
            for e in hosts {
                e.outlier
                    .quiet_sweeps(first + self.interval, last, self.interval);
            }
        }
        self.next_sweep
            .store(last + self.interval, Ordering::Release);
        let active = hosts.iter().filter(|e| e.outlier.flagged()).count();
        stats.outlier_detection_ejections_active.set(active as i64);
    }

    /// Envoy's interval timer, as of boundary `at`.
    fn sweep(&self, hosts: &[Arc<Endpoint>], at: u64, stats: &ClusterStats) {
        for e in hosts {
            e.outlier.end_ejection(at);
        }
        let volumes =
            |monitor| -> Vec<Volume> { hosts.iter().map(|e| e.outlier.take(monitor)).collect() };
        let external = volumes(Monitor::External);
        let local = volumes(Monitor::Local);
        let kinds = [
            (
                external,
                EjectionType::SuccessRate,
                EjectionType::FailurePercentage,
            ),
            (
                local,
                EjectionType::LocalOriginSuccessRate,
                EjectionType::LocalOriginFailurePercentage,
            ),
        ];
        for (volumes, success_rate, failure_percentage) in kinds {
            // Hosts ejected so far are not judged.
            let judged: Vec<Option<Volume>> = hosts
                .iter()
                .zip(volumes)
                .map(|(e, v)| (!e.outlier.flagged()).then_some(v))
                .collect();
            let findings = detect::judge(
                &judged,
                self.config.success_rate,
                self.config.failure_percentage,
            );
            let found = findings
                .success_rate
                .iter()
                .map(|i| (*i, success_rate))
                .chain(
                    findings
                        .failure_percentage
                        .iter()
                        .map(|i| (*i, failure_percentage)),
                );
            for (i, kind) in found {
                // One ejection per host: both rules may single out the same one.
                if hosts[i].outlier.flagged() {
                    continue;
                }
                stats.outlier_detection_ejections_detected.0[kind as usize].inc();
                self.eject(hosts, &hosts[i].outlier, kind, at, stats);
            }
        }
        for e in hosts {
            e.outlier.relax(at, self.interval);
        }
    }

    /// Envoy's `ejectHost`: within max_ejection_percent, and as often as the detector
    /// enforces, the host is ejected as of `at`.
    fn eject(
        &self,
        hosts: &[Arc<Endpoint>],
        host: &OutlierState,
        kind: EjectionType,
        at: u64,
        stats: &ClusterStats,
    ) {
        let c = &self.config;
        let ejected = hosts.iter().filter(|e| e.outlier.flagged()).count();
        if !detect::may_eject(
            ejected,
            hosts.len(),
            c.max_ejection_percent,
            c.always_eject_one_host,
        ) {
            stats.outlier_detection_ejections_overflow.inc();
            return;
        }
        if !detect::enforced(c.enforcing[kind as usize], rand::random()) {
            return;
        }
        stats.outlier_detection_ejections_enforced_total.inc();
        stats.outlier_detection_ejections_enforced.0[kind as usize].inc();
        let base = c.base_ejection_time.as_millis() as u64;
        let max = c.max_ejection_time.as_millis() as u64;
        let jitter = rand::random::<u64>() % (c.max_ejection_time_jitter.as_millis() as u64 + 1);
        host.eject(
            |backoff| detect::next_backoff(backoff, base, max),
            |backoff| {
                let ends = at + detect::ejection_time(base, max, backoff, jitter);
                detect::boundary_at_or_after(self.start, self.interval, ends)
            },
        );
        stats
            .outlier_detection_ejections_active
            .set((ejected + 1) as i64);
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds on the detectors' clock (tokio's, so paused-time tests control it).
pub(crate) fn now_ms() -> u64 {
    // +1 so that "ejected until 0" never means a real instant.
    Instant::now().duration_since(epoch()).as_millis() as u64 + 1
}

#[cfg(test)]
mod tests;
