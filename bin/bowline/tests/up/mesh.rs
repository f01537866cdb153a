//! A `bowline up` mesh for tests: examples/bookinfo copied to a temporary directory (so
//! edits stay there), named after the test, started and stopped around it.

#![allow(dead_code)]

use bowline_testkit::{bowline_proxy_binary, get, Proc};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const T: Duration = Duration::from_secs(10);

/// Transparent meshes take the lowest free bridge number, so a stopped mesh's bridge and
/// veth names are reused at once by the next test's mesh. Every mesh holds this shared; the
/// check that a stopped mesh left no link behind takes it exclusively.
pub static NETWORK: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub struct UpMesh {
    /// Held while the mesh runs (see [`NETWORK`]).
    pub network: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
    pub proc: Proc,
    pub name: String,
    pub dir: tempfile::TempDir,
    pub state_root: tempfile::TempDir,
    pub entry: SocketAddr,
    /// The gateway's 443 server.
    pub https_entry: SocketAddr,
    pub ready_ms: u64,
}

impl UpMesh {
    /// Copies examples/bookinfo, names the mesh after the test, runs `bowline up` on it and
    /// waits for its readiness line.
    pub async fn start(capture: &str) -> UpMesh {
        UpMesh::start_with(capture, &[], "warn", &|m| m.to_string()).await
    }

    /// [`start`](Self::start) with more `bowline up` flags, another RUST_LOG and an edit of
    /// the manifest.
    pub async fn start_with(
        capture: &str,
        extra: &[&str],
        log: &str,
        edit: &dyn Fn(&str) -> String,
    ) -> UpMesh {
        remember_panics();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bookinfo");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root, dir.path());
        // Unique per test: tests of this binary run in parallel, and namespaces are named
        // after the mesh.
        static MESHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MESHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("bookinfo-{capture}-{}-{n}", std::process::id());
        let manifest = dir.path().join("bowline.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(
            &manifest,
            edit(&text).replace("name: bookinfo", &format!("name: {name}")),
        )
        .unwrap();
        let state_root = tempfile::tempdir().unwrap();
        let network = NETWORK.read().await;
        // Both held until both are known: a released port can be handed out again.
        let held: Vec<std::net::TcpListener> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let (port, https_port) = (
            held[0].local_addr().unwrap().port(),
            held[1].local_addr().unwrap().port(),
        );
        drop(held);

        let mut command = Command::new(env!("CARGO_BIN_EXE_bowline"));
        command
            .arg("up")
            .arg(dir.path())
            .args(["--capture", capture])
            .arg("--gateway-port")
            .arg(format!("80={port}"))
            .arg("--gateway-port")
            .arg(format!("443={https_port}"))
            .arg("--proxy-bin")
            .arg(bowline_proxy_binary())
            // bowline up gives up (saying what is not ready) before the test does.
            .args(["--ready-timeout", "45"])
            .args(extra)
            .env("BOWLINE_STATE_DIR", state_root.path())
            .env("RUST_LOG", log);
        let proc = Proc::spawn(&format!("up-{capture}"), command).unwrap();
        let ready = proc
            .wait_for_line("bowline up: mesh ready in ", Duration::from_secs(90))
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", proc.logs()));
        let ready_ms: u64 = ready
            .trim_start_matches("bowline up: mesh ready in ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let open = proc
            .wait_for_line("bowline up: open http://", T)
            .await
            .unwrap();
        assert_eq!(
            open,
            format!("bowline up: open http://127.0.0.1:{port}/productpage")
        );
        UpMesh {
            network: Some(network),
            proc,
            name,
            dir,
            state_root,
            entry: SocketAddr::from(([127, 0, 0, 1], port)),
            https_entry: SocketAddr::from(([127, 0, 0, 1], https_port)),
            ready_ms,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_root.path().join(&self.name)
    }

    /// Replaces config/reviews.yaml (or another file) with a sample: a live edit.
    pub fn apply_sample(&self, sample: &str, as_file: &str) {
        let text = std::fs::read_to_string(self.dir.path().join("samples").join(sample)).unwrap();
        self.write_config(as_file, &text);
    }

    /// Replaces config/`file` in one step, as editors save: written beside the config
    /// directory, then renamed in (a truncate-then-write could be read half done).
    pub fn write_config(&self, file: &str, text: &str) {
        let tmp = self.dir.path().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("config").join(file)).unwrap();
    }

    /// GET /productpage through the gateway, optionally as `end-user`.
    pub async fn page(&self, user: Option<&str>) -> anyhow::Result<Page> {
        let headers: Vec<(&str, &str)> = user.map(|u| ("end-user", u)).into_iter().collect();
        let response = get(self.entry, "/productpage", &headers, T).await?;
        anyhow::ensure!(
            response.status == 200,
            "status {}: {}",
            response.status,
            response.text()
        );
        Page::read(&response.json())
    }

    /// The control plane's `/debug/syncz`.
    pub async fn syncz(&self) -> anyhow::Result<Value> {
        let state: Value = serde_json::from_str(&std::fs::read_to_string(
            self.state_dir().join("state.json"),
        )?)?;
        let debug: SocketAddr = state["debug_addr"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no debug_addr in the state"))?
            .parse()?;
        let response = get(debug, "/debug/syncz", &[], T).await?;
        anyhow::ensure!(response.status == 200, "syncz: {}", response.status);
        Ok(response.json())
    }

    /// Waits (bounded) until the control plane has a generation newer than `after` and every
    /// proxy has applied it; returns that generation.
    pub async fn wait_synced_after(&self, after: u64) -> anyhow::Result<u64> {
        bowline_testkit::wait_until(
            Duration::from_secs(20),
            Duration::from_millis(50),
            || async {
                let syncz = self.syncz().await?;
                let generation = syncz["generation"].as_u64().unwrap_or(0);
                anyhow::ensure!(generation > after, "still at generation {generation}");
                let proxies = syncz["proxies"].as_array().cloned().unwrap_or_default();
                let behind: Vec<&Value> = proxies
                    .iter()
                    .filter(|p| p["applied_generation"].as_u64() != Some(generation))
                    .collect();
                anyhow::ensure!(behind.is_empty(), "not at {generation}: {behind:?}");
                Ok(generation)
            },
        )
        .await
    }

    pub fn status(&self) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_bowline"))
            .args(["status", "--mesh", &self.name])
            .env("BOWLINE_STATE_DIR", self.state_root.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for UpMesh {
    /// A failing test still stops its mesh (SIGTERM: `bowline up` cleans up after itself),
    /// then repeats why it failed: the mesh's shutdown logs and the backtrace would otherwise
    /// bury the panic message in the middle of a long output.
    fn drop(&mut self) {
        let _ = self.proc.terminate(Duration::from_secs(20));
        if std::thread::panicking() {
            let reason = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
            println!("test failed (repeated after the mesh stopped): {reason}");
        }
    }
}

/// The newest panic's location and message, kept by [`remember_panics`] for `Drop`.
static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Keeps each panic's location and message in [`LAST_PANIC`] (the default hook still prints).
fn remember_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut last) = LAST_PANIC.lock() {
                let message = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let at = info.location().map(|l| l.to_string()).unwrap_or_default();
                *last = format!("{at}: {message}");
            }
            previous(info);
        }));
    });
}

/// What one productpage answer says about the path the request took.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub details: String,
    pub reviews: String,
    /// The ratings version reviews called, if it called ratings.
    pub ratings: Option<String>,
    /// `end-user` as reviews received it (productpage must forward it).
    pub reviews_user: Option<String>,
}

impl Page {
    pub fn read(body: &Value) -> anyhow::Result<Page> {
        anyhow::ensure!(body["service"] == "productpage", "not productpage: {body}");
        let call = |v: &Value, name: &str| -> anyhow::Result<Value> {
            let c = v["calls"]
                .as_array()
                .and_then(|calls| calls.iter().find(|c| c["name"] == name))
                .ok_or_else(|| anyhow::anyhow!("no call to {name} in {v}"))?;
            anyhow::ensure!(c["status"] == 200, "call to {name} failed: {c}");
            Ok(c["body"].clone())
        };
        let details = call(body, "details")?;
        let reviews = call(body, "reviews")?;
        let version = |v: &Value| v["version"].as_str().unwrap_or_default().to_string();
        let ratings = match reviews["calls"].is_array() {
            true => Some(version(&call(&reviews, "ratings")?)),
            false => None,
        };
        Ok(Page {
            details: version(&details),
            reviews: version(&reviews),
            ratings,
            reviews_user: reviews["headers"]["end-user"].as_str().map(str::to_string),
        })
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
