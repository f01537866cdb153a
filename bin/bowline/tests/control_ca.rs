//! `bowline control` as the mesh CA (`--ca-dir`, `--ca-tokens`): a bowline-proxy with a
//! known token gets its SPIFFE certificate over the xDS port before it asks for config and
//! becomes ready; one with an unknown token is refused at once and says so; the generated
//! CA key is readable by its owner only. Over the secure port (TLS, as istiod's 15012) a
//! proxy given the mesh root gets its certificate and config; one given another root
//! refuses the control plane and never sends its token.

mod support;

use bowline_testkit::{bowline_proxy_binary, Proc};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use support::{bowline, CLIENT_NODE_ID, STARTUP};

/// `bowline control` on an empty config directory in `dir`, as the CA (`dir/ca`) accepting
/// one token for productpage's service account, its secure port and debug port on port 0.
fn control_with_ca(dir: &std::path::Path) -> Command {
    let config = dir.join("config");
    std::fs::create_dir(&config).unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        "# token spiffe-id\nproductpage-token spiffe://cluster.local/ns/default/sa/bookinfo-productpage\n",
    )
    .unwrap();
    let mut cmd = bowline();
    cmd.args(["control", "--config"])
        .arg(&config)
        .args([
            "--secure-xds-addr",
            "127.0.0.1:0",
            "--debug-addr",
            "127.0.0.1:0",
        ])
        .arg("--ca-dir")
        .arg(dir.join("ca"))
        .arg("--ca-tokens")
        .arg(&tokens);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_issues_certificates_to_known_tokens_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let mut cmd = control_with_ca(dir.path());
    cmd.args(["--xds-addr", "127.0.0.1:0"]);
    let control = Proc::spawn("control", cmd).unwrap();
    let line = control
        .wait_for_line("xds listening on ", STARTUP)
        .await
        .unwrap();
    let xds = line
        .split("xds listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let mode = std::fs::metadata(ca.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let bootstrap = bowline()
        .args(["bootstrap", "envoy", "--node-id", CLIENT_NODE_ID])
        .args(["--xds-addr", &xds, "--admin-addr", "127.0.0.1:0"])
        .args(["--outbound-port", "0", "--inbound-port", "0"])
        .output()
        .unwrap();
    assert!(bootstrap.status.success());
    let file = dir.path().join("bootstrap.yaml");
    std::fs::write(&file, &bootstrap.stdout).unwrap();
    let proxy = |token: &str| {
        let mut cmd = Command::new(bowline_proxy_binary());
        cmd.arg("-c").arg(&file).env("BOWLINE_CA_TOKEN", token);
        cmd
    };

    let good = Proc::spawn("proxy", proxy("productpage-token")).unwrap();
    good.wait_for_line(
        "workload certificate issued identity=spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        STARTUP,
    )
    .await
    .unwrap();
    good.wait_for_line("initial configuration applied", STARTUP)
        .await
        .unwrap();

    let mut bad = Proc::spawn("stranger", proxy("guessed")).unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = bad.try_exit_status().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running: {}",
            bad.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let logs = bad.logs();
    assert!(
        logs.contains("no workload certificate from the CA") && logs.contains("not known"),
        "{logs}"
    );
}

/// Waits until `proc` has exited (bounded: a proxy retries the CA for 30 s before it gives
/// up), and returns whether it failed.
async fn exits_with_failure(proc: &mut Proc) -> bool {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = proc.try_exit_status().unwrap() {
            return !status.success();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still running: {}",
            proc.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_proxy_trusts_only_the_control_plane_its_root_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = control_with_ca(dir.path());
    let control = Proc::spawn("control", cmd).unwrap();
    let line = control
        .wait_for_line("secure xds listening on ", STARTUP)
        .await
        .unwrap();
    let secure = line.rsplit(' ').next().unwrap().trim().to_string();
    assert!(
        !control.logs().contains("\nxds listening on"),
        "no plaintext port unless asked for: {}",
        control.logs()
    );

    // Another mesh's root, generated by another CA.
    let other = tempfile::tempdir().unwrap();
    bowline_identity::Ca::load_or_create(other.path()).unwrap();
    let bootstrap = |root: &std::path::Path, name: &str| {
        let out = bowline()
            .args(["bootstrap", "envoy", "--node-id", CLIENT_NODE_ID])
            .args(["--xds-addr", &secure, "--admin-addr", "127.0.0.1:0"])
            .args(["--outbound-port", "0", "--inbound-port", "0"])
            .arg("--xds-root")
            .arg(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.path().join(name);
        std::fs::write(&file, &out.stdout).unwrap();
        file
    };
    let proxy = |file: &std::path::Path, token: &str| {
        let mut cmd = Command::new(bowline_proxy_binary());
        cmd.arg("-c").arg(file).env("BOWLINE_CA_TOKEN", token);
        cmd
    };

    let right = bootstrap(&dir.path().join("ca/root-cert.pem"), "right.yaml");
    let good = Proc::spawn("proxy", proxy(&right, "productpage-token")).unwrap();
    good.wait_for_line(
        "workload certificate issued identity=spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        STARTUP,
    )
    .await
    .unwrap();
    good.wait_for_line("initial configuration applied", STARTUP)
        .await
        .unwrap();

    let wrong = bootstrap(&other.path().join("root-cert.pem"), "wrong.yaml");
    let mut refused = Proc::spawn("wrong-root", proxy(&wrong, "productpage-token")).unwrap();
    assert!(exits_with_failure(&mut refused).await);
    let logs = refused.logs();
    assert!(
        logs.contains("no workload certificate from the CA") && logs.contains("certificate"),
        "{logs}"
    );
}
