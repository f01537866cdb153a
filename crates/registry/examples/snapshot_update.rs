//! What one change costs the registry at scale: the full build against the incremental one.
//!
//! `cargo run --release -p bowline-registry --example snapshot_update [SERVICES]`
//!
//! Builds, in memory, a mesh of SERVICES (default 10,000) services over 10 namespaces: each
//! a STATIC ServiceEntry `svc-<i>.ns-<i % 10>.svc.cluster.local` selecting its 5
//! WorkloadEntries (`app: svc-<i>`). Then times (a) the full path — `Store::config()`,
//! `Snapshot::build` and `Changes::between` — and (b) the path the registry publishes
//! through, `Store::config()` then `Incremental::next`, for one changed WorkloadEntry and
//! for one changed ServiceEntry. Prints figures; asserts only that the incremental snapshot
//! equals a full build.

use bowline_registry::incremental::Incremental;
use bowline_registry::store::{Source, Store};
use bowline_registry::{Changes, Snapshot};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NAMESPACES: usize = 10;
const WORKLOADS: usize = 5;
/// Rounds per figure (the full build is slow: fewer).
const ROUNDS: usize = 50;
const FULL_ROUNDS: usize = 5;

fn service_entry(i: usize, port: u32) -> String {
    let ns = i % NAMESPACES;
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {{name: svc-{i}, namespace: ns-{ns}}}\n\
         spec:\n  hosts: [svc-{i}.ns-{ns}.svc.cluster.local]\n  location: MESH_INTERNAL\n\
         \x20 resolution: STATIC\n  ports: [{{number: {port}, name: http, protocol: HTTP}}]\n\
         \x20 workloadSelector: {{labels: {{app: svc-{i}}}}}\n"
    )
}

fn workload_entry(i: usize, w: usize, address: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: svc-{i}-{w}, namespace: ns-{}}}\n\
         spec: {{address: {address}, ports: {{http: 8080}}, labels: {{app: svc-{i}, version: v1}}}}\n",
        i % NAMESPACES
    )
}

fn address(i: usize, w: usize) -> String {
    format!("10.{}.{}.{}", (i >> 8) & 255, i & 255, w + 1)
}

fn write(store: &mut Store, text: &str) {
    let source = Source::Apply {
        file: PathBuf::from("-"),
    };
    for doc in bowline_config::read_documents(Path::new("-"), text).documents {
        store.write(doc, source.clone(), 0);
    }
}

/// Median and slowest of `samples`, in milliseconds.
fn figures(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:>8.3} ms, max {:>8.3} ms ({} rounds)",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
        samples.len()
    )
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// One change written, then published as the registry does; returns the times of
/// `Store::config()` and of `Incremental::next`.
fn publish(
    store: &mut Store,
    incremental: &mut Incremental,
    snapshot: &mut Snapshot,
    change: &str,
) -> (Duration, Duration) {
    write(store, change);
    let changed = store.take_changed();
    assert_eq!(changed.len(), 1);
    let (config, config_time) = timed(|| store.config());
    let (next, next_time) = timed(|| incremental.next(snapshot, config, changed, store));
    assert_eq!(next.changed.services.len(), 1, "one service changed");
    *snapshot = next;
    (config_time, next_time)
}

fn main() {
    let services: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SERVICES: a number"))
        .unwrap_or(10_000);
    let mut store = Store::default();
    let (_, load) = timed(|| {
        for i in 0..services {
            write(&mut store, &service_entry(i, 80));
            for w in 0..WORKLOADS {
                write(&mut store, &workload_entry(i, w, &address(i, w)));
            }
        }
    });
    store.take_changed();
    let resources = store.config().resources.len();
    println!(
        "mesh: {services} services, {} workloads, {resources} resources (parsed and validated in {:.0} ms)",
        services * WORKLOADS,
        load.as_secs_f64() * 1000.0
    );

    let mut incremental = Incremental::default();
    let (first, _) = timed(|| {
        incremental.next(
            &Snapshot::default(),
            store.config(),
            BTreeSet::new(),
            &store,
        )
    });
    assert_eq!(first.services.len(), services);

    println!("(a) full path");
    let config: Vec<Duration> = (0..ROUNDS).map(|_| timed(|| store.config()).1).collect();
    println!("  Store::config()          {}", figures(config));
    let mut builds = Vec::new();
    let mut betweens = Vec::new();
    for _ in 0..FULL_ROUNDS {
        let config = store.config();
        let (built, build) = timed(|| Snapshot::build(first.generation + 1, config));
        let (_, between) =
            timed(|| Changes::between(&first, &built, BTreeSet::from([first_key(services)])));
        builds.push(build);
        betweens.push(between);
    }
    println!("  Snapshot::build          {}", figures(builds));
    println!("  Changes::between         {}", figures(betweens));

    println!("(b) incremental path: Store::config() + Incremental::next");
    let mut snapshot = first;
    for (what, change) in [
        (
            "one WorkloadEntry",
            Box::new(|round: usize, i: usize| {
                workload_entry(
                    i,
                    0,
                    &format!("192.168.{}.{}", round / 250, 1 + round % 250),
                )
            }) as Box<dyn Fn(usize, usize) -> String>,
        ),
        (
            "one ServiceEntry",
            Box::new(|round: usize, i: usize| service_entry(i, 1000 + round as u32)),
        ),
    ] {
        let (mut config, mut next, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // A different service each round, spread over the namespaces.
            let i = (round * 7919) % services;
            let (c, n) = publish(
                &mut store,
                &mut incremental,
                &mut snapshot,
                &change(round, i),
            );
            config.push(c);
            next.push(n);
            total.push(c + n);
        }
        println!("  {what}:");
        println!("    Store::config()        {}", figures(config));
        println!("    Incremental::next      {}", figures(next));
        println!("    together               {}", figures(total));
    }

    let reference = Snapshot::build(snapshot.generation, store.config());
    assert_eq!(snapshot.services, reference.services);
    assert_eq!(snapshot.workloads, reference.workloads);
    println!("checked: the incremental snapshot equals a full build");
}

fn first_key(services: usize) -> bowline_config::ResourceKey {
    let i = services / 2;
    bowline_config::ResourceKey {
        kind: bowline_config::Kind::WorkloadEntry,
        namespace: format!("ns-{}", i % NAMESPACES),
        name: format!("svc-{i}-0"),
    }
}
