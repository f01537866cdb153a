//! `bowline_mesh::up` as a library, without real proxies: explicit capture (no root needed),
//! the real in-process control plane, and stand-in programs for the application and sidecar.
//! The full mesh (bowline-proxy, namespaces, traffic) is bin/bowline/tests/up.rs.

use bowline_mesh::state::MeshState;
use bowline_mesh::up::{CaptureMode, Event, Interrupt, Mesh, UpError, UpOptions};
use bowline_mesh::Manifest;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A one-workload mesh in `dir`: the application sleeps, the "sidecar" is `proxy_bin`.
fn mesh_in(dir: &Path, name: &str) -> Manifest {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let file = dir.join("bowline.yaml");
    std::fs::write(
        &file,
        format!(
            "name: {name}\nworkloads:\n- name: app\n  labels: {{app: app}}\n  command: sleep\n  args: [\"30\"]\n  ports: [{{name: http, port: 9080}}]\n"
        ),
    )
    .unwrap();
    Manifest::load(&file).unwrap()
}

fn options(state_root: PathBuf, proxy_bin: &str, runtime: &tokio::runtime::Runtime) -> UpOptions {
    UpOptions {
        capture: CaptureMode::Explicit,
        proxy_bin: proxy_bin.into(),
        self_bin: "/usr/bin/true".into(),
        envoy_bin: None,
        debug_addr: "127.0.0.1:0".parse().unwrap(),
        state_root,
        ca_dir: None,
        cert_ttl: Duration::from_secs(3600),
        started: Instant::now(),
        ready_timeout: Duration::from_secs(60),
        runtime: runtime.handle().clone(),
        interrupt: Interrupt::default(),
    }
}

type Seen = Arc<Mutex<Vec<Event>>>;

fn recorder() -> (Seen, Box<dyn FnMut(Event) + Send>) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    (seen, Box::new(move |e| sink.lock().unwrap().push(e)))
}

/// A state file as an earlier run writes it.
fn earlier_run(state_root: &Path, mesh: &str, pid: u32) {
    let dir = state_root.join(mesh);
    std::fs::create_dir_all(&dir).unwrap();
    MeshState {
        mesh: mesh.into(),
        pid,
        capture: "explicit".into(),
        config_dir: "config".into(),
        xds_addr: "127.0.0.1:1".into(),
        debug_addr: "127.0.0.1:1".into(),
        ready_ms: None,
        scrape_config: None,
        gateway: None,
        egress_gateway: None,
        network: None,
        workloads: vec![],
    }
    .save(&dir)
    .unwrap();
}

#[test]
fn a_sidecar_that_exits_fails_readiness_and_stop_removes_the_state() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state_root = dir.path().join("state");
    // An earlier run that died: its (reaped) pid is not alive, so it is cleaned up.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    earlier_run(&state_root, "lib-mesh", dead.id());

    let (seen, on_event) = recorder();
    let manifest = mesh_in(dir.path(), "lib-mesh");
    let options = options(state_root.clone(), "/usr/bin/true", &runtime);
    let mut mesh = Mesh::start(manifest, options, on_event).expect("started");

    let state_file = MeshState::path(&state_root.join("lib-mesh"));
    let recorded = MeshState::load(&state_root.join("lib-mesh")).unwrap();
    assert_eq!(recorded.pid, std::process::id());
    assert_eq!(recorded.capture, "explicit");
    assert_eq!(recorded.workloads.len(), 1);
    {
        let seen = seen.lock().unwrap();
        assert!(
            matches!(&seen[0], Event::CleaningUpEarlierRun { mesh } if mesh == "lib-mesh"),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|e| matches!(e,
                Event::ControlPlaneUp { mesh, capture: CaptureMode::Explicit, xds_addr, .. }
                    if mesh == "lib-mesh" && xds_addr.ip().is_loopback())),
            "{seen:?}"
        );
    }

    match mesh.wait_ready() {
        Err(UpError::ExitedDuringStartUp { name, status }) => {
            assert_eq!(name, format!("{} proxy", recorded.workloads[0].name));
            assert!(status.success());
        }
        other => panic!("expected the sidecar's exit, got {other:?}"),
    }
    mesh.stop().expect("stopped");
    assert!(!state_file.exists(), "the state file is removed");
}

#[test]
fn a_mesh_whose_earlier_run_still_runs_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state_root = dir.path().join("state");
    // PID 1 is always alive and is not this process.
    earlier_run(&state_root, "busy-mesh", 1);
    let (seen, on_event) = recorder();
    let manifest = mesh_in(dir.path(), "busy-mesh");
    let options = options(state_root.clone(), "/usr/bin/true", &runtime);
    let failed = Mesh::start(manifest, options, on_event).expect_err("refused");
    assert!(
        matches!(&failed.error, UpError::AlreadyRunning { mesh, pid: 1 } if mesh == "busy-mesh"),
        "{:?}",
        failed.error
    );
    assert_eq!(
        failed.error.to_string(),
        "mesh \"busy-mesh\" is already running (bowline up, pid 1); stop it first"
    );
    failed.partial.stop().expect("nothing to stop");
    assert!(seen.lock().unwrap().is_empty());
    assert!(
        MeshState::path(&state_root.join("busy-mesh")).exists(),
        "the running mesh's state is left alone"
    );
}
