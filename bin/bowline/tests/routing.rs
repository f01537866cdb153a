//! Istio routing rules served by `bowline control` and enforced by the sidecar — the real
//! Envoy 1.40 and bowline-proxy, with the same expected outcomes (a differential suite) — over
//! both state-of-the-world and delta ADS.
//!
//! One mesh per sidecar × ADS flavour carries every scenario on its own service, so the
//! scenarios run against one control plane and one sidecar, as they would in a real mesh.

mod support;

use bowline_testkit::ProxyKind;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Ads, Mesh, REQUEST};

const ROUTING: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v2}
      weight: 20
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: faults}
spec:
  hosts: [faults.default.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault:
      abort: {httpStatus: 418, percentage: {value: 100}}
    route: [{destination: {host: faults}}]
  - match: [{uri: {prefix: /delay}}]
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 100}}
    route: [{destination: {host: faults}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 0.5s
    route: [{destination: {host: faults}}]
  - route: [{destination: {host: faults}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - retries: {attempts: 10, retryOn: 5xx, perTryTimeout: 2s, backoff: 5ms}
    route: [{destination: {host: flaky}}]
"#;

async fn mesh(sidecar: ProxyKind, ads: Ads) -> Mesh {
    Mesh::builder(sidecar, ads)
        .backend("reviews", "v1", &[])
        .backend("reviews", "v2", &[])
        .backend("faults", "v1", &[])
        .backend("flaky", "v1", &["--fail-rate", "0.5"])
        .config("routing.yaml", ROUTING)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_hold_on_envoy_over_sotw() {
    routing_rules_hold(ProxyKind::Envoy, Ads::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_hold_on_envoy_over_delta() {
    routing_rules_hold(ProxyKind::Envoy, Ads::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_hold_on_bowline_over_sotw() {
    routing_rules_hold(ProxyKind::Bowline, Ads::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_hold_on_bowline_over_delta() {
    routing_rules_hold(ProxyKind::Bowline, Ads::Delta).await;
}

async fn routing_rules_hold(sidecar: ProxyKind, ads: Ads) {
    let mesh = mesh(sidecar, ads).await;
    weights_80_20_hold_within_5_points(&mesh).await;
    end_user_jason_goes_to_v2_only(&mesh).await;
    abort_fault_returns_its_status(&mesh).await;
    delay_fault_delays(&mesh).await;
    a_2s_backend_delay_under_a_half_second_timeout_is_504(&mesh).await;
    retries_mask_a_half_failing_backend(&mesh).await;
}

async fn weights_80_20_hold_within_5_points(mesh: &Mesh) {
    let mut client = mesh.client();
    let mut versions: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..1000 {
        let rsp = client
            .request("GET", &support::url("reviews", "/"), &[], REQUEST)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text());
        let version = rsp.json()["version"].as_str().unwrap().to_string();
        *versions.entry(version).or_default() += 1;
    }
    let v1 = versions.get("v1").copied().unwrap_or(0);
    let v2 = versions.get("v2").copied().unwrap_or(0);
    println!(
        "[{}] 80/20 split over 1000 requests: v1={v1} v2={v2}",
        mesh.label()
    );
    assert_eq!(v1 + v2, 1000, "only v1 and v2 may answer: {versions:?}");
    assert!(
        (750..=850).contains(&v1),
        "v1 got {v1} of 1000 (want 800 ± 50)"
    );
}

async fn end_user_jason_goes_to_v2_only(mesh: &Mesh) {
    let mut client = mesh.client();
    for _ in 0..100 {
        let rsp = client
            .request(
                "GET",
                &support::url("reviews", "/"),
                &[("end-user", "jason")],
                REQUEST,
            )
            .await
            .unwrap();
        assert_eq!(rsp.status, 200);
        assert_eq!(rsp.json()["version"], "v2", "jason must only see v2");
    }
    // Someone else still gets the split: at least one v1 in 50 tries (P(miss) = 0.2^50).
    let mut saw_v1 = false;
    for _ in 0..50 {
        let rsp = client
            .request(
                "GET",
                &support::url("reviews", "/"),
                &[("end-user", "alice")],
                REQUEST,
            )
            .await
            .unwrap();
        saw_v1 |= rsp.json()["version"] == "v1";
    }
    assert!(saw_v1, "the jason rule must not capture other users");
}

async fn abort_fault_returns_its_status(mesh: &Mesh) {
    for _ in 0..20 {
        let rsp = mesh.get("faults", "/abort", &[]).await.unwrap();
        assert_eq!(rsp.status, 418, "{}", rsp.text());
        assert!(
            rsp.header("x-echo-service").is_none(),
            "an abort never reaches the backend"
        );
    }
    let rsp = mesh.get("faults", "/other", &[]).await.unwrap();
    assert_eq!(
        rsp.status, 200,
        "other paths of the same host are not faulted"
    );
}

async fn delay_fault_delays(mesh: &Mesh) {
    let started = Instant::now();
    let rsp = mesh.get("faults", "/delay", &[]).await.unwrap();
    let took = started.elapsed();
    assert_eq!(rsp.status, 200);
    assert!(
        took >= Duration::from_millis(950),
        "a 1s fixed delay took only {took:?}"
    );
}

async fn a_2s_backend_delay_under_a_half_second_timeout_is_504(mesh: &Mesh) {
    let started = Instant::now();
    let rsp = mesh
        .get("faults", "/slow", &[("x-echo-delay", "2s")])
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(rsp.status, 504, "{}", rsp.text());
    assert!(
        took < Duration::from_millis(1900),
        "the timeout did not cut the 2s delay: {took:?}"
    );
    println!(
        "[{}] 2s delay under a 0.5s timeout: 504 after {took:?}",
        mesh.label()
    );
    // Without the timeout rule the same delay is served.
    let rsp = mesh
        .get("faults", "/unbounded", &[("x-echo-delay", "600ms")])
        .await
        .unwrap();
    assert_eq!(rsp.status, 200);
}

async fn retries_mask_a_half_failing_backend(mesh: &Mesh) {
    // Directly, the backend fails about half of the requests…
    let backend = mesh.backends.iter().find(|b| b.service == "flaky").unwrap();
    let mut direct_failures = 0;
    for _ in 0..200 {
        let rsp = bowline_testkit::get(backend.addr, "/", &[], REQUEST)
            .await
            .unwrap();
        if rsp.status != 200 {
            direct_failures += 1;
        }
    }
    assert!(
        (60..=140).contains(&direct_failures),
        "the backend should fail ~50% directly, failed {direct_failures}/200"
    );
    // …through the sidecar with retries, at least 99% succeed.
    let mut client = mesh.client();
    let mut ok = 0;
    for _ in 0..200 {
        let rsp = client
            .request("GET", &support::url("flaky", "/"), &[], REQUEST)
            .await
            .unwrap();
        if rsp.status == 200 {
            ok += 1;
        }
    }
    println!(
        "[{}] 50%-failing backend: direct {}/200 ok, with retries {ok}/200 ok",
        mesh.label(),
        200 - direct_failures
    );
    assert!(
        ok >= 198,
        "with retries only {ok}/200 succeeded (want ≥ 99%)"
    );
}
