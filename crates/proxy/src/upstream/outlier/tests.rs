//! The detector over time (tokio's paused clock): streak ejections, sweeps that judge an
//! interval's statistics, ejections ending on sweep boundaries, backoff growth and decay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::stats::ClusterStats;
use bowline_model as model;

fn hosts(n: u8) -> Vec<Arc<Endpoint>> {
    (1..=n)
        .map(|i| {
            let addr = SocketAddr::from(([10, 0, 0, i], 80));
            Arc::new(Endpoint::new(addr, 1, true))
        })
        .collect()
}

fn detector(o: model::cluster::OutlierDetection) -> Detector {
    Detector::new(OutlierConfig::from(&o))
}

fn ejected(hosts: &[Arc<Endpoint>]) -> Vec<usize> {
    (0..hosts.len())
        .filter(|i| hosts[*i].outlier.is_ejected())
        .collect()
}

/// `n` results with `status` for host `i`.
fn send(
    d: &Detector,
    hosts: &[Arc<Endpoint>],
    stats: &ClusterStats,
    i: usize,
    status: u16,
    n: usize,
) {
    for _ in 0..n {
        d.record(hosts, &hosts[i], HostResult::Response(status), stats);
    }
}

const SECOND: Duration = Duration::from_secs(1);

async fn advance(by: Duration) {
    tokio::time::advance(by).await;
}

#[tokio::test(start_paused = true)]
async fn a_streak_ejects_until_the_first_sweep_after_the_ejection_time() {
    let (stats, hosts) = (ClusterStats::default(), hosts(3));
    let d = detector(model::cluster::OutlierDetection {
        max_ejection_percent: 50,
        ..Default::default()
    });
    send(&d, &hosts, &stats, 0, 503, 4);
    assert!(ejected(&hosts).is_empty(), "four in a row are not five");
    advance(SECOND * 3).await;
    send(&d, &hosts, &stats, 0, 500, 1);
    assert_eq!(ejected(&hosts), [0]);
    assert_eq!(stats.outlier_detection_ejections_enforced.0[0].get(), 1);
    assert_eq!(stats.outlier_detection_ejections_active.get(), 1);
    // Ejected at 3 s for 30 s: the sweeps run every 10 s, the one at 40 s ends it.
    advance(SECOND * 36).await;
    assert_eq!(
        ejected(&hosts),
        [0],
        "33 s is past the time, but no sweep has run"
    );
    advance(SECOND).await;
    assert!(ejected(&hosts).is_empty(), "the sweep at 40 s ended it");
    d.catch_up(&hosts, &stats);
    assert_eq!(stats.outlier_detection_ejections_active.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn envoys_default_max_ejection_percent_ejects_no_host_of_three() {
    let (stats, hosts) = (ClusterStats::default(), hosts(3));
    let d = detector(Default::default());
    // 500: no gateway error, so only the 5xx streak trips.
    send(&d, &hosts, &stats, 0, 500, 5);
    assert!(ejected(&hosts).is_empty(), "1 of 3 is over 10%");
    assert_eq!(stats.outlier_detection_ejections_detected.0[0].get(), 1);
    assert_eq!(stats.outlier_detection_ejections_overflow.get(), 1);
    let always = detector(model::cluster::OutlierDetection {
        always_eject_one_host: true,
        ..Default::default()
    });
    send(&always, &hosts, &stats, 1, 503, 5);
    send(&always, &hosts, &stats, 2, 503, 5);
    assert_eq!(ejected(&hosts), [1], "always one host, never a second");
}

#[tokio::test(start_paused = true)]
async fn the_backoff_grows_while_ejections_repeat_and_shrinks_after_an_interval_back() {
    let (stats, hosts) = (ClusterStats::default(), hosts(2));
    let d = detector(model::cluster::OutlierDetection {
        consecutive_5xx: 1,
        max_ejection_percent: 100,
        ..Default::default()
    });
    let o = &hosts[0].outlier;
    send(&d, &hosts, &stats, 0, 503, 1);
    assert_eq!(o.backoff(), 1);
    advance(SECOND * 30).await;
    d.catch_up(&hosts, &stats);
    assert!(!o.is_ejected(), "30 s, ended by the sweep at 30 s");
    // Back and failing at once: the next ejection lasts 60 s.
    send(&d, &hosts, &stats, 0, 503, 1);
    assert_eq!(o.backoff(), 2);
    advance(SECOND * 59).await;
    assert!(o.is_ejected());
    advance(SECOND).await;
    assert!(!o.is_ejected());
    // Back for longer: every sweep an interval after its return takes one off.
    advance(SECOND * 10).await;
    d.catch_up(&hosts, &stats);
    assert_eq!(o.backoff(), 1);
    advance(SECOND * 10).await;
    d.catch_up(&hosts, &stats);
    assert_eq!(o.backoff(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_streak_reaching_its_threshold_while_ejected_does_not_trip_again() {
    let (stats, hosts) = (ClusterStats::default(), hosts(2));
    let d = detector(model::cluster::OutlierDetection {
        consecutive_5xx: 2,
        max_ejection_percent: 100,
        ..Default::default()
    });
    send(&d, &hosts, &stats, 0, 503, 2);
    // Results still arrive while it is ejected (requests already in flight).
    send(&d, &hosts, &stats, 0, 503, 3);
    assert_eq!(stats.outlier_detection_ejections_detected.0[0].get(), 1);
    advance(SECOND * 30).await;
    send(&d, &hosts, &stats, 0, 503, 1);
    assert!(
        !hosts[0].outlier.is_ejected(),
        "the streak started over when it came back"
    );
}

#[tokio::test(start_paused = true)]
async fn success_rate_ejects_the_outlier_at_the_end_of_the_interval() {
    let (stats, hosts) = (ClusterStats::default(), hosts(5));
    let d = detector(model::cluster::OutlierDetection {
        consecutive_5xx: 0,
        max_ejection_percent: 50,
        ..Default::default()
    });
    for i in [0, 1, 3, 4] {
        send(&d, &hosts, &stats, i, 200, 100);
    }
    // Host 2 fails every other request (never two in a row): 50% against four at 100%,
    // mean 90, stdev 20, threshold 90 − 1.9 × 20 = 52.
    for _ in 0..50 {
        send(&d, &hosts, &stats, 2, 503, 1);
        send(&d, &hosts, &stats, 2, 200, 1);
    }
    assert!(
        ejected(&hosts).is_empty(),
        "judged only at the interval's end"
    );
    advance(SECOND * 10).await;
    d.catch_up(&hosts, &stats);
    assert_eq!(ejected(&hosts), [2]);
    assert_eq!(stats.outlier_detection_ejections_enforced.0[3].get(), 1);
    // The next interval starts from nothing: too few requests, nothing judged.
    send(&d, &hosts, &stats, 0, 503, 99);
    advance(SECOND * 10).await;
    d.catch_up(&hosts, &stats);
    assert_eq!(ejected(&hosts), [2]);
}

#[tokio::test(start_paused = true)]
async fn failure_percentage_respects_max_ejection_percent_and_enforcing() {
    let (stats, hosts) = (ClusterStats::default(), hosts(4));
    let fp = model::cluster::OutlierDetection {
        consecutive_5xx: 0,
        enforcing_success_rate: 0,
        failure_percentage_threshold: 50,
        failure_percentage_minimum_hosts: 3,
        failure_percentage_request_volume: 10,
        enforcing_failure_percentage: 100,
        max_ejection_percent: 25,
        ..Default::default()
    };
    let d = detector(fp);
    for i in 0..4 {
        let status = if i < 2 { 503 } else { 200 };
        send(&d, &hosts, &stats, i, status, 20);
    }
    advance(SECOND * 10).await;
    d.catch_up(&hosts, &stats);
    assert_eq!(ejected(&hosts), [0], "25% of 4 hosts is one");
    assert_eq!(stats.outlier_detection_ejections_detected.0[5].get(), 2);
    assert_eq!(stats.outlier_detection_ejections_enforced.0[5].get(), 1);
    assert_eq!(stats.outlier_detection_ejections_overflow.get(), 1);

    let (stats, hosts) = (ClusterStats::default(), self::hosts(4));
    let unenforced = detector(model::cluster::OutlierDetection {
        enforcing_failure_percentage: 0,
        ..fp
    });
    send(&unenforced, &hosts, &stats, 0, 503, 20);
    for i in 1..4 {
        send(&unenforced, &hosts, &stats, i, 200, 20);
    }
    advance(SECOND * 10).await;
    unenforced.catch_up(&hosts, &stats);
    assert!(ejected(&hosts).is_empty(), "detected, not enforced");
    assert_eq!(stats.outlier_detection_ejections_detected.0[5].get(), 1);
}

#[tokio::test(start_paused = true)]
async fn split_local_origin_failures_have_their_own_streak() {
    let (stats, hosts) = (ClusterStats::default(), hosts(2));
    let d = detector(model::cluster::OutlierDetection {
        split_external_local_origin_errors: true,
        consecutive_5xx: 3,
        consecutive_local_origin_failure: 2,
        max_ejection_percent: 100,
        ..Default::default()
    });
    let failed = HostResult::Local(LocalOrigin::ConnectFailed);
    d.record(&hosts, &hosts[0], failed, &stats);
    send(&d, &hosts, &stats, 0, 503, 2);
    assert!(
        ejected(&hosts).is_empty(),
        "two 5xx; the answer broke the local streak"
    );
    d.record(&hosts, &hosts[0], failed, &stats);
    d.record(&hosts, &hosts[0], failed, &stats);
    assert_eq!(ejected(&hosts), [0]);
    assert_eq!(stats.outlier_detection_ejections_enforced.0[2].get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_long_quiet_spell_is_caught_up_at_once() {
    let (stats, hosts) = (ClusterStats::default(), hosts(2));
    let d = detector(model::cluster::OutlierDetection {
        consecutive_5xx: 1,
        max_ejection_percent: 100,
        interval: Duration::from_millis(1),
        ..Default::default()
    });
    send(&d, &hosts, &stats, 0, 503, 1);
    advance(Duration::from_secs(24 * 3600)).await;
    d.catch_up(&hosts, &stats);
    assert!(ejected(&hosts).is_empty());
    assert_eq!(hosts[0].outlier.backoff(), 0, "decayed over the day");
}
