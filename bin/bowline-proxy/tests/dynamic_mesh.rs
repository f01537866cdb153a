//! bowline-proxy as a mesh sidecar: `bowline control` serves it over ADS (SotW and delta),
//! from the bootstrap `bowline bootstrap envoy` prints — the same scenarios the Envoy e2e
//! suite checks: an 80/20 canary split, a header match, faults, a route timeout and retries.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{url, Ads, Mesh, REQUEST};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_hold_over_sotw() {
    routing_rules_hold(Ads::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_hold_over_delta() {
    routing_rules_hold(Ads::Delta).await;
}

async fn routing_rules_hold(ads: Ads) {
    let backends: &[(&str, &str, &[&str])] = &[
        ("reviews", "v1", &[]),
        ("reviews", "v2", &[]),
        ("faults", "v1", &[]),
        ("flaky", "v1", &["--fail-rate", "0.5"]),
    ];
    let mesh = Mesh::start(ads, backends, ROUTING).await.unwrap();
    let mut client = mesh.client();
    let mut versions: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..1000 {
        let rsp = client
            .request("GET", &url("reviews", "/"), &[], REQUEST)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text());
        *versions
            .entry(rsp.json()["version"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let v1 = versions.get("v1").copied().unwrap_or(0);
    println!("[{ads:?}] 80/20 split over 1000 requests: {versions:?}");
    assert_eq!(
        versions.values().sum::<u32>(),
        1000,
        "only v1 and v2: {versions:?}"
    );
    assert!(
        (750..=850).contains(&v1),
        "v1 got {v1} of 1000 (want 800 ± 50)"
    );

    for _ in 0..100 {
        let rsp = client
            .request(
                "GET",
                &url("reviews", "/"),
                &[("end-user", "jason")],
                REQUEST,
            )
            .await
            .unwrap();
        assert_eq!(rsp.json()["version"], "v2", "jason only sees v2");
    }
    let unknown = mesh.get("nosuch", "/", &[]).await.unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.text());

    // Faults: an abort never reaches the backend; a delay delays.
    let rsp = mesh.get("faults", "/abort", &[]).await.unwrap();
    assert_eq!(rsp.status, 418, "{}", rsp.text());
    assert!(rsp.header("x-echo-service").is_none());
    let started = Instant::now();
    let rsp = mesh.get("faults", "/delay", &[]).await.unwrap();
    assert_eq!(rsp.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );

    // A 2 s backend delay under a 0.5 s route timeout is cut with 504.
    let started = Instant::now();
    let rsp = mesh
        .get("faults", "/slow", &[("x-echo-delay", "2s")])
        .await
        .unwrap();
    assert_eq!(
        (rsp.status, rsp.text().as_str()),
        (504, "upstream request timeout")
    );
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );

    // Retries mask a backend that fails half of its requests.
    let mut ok = 0;
    for _ in 0..200 {
        let rsp = client
            .request("GET", &url("flaky", "/"), &[], REQUEST)
            .await
            .unwrap();
        ok += u32::from(rsp.status == 200);
    }
    assert!(ok >= 198, "with retries only {ok}/200 succeeded");
}
