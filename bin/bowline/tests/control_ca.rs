//! `bowline control` as the mesh CA (`--ca-dir`, `--ca-tokens`): a bowline-proxy with a
//! known token gets its SPIFFE certificate over the xDS port before it asks for config and
//! becomes ready; one with an unknown token is refused at once and says so; the generated
//! CA key is readable by its owner only.

mod support;

use bowline_testkit::{bowline_proxy_binary, Proc};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use support::{bowline, CLIENT_NODE_ID, STARTUP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_issues_certificates_to_known_tokens_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let ca = dir.path().join("ca");
    std::fs::create_dir(&config).unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "# token spiffe-id\nproductpage-token spiffe://cluster.local/ns/default/sa/bookinfo-productpage\n",
    )
    .unwrap();
    let mut cmd = bowline();
    cmd.args(["control", "--config"])
        .arg(&config)
        .args(["--xds-addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0"])
        .arg("--ca-dir")
        .arg(&ca)
        .arg("--ca-tokens")
        .arg(&tokens);
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
