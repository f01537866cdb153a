//! The control plane under test: `bowline control` as a child process on free loopback
//! ports, its readiness, and its cost (CPU seconds and peak RSS from /proc).
//!
//! Only the binary's CLI, its printed addresses and its HTTP API are used, so the harness
//! measures whatever control plane the binary contains. The child is killed by PID when the
//! [`ControlPlane`] is dropped, including on an error or Ctrl-C unwinding the scenario.

use anyhow::{bail, Context};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A running `bowline control`.
pub struct ControlPlane {
    child: tokio::process::Child,
    pub pid: u32,
    pub xds_addr: SocketAddr,
    pub debug_addr: SocketAddr,
    /// Where its stderr goes (shown when it fails).
    pub log: PathBuf,
}

/// Extra flags passed through to `bowline control` (unset: its defaults).
#[derive(Debug, Clone, Default)]
pub struct ControlFlags {
    pub push_debounce_ms: Option<u64>,
    pub file_debounce_ms: Option<u64>,
}

/// How long start-up took, from spawn.
#[derive(Debug, Clone, Copy)]
pub struct StartTimes {
    /// Both ports bound (the printed addresses).
    pub listening: Duration,
    /// `/ready` answered 200.
    pub ready: Duration,
    /// `/apis/config/status` shows every generated resource served.
    pub config_loaded: Duration,
}

/// CPU seconds (user + system) and peak RSS of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCost {
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
}

impl ControlPlane {
    /// Spawns `bowline control` on `config` with its state in `state_dir`, and waits (at
    /// most `timeout`) until it is ready and serves `expected_resources` with none refused.
    pub async fn start(
        bowline: &Path,
        source: &crate::mesh::Sink,
        state_dir: &Path,
        flags: &ControlFlags,
        expected_resources: usize,
        timeout: Duration,
    ) -> anyhow::Result<(ControlPlane, StartTimes)> {
        anyhow::ensure!(
            bowline.is_file(),
            "no bowline binary at {} (build it: cargo build --release -p bowline, or pass --bowline)",
            bowline.display()
        );
        let log = state_dir.join("control.log");
        let stderr = std::fs::File::create(&log).context("create the control plane's log")?;
        let mut cmd = tokio::process::Command::new(bowline);
        cmd.arg("control");
        match source {
            crate::mesh::Sink::Files { config_dir, .. } => {
                cmd.arg("--config")
                    .arg(config_dir)
                    .arg("--state-dir")
                    .arg(state_dir.join("store"));
            }
            crate::mesh::Sink::Api { kubeconfig, .. } => {
                cmd.args(["--kubernetes", "--kubeconfig"])
                    .arg(kubeconfig)
                    .env("POD_NAMESPACE", "bowline-system")
                    .env("POD_NAME", "xds-load");
            }
        }
        cmd.args(["--xds-addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        if let Some(ms) = flags.push_debounce_ms {
            cmd.args(["--push-debounce-ms", &ms.to_string()]);
        }
        if let Some(ms) = flags.file_debounce_ms {
            cmd.args(["--file-debounce-ms", &ms.to_string()]);
        }
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bowline.display()))?;
        let pid = child.id().context("the control plane exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut cp = ControlPlane {
            child,
            pid,
            xds_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            debug_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = spawned + timeout;
        let (xds, debug) = tokio::time::timeout_at(deadline.into(), read_addrs(stdout))
            .await
            .map_err(|_| cp.failed("did not print its addresses in time"))?
            .map_err(|e| cp.failed(&format!("{e:#}")))?;
        cp.xds_addr = xds;
        cp.debug_addr = debug;
        let listening = spawned.elapsed();
        cp.poll(deadline, "/ready", |_| true).await?;
        let ready = spawned.elapsed();
        let status = cp
            .poll(deadline, "/apis/config/status", |s| {
                s["resources"].as_u64().unwrap_or(0) as usize >= expected_resources
                    || has_refusals(s)
            })
            .await?;
        if has_refusals(&status) {
            bail!(
                "the control plane refused generated config: refused {} files {}",
                status["refused"],
                status["files"]
            );
        }
        let times = StartTimes {
            listening,
            ready,
            config_loaded: spawned.elapsed(),
        };
        Ok((cp, times))
    }

    /// GETs `path` on the debug port until `done` holds for its JSON (bounded).
    async fn poll(
        &mut self,
        deadline: Instant,
        path: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failed(&format!("exited with {status}")));
            }
            let last: String = match get_json(self.debug_addr, path).await {
                Ok(v) if done(&v) => return Ok(v),
                Ok(v) => v.to_string().chars().take(400).collect(),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                return Err(self.failed(&format!("GET {path} not done in time; last: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/apis/config/status` now.
    pub async fn status(&self) -> anyhow::Result<Value> {
        get_json(self.debug_addr, "/apis/config/status").await
    }

    /// `/debug/syncz` now: the generation and every connected proxy's sync state.
    pub async fn syncz(&self) -> anyhow::Result<Value> {
        get_json(self.debug_addr, "/debug/syncz").await
    }

    pub fn cost(&self) -> ProcessCost {
        process_cost(self.pid).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn failed(&self, what: &str) -> anyhow::Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::anyhow!(
            "bowline control (pid {}): {what}\n--- its stderr ({}) ends:\n{}",
            self.pid,
            self.log.display(),
            tail.join("\n")
        )
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's PID, which we have not reaped yet.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

fn has_refusals(status: &Value) -> bool {
    let nonempty = |v: &Value| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    };
    nonempty(&status["refused"]) || nonempty(&status["files"])
}

/// Reads `xds listening on ADDR` and `debug listening on ADDR` from the child's stdout, then
/// keeps draining it so the child never blocks on a full pipe.
async fn read_addrs(
    stdout: tokio::process::ChildStdout,
) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let mut lines = BufReader::new(stdout).lines();
    let (mut xds, mut debug) = (None, None);
    while xds.is_none() || debug.is_none() {
        let Some(line) = lines.next_line().await? else {
            bail!("stdout closed before both addresses were printed");
        };
        if let Some(a) = line.strip_prefix("xds listening on ") {
            xds = Some(a.trim().parse()?);
        } else if let Some(a) = line.strip_prefix("debug listening on ") {
            debug = Some(a.trim().parse()?);
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((
        xds.unwrap_or(([0, 0, 0, 0], 0).into()),
        debug.unwrap_or(([0, 0, 0, 0], 0).into()),
    ))
}

/// A minimal HTTP/1.1 GET returning the body as JSON (the API answers small JSON bodies and
/// closes the connection when asked).
pub async fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<Value> {
    let io = async {
        let mut s = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .context("GET timed out")??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP head")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    serde_json::from_str(body).with_context(|| format!("GET {path}: not JSON"))
}

/// utime + stime (field 14, 15 of /proc/PID/stat, clock ticks) and VmHWM (kB).
pub fn process_cost(pid: u32) -> Option<ProcessCost> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields resume after its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(ProcessCost {
        cpu_s: ticks as f64 / hz,
        peak_rss_kb,
    })
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit (the child inherits it), so both
/// sides can hold thousands of connections. Returns the new soft limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Ok(lim.rlim_cur as u64)
}
