//! `bowline up` end to end, in both capture modes: the bookinfo demo from examples/ (copied
//! to a temporary directory so edits stay there), entered through its ingress gateway.
//! Routing rules hold across the call chain (gateway → productpage → reviews → ratings),
//! config edits apply live, `bowline status` reports the mesh, and stopping leaves no
//! process, namespace, veth, bridge, hosts file or iptables rule behind.

#[path = "up/mesh.rs"]
mod mesh;

use bowline_testkit::{bowline_proxy_binary, get, wait_until, Proc};
use mesh::{copy_dir, Page, UpMesh, NETWORK, T};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A self-signed certificate for bookinfo.example.com as `tls.crt`/`tls.key` in `dir` (a
/// Kubernetes TLS secret's keys); returns the certificate, which clients then trust.
fn write_certificate(dir: &Path) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["bookinfo.example.com".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap().pem();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), &cert).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    cert
}

mod tls {
    //! A TLS client that verifies the server against one CA, offers ALPN, and speaks what
    //! was negotiated (HTTP/2 for `h2`, else HTTP/1.1).

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::net::SocketAddr;
    use std::sync::Arc;

    /// (status, negotiated ALPN, body) of `GET https://<sni><path>` sent to `addr`.
    pub async fn get(
        addr: SocketAddr,
        sni: &str,
        ca_pem: &str,
        alpn: &[&str],
        path: &str,
    ) -> anyhow::Result<(u16, Option<String>, String)> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(sni.to_string())?, tcp)
            .await?;
        let negotiated = tls
            .get_ref()
            .1
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let request = http::Request::get(format!("https://{sni}{path}"))
            .header(http::header::HOST, sni)
            .body(Empty::<Bytes>::new())?;
        let io = TokioIo::new(tls);
        let response = if negotiated.as_deref() == Some("h2") {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            let mut request = request;
            request.headers_mut().remove(http::header::HOST);
            sender.send_request(request).await?
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            let (mut parts, body) = request.into_parts();
            parts.uri = path.parse()?;
            sender
                .send_request(http::Request::from_parts(parts, body))
                .await?
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((
            status,
            negotiated,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }
}

fn alive(pid: u64) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

async fn bookinfo(capture: &str) {
    let mut mesh = UpMesh::start(capture).await;
    eprintln!(
        "{capture}: command to every proxy ready and synced: {} ms",
        mesh.ready_ms
    );

    // All reviews traffic to v1 (config/reviews.yaml): v1 never calls ratings.
    for _ in 0..20 {
        let page = mesh.page(None).await.unwrap();
        assert_eq!(
            page,
            Page {
                details: "v1".into(),
                reviews: "v1".into(),
                ratings: None,
                reviews_user: None
            }
        );
    }
    let (code, text) = mesh.status();
    assert_eq!(code, Some(0), "{text}");
    for w in [
        "productpage-v1-0",
        "details-v1-0",
        "reviews-v2-0",
        "ratings-v1-0",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(w))
            .unwrap_or_else(|| panic!("{w}: {text}"));
        assert!(
            line.contains("running")
                && line.contains("SYNCED")
                && line.contains("spiffe://cluster.local/ns/default/sa/bookinfo-")
                && line.contains("certificate expires in 23h"),
            "{line}"
        );
    }
    assert!(
        text.contains("gateway router~127.0.0.1~istio-ingressgateway.istio-system"),
        "{text}"
    );

    // Live edit: jason → reviews v2 (which calls ratings), everyone else v1.
    let edited = Instant::now();
    mesh.apply_sample("reviews-jason-v2.yaml", "reviews.yaml");
    wait_until(T, Duration::from_millis(20), || async {
        let page = mesh.page(Some("jason")).await?;
        anyhow::ensure!(
            page.reviews == "v2",
            "jason still sees reviews {}",
            page.reviews
        );
        Ok(())
    })
    .await
    .unwrap();
    eprintln!(
        "{capture}: edit → jason routed to v2 in {:?}",
        edited.elapsed()
    );
    for _ in 0..10 {
        let jason = mesh.page(Some("jason")).await.unwrap();
        assert_eq!(
            (
                jason.reviews.as_str(),
                jason.ratings.as_deref(),
                jason.reviews_user.as_deref()
            ),
            ("v2", Some("v1"), Some("jason"))
        );
        let anonymous = mesh.page(None).await.unwrap();
        assert_eq!(
            (anonymous.reviews.as_str(), anonymous.ratings),
            ("v1", None)
        );
    }

    // Fault injection on ratings for jason: his page waits ~2 s, others do not.
    mesh.apply_sample("ratings-delay.yaml", "ratings.yaml");
    wait_until(T, Duration::from_millis(50), || async {
        let started = Instant::now();
        mesh.page(Some("jason")).await?;
        anyhow::ensure!(
            started.elapsed() >= Duration::from_millis(1900),
            "no delay yet"
        );
        Ok(())
    })
    .await
    .unwrap();
    let started = Instant::now();
    mesh.page(None).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Canary: 90% v1, 10% v3.
    mesh.apply_sample("reviews-90-10.yaml", "reviews.yaml");
    wait_until(T, Duration::from_millis(10), || async {
        let page = mesh.page(None).await?;
        anyhow::ensure!(page.reviews == "v3", "no v3 yet");
        Ok(())
    })
    .await
    .unwrap();
    let (mut v1, mut v3) = (0, 0);
    for _ in 0..300 {
        match mesh.page(None).await.unwrap().reviews.as_str() {
            "v1" => v1 += 1,
            "v3" => v3 += 1,
            other => panic!("reviews {other} under a v1/v3 canary"),
        }
    }
    eprintln!("{capture}: canary 90/10 over 300: v1 {v1}, v3 {v3}");
    assert!((12..=54).contains(&v3), "v3 share {v3}/300 is far from 10%");

    // HTTPS at the gateway: a certificate under certs/bookinfo-cert (credentialName), then
    // the sample adds the TLS server. HTTP/2 or HTTP/1.1 by ALPN; SNI picks the server.
    let cert_pem = write_certificate(&mesh.dir.path().join("certs/bookinfo-cert"));
    mesh.apply_sample("gateway-https.yaml", "gateway.yaml");
    let https = |alpn: &'static [&'static str], sni: &'static str| {
        tls::get(mesh.https_entry, sni, &cert_pem, alpn, "/productpage")
    };
    let (status, negotiated, body) = wait_until(T, Duration::from_millis(50), || {
        https(&["h2", "http/1.1"], "bookinfo.example.com")
    })
    .await
    .unwrap();
    assert_eq!((status, negotiated.as_deref()), (200, Some("h2")));
    Page::read(&serde_json::from_str(&body).unwrap()).unwrap();
    let (status, negotiated, _) = https(&["http/1.1"], "bookinfo.example.com").await.unwrap();
    assert_eq!((status, negotiated.as_deref()), (200, Some("http/1.1")));
    let (status, negotiated, _) = https(&[], "bookinfo.example.com").await.unwrap();
    assert_eq!((status, negotiated), (200, None));
    let other = https(&["h2"], "other.example.com").await;
    assert!(other.is_err(), "no server for that name: {other:?}");

    // The Gateway API beside Istio's Gateway: its HTTPRoute serves bookinfo.local.
    mesh.apply_sample("gateway-api.yaml", "gateway-api.yaml");
    let routed_by = |host: &'static str| {
        let entry = mesh.entry;
        async move {
            let response = get(entry, "/productpage", &[("host", host)], T).await?;
            anyhow::ensure!(response.status == 200, "status {}", response.status);
            let body = response.json();
            Page::read(&body)?;
            Ok(body["headers"]["x-route"].as_str().map(str::to_string))
        }
    };
    wait_until(T, Duration::from_millis(20), || async {
        let via = routed_by("bookinfo.local").await?;
        anyhow::ensure!(
            via.as_deref() == Some("gateway-api"),
            "not via the HTTPRoute yet"
        );
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        routed_by("other.local").await.unwrap(),
        None,
        "Istio's VirtualService"
    );

    // Stop: everything started is gone.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let status = mesh.proc.terminate(Duration::from_secs(20)).unwrap();
    // From here no other mesh may start (and take this one's bridge number) until the links
    // are checked; meshes still running finish their tests first.
    drop(mesh.network.take());
    let _network = tokio::time::timeout(Duration::from_secs(240), NETWORK.write())
        .await
        .expect("the other meshes of this test binary stop within 240 s");
    assert!(
        status.success(),
        "bowline up exited with {status}\n{}",
        mesh.proc.logs()
    );
    let mut pids: Vec<u64> = state["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            [
                w["pid"].as_u64().unwrap(),
                w["sidecar_pid"].as_u64().unwrap(),
            ]
        })
        .collect();
    pids.push(state["gateway"]["pid"].as_u64().unwrap());
    assert_eq!(pids.len(), 13);
    for pid in pids {
        assert!(!alive(pid), "pid {pid} still runs");
    }
    assert!(!mesh.state_dir().join("state.json").exists());
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let prefix = format!("bowline-{}-", mesh.name);
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&prefix),
        "namespaces left: {}",
        String::from_utf8_lossy(&netns.stdout)
    );
    let etc_left = std::fs::read_dir("/etc/netns")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
    assert!(!etc_left, "a hosts file under /etc/netns is left");
    if let Some(bridge) = state["network"]["bridge"].as_str() {
        assert_eq!(capture, "transparent");
        let octet = bridge.trim_start_matches("blbr");
        // veths leave with their namespace asynchronously: allow the kernel a moment.
        wait_until(T, Duration::from_millis(20), || async {
            let links: Vec<String> = std::fs::read_dir("/sys/class/net")?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n == bridge || n.starts_with(&format!("blv{octet}-")))
                .collect();
            anyhow::ensure!(links.is_empty(), "links left: {links:?}");
            Ok(())
        })
        .await
        .unwrap();
        let rules = Command::new("iptables-save").output().unwrap();
        assert!(!String::from_utf8_lossy(&rules.stdout).contains("BOWLINE"));
    } else {
        assert_eq!(capture, "explicit");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bookinfo_with_transparent_capture() {
    bookinfo("transparent").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bookinfo_with_explicit_proxy() {
    bookinfo("explicit").await;
}

#[tokio::test]
async fn a_bad_manifest_is_refused_at_its_line_and_leaves_nothing() {
    let _network = NETWORK.read().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("bowline.yaml"),
        "name: bad\nworkloads:\n- name: web\n  labels: {app: web}\n  command: bowline\n  ports: [{name: http, port: 99999}]\n",
    )
    .unwrap();
    let state_root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bowline"))
        .arg("up")
        .arg(dir.path())
        .args(["--capture", "explicit", "--proxy-bin"])
        .arg(bowline_proxy_binary())
        .env("BOWLINE_STATE_DIR", state_root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bowline.yaml:6:") && stderr.contains("workloads[0].ports[0].port"),
        "{stderr}"
    );
    assert!(!state_root.path().join("bad/state.json").exists());
}

/// SIGTERM while the mesh is still starting: what was started is stopped and removed all
/// the same (before, the default signal action killed `bowline up` and left namespaces).
#[tokio::test]
async fn a_signal_during_start_up_still_cleans_up() {
    let _network = NETWORK.read().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bookinfo");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root, dir.path());
    let name = format!("bookinfo-interrupted-{}", std::process::id());
    let manifest = dir.path().join("bowline.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("name: bookinfo", &format!("name: {name}")),
    )
    .unwrap();
    let state_root = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bowline"));
    command
        .arg("up")
        .arg(dir.path())
        .args([
            "--capture",
            "transparent",
            "--gateway-port",
            "80=0",
            "--gateway-port",
            "443=0",
        ])
        .arg("--proxy-bin")
        .arg(bowline_proxy_binary())
        .env("BOWLINE_STATE_DIR", state_root.path())
        .env("RUST_LOG", "warn");
    let mut proc = Proc::spawn("up-interrupted", command).unwrap();
    // Printed once the network and the control plane exist, before any workload starts.
    proc.wait_for_line("control plane xds", T).await.unwrap();
    let status = proc.terminate(Duration::from_secs(20)).unwrap();
    assert_eq!(status.code(), Some(1), "{}", proc.logs());
    assert!(
        proc.logs().contains("interrupted during start-up"),
        "{}",
        proc.logs()
    );
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&format!("bowline-{name}-")),
        "namespaces left"
    );
    assert!(!state_root.path().join(&name).join("state.json").exists());
}

/// Zero trust in the demo: bookinfo runs STRICT mTLS (config/peer-authentication.yaml), so
/// plaintext to a workload is refused while every hop through the sidecars is mutual TLS;
/// with 10 s certificates every sidecar rotates several times under load and no request
/// fails; the CA's key is readable by its owner only.
#[tokio::test(flavor = "multi_thread")]
async fn strict_mtls_and_certificate_rotation_under_load() {
    let mesh = UpMesh::start_with(
        "transparent",
        &["--cert-ttl-s", "10"],
        "warn,bowline_identity=info",
        &|m| m.to_string(),
    )
    .await;
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let workload = |name: &str| {
        state["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()
            .clone()
    };
    mesh.page(None).await.unwrap();

    // x-forwarded-client-cert, as Istio's sidecars and gateways write it: productpage sees
    // the gateway's SPIFFE id and details sees productpage's, each hop's element naming the
    // callee (By=) and the caller (URI=); what the client sent does not survive the gateway.
    let forged = "By=spiffe://cluster.local/ns/default/sa/bookinfo-details;URI=spiffe://evil/admin";
    let response = get(
        mesh.entry,
        "/productpage",
        &[("x-forwarded-client-cert", forged)],
        T,
    )
    .await
    .unwrap();
    let page = response.json();
    let id = |sa: &str| format!("spiffe://cluster.local/ns/default/sa/{sa}");
    let seen_by_productpage = page["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_else(|| panic!("productpage saw no XFCC: {page}"));
    assert!(
        seen_by_productpage.starts_with(&format!("By={};Hash=", id("bookinfo-productpage")))
            && seen_by_productpage.ends_with(&format!(
                ";Subject=\"\";URI=spiffe://cluster.local/ns/istio-system/sa/{}",
                "istio-ingressgateway-service-account"
            ))
            && !seen_by_productpage.contains("evil"),
        "productpage: {seen_by_productpage}"
    );
    let details = page["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "details"))
        .unwrap_or_else(|| panic!("no details call: {page}"));
    let seen_by_details = details["body"]["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_else(|| panic!("details saw no XFCC: {details}"));
    assert!(
        seen_by_details.starts_with(&format!("By={};Hash=", id("bookinfo-details")))
            && seen_by_details.ends_with(&format!(";URI={}", id("bookinfo-productpage"))),
        "details: {seen_by_details}"
    );

    // The control plane speaks TLS only: a capture of its port while a config push and
    // certificate rotations (10 s certificates) go by shows TLS handshakes to
    // istiod.istio-system.svc and none of what xDS or the CSR API would show in clear.
    let xds_port: SocketAddr = state["xds_addr"].as_str().unwrap().parse().unwrap();
    let capture = mesh.state_root.path().join("control-plane.pcap");
    let mut tcpdump = std::process::Command::new("tcpdump");
    tcpdump
        .args(["-i", "any", "-U", "-s", "0", "-w"])
        .arg(&capture)
        .args(["tcp", "port", &xds_port.port().to_string()]);
    let mut tcpdump = Proc::spawn("tcpdump", tcpdump).expect("tcpdump (apt package tcpdump)");
    tcpdump
        .wait_for_line("listening on", T)
        .await
        .unwrap_or_else(|e| panic!("tcpdump: {e:#}"));
    mesh.apply_sample("reviews-90-10.yaml", "reviews.yaml");
    let rotated = mesh
        .proc
        .logs()
        .matches("workload certificate rotated")
        .count();
    // Until two rotations went by and the capture file holds a handshake (tcpdump writes
    // it as it goes).
    let contains = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    wait_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let now = mesh
                .proc
                .logs()
                .matches("workload certificate rotated")
                .count();
            anyhow::ensure!(now >= rotated + 2, "{now} rotations so far");
            let bytes = std::fs::read(&capture)?;
            anyhow::ensure!(
                contains(&bytes, b"istiod.istio-system.svc"),
                "no TLS handshake to the control plane captured yet ({} bytes)",
                bytes.len()
            );
            Ok(())
        },
    )
    .await
    .unwrap();
    tcpdump.terminate(Duration::from_secs(5)).unwrap();
    let bytes = std::fs::read(&capture).unwrap();
    for clear in [
        &b"type.googleapis.com"[..],
        b"PRI * HTTP/2.0",
        b"Bearer",
        b"authorization",
        b"BEGIN CERTIFICATE",
        b"IstioCertificateService",
    ] {
        assert!(
            !contains(&bytes, clear),
            "{:?} crossed the wire in clear",
            String::from_utf8_lossy(clear)
        );
    }

    // Plaintext from outside the mesh to details' port: no filter chain takes it.
    let details = workload("details-v1-0");
    let admin: SocketAddr = details["sidecar_admin"].as_str().unwrap().parse().unwrap();
    let direct = SocketAddr::new(admin.ip(), 9080);
    let plaintext = get(direct, "/details", &[], Duration::from_secs(3)).await;
    assert!(plaintext.is_err(), "plaintext answered: {plaintext:?}");
    let stats = get(admin, "/stats", &[], T).await.unwrap().text();
    let stat = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(
        stat("listener.virtualInbound.no_filter_chain_match") >= 1,
        "{stats}"
    );
    assert!(
        stat("listener.virtualInbound.ssl_handshake") >= 1,
        "productpage came over mTLS: {stats}"
    );

    // The CA's key.
    let key = mesh
        .state_root
        .path()
        .join(format!("{}-ca/ca-key.pem", mesh.name));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{}", key.display());

    // 60 s of load, 4 clients, through gateway → productpage → details + reviews.
    let before = mesh
        .proc
        .logs()
        .matches("workload certificate rotated")
        .count();
    let until = Instant::now() + Duration::from_secs(60);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let entry = mesh.entry;
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while Instant::now() < until {
                    match get(entry, "/productpage", &[], T).await {
                        Ok(r) if r.status == 200 && Page::read(&r.json()).is_ok() => ok += 1,
                        Ok(r) => failed.push(format!("{}: {}", r.status, r.text())),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        let (o, f) = c.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    let rotations = mesh
        .proc
        .logs()
        .matches("workload certificate rotated")
        .count()
        - before;
    eprintln!(
        "rotation under load: {ok} pages, {} failed, {rotations} rotations",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(ok > 100, "only {ok} pages in 60 s");
    // 7 proxies, each renewing about every 5 s.
    assert!(rotations >= 7 * 8, "only {rotations} rotations in 60 s");
    // The certificate in use, as Envoy's /certs shows it: details' own, short-lived.
    let certs = get(admin, "/certs", &[], T).await.unwrap().json();
    let leaf = &certs["certificates"][0]["cert_chain"][0];
    assert_eq!(
        leaf["subject_alt_names"][0]["uri"],
        "spiffe://cluster.local/ns/default/sa/bookinfo-details"
    );
    assert!(
        leaf["seconds_until_expiration"].as_u64().unwrap() <= 10,
        "{certs}"
    );

    // PERMISSIVE, live: plaintext is accepted on the same port, the mesh stays on mTLS.
    mesh.write_config("peer-authentication.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: PERMISSIVE}\n",);
    wait_until(T, Duration::from_millis(50), || async {
        let r = get(direct, "/details", &[], Duration::from_secs(3)).await?;
        anyhow::ensure!(r.status == 200, "status {}", r.status);
        Ok(())
    })
    .await
    .unwrap();
    // The mesh itself keeps working (its sidecars still originate mTLS: auto mTLS).
    mesh.page(None).await.unwrap();
}

/// The stats of the proxy whose admin answers at `admin`, as `name → value`.
async fn stats(admin: SocketAddr) -> std::collections::BTreeMap<String, u64> {
    get(admin, "/stats", &[], T)
        .await
        .unwrap()
        .text()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A real Envoy as productpage's sidecar (`sidecar: envoy`, its certificate served over SDS
/// by `bowline sds`), the other workloads and the gateway on bowline-proxy: mutual TLS works
/// in both directions — gateway (bowline) → productpage (Envoy), productpage (Envoy) →
/// details and reviews (bowline) — under STRICT.
#[tokio::test(flavor = "multi_thread")]
async fn envoy_and_bowline_sidecars_talk_mutual_tls_both_ways() {
    let envoy = bowline_testkit::envoy_binary();
    let mesh = UpMesh::start_with(
        "transparent",
        &["--envoy-bin", envoy.to_str().unwrap()],
        "warn",
        &|m| {
            m.replace(
                "- name: productpage-v1\n  serviceAccount: bookinfo-productpage\n",
                "- name: productpage-v1\n  serviceAccount: bookinfo-productpage\n  sidecar: envoy\n",
            )
        },
    )
    .await;
    assert!(
        mesh.proc
            .logs()
            .contains("[productpage-v1-0 sds] sds listening on"),
        "productpage runs with Envoy and its SDS agent"
    );
    for _ in 0..5 {
        let page = mesh.page(None).await.unwrap();
        assert_eq!((page.details.as_str(), page.reviews.as_str()), ("v1", "v1"));
    }
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let admin = |name: &str| -> SocketAddr {
        state["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()["sidecar_admin"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let envoy_stats = stats(admin("productpage-v1-0")).await;
    let handshakes = |prefix: &str, suffix: &str| -> u64 {
        envoy_stats
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.ends_with(suffix))
            .map(|(_, v)| v)
            .sum()
    };
    assert!(
        handshakes("cluster.outbound|9080||details", "ssl.handshake") >= 1,
        "Envoy → bowline: {envoy_stats:?}"
    );
    assert!(
        handshakes("listener.", "ssl.handshake") >= 1,
        "bowline gateway → Envoy: {envoy_stats:?}"
    );
    let details = stats(admin("details-v1-0")).await;
    assert!(
        details["listener.virtualInbound.ssl_handshake"] >= 1,
        "{details:?}"
    );
}

/// An ES256 key pair for signing test tokens, and its JWKS.
struct TestIssuer {
    key: ring::signature::EcdsaKeyPair,
    jwks: String,
}

impl TestIssuer {
    fn new() -> TestIssuer {
        use base64::Engine;
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = key.public_key().as_ref();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "test",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }]})
        .to_string();
        TestIssuer { key, jwks }
    }

    /// A compact JWT with these claims.
    fn token(&self, claims: Value) -> String {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = b64(br#"{"alg":"ES256","kid":"test","typ":"JWT"}"#);
        let payload = b64(claims.to_string().as_bytes());
        let input = format!("{header}.{payload}");
        let rng = ring::rand::SystemRandom::new();
        let signature = self.key.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

/// `token` with one signature character changed (still valid base64url).
fn tamper(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// RequestAuthentication on productpage (JWKS inline): a request without a token passes
/// (authorization decides), a malformed, expired, foreign or badly signed one gets 401 with
/// Envoy's reason, a valid one passes with its payload handed to the application in the
/// configured header and the token itself not forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn jwt_request_authentication_at_the_workload() {
    let issuer = TestIssuer::new();
    let mesh = UpMesh::start("transparent").await;
    let policy = format!(
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: productpage-jwt
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  jwtRules:
  - issuer: "https://issuer.bookinfo.test"
    audiences: ["bookinfo"]
    outputPayloadToHeader: x-jwt-payload
    jwks: '{}'
"#,
        issuer.jwks
    );
    mesh.write_config("jwt.yaml", &policy);
    let call = |token: Option<String>| {
        let entry = mesh.entry;
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            get(entry, "/productpage", &headers, T).await
        }
    };
    // Applied once a malformed token is refused.
    wait_until(T, Duration::from_millis(50), || async {
        let r = call(Some("not-a-jwt".into())).await?;
        anyhow::ensure!(r.status == 401, "status {}: {}", r.status, r.text());
        Ok(())
    })
    .await
    .unwrap();

    let now = unix_now();
    let claims = |iss: &str, exp: u64| serde_json::json!({"iss": iss, "sub": "jason", "aud": "bookinfo", "exp": exp, "iat": now});
    let good = issuer.token(claims("https://issuer.bookinfo.test", now + 600));
    let cases = [
        (
            "malformed",
            Some("a.b".to_string()),
            401,
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            "expired",
            Some(issuer.token(claims("https://issuer.bookinfo.test", now - 600))),
            401,
            "Jwt is expired",
        ),
        (
            "wrong issuer",
            Some(issuer.token(claims("https://elsewhere.test", now + 600))),
            401,
            "Jwt issuer is not configured",
        ),
        (
            "bad signature",
            Some(tamper(&good)),
            401,
            "Jwt verification fails",
        ),
        ("missing", None, 200, ""),
        ("valid", Some(good.clone()), 200, ""),
    ];
    for (what, token, status, body) in cases {
        let r = call(token).await.unwrap();
        assert_eq!(r.status, status, "{what}: {}", r.text());
        if status == 401 {
            assert_eq!(r.text(), body, "{what}");
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer realm="),
                "{what}: {challenge}"
            );
        }
    }
    let page = call(Some(good.clone())).await.unwrap().json();
    let headers = &page["headers"];
    assert!(
        headers["authorization"].is_null(),
        "the token is not forwarded: {headers}"
    );
    let payload = headers["x-jwt-payload"].as_str().expect("payload header");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "jason");

    // The verified token in authorization: only jason may see productpage.
    let only_jason = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: jason-only\n  namespace: default\nspec:\n  selector:\n    matchLabels:\n      app: productpage\n  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"https://issuer.bookinfo.test/jason\"]\n";
    mesh.write_config("jason-only.yaml", only_jason);
    wait_until(T, Duration::from_millis(50), || async {
        let r = call(None).await?;
        anyhow::ensure!(r.status == 403, "without a token: {}", r.status);
        Ok(())
    })
    .await
    .unwrap();
    let bob = issuer.token(serde_json::json!({
        "iss": "https://issuer.bookinfo.test", "sub": "bob", "aud": "bookinfo", "exp": now + 600
    }));
    assert_eq!(
        call(Some(bob)).await.unwrap().status,
        403,
        "another subject"
    );
    assert_eq!(call(Some(good)).await.unwrap().status, 200, "jason");
}

/// productpage's call to details as the productpage page reports it: (status, body).
async fn details_call(mesh: &UpMesh) -> anyhow::Result<(u64, Value)> {
    let response = get(mesh.entry, "/productpage", &[], T).await?;
    anyhow::ensure!(response.status == 200, "page status {}", response.status);
    let page = response.json();
    let call = page["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "details"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no details call: {page}"))?;
    Ok((call["status"].as_u64().unwrap_or(0), call["body"].clone()))
}

/// AuthorizationPolicy on details, live: an ALLOW list naming another service account
/// refuses productpage (403, the ALLOW rules in force named in details' access log); a
/// DENY rule naming productpage's account refuses it with that rule named in the log and in
/// the `rbac_policy` metric; an ALLOW for productpage's account lets it through.
#[tokio::test(flavor = "multi_thread")]
async fn authorization_policies_name_the_rule_that_denied() {
    let mesh = UpMesh::start("transparent").await;
    assert_eq!(details_call(&mesh).await.unwrap().0, 200);
    let policy = |name: &str, action: &str, sa: &str| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  selector:\n    matchLabels:\n      app: details\n  action: {action}\n  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/sa/{sa}\"]\n    to:\n    - operation:\n        methods: [GET]\n        paths: [\"/details*\"]\n"
        )
    };
    let until_status = |want: u64| {
        let mesh = &mesh;
        async move {
            wait_until(T, Duration::from_millis(50), || async {
                let (status, body) = details_call(mesh).await?;
                anyhow::ensure!(status == want, "details answered {status}: {body}");
                Ok(())
            })
            .await
            .unwrap();
        }
    };

    // The wrong service account in an ALLOW list.
    mesh.write_config(
        "authz.yaml",
        &policy("details-viewers", "ALLOW", "bookinfo-reviews"),
    );
    until_status(403).await;
    let (_, body) = details_call(&mesh).await.unwrap();
    assert_eq!(body, Value::String("RBAC: access denied".into()));
    let line = wait_for_log(&mesh, "rbac_access_denied_matched_policy[none]").await;
    assert!(
        line.contains("[details-v1-0 proxy]")
            && line.contains("principal=spiffe://cluster.local/ns/default/sa/bookinfo-productpage")
            && line.contains("no_allow_rule_matched=[ns[default]-policy[details-viewers]-rule[0]]"),
        "{line}"
    );

    // A DENY rule naming productpage's account.
    mesh.write_config(
        "authz.yaml",
        &policy("deny-productpage", "DENY", "bookinfo-productpage"),
    );
    // Denied by the DENY rule now, not by the ALLOW list any more.
    let line = wait_for_log(
        &mesh,
        "rbac_access_denied_matched_policy[ns[default]-policy[deny-productpage]-rule[0]]",
    )
    .await;
    assert!(line.contains("\"GET /details details:9080\" 403"), "{line}");
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let admin: SocketAddr = state["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "details-v1-0")
        .unwrap()["sidecar_admin"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let metrics = get(admin, "/stats/prometheus", &[], T)
        .await
        .unwrap()
        .text();
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "envoy_rbac_policy_denied{bowline_rbac_policy=\"ns[default]-policy[deny-productpage]-rule[0]\"}"
        ) && !l.ends_with(" 0")),
        "{metrics}"
    );

    // The right service account.
    mesh.write_config(
        "authz.yaml",
        &policy("details-viewers", "ALLOW", "bookinfo-productpage"),
    );
    until_status(200).await;
}

/// Waits for a line of the mesh's output containing `needle` and returns it.
async fn wait_for_log(mesh: &UpMesh, needle: &str) -> String {
    let mut found = String::new();
    wait_until(T, Duration::from_millis(50), || {
        let logs = mesh.proc.logs();
        let line = logs
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_string);
        let entry = mesh.entry;
        if let Some(line) = &line {
            found = line.clone();
        }
        async move {
            // Keep traffic flowing so the next decision is logged.
            let _ = get(entry, "/productpage", &[], T).await;
            anyhow::ensure!(line.is_some(), "no log line with {needle}");
            Ok(())
        }
    })
    .await
    .unwrap();
    found
}

/// RequestAuthentication whose keys come from a `jwksUri` served inside the mesh: a `jwks`
/// workload (bowline echo serving a file) behind its own sidecar, reached by productpage's
/// sidecar through its outbound cluster with mutual TLS. A token signed with the served key
/// passes; one signed with another key gets 401.
#[tokio::test(flavor = "multi_thread")]
async fn jwt_keys_from_a_jwks_uri_inside_the_mesh() {
    let issuer = TestIssuer::new();
    let keys = tempfile::tempdir().unwrap();
    let jwks_file = keys.path().join("jwks.json");
    std::fs::write(&jwks_file, &issuer.jwks).unwrap();
    let workload = format!(
        "- name: jwks-v1\n  serviceAccount: jwks\n  labels: {{app: jwks, version: v1}}\n  command: bowline\n  args: [echo, --listen, \"0.0.0.0:${{PORT}}\", --service, jwks, --version, v1, --file, \"/jwks.json={}\"]\n  ports: [{{name: http, port: 8080}}]\n",
        jwks_file.display()
    );
    let mesh = UpMesh::start_with("transparent", &[], "warn", &|m| {
        m.replace("workloads:\n", &format!("workloads:\n{workload}"))
    })
    .await;
    keys_come_from(
        &mesh,
        &issuer,
        "http://jwks.default.svc.cluster.local:8080/jwks.json",
    )
    .await;
}

/// RequestAuthentication with `jwksUri: file:///…`: the sidecar reads the keys from the file
/// (it runs as the proxy user, so the file must be readable by it).
#[tokio::test(flavor = "multi_thread")]
async fn jwt_keys_from_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let issuer = TestIssuer::new();
    let keys = tempfile::tempdir().unwrap();
    std::fs::set_permissions(keys.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let jwks_file = keys.path().join("jwks.json");
    std::fs::write(&jwks_file, &issuer.jwks).unwrap();
    std::fs::set_permissions(&jwks_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mesh = UpMesh::start("transparent").await;
    keys_come_from(&mesh, &issuer, &format!("file://{}", jwks_file.display())).await;
}

/// Puts a RequestAuthentication on productpage whose keys come from `jwks_uri`, then checks
/// that the sidecar verifies with them: a token of another key gets 401 "Jwt verification
/// fails" (so the keys were read), one signed by `issuer` passes.
async fn keys_come_from(mesh: &UpMesh, issuer: &TestIssuer, jwks_uri: &str) {
    let policy = format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: productpage-jwt\n  namespace: default\nspec:\n  selector:\n    matchLabels:\n      app: productpage\n  jwtRules:\n  - issuer: \"https://issuer.bookinfo.test\"\n    jwksUri: \"{jwks_uri}\"\n"
    );
    mesh.write_config("jwt.yaml", &policy);
    let now = unix_now();
    let token = |issuer: &TestIssuer| {
        issuer.token(serde_json::json!({"iss": "https://issuer.bookinfo.test", "sub": "jason", "exp": now + 600}))
    };
    let call = |token: String| {
        let entry = mesh.entry;
        async move {
            let auth = format!("Bearer {token}");
            get(
                entry,
                "/productpage",
                &[("authorization", auth.as_str())],
                T,
            )
            .await
        }
    };
    let stranger = TestIssuer::new();
    wait_until(T, Duration::from_millis(50), || async {
        let r = call(token(&stranger)).await?;
        anyhow::ensure!(r.status == 401, "status {}: {}", r.status, r.text());
        anyhow::ensure!(r.text() == "Jwt verification fails", "{}", r.text());
        Ok(())
    })
    .await
    .unwrap();
    let r = call(token(issuer)).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

impl UpMesh {
    /// `bowline <args>` against this mesh's control plane; (exit code, stdout, stderr).
    fn bowline(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_bowline"))
            .args(args)
            .args(["--mesh", &self.name])
            .env("BOWLINE_STATE_DIR", self.state_root.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `bowline apply -f` one of Istio's bookinfo files, unchanged.
    fn apply_istio(&self, file: &str) {
        let path = istio_bookinfo(file);
        let (code, out, err) = self.bowline(&["apply", "-f", path.to_str().unwrap()]);
        assert_eq!(code, Some(0), "apply {file}: {out}{err}");
    }

    /// `bowline get virtualservice reviews -o yaml`'s "generation G programmed on N of M
    /// proxies" line, with N and M (the text, to print and to search for node ids).
    fn reviews_programmed(&self) -> (String, Option<u32>, Option<u32>, String) {
        let (_, yaml, _) = self.bowline(&["get", "virtualservice", "reviews", "-o", "yaml"]);
        let line = yaml
            .lines()
            .find(|l| l.contains("programmed on"))
            .unwrap_or_default()
            .trim()
            .to_string();
        // `message: generation G programmed on N of M proxies`
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<u32>().ok());
        let (n, m) = (number(5), number(7));
        (line, n, m, yaml)
    }

    /// The productpage answer (whatever its calls returned) through the gateway.
    async fn raw_page(&self, user: Option<&str>) -> anyhow::Result<Value> {
        let headers: Vec<(&str, &str)> = user.map(|u| ("end-user", u)).into_iter().collect();
        let response = get(
            self.entry,
            "/productpage",
            &headers,
            Duration::from_secs(20),
        )
        .await?;
        anyhow::ensure!(response.status == 200, "status {}", response.status);
        Ok(response.json())
    }

    /// Versions of reviews over `n` pages as `user`.
    async fn reviews_versions(
        &self,
        user: Option<&str>,
        n: usize,
    ) -> std::collections::BTreeMap<String, usize> {
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..n {
            let page = self.page(user).await.unwrap();
            *seen.entry(page.reviews).or_default() += 1;
        }
        seen
    }
}

/// The status of `name`'s call in an echo answer.
fn call_status(body: &Value, name: &str) -> Option<u64> {
    body["calls"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?["status"]
        .as_u64()
}

/// The status of reviews' call to ratings in a productpage answer.
fn ratings_status(page: &Value) -> Option<u64> {
    let reviews = page["calls"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "reviews")?;
    call_status(&reviews["body"], "ratings")
}

fn istio_bookinfo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/istio/samples/bookinfo")
        .join(file)
}

/// Istio's bookinfo traffic-management task as its docs run it, with `bowline apply -f` on
/// Istio's own files: each step's documented routing holds end to end through the gateway,
/// `bowline get` shows where each resource stands, and a stopped proxy shows as the one
/// that has not programmed the change.
#[tokio::test(flavor = "multi_thread")]
async fn istio_bookinfo_task_flow_with_bowline_apply() {
    let mesh = UpMesh::start("explicit").await;
    // Istio's subsets for every service, then every service to v1.
    mesh.apply_istio("networking/destination-rule-all.yaml");
    mesh.apply_istio("networking/virtual-service-all-v1.yaml");
    wait_until(T, Duration::from_millis(50), || async {
        let seen = mesh.reviews_versions(None, 5).await;
        anyhow::ensure!(seen.keys().eq(["v1"]), "{seen:?}");
        Ok(())
    })
    .await
    .unwrap();

    // 80/20 applied over all-v1: the same identity, replaced (Istio's flow; refused as a
    // duplicate on main).
    mesh.apply_istio("networking/virtual-service-reviews-80-20.yaml");
    let (_, yaml, _) = mesh.bowline(&["get", "virtualservice", "reviews", "-o", "yaml"]);
    assert!(yaml.contains("generation: 2"), "{yaml}");
    let programmed = wait_until(T, Duration::from_millis(50), || async {
        let (line, n, m, _) = mesh.reviews_programmed();
        anyhow::ensure!(n.is_some() && n == m, "not everywhere yet: {line}");
        Ok(line)
    })
    .await
    .unwrap();
    eprintln!("after 80-20: {programmed}");
    let seen = mesh.reviews_versions(None, 100).await;
    let v2 = seen.get("v2").copied().unwrap_or(0);
    assert!(
        seen.keys().all(|v| v == "v1" || v == "v2") && (8..=35).contains(&v2),
        "80/20 over 100 pages: {seen:?}"
    );

    // jason to v2, everyone else to v3.
    mesh.apply_istio("networking/virtual-service-reviews-jason-v2-v3.yaml");
    wait_until(T, Duration::from_millis(50), || async {
        let jason = mesh.reviews_versions(Some("jason"), 5).await;
        let others = mesh.reviews_versions(None, 5).await;
        anyhow::ensure!(
            jason.keys().eq(["v2"]) && others.keys().eq(["v3"]),
            "{jason:?} {others:?}"
        );
        Ok(())
    })
    .await
    .unwrap();

    // Fault injection, Istio's task: ratings aborts with 500 for jason (reviews v2 shows the
    // ratings call failing), others' ratings calls succeed.
    mesh.apply_istio("networking/virtual-service-ratings-test-abort.yaml");
    wait_until(T, Duration::from_millis(50), || async {
        let jason = ratings_status(&mesh.raw_page(Some("jason")).await?);
        let others = ratings_status(&mesh.raw_page(None).await?);
        anyhow::ensure!(
            jason == Some(500) && others == Some(200),
            "{jason:?} {others:?}"
        );
        Ok(())
    })
    .await
    .unwrap();
    // A 7 s delay for jason's ratings calls; everyone else is not delayed.
    mesh.apply_istio("networking/virtual-service-ratings-test-delay.yaml");
    let delayed = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let started = Instant::now();
            let page = mesh.raw_page(Some("jason")).await?;
            let took = started.elapsed();
            anyhow::ensure!(ratings_status(&page) == Some(200), "{page}");
            anyhow::ensure!(took >= Duration::from_secs(7), "not delayed yet: {took:?}");
            Ok(took)
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    mesh.raw_page(None).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "others are not delayed"
    );
    eprintln!("jason's page with the ratings delay: {delayed:?}");

    // Every service to v1 again, then the details fault over it: details answers 555.
    mesh.apply_istio("networking/virtual-service-all-v1.yaml");
    mesh.apply_istio("networking/fault-injection-details-v1.yaml");
    wait_until(T, Duration::from_millis(50), || async {
        let page = mesh.raw_page(None).await?;
        let details = call_status(&page, "details");
        anyhow::ensure!(details == Some(555), "{page}");
        Ok(())
    })
    .await
    .unwrap();
    // Back to a healthy details for the steps below.
    mesh.apply_istio("networking/virtual-service-all-v1.yaml");
    mesh.apply_istio("networking/virtual-service-reviews-jason-v2-v3.yaml");

    // Istio's bookinfo.yaml (Services, ServiceAccounts, Deployments) and a VirtualService in
    // one file: the Services are read, the other Kubernetes kinds skipped with a note, and
    // the route applies.
    let mut one_file =
        std::fs::read_to_string(istio_bookinfo("platform/kube/bookinfo.yaml")).unwrap();
    one_file.push_str("\n---\n");
    one_file.push_str(
        &std::fs::read_to_string(istio_bookinfo("networking/virtual-service-reviews-v3.yaml"))
            .unwrap(),
    );
    let combined = mesh.dir.path().join("bookinfo-and-route.yaml");
    std::fs::write(&combined, one_file).unwrap();
    let (code, out, err) = mesh.bowline(&["apply", "-f", combined.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Service default/reviews"), "{out}");
    assert!(
        out.contains("skipped") && out.contains("Deployment"),
        "{out}"
    );
    wait_until(T, Duration::from_millis(50), || async {
        let jason = mesh.reviews_versions(Some("jason"), 5).await;
        anyhow::ensure!(jason.keys().eq(["v3"]), "{jason:?}");
        Ok(())
    })
    .await
    .unwrap();
    let (code, text) = mesh.status();
    assert_eq!(code, Some(0), "{text}");

    // One proxy stopped: the next change is programmed on all but that one, and `bowline
    // status` fails naming it.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let details = state["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"].as_str().unwrap().starts_with("details"))
        .unwrap();
    let node = details["node_id"].as_str().unwrap().to_string();
    unsafe {
        libc::kill(
            details["sidecar_pid"].as_i64().unwrap() as i32,
            libc::SIGKILL,
        )
    };
    mesh.apply_istio("networking/virtual-service-reviews-80-20.yaml");
    let pending = wait_until(T, Duration::from_millis(50), || async {
        let (line, n, m, yaml) = mesh.reviews_programmed();
        anyhow::ensure!(matches!((n, m), (Some(n), Some(m)) if n + 1 == m), "{line}");
        anyhow::ensure!(yaml.contains(&node), "the stopped proxy is named: {yaml}");
        Ok(line)
    })
    .await
    .unwrap();
    eprintln!("with one proxy stopped: {pending}");
    let (code, text) = mesh.status();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("PENDING VirtualService default/reviews") && text.contains(&node),
        "{text}"
    );
}

/// `meshConfig: {accessLogFile: /dev/stdout}` in the manifest: one request through the
/// gateway gives Istio's default access line at every proxy on its path — the gateway,
/// productpage's sidecar inbound and outbound, details' and reviews' inbound — all with the
/// request id the gateway made. The sidecars run as the proxy user, so they write to their
/// own stdout rather than re-opening /dev/stdout (which a pipe owned by root refuses them).
#[tokio::test(flavor = "multi_thread")]
async fn access_lines_from_every_proxy_on_the_path() {
    let mesh = UpMesh::start_with("transparent", &[], "warn", &|m| {
        format!("{m}meshConfig:\n  accessLogFile: /dev/stdout\n")
    })
    .await;
    mesh.page(None).await.unwrap();
    let expected = [
        ("[gateway]", "\"GET /productpage HTTP/1.1\" 200"),
        (
            "[productpage-v1-0 proxy]",
            "\"GET /productpage HTTP/1.1\" 200",
        ),
        ("[productpage-v1-0 proxy]", "\"GET /details HTTP/1.1\" 200"),
        ("[details-v1-0 proxy]", "\"GET /details HTTP/1.1\" 200"),
        ("[productpage-v1-0 proxy]", "\"GET /reviews HTTP/1.1\" 200"),
    ];
    let lines = wait_until(T, Duration::from_millis(50), || async {
        let logs = mesh.proc.logs();
        let found: Vec<String> = expected
            .iter()
            .map(|(who, what)| {
                logs.lines()
                    .find(|l| l.contains(who) && l.contains(what))
                    .map(str::to_string)
                    .ok_or_else(|| anyhow::anyhow!("no {who} line with {what}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(found)
    })
    .await
    .unwrap();
    // Istio's format quotes the request id after the user agent: the same id everywhere.
    let id = |line: &str| line.split('"').nth(9).unwrap_or_default().to_string();
    let first = id(&lines[0]);
    assert_eq!(first.len(), 36, "{}", lines[0]);
    for line in &lines {
        assert_eq!(id(line), first, "{line}");
    }
    assert!(
        lines[2].contains("outbound|9080||details.default.svc.cluster.local"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("inbound|9080||"), "{}", lines[3]);
}
