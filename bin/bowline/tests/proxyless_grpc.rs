//! Proxyless gRPC: a real grpcio client dialling `xds:///echo.grpc.svc.cluster.local:7070`
//! takes its config from `bowline control` (node metadata `GENERATOR: "grpc"`, SotW ADS,
//! subscriptions by name), and the mesh's VirtualService splits its calls 80/20 between two
//! real grpcio servers by DestinationRule subsets; an edit to 100% v2 reaches the running
//! client. No Envoy, no sidecar: the client's own xDS resolver and balancer do the routing.
//!
//! Mutual TLS, Istio's proxyless way: xDS-enabled grpcio servers take their listeners from
//! bowline (STRICT: client certificates required), certificates come from the mesh CA
//! through `bowline sds --cert-dir`, and the client's xDS credentials originate mTLS because
//! the DestinationRule says ISTIO_MUTUAL.
//!
//! Needs Python with grpcio in the Envoy venv (`$BOWLINE_ENVOY_VENV`, else `./.venv-envoy`):
//! the test fails, never skips, when it is missing.

use anyhow::{ensure, Context, Result};
use bowline_testkit::{wait_until, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STARTUP: Duration = Duration::from_secs(30);
const HOST: &str = "echo.grpc.svc.cluster.local";
const PORT: u16 = 7070;
/// Calls per round of the client: at 20%, v2's count is binomial(500, 0.2), mean 100 and
/// standard deviation ~8.9; 70..=130 is ±3.3 deviations (a false failure ~1 in 1,000).
const CALLS: u32 = 500;
const V2_BOUNDS: std::ops::RangeInclusive<u64> = 70..=130;

/// A grpcio server answering `/bowline.test.Echo/Who` with its version, bytes in and out
/// (generic handler, no protoc), on a port of 127.0.0.1 it prints once serving.
const SERVER_PY: &str = r#"
import sys
from concurrent import futures
import grpc

version = sys.argv[1]
handler = grpc.method_handlers_generic_handler(
    "bowline.test.Echo",
    {"Who": grpc.unary_unary_rpc_method_handler(lambda request, context: version.encode())},
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"serving {version} on port {port}", flush=True)
server.wait_for_termination()
"#;

/// A grpcio client on `xds:///TARGET` whose xDS server is bowline at XDS_ADDR: writes the
/// bootstrap, then makes ROUNDS rounds of N calls (each bounded by a timeout) and prints
/// one JSON line per round: `{"round": i, "counts": {version: n}, "errors": {code: n}}`.
const CLIENT_PY: &str = r#"
import json, os, sys, tempfile
from collections import Counter

xds_addr, target, calls, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bootstrap = {
    "xds_servers": [{
        "server_uri": xds_addr,
        "channel_creds": [{"type": "insecure"}],
        "server_features": ["xds_v3"],
    }],
    "node": {
        "id": "sidecar~127.0.0.1~client.default~default.svc.cluster.local",
        "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"},
    },
}
path = os.path.join(tempfile.mkdtemp(), "bootstrap.json")
with open(path, "w") as f:
    json.dump(bootstrap, f)
os.environ["GRPC_XDS_BOOTSTRAP"] = path

import grpc  # after GRPC_XDS_BOOTSTRAP: the xDS resolver reads it at first use

channel = grpc.insecure_channel("xds:///" + target)
who = channel.unary_unary("/bowline.test.Echo/Who")
grpc.channel_ready_future(channel).result(timeout=30)
for i in range(rounds):
    counts, errors = Counter(), Counter()
    for _ in range(calls):
        try:
            counts[who(b"", timeout=5, wait_for_ready=True).decode()] += 1
        except grpc.RpcError as e:
            errors[f"{e.code().name}: {e.details()}"] += 1
    print(json.dumps({"round": i, "counts": counts, "errors": errors}), flush=True)
"#;

fn route(v1: u32, v2: u32) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: grpc}}
spec:
  hosts: [echo]
  http:
  - route:
    - {{destination: {{host: echo, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: echo, subset: v2}}, weight: {v2}}}
"#
    )
}

/// The echo service: one GRPC port, two inline endpoints on 127.0.0.1 (one per server
/// port, mapped by port name), labelled by version; subsets v1 and v2.
fn service(v1_port: u16, v2_port: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: grpc}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {v1_port}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {v2_port}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: grpc}}
spec:
  host: echo
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"#
    )
}

/// `bowline control` on `config` with `extra` arguments, its plaintext xDS port on port 0:
/// the process and that port's address.
async fn control(
    config: &Path,
    state: &Path,
    extra: &[&std::ffi::OsStr],
) -> Result<(Proc, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bowline"));
    cmd.args(["control", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(["--xds-addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0"])
        .args(extra);
    let control = Proc::spawn("control", cmd)?;
    let line = control.wait_for_line("xds listening on ", STARTUP).await?;
    let xds = line
        .split("xds listening on ")
        .nth(1)
        .context("xds address")?
        .trim()
        .to_string();
    Ok((control, xds))
}

/// The Envoy venv's Python, checked to import grpcio; panics saying how to install it.
fn python_with_grpcio() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var_os("BOWLINE_ENVOY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join(".venv-envoy"));
    let python = venv.join("bin/python");
    let hint = format!(
        "install it with: {}/bin/pip install grpcio (the venv is $BOWLINE_ENVOY_VENV, else \
         ./.venv-envoy; .ci/run installs it)",
        venv.display()
    );
    let ok = Command::new(&python)
        .args(["-c", "import grpc"])
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "proxyless gRPC test needs Python with grpcio at {}: {ok:?}; {hint}",
        python.display()
    );
    python
}

/// Starts a server for `version` and returns it with its port.
async fn server(python: &Path, script: &Path, version: &str) -> Result<(Proc, u16)> {
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(version);
    let proc = Proc::spawn(&format!("grpc-{version}"), cmd)?;
    let line = proc.wait_for_line("serving ", STARTUP).await?;
    let port = line
        .rsplit(' ')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("no port in {line:?}"))?;
    Ok((proc, port))
}

/// The client's rounds printed so far: (round, v1, v2, errors).
fn rounds(client: &Proc) -> Vec<(u64, u64, u64, Value)> {
    client
        .logs()
        .lines()
        .filter_map(|l| l.trim().strip_prefix('{').map(|_| l.trim()))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let count = |version: &str| v["counts"][version].as_u64().unwrap_or(0);
            (
                v["round"].as_u64().unwrap_or(0),
                count("v1"),
                count("v2"),
                v["errors"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcio_client_routes_80_20_by_the_mesh_config_and_follows_an_edit() -> Result<()> {
    let python = python_with_grpcio();
    let scripts = tempfile::tempdir()?;
    let server_py = scripts.path().join("server.py");
    let client_py = scripts.path().join("client.py");
    std::fs::write(&server_py, SERVER_PY)?;
    std::fs::write(&client_py, CLIENT_PY)?;

    let (_v1, v1_port) = server(&python, &server_py, "v1").await?;
    let (_v2, v2_port) = server(&python, &server_py, "v2").await?;

    let config = tempfile::tempdir()?;
    let state = tempfile::tempdir()?;
    std::fs::write(config.path().join("echo.yaml"), service(v1_port, v2_port))?;
    std::fs::write(config.path().join("route.yaml"), route(80, 20))?;
    let (_control, xds) = control(config.path(), state.path(), &[]).await?;

    // Enough rounds to outlast the edit below; the process is stopped when the test ends.
    let mut cmd = Command::new(&python);
    cmd.arg(&client_py)
        .arg(&xds)
        .arg(format!("{HOST}:{PORT}"))
        .arg(CALLS.to_string())
        .arg("200");
    let client = Proc::spawn("grpc-client", cmd)?;
    client.wait_for_line("\"round\": 0", STARTUP).await?;
    let (_, v1, v2, errors) = rounds(&client)[0].clone();
    eprintln!("round 0 at 80/20: v1 {v1}, v2 {v2}, errors {errors}");
    ensure!(
        errors.as_object().is_some_and(|e| e.is_empty()),
        "calls failed: {errors}"
    );
    ensure!(v1 + v2 == u64::from(CALLS), "v1 {v1} + v2 {v2} != {CALLS}");
    ensure!(
        V2_BOUNDS.contains(&v2),
        "v2 answered {v2} of {CALLS}, outside {V2_BOUNDS:?} around 20%"
    );

    // Rewrite the route in place (renamed in, so it is never read half-written): the
    // running client's next rounds go to v2 only.
    let edited = config.path().join("route.yaml.tmp");
    std::fs::write(&edited, route(0, 100))?;
    let seen = rounds(&client).len() as u64;
    std::fs::rename(&edited, config.path().join("route.yaml"))?;
    let after = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let rounds = rounds(&client);
        async move {
            // A round that started after the edit could still straddle the push: look
            // for one with v2 only, after the rounds seen before the edit.
            let later: Vec<_> = rounds.into_iter().filter(|r| r.0 >= seen).collect();
            later
                .iter()
                .find(|(_, v1, _, _)| *v1 == 0)
                .cloned()
                .with_context(|| format!("no round with v1 at 0 yet: {later:?}"))
        }
    })
    .await?;
    eprintln!(
        "after the edit to 0/100: round {} v1 {} v2 {} errors {}",
        after.0, after.1, after.2, after.3
    );
    ensure!(
        after.2 == u64::from(CALLS) && after.3.as_object().is_some_and(|e| e.is_empty()),
        "after the edit every call answers v2: {after:?}"
    );
    Ok(())
}

/// The head of every mTLS script: argv[1..4] are the xDS address, the node id and the
/// certificate directory; writes the gRPC bootstrap Istio's agent writes for a proxyless
/// workload (a `file_watcher` certificate provider named `default` over the files
/// `bowline sds --cert-dir` keeps, and the server listener name template), then imports
/// grpc.
const MTLS_BOOTSTRAP_PY: &str = r#"
import json, os, sys, tempfile
from collections import Counter

xds_addr, node_id, cert_dir = sys.argv[1], sys.argv[2], sys.argv[3]
bootstrap = {
    "xds_servers": [{
        "server_uri": xds_addr,
        "channel_creds": [{"type": "insecure"}],
        "server_features": ["xds_v3"],
    }],
    "node": {"id": node_id, "metadata": {"GENERATOR": "grpc", "NAMESPACE": "grpc"}},
    "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {
        "certificate_file": os.path.join(cert_dir, "cert-chain.pem"),
        "private_key_file": os.path.join(cert_dir, "key.pem"),
        "ca_certificate_file": os.path.join(cert_dir, "root-cert.pem"),
        "refresh_interval": "60s",
    }}},
    "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
}
path = os.path.join(tempfile.mkdtemp(), "bootstrap.json")
with open(path, "w") as f:
    json.dump(bootstrap, f)
os.environ["GRPC_XDS_BOOTSTRAP"] = path

import grpc
import grpc.experimental
"#;

/// An xDS-enabled grpcio server (argv[4] port, argv[5] version): its listener, and with it
/// whether it requires mTLS, comes from bowline; it answers `Who` with its version and the
/// identities of the client's certificate.
const MTLS_SERVER_PY: &str = r#"
from concurrent import futures
port, version = sys.argv[4], sys.argv[5]

def who(request, context):
    peers = [p.decode() for p in (context.peer_identities() or [])]
    return json.dumps({"version": version, "peers": peers}).encode()

handler = grpc.method_handlers_generic_handler(
    "bowline.test.Echo", {"Who": grpc.unary_unary_rpc_method_handler(who)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), xds=True)
server.add_generic_rpc_handlers((handler,))
server.add_secure_port(f"127.0.0.1:{port}", grpc.xds_server_credentials(grpc.insecure_server_credentials()))
server.start()
print(f"started {version} on port {port}", flush=True)
server.wait_for_termination()
"#;

/// A grpcio client with xDS credentials (argv[4] target, argv[5] calls, argv[6] a server's
/// own address): makes the calls, then one plaintext call straight to that server, past
/// xDS, and prints one JSON line: answers by "version peers", errors, and what the
/// plaintext call got.
const MTLS_CLIENT_PY: &str = r#"
target, calls, direct = sys.argv[4], int(sys.argv[5]), sys.argv[6]
creds = grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials())
channel = grpc.secure_channel("xds:///" + target, creds)
who = channel.unary_unary("/bowline.test.Echo/Who")
answers, errors = Counter(), Counter()
for i in range(calls):
    try:
        # The first call waits for the servers to get their listeners from bowline.
        a = json.loads(who(b"", timeout=30 if i == 0 else 5, wait_for_ready=True))
        answers[a["version"] + " " + ",".join(a["peers"])] += 1
    except grpc.RpcError as e:
        errors[f"{e.code().name}: {e.details()}"] += 1
try:
    grpc.insecure_channel(direct).unary_unary("/bowline.test.Echo/Who")(b"", timeout=5)
    plaintext = "answered"
except grpc.RpcError as e:
    plaintext = e.code().name
print(json.dumps({"answers": answers, "errors": errors, "plaintext": plaintext}), flush=True)
"#;

/// The echo service for the mTLS test: its endpoints are two WorkloadEntries (the servers,
/// each a registry workload with the `echo` service account), the namespace is STRICT, and
/// the DestinationRule asks for ISTIO_MUTUAL.
fn mtls_mesh(v1_port: u16, v2_port: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: grpc}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC}}]
  workloadSelector: {{labels: {{app: echo}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: echo-v1, namespace: grpc}}
spec: {{address: 127.0.0.1, ports: {{grpc: {v1_port}}}, labels: {{app: echo, version: v1}}, serviceAccount: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: echo-v2, namespace: grpc}}
spec: {{address: 127.0.0.1, ports: {{grpc: {v2_port}}}, labels: {{app: echo, version: v2}}, serviceAccount: echo}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: grpc}}
spec: {{mtls: {{mode: STRICT}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: grpc}}
spec:
  host: echo
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
"#
    )
}

/// A port free on 127.0.0.1 now. An xDS server must know its port before it starts (it
/// asks for the listener by address), so it cannot bind port 0; the race with another
/// process taking the port in between is accepted.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `bowline sds --cert-dir` for `token`: the workload's certificate files, kept current.
async fn cert_files(xds: &str, token: &str, dir: &Path) -> Result<Proc> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bowline"));
    cmd.args(["sds", "--ca-addr", xds, "--ca-token", token, "--cert-dir"])
        .arg(dir);
    let proc = Proc::spawn(&format!("sds-{token}"), cmd)?;
    proc.wait_for_line("certificates written to ", STARTUP)
        .await?;
    Ok(proc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxyless_client_and_servers_speak_mutual_tls_with_mesh_certificates() -> Result<()> {
    let python = python_with_grpcio();
    let dir = tempfile::tempdir()?;
    let write = |name: &str, body: &str| -> Result<PathBuf> {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{MTLS_BOOTSTRAP_PY}{body}"))?;
        Ok(path)
    };
    let server_py = write("server.py", MTLS_SERVER_PY)?;
    let client_py = write("client.py", MTLS_CLIENT_PY)?;
    let (v1_port, v2_port) = (free_port()?, free_port()?);

    let config = dir.path().join("config");
    std::fs::create_dir(&config)?;
    std::fs::write(config.join("echo.yaml"), mtls_mesh(v1_port, v2_port))?;
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "client-token spiffe://cluster.local/ns/grpc/sa/client\n\
         echo-token spiffe://cluster.local/ns/grpc/sa/echo\n",
    )?;
    let ca_dir = dir.path().join("ca");
    let ca = [
        "--ca-dir".as_ref(),
        ca_dir.as_os_str(),
        "--ca-tokens".as_ref(),
        tokens.as_os_str(),
        "--secure-xds-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
    ];
    let (_control, xds) = control(&config, &dir.path().join("state"), &ca).await?;

    let echo_certs = dir.path().join("echo-certs");
    let client_certs = dir.path().join("client-certs");
    let _echo_sds = cert_files(&xds, "echo-token", &echo_certs).await?;
    let _client_sds = cert_files(&xds, "client-token", &client_certs).await?;
    for file in ["cert-chain.pem", "key.pem", "root-cert.pem"] {
        ensure!(echo_certs.join(file).is_file(), "{file} written");
    }
    let key_mode = std::fs::metadata(echo_certs.join("key.pem"))?.permissions();
    ensure!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode) & 0o077 == 0,
        "the key is its owner's only"
    );

    let mut servers = Vec::new();
    for (version, port) in [("v1", v1_port), ("v2", v2_port)] {
        let mut cmd = Command::new(&python);
        cmd.arg(&server_py)
            .arg(&xds)
            .arg(format!(
                "sidecar~127.0.0.1~echo-{version}.grpc~grpc.svc.cluster.local"
            ))
            .arg(&echo_certs)
            .arg(port.to_string())
            .arg(version);
        let proc = Proc::spawn(&format!("grpc-{version}"), cmd)?;
        proc.wait_for_line("started ", STARTUP).await?;
        servers.push(proc);
    }

    let mut cmd = Command::new(&python);
    cmd.arg(&client_py)
        .arg(&xds)
        .arg("sidecar~127.0.0.1~client.grpc~grpc.svc.cluster.local")
        .arg(&client_certs)
        .arg(format!("{HOST}:{PORT}"))
        .arg("40")
        .arg(format!("127.0.0.1:{v1_port}"));
    let client = Proc::spawn("grpc-client", cmd)?;
    let line = client
        .wait_for_line("\"answers\"", Duration::from_secs(90))
        .await?;
    let result: Value = serde_json::from_str(line.trim())?;
    eprintln!("proxyless mTLS: {result}");
    ensure!(
        result["errors"].as_object().is_some_and(|e| e.is_empty()),
        "every call over mTLS answered: {result}"
    );
    let peer = "spiffe://cluster.local/ns/grpc/sa/client";
    let answers = result["answers"].as_object().context("answers")?;
    for version in ["v1", "v2"] {
        let n = answers
            .get(&format!("{version} {peer}"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        ensure!(
            n > 0,
            "{version} answered calls whose client certificate is the mesh's {peer}: {result}"
        );
    }
    ensure!(
        answers.len() == 2,
        "no answer without the client's identity: {result}"
    );
    ensure!(
        result["plaintext"] == "UNAVAILABLE",
        "a STRICT server refuses plaintext: {result}"
    );
    Ok(())
}
