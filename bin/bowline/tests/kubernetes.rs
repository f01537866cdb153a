//! `bowline control --kubernetes` against a stand-in API server that answers in the real
//! server's shapes (list, watch, 410, status, Lease, TokenReview), with the real kube-rs
//! client inside the real binary: a sidecar's endpoints follow pods appearing, scaling,
//! turning not ready and being deleted (time from the API event to the proxy holding it is
//! printed); a VirtualService from the API gets its status written back with the
//! programmed count by the Lease holder; and the injection webhook answers an
//! AdmissionReview over HTTPS with the patch `bowline inject` makes.

mod support;

use anyhow::{bail, Context, Result};
use bowline_testkit::kube_api::ApiServer;
use bowline_testkit::kube_fixtures::*;
use bowline_testkit::{bowline_proxy_binary, get, wait_until, Proc};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{bowline, CLIENT_NODE_ID, STARTUP};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);
const REVIEWS: &str = "outbound|9080||reviews.default.svc.cluster.local";

fn addr_after(line: &str, prefix: &str) -> SocketAddr {
    line.split(prefix).nth(1).unwrap().trim().parse().unwrap()
}

/// The endpoint addresses the proxy holds for `cluster` (its admin `/clusters`).
async fn proxy_endpoints(admin: SocketAddr, cluster: &str) -> Result<Vec<String>> {
    let rsp = get(admin, "/clusters", &[], Duration::from_secs(2)).await?;
    let mut out: Vec<String> = rsp
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{cluster}::")))
        .filter_map(|rest| rest.split("::").next())
        .map(|a| a.split(':').next().unwrap_or_default().to_string())
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Waits until the proxy holds `want`; returns how long that took.
async fn follows(admin: SocketAddr, want: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    wait_until(WAIT, POLL, || async {
        let got = proxy_endpoints(admin, REVIEWS).await?;
        if got == want {
            Ok(())
        } else {
            bail!("proxy endpoints {got:?}, want {want:?}")
        }
    })
    .await?;
    Ok(start.elapsed())
}

/// `bowline control --kubernetes` on the stand-in API server as replica `bowline-0` of
/// `bowline-system` (3 s leases), with a debug port and `args`; a relative `--ca-dir` is
/// under `dir`.
fn control(api: &ApiServer, dir: &std::path::Path, args: &[&str]) -> Result<Proc> {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig())?;
    let mut cmd = bowline();
    cmd.args(["control", "--kubernetes", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--debug-addr", "127.0.0.1:0"])
        .current_dir(dir)
        .args(args)
        .env("POD_NAMESPACE", "bowline-system")
        .env("POD_NAME", "bowline-0")
        .env("BOWLINE_LEASE_DURATION_S", "3");
    Proc::spawn("control", cmd)
}

/// The bootstrap of the client sidecar (productpage's), following `xds`.
fn client_bootstrap(xds: SocketAddr) -> Result<String> {
    let out = bowline()
        .args(["bootstrap", "envoy", "--node-id", CLIENT_NODE_ID])
        .args([
            "--xds-addr",
            &xds.to_string(),
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(["--outbound-port", "0", "--inbound-port", "0"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The reviews VirtualService's status once it says Programmed (bounded).
async fn reviews_programmed(api: &ApiServer) -> Result<Value> {
    wait_until(WAIT, Duration::from_millis(50), || async {
        let status = api
            .status_of(
                "networking.istio.io/v1",
                "VirtualService",
                "default",
                "reviews",
            )
            .unwrap_or_default();
        let programmed = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Programmed" && c["status"] == "True");
        if programmed {
            Ok(status)
        } else {
            bail!("VirtualService status: {status}")
        }
    })
    .await
}

/// RFC 6902 add / replace / remove, enough for injection patches.
fn apply_patch(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        let (parent, last) = path.rsplit_once('/').unwrap();
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = doc.pointer_mut(parent).unwrap();
        match (op["op"].as_str().unwrap(), target) {
            ("remove", Value::Object(m)) => {
                m.remove(&last);
            }
            ("remove", Value::Array(a)) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            (_, Value::Object(m)) => {
                m.insert(last, op["value"].clone());
            }
            ("add", Value::Array(a)) if last == "-" => a.push(op["value"].clone()),
            ("add", Value::Array(a)) => a.insert(last.parse().unwrap(), op["value"].clone()),
            (_, Value::Array(a)) => a[last.parse::<usize>().unwrap()] = op["value"].clone(),
            (op, other) => panic!("{op} on {other}"),
        }
    }
}

/// POSTs `body` to `https://<addr>/inject`, verifying the server against `root_pem` as
/// `bowline.bowline-system.svc`.
async fn post_https(addr: SocketAddr, root_pem: &str, body: &Value) -> Result<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("bowline.bowline-system.svc")?;
    let mut tls = connector.connect(name, tcp).await?;
    let body = body.to_string();
    tls.write_all(format!("POST /inject HTTP/1.1\r\nhost: bowline.bowline-system.svc\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.ok();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{head}");
    }
    Ok(serde_json::from_str(body.trim())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_follows_the_api_server_writes_status_and_injects() -> Result<()> {
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

    api.put(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "bowline-sidecar-injector"},
        "webhooks": [{"name": "namespace.sidecar-injector.bowline.io", "admissionReviewVersions": ["v1"],
            "sideEffects": "None", "clientConfig": {"service": {"name": "bowline", "namespace": "bowline-system", "path": "/inject"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]}));
    let dir = tempfile::tempdir()?;
    let control = control(
        &api,
        dir.path(),
        &[
            "--xds-addr",
            "127.0.0.1:0",
            "--secure-xds-addr",
            "127.0.0.1:0",
            "--webhook-addr",
            "127.0.0.1:0",
            "--server-name",
            "bowline.bowline-system.svc",
            "--ca-dir",
            "ca",
        ],
    )?;
    let xds = addr_after(
        &control.wait_for_line("xds listening on ", STARTUP).await?,
        "xds listening on ",
    );
    let webhook = addr_after(
        &control
            .wait_for_line("webhook listening on ", STARTUP)
            .await?,
        "webhook listening on ",
    );

    // A sidecar (productpage's) following the mesh.
    let bootstrap = client_bootstrap(xds)?;
    let file = dir.path().join("bootstrap.yaml");
    std::fs::write(&file, &bootstrap)?;
    let admin_file = dir.path().join("admin");
    let mut cmd = Command::new(bowline_proxy_binary());
    cmd.arg("-c")
        .arg(&file)
        .arg("--admin-address-path")
        .arg(&admin_file);
    let _proxy = Proc::spawn("proxy", cmd)?;
    let admin: SocketAddr = wait_until(STARTUP, POLL, || async {
        Ok(std::fs::read_to_string(&admin_file)?
            .trim()
            .parse::<SocketAddr>()?)
    })
    .await?;

    let mut timings = Vec::new();
    timings.push(("listed", follows(admin, &["10.244.1.7"]).await?));
    api.put(reviews_pod("reviews-v2-b", "v2", "10.244.2.9", true));
    api.put(reviews_slice(&[
        ("reviews-v1-a", "10.244.1.7", true, false),
        ("reviews-v2-b", "10.244.2.9", true, false),
    ]));
    timings.push((
        "scaled to 2",
        follows(admin, &["10.244.1.7", "10.244.2.9"]).await?,
    ));
    api.put(reviews_slice(&[
        ("reviews-v1-a", "10.244.1.7", true, false),
        ("reviews-v2-b", "10.244.2.9", false, false),
    ]));
    timings.push(("one not ready", follows(admin, &["10.244.1.7"]).await?));
    api.expire();
    api.put(reviews_slice(&[
        ("reviews-v1-a", "10.244.1.7", true, false),
        ("reviews-v2-b", "10.244.2.9", true, false),
    ]));
    timings.push((
        "ready again, after a 410",
        follows(admin, &["10.244.1.7", "10.244.2.9"]).await?,
    ));
    api.delete("v1", "Pod", "default", "reviews-v1-a");
    api.put(reviews_slice(&[(
        "reviews-v2-b",
        "10.244.2.9",
        true,
        false,
    )]));
    timings.push(("one deleted", follows(admin, &["10.244.2.9"]).await?));
    for (step, took) in &timings {
        println!("kubernetes: {step}: API event to the proxy holding it in {took:?}");
    }

    // A VirtualService from the API: its status carries what bowline did with it.
    api.put(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}}));
    let status = reviews_programmed(&api).await?;
    assert_eq!(status["observedGeneration"], 1, "{status}");
    // Kubernetes' Condition shape: every condition says when it last changed.
    assert!(
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|c| c["lastTransitionTime"].is_string()),
        "{status}"
    );
    assert_eq!(status["programmed"]["proxies"], 1, "{status}");
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "bowline-system",
            "bowline-status-leader",
        )
        .context("no lease")?;
    assert_eq!(lease["spec"]["holderIdentity"], "bowline-0");

    // The leader publishes the mesh root: a ConfigMap per namespace for injected pods, and
    // the webhook's caBundle for the API server.
    let root = std::fs::read_to_string(dir.path().join("ca").join("root-cert.pem"))?;
    wait_until(WAIT, Duration::from_millis(50), || async {
        let cm = api
            .get("v1", "ConfigMap", "default", "bowline-ca-root-cert")
            .context("no root ConfigMap yet")?;
        assert_eq!(cm["data"]["root-cert.pem"], root.as_str());
        let webhook = api
            .get(
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
                "",
                "bowline-sidecar-injector",
            )
            .unwrap();
        use base64::Engine;
        let bundle = webhook["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()
            .context("no caBundle yet")?;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(bundle)?,
            root.as_bytes()
        );
        Ok(())
    })
    .await?;

    // The webhook, over HTTPS with the mesh CA's certificate, and `bowline inject`.
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ratings-v1-x", "namespace": "default", "labels": {"app": "ratings", "version": "v1"}},
        "spec": {"serviceAccountName": "bookinfo-ratings", "containers": [{"name": "ratings", "image": "ratings:1",
            "ports": [{"name": "http", "containerPort": 9080}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}}}]}});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "b4a0c9d2", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": "default", "operation": "CREATE", "object": pod}});
    let answer = post_https(webhook, &root, &review).await?;
    assert_eq!(answer["response"]["uid"], "b4a0c9d2");
    assert_eq!(answer["response"]["allowed"], true);
    use base64::Engine;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(answer["response"]["patch"].as_str().context("no patch")?)?,
    )?;
    let mut patched = pod.clone();
    apply_patch(&mut patched, &patch);
    let pod_file = dir.path().join("pod.json");
    std::fs::write(&pod_file, pod.to_string())?;
    let injected = bowline().args(["inject", "-f"]).arg(&pod_file).output()?;
    assert!(
        injected.status.success(),
        "{}",
        String::from_utf8_lossy(&injected.stderr)
    );
    let (docs, _) = bowline_config::yaml::parse(&String::from_utf8(injected.stdout)?);
    let offline = bowline_config::positions::to_json(&docs[0].root).0;
    assert_eq!(
        patched, offline,
        "the webhook's patch and bowline inject differ"
    );
    assert_eq!(
        patched["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/app-health/ratings/readyz"
    );
    Ok(())
}

/// A reviews pod serving at `ip`.
fn echo(ip: &str, port: u16, version: &str) -> Command {
    let mut cmd = bowline();
    cmd.args([
        "echo",
        "--listen",
        &format!("{ip}:{port}"),
        "--service",
        "reviews",
    ])
    .args(["--version", version]);
    cmd
}

/// The versions that answered `n` requests for reviews through the sidecar at `outbound`.
async fn versions(outbound: SocketAddr, headers: &[(&str, &str)], n: usize) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let rsp = bowline_testkit::proxy_request(
            outbound,
            "GET",
            "http://reviews.default.svc.cluster.local:9080/",
            headers,
            Duration::from_secs(5),
        )
        .await?;
        seen.push(rsp.header("x-echo-version").unwrap_or("none").to_string());
    }
    seen.sort();
    seen.dedup();
    Ok(seen)
}

/// The mesh's registry comes from the API server: a client sidecar (a real Envoy, then
/// bowline-proxy) reaches the reviews pods the EndpointSlice lists, and a DestinationRule +
/// VirtualService created through the API route by header, as `kubectl apply` of Istio's
/// bookinfo samples would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_from_the_api_routes_traffic_between_api_pods() -> Result<()> {
    // Pods are addresses of their own on loopback; both serve on one target port.
    let v1 = Proc::spawn("reviews-v1", echo("127.0.0.2", 0, "v1"))?;
    let port = addr_after(
        &v1.wait_for_line("listening on ", STARTUP).await?,
        "listening on ",
    )
    .port();
    let v2 = Proc::spawn("reviews-v2", echo("127.0.0.3", port, "v2"))?;
    v2.wait_for_line("listening on ", STARTUP).await?;

    let api = ApiServer::start().await?;
    api.put(namespace("default", json!({})));
    let mut service = reviews_service();
    service["spec"]["ports"][0]["targetPort"] = port.into();
    api.put(service);
    api.put(reviews_pod("reviews-v1-a", "v1", "127.0.0.2", true));
    api.put(reviews_pod("reviews-v2-b", "v2", "127.0.0.3", true));
    let mut slice = reviews_slice(&[
        ("reviews-v1-a", "127.0.0.2", true, false),
        ("reviews-v2-b", "127.0.0.3", true, false),
    ]);
    slice["ports"][0]["port"] = port.into();
    api.put(slice);

    let dir = tempfile::tempdir()?;
    let control = control(&api, dir.path(), &["--xds-addr", "127.0.0.1:0"])?;
    let xds = addr_after(
        &control.wait_for_line("xds listening on ", STARTUP).await?,
        "xds listening on ",
    );

    let bootstrap = client_bootstrap(xds)?;

    let mut routed = false;
    for kind in [
        bowline_testkit::ProxyKind::Envoy,
        bowline_testkit::ProxyKind::Bowline,
    ] {
        let sidecar = bowline_testkit::Envoy::start_kind(
            kind,
            &format!("{kind:?}").to_lowercase(),
            &bootstrap,
        )
        .await?;
        let outbound = sidecar.listener_addr("virtualOutbound", STARTUP).await?;
        if !routed {
            // Before any routing config: both pods serve.
            wait_until(WAIT, Duration::from_millis(50), || async {
                let seen = versions(outbound, &[], 12).await?;
                if seen == ["v1", "v2"] {
                    Ok(())
                } else {
                    bail!("{kind:?}: versions {seen:?}")
                }
            })
            .await?;
            api.put(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "reviews", "namespace": "default"},
                "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}}));
            api.put(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "reviews", "namespace": "default"},
                "spec": {"hosts": ["reviews"], "http": [
                    {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                    {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}));
            routed = true;
        }
        wait_until(WAIT, Duration::from_millis(50), || async {
            let plain = versions(outbound, &[], 8).await?;
            let jason = versions(outbound, &[("end-user", "jason")], 8).await?;
            if plain == ["v1"] && jason == ["v2"] {
                Ok(())
            } else {
                bail!("{kind:?}: without end-user {plain:?}, as jason {jason:?}")
            }
        })
        .await?;
        if kind == bowline_testkit::ProxyKind::Envoy {
            // The first sidecar ACKs it and the status says so. (The next one is counted
            // beside the departed one, which the status keeps for ten minutes.)
            let status = reviews_programmed(&api).await?;
            assert_eq!(status["programmed"]["proxies"], 1, "{status}");
        }
        println!("{kind:?}: routed by the VirtualService from the API");
    }
    Ok(())
}

/// `bowline-proxy --sidecar` as injection runs it, with the env the contract gives.
fn sidecar(dir: &std::path::Path, secure: SocketAddr, token: &str) -> Command {
    let token_file = dir.join(format!("token-{token}"));
    std::fs::write(&token_file, token).unwrap();
    let mut cmd = Command::new(bowline_proxy_binary());
    cmd.args(["--sidecar", "--log-level", "info"])
        .env_remove("BOWLINE_CA_TOKEN")
        .env("POD_NAME", "ratings-v1-5b8d6c9f7-x2k8q")
        .env("POD_NAMESPACE", "default")
        .env("INSTANCE_IP", "127.0.0.1")
        .env("SERVICE_ACCOUNT", "bookinfo-ratings")
        .env("BOWLINE_XDS_ADDR", format!("localhost:{}", secure.port()))
        .env("BOWLINE_XDS_SERVER_NAME", "bowline.bowline-system.svc")
        .env("BOWLINE_CA_ROOT_FILE", dir.join("ca").join("root-cert.pem"))
        .env("BOWLINE_CA_TOKEN_FILE", &token_file)
        .env("BOWLINE_ADMIN_ADDR", "127.0.0.1:0")
        .env("BOWLINE_STATUS_ADDR", "127.0.0.1:0")
        .env("BOWLINE_OUTBOUND_PORT", "0")
        .env("BOWLINE_INBOUND_PORT", "0");
    cmd
}

/// Workload identity from Kubernetes: a sidecar presenting its pod's projected token gets
/// its service account's SPIFFE certificate, the CA having checked the token with
/// TokenReview for audience `bowline-ca`; a token for another audience is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_token_gets_its_service_accounts_certificate_through_token_review() -> Result<()> {
    let api = ApiServer::start().await?;
    api.put(namespace("default", json!({})));
    api.accept_token(
        "ratings-pod-token",
        "default",
        "bookinfo-ratings",
        &["bowline-ca"],
    );
    api.accept_token(
        "kubectl-token",
        "default",
        "bookinfo-ratings",
        &["https://kubernetes.default.svc"],
    );
    let dir = tempfile::tempdir()?;
    let control = control(
        &api,
        dir.path(),
        &[
            "--secure-xds-addr",
            "127.0.0.1:0",
            "--server-name",
            "bowline.bowline-system.svc",
            "--ca-dir",
            "ca",
        ],
    )?;
    let secure = addr_after(
        &control
            .wait_for_line("secure xds listening on ", STARTUP)
            .await?,
        "secure xds listening on ",
    );

    let proxy = Proc::spawn("sidecar", sidecar(dir.path(), secure, "ratings-pod-token"))?;
    let issued = control.wait_for_line("certificate issued", STARTUP).await?;
    assert!(
        issued.contains("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"),
        "{issued}"
    );
    proxy
        .wait_for_line("initial configuration applied", STARTUP)
        .await?;
    let reviews: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|(m, p)| {
            m == "POST" && p.starts_with("/apis/authentication.k8s.io/v1/tokenreviews")
        })
        .collect();
    assert_eq!(
        reviews.len(),
        1,
        "one TokenReview for the one certificate: {reviews:?}"
    );

    let refused = tokio::time::timeout(
        STARTUP,
        tokio::process::Command::from(sidecar(dir.path(), secure, "kubectl-token")).output(),
    )
    .await??;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("audience") || stderr.contains("refused"),
        "{stderr}"
    );
    Ok(())
}
