//! One host's outlier detection state, kept in its endpoint (so it survives EDS updates):
//! the consecutive-error streaks, the results of the current interval, and the ejection
//! (until when, and the backoff that sets how long the next one lasts).
//!
//! Counting is lock-free (the data path does it on every result); ejecting and the
//! interval's sweep run under the cluster detector's lock, which serialises every write of
//! the ejection fields.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use super::detect::Volume;
use super::{now_ms, EjectionType, HostResult, LocalOrigin};

/// One host's detector state.
#[derive(Debug, Default)]
pub struct OutlierState {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    /// Upstream responses (and, unless split, local-origin failures) this interval.
    external: Bucket,
    /// Local-origin results this interval (only when split).
    local: Bucket,
    /// The interval boundary (see [`now_ms`]) at which the ejection ends, as Envoy ends
    /// ejections only on its interval timer; 0 when not ejected. Cleared by that boundary's
    /// sweep.
    ejected_until: AtomicU64,
    history: Mutex<History>,
}

/// Which results count where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monitor {
    External,
    Local,
}

/// The streaks a result lengthened: their new lengths, for the detector to compare with
/// its thresholds (Envoy trips when a streak reaches its threshold exactly).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Streaks {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway: Option<u32>,
    pub consecutive_local: Option<u32>,
}

/// Requests and successes of one interval in one word (total in the high half), so that a
/// sweep takes both at once.
#[derive(Debug, Default)]
struct Bucket(AtomicU64);

#[derive(Debug, Default)]
struct History {
    /// Envoy's ejection time backoff: ejection time = base × this (capped).
    backoff: u32,
    /// When the host last came back; a sweep an interval after that shortens the backoff.
    last_unejection: Option<u64>,
}

impl Bucket {
    fn add(&self, success: bool) {
        self.0
            .fetch_add((1 << 32) | u64::from(success), Ordering::Relaxed);
    }

    fn take(&self) -> Volume {
        let word = self.0.swap(0, Ordering::Relaxed);
        Volume {
            total: word >> 32,
            success: word & 0xffff_ffff,
        }
    }
}

impl OutlierState {
    /// Whether the host is ejected now.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    /// Ejected, or its ejection ended on a boundary whose sweep has not run yet.
    pub(super) fn flagged(&self) -> bool {
        self.ejected_until.load(Ordering::Relaxed) != 0
    }

    /// Counts a result as Envoy's host monitor does. `split`: local-origin failures have
    /// their own streak and statistics, and a response means the connection succeeded.
    pub(super) fn count(&self, result: HostResult, split: bool) -> Streaks {
        match (result, split) {
            (HostResult::Response(status), false) => self.response(status),
            (HostResult::Local(LocalOrigin::ConnectFailed), false) => self.response(503),
            (HostResult::Local(LocalOrigin::Timeout), false) => self.response(504),
            (HostResult::Response(status), true) => {
                self.local.add(true);
                self.consecutive_local.store(0, Ordering::Relaxed);
                self.response(status)
            }
            (HostResult::Local(_), true) => {
                self.local.add(false);
                Streaks {
                    consecutive_local: Some(
                        self.consecutive_local.fetch_add(1, Ordering::Relaxed) + 1,
                    ),
                    ..Streaks::default()
                }
            }
        }
    }

    fn response(&self, status: u16) -> Streaks {
        let failed = (500..600).contains(&status);
        self.external.add(!failed);
        if !failed {
            self.consecutive_5xx.store(0, Ordering::Relaxed);
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            return Streaks::default();
        }
        let consecutive_gateway = if matches!(status, 502..=504) {
            Some(self.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1)
        } else {
            self.consecutive_gateway.store(0, Ordering::Relaxed);
            None
        };
        Streaks {
            consecutive_5xx: Some(self.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1),
            consecutive_gateway,
            consecutive_local: None,
        }
    }

    /// Starts the streak of `kind` over (after it tripped, ejected or not).
    pub(super) fn reset(&self, kind: EjectionType) {
        let streak = match kind {
            EjectionType::Consecutive5xx => &self.consecutive_5xx,
            EjectionType::ConsecutiveGatewayFailure => &self.consecutive_gateway,
            EjectionType::ConsecutiveLocalOriginFailure => &self.consecutive_local,
            _ => return,
        };
        streak.store(0, Ordering::Relaxed);
    }

    /// The interval's results of `monitor`, starting the next interval's.
    pub(super) fn take(&self, monitor: Monitor) -> Volume {
        match monitor {
            Monitor::External => self.external.take(),
            Monitor::Local => self.local.take(),
        }
    }

    /// Ejects the host: `until(backoff)` gives the boundary at which it comes back, for the
    /// backoff this ejection brings (see `detect::next_backoff`).
    pub(super) fn eject(&self, next_backoff: impl Fn(u32) -> u32, until: impl Fn(u32) -> u64) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.backoff = next_backoff(history.backoff);
        self.ejected_until
            .store(until(history.backoff), Ordering::Relaxed);
    }

    /// The start of the sweep at boundary `at`: an ejection ending there ends, and the
    /// streaks start over (so that a few errors do not eject the host again at once).
    pub(super) fn end_ejection(&self, at: u64) {
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 || until > at {
            return;
        }
        self.ejected_until.store(0, Ordering::Relaxed);
        for streak in [
            &self.consecutive_5xx,
            &self.consecutive_gateway,
            &self.consecutive_local,
        ] {
            streak.store(0, Ordering::Relaxed);
        }
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_unejection = Some(at);
    }

    /// The end of the sweep at boundary `at`: a host back for a whole interval has its
    /// backoff shortened by one.
    pub(super) fn relax(&self, at: u64, interval: u64) {
        if self.flagged() {
            return;
        }
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let back_long_enough = history
            .last_unejection
            .is_some_and(|u| at.saturating_sub(u) >= interval);
        if back_long_enough && history.backoff > 0 {
            history.backoff -= 1;
        }
    }

    /// The sweeps at boundaries `from`, `from + interval`, … `to` of intervals without
    /// results, at once: the ejection ends if it is due by `to`, and the backoff shrinks by
    /// one for each of them at least an interval after the host came back (unejections
    /// happen on boundaries, so the count is exact).
    pub(super) fn quiet_sweeps(&self, from: u64, to: u64, interval: u64) {
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until != 0 {
            if until > to {
                return;
            }
            self.end_ejection(until);
        }
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let Some(back) = history.last_unejection else {
            return;
        };
        let first = from.max(back + interval);
        if to >= first {
            let sweeps = (to - first) / interval + 1;
            let sweeps = u32::try_from(sweeps).unwrap_or(u32::MAX);
            history.backoff = history.backoff.saturating_sub(sweeps);
        }
    }

    #[cfg(test)]
    pub(super) fn backoff(&self) -> u32 {
        self.history.lock().unwrap().backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaks_and_statistics_follow_envoys_host_monitor() {
        let s = OutlierState::default();
        assert_eq!(
            s.count(HostResult::Response(503), false).consecutive_5xx,
            Some(1)
        );
        let second = s.count(HostResult::Response(500), false);
        assert_eq!(
            (second.consecutive_5xx, second.consecutive_gateway),
            (Some(2), None),
            "a 500 is no gateway error and breaks that streak"
        );
        let local = s.count(HostResult::Local(LocalOrigin::ConnectFailed), false);
        assert_eq!(
            (local.consecutive_5xx, local.consecutive_gateway),
            (Some(3), Some(1)),
            "unsplit, a connect failure is a 503"
        );
        assert_eq!(
            s.count(HostResult::Response(404), false),
            Streaks::default()
        );
        assert_eq!(
            s.count(HostResult::Response(502), false).consecutive_5xx,
            Some(1)
        );
        assert_eq!(
            s.take(Monitor::External),
            Volume {
                total: 5,
                success: 1
            }
        );
        assert_eq!(s.take(Monitor::External), Volume::default(), "taken");
        assert_eq!(s.take(Monitor::Local), Volume::default());
    }

    #[test]
    fn split_local_origin_failures_count_apart() {
        let s = OutlierState::default();
        let first = s.count(HostResult::Local(LocalOrigin::Timeout), true);
        assert_eq!(
            first,
            Streaks {
                consecutive_local: Some(1),
                ..Streaks::default()
            }
        );
        s.count(HostResult::Local(LocalOrigin::ConnectFailed), true);
        let answered = s.count(HostResult::Response(503), true);
        assert_eq!(answered.consecutive_5xx, Some(1));
        assert_eq!(
            s.count(HostResult::Local(LocalOrigin::Timeout), true)
                .consecutive_local,
            Some(1),
            "a response means the connection succeeded"
        );
        assert_eq!(
            s.take(Monitor::Local),
            Volume {
                total: 4,
                success: 1
            }
        );
        assert_eq!(
            s.take(Monitor::External),
            Volume {
                total: 1,
                success: 0
            }
        );
    }
}
