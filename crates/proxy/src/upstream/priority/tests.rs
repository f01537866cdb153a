//! Envoy's documented examples (arch overview: priority levels, panic threshold, degraded
//! endpoints, locality weighted load balancing), checked against the arithmetic.
//!
//! Where a documentation table rounds differently from Envoy's integer arithmetic
//! (`distributeLoad` in load_balancer_impl.cc gives rounding leftovers to the first level
//! with healthy hosts), the expected value is the arithmetic's, and the row says so.

use super::*;

/// A level of 100 hosts, `healthy` and `degraded` of them so.
fn level(healthy: u32, degraded: u32) -> Counts {
    Counts {
        hosts: 100,
        healthy,
        degraded,
    }
}

fn loads(levels: &[Counts], panic_threshold: u32) -> (Vec<u32>, Vec<u32>, Vec<bool>) {
    let l = priority_load(levels, DEFAULT_OVERPROVISIONING_FACTOR, panic_threshold);
    (l.healthy, l.degraded, l.panic)
}

#[test]
fn two_levels_with_p1_fully_healthy() {
    // P=0 healthy % → traffic to P=0 / P=1.
    for (p0, want) in [
        (100, [100, 0]),
        (72, [100, 0]),
        (71, [99, 1]),
        (50, [70, 30]),
        (25, [35, 65]),
        (0, [0, 100]),
    ] {
        let (healthy, degraded, panic) = loads(&[level(p0, 0), level(100, 0)], 50);
        assert_eq!(healthy, want, "P=0 {p0}% healthy");
        assert_eq!(degraded, [0, 0]);
        assert_eq!(panic, [false, false], "normalized total health is 100");
    }
}

#[test]
fn two_levels_both_degrading_are_normalized() {
    for ((p0, p1), want) in [
        ((100, 100), [100, 0]),
        ((72, 72), [100, 0]),
        ((71, 71), [99, 1]),
        ((50, 50), [70, 30]),
        ((25, 100), [35, 65]),
        // Health 35 + 35 = 70: each gets 35 × 100 / 70.
        ((25, 25), [50, 50]),
        // The brief's example: 20% each is health 28 + 28 = 56, normalized to 50/50.
        ((20, 20), [50, 50]),
    ] {
        let (healthy, _, _) = loads(&[level(p0, 0), level(p1, 0)], 0);
        assert_eq!(healthy, want, "P=0 {p0}%, P=1 {p1}% healthy");
    }
}

#[test]
fn three_levels_fill_in_order() {
    for ((p0, p1, p2), want) in [
        ((100, 100, 100), [100, 0, 0]),
        ((72, 72, 100), [100, 0, 0]),
        ((71, 71, 100), [99, 1, 0]),
        ((50, 50, 100), [70, 30, 0]),
        ((25, 100, 100), [35, 65, 0]),
        ((25, 25, 100), [35, 35, 30]),
        // Health 35/35/28 over 98: 35, 35, 28 and the leftover 2 to P=0 (the docs' table
        // shows 36/36/28).
        ((25, 25, 20), [37, 35, 28]),
    ] {
        let (healthy, _, _) = loads(&[level(p0, 0), level(p1, 0), level(p2, 0)], 0);
        assert_eq!(healthy, want, "{p0}/{p1}/{p2}% healthy");
    }
}

#[test]
fn panic_only_below_full_normalized_health() {
    // (P=0 %, P=1 %) → (loads, panic per level).
    for ((p0, p1), want, panic) in [
        ((72, 72), [100, 0], [false, false]),
        ((71, 71), [99, 1], [false, false]),
        // Normalized total health 100: no panic however unhealthy P=0 is.
        ((25, 100), [35, 65], [false, false]),
        ((0, 100), [0, 100], [false, false]),
        // Health 7 + 91 = 98 < 100: P=0 (5% < 50%) panics, P=1 (65%) does not. Loads 7 and
        // 92, leftover 1 to P=0 (the docs' table shows 7/93).
        ((5, 65), [8, 92], [true, false]),
    ] {
        let (healthy, _, got) = loads(&[level(p0, 0), level(p1, 0)], 50);
        assert_eq!((healthy, got), (want.to_vec(), panic.to_vec()), "{p0}/{p1}");
    }
}

#[test]
fn every_level_in_panic_splits_by_host_count() {
    // 20% healthy each (the brief's example): health 28 + 28 < 100 and 20% < 50%.
    let (healthy, degraded, panic) = loads(&[level(20, 0), level(20, 0)], 50);
    assert_eq!(
        (healthy, degraded, panic),
        (vec![50, 50], vec![0, 0], vec![true, true])
    );
    // By host count, not health: 10 and 5 hosts → 66 + 33, leftover 1 to P=0.
    let small = |hosts, healthy| Counts {
        hosts,
        healthy,
        degraded: 0,
    };
    let (healthy, _, _) = loads(&[small(10, 2), small(5, 1)], 50);
    assert_eq!(healthy, [67, 33]);
    // Nothing healthy anywhere: all of it to the hosts, P=0 first by count.
    let (healthy, _, panic) = loads(&[small(3, 0), small(1, 0)], 50);
    assert_eq!((healthy, panic), (vec![75, 25], vec![true, true]));
}

#[test]
fn panic_threshold_zero_never_panics() {
    let (healthy, _, panic) = loads(&[level(20, 0), level(20, 0)], 0);
    assert_eq!((healthy, panic), (vec![50, 50], vec![false, false]));
    // No healthy host and no panic: everything to P=0, where no host is eligible.
    let (healthy, _, panic) = loads(&[level(0, 0), level(0, 0)], 0);
    assert_eq!((healthy, panic), (vec![100, 0], vec![false, false]));
}

#[test]
fn the_threshold_compares_the_exact_share() {
    // 49 of 100 healthy: health 68, normalized 68 < 100, and 49% < 50%.
    assert_eq!(loads(&[level(49, 0)], 50).2, [true]);
    assert_eq!(loads(&[level(50, 0)], 50).2, [false]);
    assert_eq!(loads(&[level(49, 0)], 49).2, [false]);
}

#[test]
fn degraded_hosts_take_what_healthy_ones_cannot() {
    // healthy/degraded/unhealthy % of one level → (healthy load, degraded load).
    for ((h, d), want) in [
        ((100, 0), (100, 0)),
        ((71, 0), (100, 0)),
        ((71, 29), (99, 1)),
        ((25, 65), (35, 65)),
        ((5, 0), (100, 0)),
    ] {
        let (healthy, degraded, _) = loads(&[level(h, d)], 50);
        assert_eq!(
            (healthy[0], degraded[0]),
            want,
            "{h}% healthy, {d}% degraded"
        );
    }
    // Degraded hosts count as available for panic.
    assert_eq!(loads(&[level(25, 30)], 50).2, [false]);
}

#[test]
fn an_overprovisioning_factor_of_100_takes_health_at_face_value() {
    let l = priority_load(&[level(80, 0), level(100, 0)], 100, 50);
    assert_eq!(l.healthy, [80, 20]);
    let l = priority_load(&[level(80, 0), level(100, 0)], 200, 50);
    assert_eq!(l.healthy, [100, 0], "80% × 2 is fully healthy");
}

#[test]
fn choose_priority_walks_healthy_then_degraded_loads() {
    let load = PriorityLoad {
        healthy: vec![70, 0],
        degraded: vec![0, 30],
        panic: vec![false, false],
    };
    let mut seen = [0u32; 2];
    for roll in 0..100 {
        match choose_priority(&load, roll).unwrap() {
            (0, Eligible::Healthy) => seen[0] += 1,
            (1, Eligible::Degraded) => seen[1] += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, [70, 30], "each roll % 100 is one percent point");
    assert_eq!(choose_priority(&priority_load(&[], 140, 50), 1), None);
}

#[test]
fn locality_weights_follow_the_docs_table() {
    // X weight 1, Y weight 2 fully available: X's healthy % → X's share of traffic.
    // The docs round the shares either way; each is within a point of the exact share.
    for (x_healthy, want) in [(100, 33), (70, 33), (69, 32), (50, 26), (25, 15), (0, 0)] {
        let x = locality_weight(1, x_healthy, 100, DEFAULT_OVERPROVISIONING_FACTOR);
        let y = locality_weight(2, 100, 100, DEFAULT_OVERPROVISIONING_FACTOR);
        let share = 100.0 * x / (x + y);
        assert!(
            (share - f64::from(want)).abs() < 1.0,
            "X {x_healthy}% healthy: {share:.2}% of traffic, docs say {want}%"
        );
    }
    assert_eq!(locality_weight(5, 0, 0, 140), 0.0, "an empty locality");
}

/// `n` rolls spread evenly over the u64 range (the middles of `n` equal slices).
fn even_rolls(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |i| (2 * i + 1) * (u64::MAX / (2 * n)))
}

#[test]
fn choose_weighted_is_proportional_and_skips_zero_weights() {
    let mut seen = [0u32; 3];
    for roll in even_rolls(3000) {
        seen[choose_weighted(&[1.0, 0.0, 2.0], roll).unwrap()] += 1;
    }
    assert_eq!(seen, [1000, 0, 2000]);
    assert_eq!(choose_weighted(&[0.0, 0.0], 7), None);
    assert_eq!(choose_weighted(&[], 7), None);
    assert_eq!(choose_weighted(&[1.0], u64::MAX), Some(0));
}

fn place(priority: u32, locality: usize, locality_weight: u32) -> Placement {
    Placement {
        priority,
        locality,
        locality_weight,
    }
}

#[test]
fn topology_groups_by_priority_then_locality() {
    let t = Topology::new(&[
        place(2, 0, 1),
        place(0, 1, 3),
        place(0, 0, 1),
        place(0, 1, 4),
    ]);
    assert_eq!(t.levels.len(), 3, "levels 0..=2, level 1 empty");
    assert_eq!(t.levels[0].hosts, [1, 2, 3]);
    assert_eq!(
        t.levels[0].localities,
        [
            LocalityHosts {
                weight: 4,
                hosts: vec![1, 3]
            },
            LocalityHosts {
                weight: 1,
                hosts: vec![2]
            },
        ],
        "the last weight given wins"
    );
    assert!(t.levels[1].hosts.is_empty());
    assert_eq!(t.levels[2].hosts, [0]);
    assert_eq!(Topology::new(&[]).levels.len(), 0);
}

fn settings(locality_weighted: bool) -> Settings {
    Settings {
        locality_weighted,
        ..Settings::default()
    }
}

/// Counts (level, locality) over evenly spread rolls for both random inputs.
fn tally(plan: &Plan, n: u64) -> std::collections::BTreeMap<(usize, Option<usize>), u64> {
    let mut seen = std::collections::BTreeMap::new();
    for (i, roll) in even_rolls(n).enumerate() {
        let c = plan.choose(i as u64, roll).unwrap();
        *seen.entry((c.level, c.locality)).or_default() += 1;
    }
    seen
}

#[test]
fn localities_are_picked_by_weight_times_availability() {
    // P=0: locality 0 (weight 1, one healthy host), locality 1 (weight 2, two hosts, one
    // unhealthy: availability min(1, 1.4 × 0.5) = 0.7, effective weight 1.4).
    let t = Topology::new(&[place(0, 0, 1), place(0, 1, 2), place(0, 1, 2)]);
    let health = |i: usize| {
        if i == 2 {
            HostHealth::Unhealthy
        } else {
            HostHealth::Healthy
        }
    };
    let plan = t.plan(&health, &settings(true));
    // P=0: 2 of 3 healthy, health 93, the only level: all load to it.
    assert_eq!(plan.load.healthy, [100]);
    let seen = tally(&plan, 2400);
    // 1 / 2.4 and 1.4 / 2.4 of 2400.
    assert_eq!(seen[&(0, Some(0))], 1000);
    assert_eq!(seen[&(0, Some(1))], 1400);

    let flat = t.plan(&health, &settings(false));
    assert!(flat.locality_weights.is_empty());
    assert_eq!(flat.choose(1, 1).unwrap().locality, None, "weights ignored");
}

#[test]
fn unweighted_localities_get_nothing_and_all_zero_means_one_set() {
    let t = Topology::new(&[place(0, 0, 0), place(0, 1, 3)]);
    let plan = t.plan(&|_| HostHealth::Healthy, &settings(true));
    assert_eq!(
        tally(&plan, 100).keys().collect::<Vec<_>>(),
        [&(0, Some(1))]
    );

    let none = Topology::new(&[place(0, 0, 0), place(0, 1, 0)]);
    let plan = none.plan(&|_| HostHealth::Healthy, &settings(true));
    assert_eq!(plan.choose(5, 5).unwrap().locality, None);
}

#[test]
fn a_level_in_panic_uses_all_its_hosts_and_no_locality() {
    // Only P=0, 1 of 4 healthy: health 35 < 100 and 25% < 50%.
    let t = Topology::new(&[
        place(0, 0, 1),
        place(0, 0, 1),
        place(0, 1, 1),
        place(0, 1, 1),
    ]);
    let plan = t.plan(
        &|i| {
            if i == 0 {
                HostHealth::Healthy
            } else {
                HostHealth::Unhealthy
            }
        },
        &settings(true),
    );
    assert_eq!(plan.load.panic, [true]);
    let c = plan.choose(3, 3).unwrap();
    assert_eq!((c.eligible, c.locality), (Eligible::All, None));
    assert!(c.eligible.admits(HostHealth::Unhealthy));
}

#[test]
fn degraded_picks_weigh_localities_by_their_degraded_hosts() {
    // P=0: locality 0 all unhealthy, locality 1 all degraded → degraded load only, locality 1.
    let t = Topology::new(&[place(0, 0, 1), place(0, 1, 1)]);
    let plan = t.plan(
        &|i| {
            if i == 0 {
                HostHealth::Unhealthy
            } else {
                HostHealth::Degraded
            }
        },
        &settings(true),
    );
    assert_eq!(
        (plan.load.healthy.clone(), plan.load.degraded.clone()),
        (vec![0], vec![100])
    );
    assert_eq!(plan.load.panic, [false], "degraded hosts are available");
    let c = plan.choose(0, 0).unwrap();
    assert_eq!((c.eligible, c.locality), (Eligible::Degraded, Some(1)));
    assert!(!c.eligible.admits(HostHealth::Healthy));
}

#[test]
fn failover_follows_health() {
    // P=0: two hosts; P=1: one host. P=0 down → everything to P=1; back → everything to P=0.
    let t = Topology::new(&[place(0, 0, 1), place(0, 0, 1), place(1, 1, 1)]);
    let down = t.plan(
        &|i| {
            if i < 2 {
                HostHealth::Unhealthy
            } else {
                HostHealth::Healthy
            }
        },
        &Settings::default(),
    );
    assert_eq!(down.load.healthy, [0, 100]);
    assert!(even_rolls(100).all(|r| down.choose(r, r).unwrap().level == 1));
    let up = t.plan(&|_| HostHealth::Healthy, &Settings::default());
    assert_eq!(up.load.healthy, [100, 0]);
    assert!(even_rolls(100).all(|r| up.choose(r, r).unwrap().level == 0));
}
