//! A DestinationRule's `trafficPolicy.retryBudget` becomes the cluster's circuit breaker
//! `retry_budget`; bowline-proxy's model and the real Envoy (`--mode validate`, never skipped)
//! take what comes out.

mod support;

use bowline_model::cluster::RetryBudget;
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use support::bootstrap::{envoy_validate, inlined};
use support::{mesh, mesh_unchecked, proxy, push};

const SERVICES: &str = include_str!("inputs/services.yaml");

fn clusters(snap: &bowline_registry::Snapshot) -> Vec<Cluster> {
    let p = proxy(snap, "10.10.0.10", "productpage-v1", "default");
    bowline_translate::clusters(&push(snap), &p)
}

fn rule(spec: &str) -> String {
    format!(
        "{SERVICES}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r, namespace: default}}\nspec:\n  host: ratings\n{spec}"
    )
}

/// The retry budget of cluster `name` as bowline-proxy's model reads it.
fn budget(clusters: &[Cluster], name: &str) -> Option<RetryBudget> {
    let c = clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"));
    let model = bowline_model::Cluster::try_from(c).unwrap_or_else(|e| panic!("{e}"));
    model.circuit_breakers.retry_budget
}

const RATINGS: &str = "outbound|9080||ratings.default.svc.cluster.local";
const RATINGS_V1: &str = "outbound|9080|v1|ratings.default.svc.cluster.local";

#[test]
fn destination_rule_retry_budget_becomes_envoys() {
    let snap = mesh(&rule(
        "  trafficPolicy:\n    retryBudget: {percent: 25, minRetryConcurrency: 1}\n    connectionPool: {http: {maxRetries: 7}}\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy: {retryBudget: {percent: 50}}\n",
    ));
    let out = clusters(&snap);
    assert_eq!(
        budget(&out, RATINGS),
        Some(RetryBudget {
            budget_percent: 25.0,
            min_retry_concurrency: 1
        })
    );
    assert_eq!(
        budget(&out, RATINGS_V1),
        Some(RetryBudget {
            budget_percent: 50.0,
            min_retry_concurrency: 3
        }),
        "a subset's budget replaces the top-level one whole; 3 is the default minimum"
    );

    let p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    let generated = bowline_translate::generate(&push(&snap), &p);
    if let Err(output) = envoy_validate(&inlined(&generated)) {
        panic!("Envoy rejected the retry budgets:\n{output}");
    }

    // Nothing set: Envoy's (and Istio's documented) 20%, minimum 3.
    let snap = mesh(&rule("  trafficPolicy: {retryBudget: {}}\n"));
    assert_eq!(
        budget(&clusters(&snap), RATINGS),
        Some(RetryBudget::default())
    );

    // No budget: none, max_retries rules.
    let snap = mesh(&rule(
        "  trafficPolicy: {connectionPool: {http: {maxRetries: 7}}}\n",
    ));
    assert_eq!(budget(&clusters(&snap), RATINGS), None);
}

#[test]
fn a_retry_budget_envoy_would_refuse_is_left_at_its_default() {
    let snap = mesh_unchecked(&rule(
        "  trafficPolicy: {retryBudget: {percent: 150, budgetInterval: 1s}}\n",
    ));
    assert_eq!(
        budget(&clusters(&snap), RATINGS),
        Some(RetryBudget::default())
    );
}
