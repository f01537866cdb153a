//! bowline-proxy as a mesh sidecar: `bowline control` serves it over ADS (SotW and delta),
//! from the bootstrap `bowline bootstrap envoy` prints — the same scenarios the Envoy e2e
//! suite checks: an 80/20 canary split and a header match.

mod support;

use std::collections::BTreeMap;

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
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_split_and_header_match_over_sotw() {
    canary_split_and_header_match(Ads::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_split_and_header_match_over_delta() {
    canary_split_and_header_match(Ads::Delta).await;
}

async fn canary_split_and_header_match(ads: Ads) {
    let mesh = Mesh::start(ads, &[("reviews", "v1"), ("reviews", "v2")], ROUTING)
        .await
        .unwrap();
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
}
