//! The Gateway API conformance suite's HTTPRoute and GRPCRoute core scenarios, run through
//! bowline's gateway (bowline-proxy in the router role, fed by `bowline control`).
//!
//! For each scenario: a fresh control plane and gateway on a directory holding the
//! conformance base Gateways, the backend adapter (see `support/gateway_api.rs`: backend
//! Services → ServiceEntry + WorkloadEntry → `bowline echo`) and the scenario's manifest
//! from `conformance/tests/<name>.yaml`, unchanged. Then the route conditions the suite
//! checks, computed by `bowline_translate::gateway_api_status` over the same directory,
//! and every expected response (transcribed in `gateway_api_conformance/scenarios.rs`),
//! each retried for a few seconds as the suite's "eventually consistent" requests are.
//!
//! Prints pass/fail per scenario and per case; asserts that every scenario of [`MUST_PASS`]
//! passes. [`KNOWN_GAPS`] lists scenarios that are run and reported but known to fail, with
//! the reason.
//!
//! Needs the binaries: `cargo build -p bowline -p bowline-proxy-bin --bins` first. For a
//! manual run, `BOWLINE_CONFORMANCE_ONLY=name,name` runs only those scenarios (and asserts
//! only those), and `BOWLINE_CONFORMANCE_PROXY=envoy` runs the real Envoy as the gateway.

mod support;

#[path = "support/gateway_api.rs"]
mod gateway_api;

#[path = "gateway_api_conformance/cases.rs"]
mod cases;

#[path = "gateway_api_conformance/scenarios.rs"]
mod scenarios;

use anyhow::{Context, Result};
use cases::{compare, send, Case};
use gateway_api::{
    adapter_yaml, corpus, documents, is_mesh_config, meta, start_backends, top, Backend, Gateway,
};
use scenarios::{Cond, RouteCheck, Scenario};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Scenarios that must pass.
const MUST_PASS: &[&str] = &[
    "httproute-simple-same-namespace",
    "httproute-matching",
    "httproute-matching-across-routes",
    "httproute-exact-path-matching",
    "httproute-header-matching",
    "httproute-query-param-matching",
    "httproute-method-matching",
    "httproute-path-match-order",
    "httproute-rewrite-path",
    "httproute-rewrite-host",
    "httproute-redirect-path",
    "httproute-redirect-host-and-status",
    "httproute-redirect-port",
    "httproute-redirect-scheme",
    "httproute-303-redirect",
    "httproute-307-redirect",
    "httproute-308-redirect",
    "httproute-request-header-modifier",
    "httproute-response-header-modifier",
    "httproute-reference-grant",
    "httproute-invalid-cross-namespace-backend-ref",
    "httproute-invalid-reference-grant",
    "httproute-partially-invalid-via-invalid-reference-grant",
    "httproute-invalid-nonexistent-backendref",
    "httproute-invalid-backendref-unknown-kind",
    "httproute-omitted-backendrefs",
    "httproute-weight",
    "grpcroute-exact-method-matching",
    "grpcroute-header-matching",
    "grpcroute-weight",
];

/// Scenarios run and reported, known not to pass, and why. (Single cases bowline-proxy is
/// known to fail are marked in `scenarios.rs` with `proxy_gap`, and reported.)
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// How long one expected response may take to become true.
const CONSISTENCY: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_conformance() {
    let backends = start_backends().await.expect("conformance backends start");
    let only: Option<Vec<String>> = std::env::var("BOWLINE_CONFORMANCE_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let selected = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let mut results: BTreeMap<&'static str, Result<(), String>> = BTreeMap::new();
    for scenario in scenarios::all().into_iter().filter(|s| selected(s.name)) {
        let outcome = run(&scenario, &backends).await;
        match &outcome {
            Ok(()) => println!("PASS {}", scenario.name),
            Err(e) => println!("FAIL {}: {e}", scenario.name),
        }
        results.insert(scenario.name, outcome.map_err(|e| format!("{e:#}")));
    }
    let passed = results.values().filter(|r| r.is_ok()).count();
    println!("\n{passed}/{} scenarios pass", results.len());
    for (name, why) in KNOWN_GAPS {
        println!("known gap: {name}: {why}");
    }
    let mut failed = Vec::new();
    for name in MUST_PASS.iter().filter(|n| selected(n)) {
        match results.get(name) {
            Some(Ok(())) => {}
            Some(Err(e)) => failed.push(format!("{name}: {e}")),
            None => failed.push(format!("{name}: not run")),
        }
    }
    assert!(
        failed.is_empty(),
        "scenarios that must pass failed:\n{}",
        failed.join("\n")
    );
}

/// One scenario: config, gateway, conditions, every case of every phase.
async fn run(scenario: &Scenario, backends: &[Backend]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let base = std::fs::read_to_string(corpus().join("base/manifests.yaml"))?;
    let mut files = 0;
    let mut write = |doc: &str, dir: &std::path::Path| -> Result<String> {
        files += 1;
        let name = format!("{files:03}.yaml");
        std::fs::write(
            dir.join(&name),
            doc.replace("{GATEWAY_CLASS_NAME}", "bowline"),
        )?;
        Ok(name)
    };
    for doc in documents(&base)
        .iter()
        .filter(|d| top(d, "kind").as_deref() == Some("Gateway"))
    {
        write(doc, dir.path())?;
    }
    std::fs::write(dir.path().join("000-backends.yaml"), adapter_yaml(backends))?;
    let manifest = std::fs::read_to_string(corpus().join(format!("tests/{}.yaml", scenario.name)))
        .with_context(|| format!("manifest of {}", scenario.name))?;
    // (kind, namespace, name) → file, for deletions.
    let mut by_ref: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for doc in documents(&manifest).iter().filter(|d| is_mesh_config(d)) {
        let file = write(doc, dir.path())?;
        let key = (
            top(doc, "kind").unwrap_or_default(),
            meta(doc, "namespace").unwrap_or_default(),
            meta(doc, "name").unwrap_or_default(),
        );
        by_ref.insert(key, file);
    }
    check_conditions(dir.path(), &scenario.routes)?;
    let mut ports = vec![80, 443, 8080];
    ports.extend(&scenario.ports);
    ports.sort();
    ports.dedup();
    let gateway = Gateway::start(dir, &ports).await?;
    let rejected = gateway.rejected().await?;
    if rejected.as_object().is_some_and(|m| !m.is_empty()) {
        println!("  {}: refused files: {rejected}", scenario.name);
    }
    let mut generation = gateway.wait_synced(0).await?;
    let envoy = std::env::var("BOWLINE_CONFORMANCE_PROXY").as_deref() == Ok("envoy");
    let mut failures = Vec::new();
    for phase in &scenario.phases {
        if let Some((kind, ns, name)) = phase.delete {
            let key = (kind.to_string(), ns.to_string(), name.to_string());
            let file = by_ref
                .get(&key)
                .with_context(|| format!("no document {key:?}"))?;
            std::fs::remove_file(gateway.dir.path().join(file))?;
            generation = gateway.wait_synced(generation).await?;
            println!("  {}: deleted {kind} {ns}/{name}", scenario.name);
        }
        for case in &phase.cases {
            let gap = case.proxy_gap.filter(|_| !envoy);
            match eventually(&gateway, case).await {
                Ok(()) if gap.is_some() => {
                    println!(
                        "  pass {}: {} (listed as a known proxy gap: remove the mark)",
                        scenario.name,
                        case.label()
                    )
                }
                Ok(()) => println!("  pass {}: {}", scenario.name, case.label()),
                Err(e) if gap.is_some() => {
                    println!(
                        "  KNOWN GAP {}: {}: {e:#} ({})",
                        scenario.name,
                        case.label(),
                        gap.unwrap_or_default()
                    )
                }
                Err(e) => {
                    println!("  FAIL {}: {}: {e:#}", scenario.name, case.label());
                    failures.push(format!("{}: {e:#}", case.label()));
                }
            }
        }
    }
    if let Some(w) = &scenario.weights {
        match weights(&gateway, w).await {
            Ok(shares) => println!("  pass {}: weights {shares}", scenario.name),
            Err(e) => {
                println!("  FAIL {}: weights: {e:#}", scenario.name);
                failures.push(format!("weights: {e:#}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} case(s) failed: {}", failures.len(), failures.join("; "))
    }
}

/// Retries the case until it holds or [`CONSISTENCY`] passes; the last mismatch is the error.
async fn eventually(gateway: &Gateway, case: &Case) -> Result<()> {
    let addr = gateway.addr(case.port).await?;
    let deadline = Instant::now() + CONSISTENCY;
    loop {
        let outcome = match send(case, addr).await {
            Ok(answer) => compare(case, &answer),
            Err(e) => Err(e),
        };
        if outcome.is_ok() || Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The suite's weighted-distribution check: 500 requests, each backend's share within 0.05
/// of its weight (a zero weight gets none), up to 3 tries.
async fn weights(gateway: &Gateway, w: &scenarios::Weights) -> Result<String> {
    let addr = gateway.addr(w.case.port).await?;
    let mut last = String::new();
    for _ in 0..3 {
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        const N: u32 = 500;
        for _ in 0..N {
            let answer = send(&w.case, addr).await?;
            anyhow::ensure!(answer.status == 200, "status {}", answer.status);
            let who = answer
                .headers
                .get("x-echo-service")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            *counts.entry(who).or_default() += 1;
        }
        let ok = w.shares.iter().all(|(b, share)| {
            let got = f64::from(counts.get(*b).copied().unwrap_or(0)) / f64::from(N);
            if *share == 0.0 {
                got == 0.0
            } else {
                (got - share).abs() <= 0.05
            }
        }) && counts.keys().all(|k| w.shares.iter().any(|(b, _)| b == k));
        last = format!("{counts:?} of {N}");
        if ok {
            return Ok(last);
        }
    }
    anyhow::bail!("distribution {last}, want {:?}", w.shares)
}

/// The conditions the suite checks on each route's parent, from the status function the
/// control plane uses, over the scenario's directory.
fn check_conditions(dir: &std::path::Path, routes: &[RouteCheck]) -> Result<()> {
    let loaded = bowline_config::load_paths(&[dir]);
    let snapshot = bowline_registry::Snapshot::build(1, loaded.config);
    let status = bowline_translate::gateway_api_status(&snapshot);
    for check in routes {
        let route = status
            .routes
            .iter()
            .find(|r| r.kind == check.kind && r.name == check.name)
            .with_context(|| format!("no status for {} {}", check.kind, check.name))?;
        let parent = route
            .parents
            .iter()
            .find(|p| p.parent_ref.name == check.gateway)
            .with_context(|| format!("{} has no parent {}", check.name, check.gateway))?;
        let want = [
            ("Accepted", Some(check.accepted)),
            ("ResolvedRefs", check.resolved),
        ];
        for (kind, want) in want {
            let Some(want) = want else { continue };
            let c = parent
                .conditions
                .iter()
                .find(|c| c.kind == kind)
                .with_context(|| format!("{} has no {kind} condition", check.name))?;
            let ok = match want {
                Cond::True => c.is_true(),
                Cond::False(reason) => !c.is_true() && c.reason == reason,
            };
            anyhow::ensure!(
                ok,
                "{} {}: {kind} is {} {} ({}), want {want:?}",
                check.kind,
                check.name,
                c.status,
                c.reason,
                c.message
            );
        }
    }
    Ok(())
}
