//! The Kubernetes source against a stand-in API server that answers in the real server's
//! shapes, with the real kube-rs client: the registry follows pods appearing, scaling,
//! turning not ready and going away, through bookmarks and a 410 that forces a relist, and
//! mesh config arrives through the same store as files.

use anyhow::{bail, Result};
use bowline_kube::{KubeSource, Options};
use bowline_registry::watch::{Options as RegistryOptions, Registry};
use bowline_testkit::kube_api::ApiServer;
use bowline_testkit::kube_fixtures::*;
use bowline_testkit::wait_until;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(10);
const REVIEWS: &str = "reviews.default.svc.cluster.local";

async fn client(api: &ApiServer) -> kube::Client {
    let config = kube::Config::new(format!("http://{}", api.addr).parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn endpoints(registry: &Registry, host: &str) -> Vec<String> {
    let snapshot = registry.snapshot();
    snapshot
        .services
        .iter()
        .find(|s| s.hostname == host)
        .map(|s| s.endpoints.iter().map(|e| e.address.clone()).collect())
        .unwrap_or_default()
}

async fn endpoints_become(registry: &Registry, host: &str, want: &[&str]) -> Result<()> {
    wait_until(WAIT, POLL, || async {
        let mut got = endpoints(registry, host);
        got.sort();
        if got == want {
            Ok(())
        } else {
            bail!("{host} endpoints are {got:?}, want {want:?}")
        }
    })
    .await
}

#[tokio::test]
async fn endpoints_follow_pods_through_scaling_readiness_deletion_and_a_relist() -> Result<()> {
    let api = ApiServer::start().await?;
    api.put(namespace("default", json!({"istio-injection": "enabled"})));
    api.put(reviews_service());
    api.put(reviews_pod("reviews-v1-a", "v1", "10.244.1.7", true));
    api.put(reviews_slice(&[(
        "reviews-v1-a",
        "10.244.1.7",
        true,
        false,
    )]));

    let registry = Registry::open(RegistryOptions::default())?;
    let source = KubeSource::new(client(&api).await, registry.clone(), Options::default());
    let mut synced = source.synced();
    let namespaces = source.namespaces();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(source.run(async {
        let _ = stopped.await;
    }));
    tokio::time::timeout(WAIT, synced.wait_for(|s| *s)).await??;
    endpoints_become(&registry, REVIEWS, &["10.244.1.7"]).await?;
    assert_eq!(
        namespaces.labels("default").unwrap()["istio-injection"],
        "enabled"
    );

    // Locality from the pod's node, by Istio's topology labels; a relabelled node moves its
    // pods.
    let locality = |registry: &Registry| {
        registry
            .snapshot()
            .workloads
            .iter()
            .find(|w| w.name == "reviews-v1-a")
            .map(|w| w.locality.clone())
            .unwrap_or_default()
    };
    for zone in ["us-east1-b", "us-east1-c"] {
        api.put(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "kind-worker", "labels": {
                "topology.kubernetes.io/region": "us-east1", "topology.kubernetes.io/zone": zone}}}));
        let want = format!("us-east1/{zone}");
        wait_until(WAIT, POLL, || async {
            let got = locality(&registry);
            if got == want {
                Ok(())
            } else {
                bail!("locality {got:?}, want {want:?}")
            }
        })
        .await?;
    }

    // Scale up: a second pod, ready, listed by the slice.
    api.put(reviews_pod("reviews-v2-b", "v2", "10.244.2.9", true));
    api.put(reviews_slice(&[
        ("reviews-v1-a", "10.244.1.7", true, false),
        ("reviews-v2-b", "10.244.2.9", true, false),
    ]));
    endpoints_become(&registry, REVIEWS, &["10.244.1.7", "10.244.2.9"]).await?;

    // The second pod turns not ready: the slice says so first.
    api.put(reviews_slice(&[
        ("reviews-v1-a", "10.244.1.7", true, false),
        ("reviews-v2-b", "10.244.2.9", false, false),
    ]));
    endpoints_become(&registry, REVIEWS, &["10.244.1.7"]).await?;
    // ... and ready again.
    api.put(reviews_slice(&[
        ("reviews-v1-a", "10.244.1.7", true, false),
        ("reviews-v2-b", "10.244.2.9", true, false),
    ]));
    endpoints_become(&registry, REVIEWS, &["10.244.1.7", "10.244.2.9"]).await?;

    // A bookmark changes nothing; history compacted (410): the watches relist, and a pod
    // deleted while they were down is gone after the relist.
    api.bookmark();
    api.expire();
    api.delete("v1", "Pod", "default", "reviews-v1-a");
    endpoints_become(&registry, REVIEWS, &["10.244.2.9"]).await?;
    let relists = api
        .requests()
        .iter()
        .filter(|(m, p)| m == "GET" && p.starts_with("/api/v1/pods") && !p.contains("watch="))
        .count();
    assert!(
        relists >= 2,
        "pods were listed {relists} times; a 410 must force a relist"
    );

    // A terminating pod stops serving before it is deleted.
    api.put(reviews_slice(&[(
        "reviews-v2-b",
        "10.244.2.9",
        false,
        true,
    )]));
    endpoints_become(&registry, REVIEWS, &[]).await?;

    // A Service whose targetPort names the container port: its pods' endpoints take the
    // port of that name.
    api.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ratings", "namespace": "default"},
        "spec": {"clusterIP": "10.96.7.7", "selector": {"app": "ratings"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}));
    let mut ratings = reviews_pod("ratings-v1-c", "v1", "10.244.3.3", true);
    ratings["metadata"]["labels"]["app"] = "ratings".into();
    ratings["spec"]["containers"][0]["ports"] = json!([{"name": "web", "containerPort": 9080}]);
    api.put(ratings);
    wait_until(WAIT, POLL, || async {
        let snapshot = registry.snapshot();
        let svc = snapshot
            .services
            .iter()
            .find(|s| s.hostname == "ratings.default.svc.cluster.local");
        let ports: Vec<u32> = svc
            .map(|s| {
                s.endpoints
                    .iter()
                    .map(|e| e.port_for(&s.ports[0]))
                    .collect()
            })
            .unwrap_or_default();
        if ports == [9080] {
            Ok(())
        } else {
            bail!("ratings endpoint ports {ports:?}, want [9080]")
        }
    })
    .await?;

    // Mesh config through the API: judged like a file, with the API path as its file.
    api.put(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]}}));
    api.put(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "broken", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "port": {"number": 70000}}}]}]}}));
    wait_until(WAIT, POLL, || async {
        let entries = registry.entries();
        let served = entries.iter().any(|e| {
            e.key.name == "reviews"
                && e.key.kind == bowline_config::Kind::VirtualService
                && e.served.is_some()
        });
        let refused = entries
            .iter()
            .find(|e| e.key.name == "broken")
            .and_then(|e| e.refused.clone());
        match (served, refused) {
            (true, Some(r)) => {
                let text = r
                    .diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                assert!(
                    text.contains(
                        "/apis/networking.istio.io/v1/namespaces/default/virtualservices/broken"
                    ),
                    "{text}"
                );
                Ok(())
            }
            other => bail!("VirtualServices not in the store yet: {other:?}"),
        }
    })
    .await?;

    // Deleting the Service removes it.
    api.delete("v1", "Service", "default", "reviews");
    wait_until(WAIT, POLL, || async {
        if registry
            .snapshot()
            .services
            .iter()
            .any(|s| s.hostname == REVIEWS)
        {
            bail!("reviews still served")
        }
        Ok(())
    })
    .await?;

    let _ = stop.send(());
    tokio::time::timeout(WAIT, task).await???;
    Ok(())
}
