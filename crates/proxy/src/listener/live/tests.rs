//! The registry's bookkeeping: who is ordered to close, when, and only once.

use super::*;
use crate::config::Change;
use crate::listener::recheck::tests::{chain, conn, listener, to};
use crate::stats::Stats;
use crate::upstream::build::tests::model_cluster;

/// The connection of `recheck::tests::conn` (listener `l`, chain `tcp`, cluster `b`) and a
/// config that has it all, published on a fresh state.
fn setup() -> Arc<State> {
    let state = State::new();
    let config = next(
        &Config::default(),
        Change {
            listeners: vec![listener(vec![chain("tcp", to("b"))])],
            clusters: vec![cluster("a"), cluster("b")],
            ..Change::default()
        },
        &state.stats,
    );
    state.config.store(config);
    state
}

fn cluster(name: &str) -> bowline_model::Cluster {
    model_cluster(name, "127.0.0.1:1")
}

fn next(config: &Config, change: Change, stats: &Stats) -> Arc<Config> {
    Arc::new(config.with(change, stats, None).0)
}

/// Publishes `change` and reviews, as `Proxy::apply` does; returns how many were ordered.
fn push(state: &State, change: Change) -> usize {
    let config = next(&state.config.load(), change, &state.stats);
    state.config.store(config.clone());
    state.live.review(&config)
}

#[test]
fn an_order_is_given_once_and_only_for_what_the_push_took_away() {
    let state = setup();
    let registration = register(&state, conn());
    assert_eq!((state.live.len(), state.live.closing()), (1, 0));
    let add_c = Change {
        clusters: vec![cluster("c")],
        ..Change::default()
    };
    assert_eq!(push(&state, add_c), 0, "a cluster added");
    let remove_a = Change {
        removed_clusters: vec!["a".into()],
        ..Change::default()
    };
    assert_eq!(push(&state, remove_a), 0, "another cluster removed");
    let remove_b = Change {
        removed_clusters: vec!["b".into()],
        ..Change::default()
    };
    assert_eq!(push(&state, remove_b), 1, "its cluster removed");
    assert_eq!(state.live.closing(), 1);
    let back = Change {
        clusters: vec![cluster("b")],
        ..Change::default()
    };
    assert_eq!(push(&state, back), 0, "not ordered twice");
    assert_eq!(state.live.closing(), 1, "an order is final");
    drop(registration);
    assert!(
        state.live.is_empty(),
        "a closed connection leaves the registry"
    );
}

#[test]
fn a_connection_registered_after_the_push_is_decided_against_it() {
    let state = setup();
    let remove_b = Change {
        removed_clusters: vec!["b".into()],
        ..Change::default()
    };
    assert_eq!(push(&state, remove_b), 0, "nobody registered yet");
    let _registration = register(&state, conn());
    assert_eq!(state.live.closing(), 1, "decided when it registered");
}

#[tokio::test]
async fn closed_resolves_after_the_drain_time_with_the_reason() {
    let state = setup();
    let drain = Duration::from_millis(20);
    state.live.set_drain_time(drain);
    let mut registration = register(&state, conn());
    let pushed = std::time::Instant::now();
    let remove_listener = Change {
        removed_listeners: vec!["l".into()],
        ..Change::default()
    };
    assert_eq!(push(&state, remove_listener), 1);
    let reason = tokio::time::timeout(Duration::from_secs(10), registration.closed())
        .await
        .expect("closed within the drain time");
    assert_eq!(reason, CloseReason::FilterChainRemoved);
    assert!(pushed.elapsed() >= drain, "{:?}", pushed.elapsed());
}

#[tokio::test(start_paused = true)]
async fn without_an_order_closed_never_resolves() {
    let state = setup();
    let mut registration = register(&state, conn());
    let waited = tokio::time::timeout(Duration::from_secs(3600), registration.closed()).await;
    assert!(waited.is_err());
}
