//! The config store through a real `bowline control`: a watched directory that is left
//! alone is never re-read, a file written in pieces is never applied halfway, and a restart
//! while a file is broken serves what was serving — with `bowline get` and the status API
//! saying so.

use bowline_testkit::{wait_until, Proc};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn rule(name: &str, subsets: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: reviews\n  subsets: {subsets}\n"
    )
}

const BROKEN: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: one}\nspec:\n  host: reviews\n  trafficPolicy: {connectionPool: {tcp: {connectTimeout: soon}}}\n";

struct Control {
    proc: Proc,
    debug: SocketAddr,
}

fn control_command(dir: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bowline"));
    cmd.args(["control", "--config"])
        .arg(dir)
        .arg("--state-dir")
        .arg(state)
        .args(["--xds-addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0"]);
    cmd
}

async fn control(dir: &Path, state: &Path) -> Control {
    control_with(control_command(dir, state)).await
}

async fn control_with(cmd: Command) -> Control {
    let proc = Proc::spawn("control", cmd).unwrap();
    let line = proc.wait_for_line("debug listening on ", T).await.unwrap();
    let debug = line
        .split("debug listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Control { proc, debug }
}

impl Control {
    fn get(&self, path: &str) -> Value {
        let (status, body) =
            bowline_mesh::probe::http_get(self.debug, path, Duration::from_secs(5)).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn configz(&self) -> Value {
        self.get("/debug/configz")
    }

    fn bowline(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_bowline"))
            .args(args)
            .args(["--control", &self.debug.to_string()])
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    }

    /// Subset names of DestinationRule `name` as served, from `bowline get -o json`.
    fn subsets(&self, name: &str) -> Vec<String> {
        let (_, text) = self.bowline(&["get", "destinationrule", name, "-o", "json"]);
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return Vec::new();
        };
        v["spec"]["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect()
    }
}

async fn wait_generation(c: &Control, at_least: u64) -> u64 {
    wait_until(T, Duration::from_millis(20), || async {
        let g = c.configz()["generation"].as_u64().unwrap_or(0);
        anyhow::ensure!(g >= at_least, "generation {g}");
        Ok(g)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unchanged_directory_is_not_reread_and_a_file_written_in_pieces_never_applies_halfway() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rule("one", "[{name: v1}]")).unwrap();
    let c = control(dir.path(), state.path()).await;
    let g1 = wait_generation(&c, 1).await;

    // Written in pieces, as a script or a slow editor would: truncated, the first document,
    // a pause shorter than the settle period, then the rest. The half (one document, then
    // nothing) must never serve as a generation of its own.
    let whole = format!(
        "{}---\n{}",
        rule("one", "[{name: v1}, {name: v2}]"),
        rule("two", "[{name: x}]")
    );
    let cut = whole.find("---").unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(&whole.as_bytes()[..cut]).unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        f.write_all(&whole.as_bytes()[cut..]).unwrap();
    }
    let g2 = wait_generation(&c, g1 + 1).await;
    wait_until(T, Duration::from_millis(20), || async {
        anyhow::ensure!(c.subsets("two") == ["x"], "two not served yet");
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(c.subsets("one"), ["v1", "v2"]);
    assert_eq!(
        (g2, c.configz()["generation"].as_u64()),
        (g1 + 1, Some(g1 + 1)),
        "one generation for the whole write: the half was never applied"
    );

    // Left alone, the directory is never read again: zero reloads over 10 s.
    let reloads = c.configz()["reloads"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = c.configz();
    assert_eq!(after["reloads"].as_u64(), Some(reloads), "{after}");
    assert_eq!(after["generation"].as_u64(), Some(g2));
    eprintln!("reloads over 10 s with nothing changing: 0 (total {reloads})");
}

#[tokio::test]
async fn a_restart_with_a_broken_file_serves_what_was_serving_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rule("one", "[{name: v1}]")).unwrap();
    let mut c = control(dir.path(), state.path()).await;
    wait_generation(&c, 1).await;
    let (code, out) = c.bowline(&["apply", "-f", "-"]);
    // No stdin given: an empty apply is fine and changes nothing.
    assert_eq!(code, Some(0), "{out}");
    let elsewhere = tempfile::tempdir().unwrap();
    let applied = elsewhere.path().join("applied-rule.yaml");
    std::fs::write(&applied, rule("applied", "[{name: a}]")).unwrap();
    let (code, out) = c.bowline(&["apply", "-f", applied.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("DestinationRule default/applied created"),
        "{out}"
    );

    c.proc.kill().unwrap();
    std::fs::write(&file, BROKEN).unwrap();
    let c = control(dir.path(), state.path()).await;
    assert_eq!(
        c.subsets("one"),
        ["v1"],
        "the last good version serves after a restart"
    );
    assert_eq!(
        c.subsets("applied"),
        ["a"],
        "what was applied survives a restart"
    );
    let status = c.get("/apis/config/status");
    let refused = status["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{status}");
    assert_eq!(refused[0]["resource"], "DestinationRule default/one");
    assert_eq!(refused[0]["serving"], true);
    assert!(refused[0]["diagnostics"][0]
        .as_str()
        .unwrap()
        .contains("connectTimeout"));
    let (_, yaml) = c.bowline(&["get", "dr", "one", "-o", "yaml"]);
    assert!(
        yaml.contains("status: \"False\"") && yaml.contains("keeps serving"),
        "{yaml}"
    );
    // Deleted by identity; a second delete finds nothing (kubectl's NotFound: exit 1).
    let (code, out) = c.bowline(&["delete", "destinationrule", "applied"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("DestinationRule default/applied deleted"),
        "{out}"
    );
    assert!(c.subsets("applied").is_empty());
    let (code, out) = c.bowline(&["delete", "destinationrule", "applied"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not found"), "{out}");
    // `bowline status --control` fails and names the refused resource.
    let (code, text) = c.bowline(&["status"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("REFUSED DestinationRule default/one (its last good version serves)"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_api_requests_get_a_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = control(dir.path(), state.path()).await;
    for (method, path, want) in [
        ("GET", "/apis/config/resources?kind=widget", 400),
        ("DELETE", "/apis/config/resources?kind=vs", 400),
        ("PUT", "/apis/config/apply", 405),
        ("GET", "/nope", 404),
    ] {
        let (status, body) =
            bowline_mesh::probe::http_request(c.debug, method, path, b"", Duration::from_secs(5))
                .unwrap();
        assert_eq!(status, want, "{method} {path}: {body}");
    }
    let (status, body) = bowline_mesh::probe::http_request(
        c.debug,
        "POST",
        "/apis/config/apply?file=x.yaml",
        &[0xff, 0xfe, 0x00],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = bowline_mesh::probe::http_request(
        c.debug,
        "POST",
        "/apis/config/apply?file=x.yaml",
        b"kind: [unclosed",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("refused"), "{body}");
}

#[tokio::test]
async fn the_mesh_config_is_read_with_positions_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mesh = elsewhere.path().join("mesh-config-test.yaml");
    std::fs::write(
        &mesh,
        "trustDomain: cluster.local\npathNormalization:\n  normalization: MERGE_SLASHES\n",
    )
    .unwrap();
    let mut cmd = control_command(dir.path(), state.path());
    cmd.arg("--mesh-config").arg(&mesh);
    let c = control_with(cmd).await;
    assert_eq!(c.configz()["mesh"]["pathNormalization"], "MergeSlashes");
    drop(c);

    // A misspelt field is an error naming file, line and the field it was probably meant as.
    std::fs::write(&mesh, "trustDomain: cluster.local\npathNormalisation: {}\n").unwrap();
    let out = control_command(dir.path(), state.path())
        .arg("--mesh-config")
        .arg(&mesh)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("mesh-config-test.yaml:2:") && stderr.contains("pathNormalization"),
        "{stderr}"
    );
}

#[tokio::test]
async fn gateway_api_routes_carry_their_parents_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gw.yaml"),
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: other}
spec:
  hosts: [web.other.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: crossing, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: web, namespace: other, port: 80}]}]
"#,
    )
    .unwrap();
    let c = control(dir.path(), state.path()).await;
    let (_, text) = c.bowline(&["get", "httproute", "crossing", "-o", "json"]);
    let route: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let conditions = &route["status"]["parents"][0]["conditions"];
    let resolved = conditions
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ResolvedRefs")
        .unwrap_or_else(|| panic!("{route}"));
    assert_eq!(resolved["status"], "False", "{route}");
    assert_eq!(resolved["reason"], "RefNotPermitted", "{route}");
    let (_, text) = c.bowline(&[
        "get",
        "gateway.gateway.networking.k8s.io",
        "gw",
        "-o",
        "json",
    ]);
    let gw: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(gw["status"]["listeners"][0]["attachedRoutes"], 1, "{gw}");
}
