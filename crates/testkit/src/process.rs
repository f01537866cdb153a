//! [`Proc`]: a child process guard that keeps its output and always stops the child.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Grace between SIGTERM and SIGKILL when a [`Proc`] is dropped.
pub const DROP_GRACE: Duration = Duration::from_secs(5);

/// A spawned child process. Its stdout and stderr are read line by line into a buffer (see
/// [`Proc::logs`]) and echoed to stderr as `[name] line`, so a failing test shows them.
/// Dropping it stops the child by PID: SIGTERM, then SIGKILL after [`DROP_GRACE`].
pub struct Proc {
    name: String,
    child: Child,
    output: Arc<Output>,
    exit: Option<ExitStatus>,
}

struct Output {
    state: Mutex<OutputState>,
    /// Bumped on every new line and closed stream; waiters watch it.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct OutputState {
    lines: Vec<String>,
    open_streams: usize,
}

impl Proc {
    /// Spawns `command` with piped stdout and stderr (stdin is null). `name` prefixes its log
    /// lines.
    pub fn spawn(name: &str, mut command: Command) -> Result<Proc> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {name}: {command:?}"))?;
        let output = Arc::new(Output {
            state: Mutex::new(OutputState {
                lines: Vec::new(),
                open_streams: 2,
            }),
            changed: watch::channel(0).0,
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_reader(name.to_owned(), stdout, output.clone());
        spawn_reader(name.to_owned(), stderr, output.clone());
        Ok(Proc {
            name: name.to_owned(),
            child,
            output,
            exit: None,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child printed so far, stdout and stderr interleaved as read, one line
    /// per line.
    pub fn logs(&self) -> String {
        self.output.state.lock().unwrap().lines.join("\n")
    }

    /// Waits until a line (on stdout or stderr, printed at any time since spawn) contains
    /// `pattern`, and returns that line. Fails after `timeout`, or as soon as the child has
    /// closed both streams (it exited) without printing it; the error carries the logs.
    pub async fn wait_for_line(&self, pattern: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.output.changed.subscribe();
        loop {
            changes.borrow_and_update();
            {
                let state = self.output.state.lock().unwrap();
                if let Some(line) = state.lines.iter().find(|l| l.contains(pattern)) {
                    return Ok(line.clone());
                }
                if state.open_streams == 0 {
                    bail!(
                        "{} closed its output without printing {pattern:?}; logs:\n{}",
                        self.name,
                        state.lines.join("\n")
                    );
                }
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                bail!(
                    "{} did not print {pattern:?} within {timeout:?}; logs:\n{}",
                    self.name,
                    self.logs()
                );
            }
        }
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().context("try_wait")?;
        }
        Ok(self.exit)
    }

    /// Sends SIGTERM and waits up to `grace` for the child to exit, then SIGKILLs it.
    /// Returns how it exited (a SIGKILLed child reports no code). Blocks the calling thread for
    /// at most `grace` plus the moment SIGKILL takes.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit_status()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "[{}] still running {grace:?} after SIGTERM; sending SIGKILL",
            self.name
        );
        self.kill()
    }

    /// Kills the process at once (SIGKILL, as a crash or an OOM kill would) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        self.child.kill().context("SIGKILL")?;
        let status = self.child.wait().context("wait")?;
        self.exit = Some(status);
        Ok(status)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Err(e) = self.terminate(DROP_GRACE) {
            eprintln!("[{}] could not stop pid {}: {e:#}", self.name, self.pid());
        }
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child,
    // so it cannot have been recycled for another process.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn spawn_reader(name: String, stream: impl Read + Send + 'static, output: Arc<Output>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    eprintln!("[{name}] {line}");
                    output.state.lock().unwrap().lines.push(line);
                    output.changed.send_modify(|n| *n += 1);
                }
            }
        }
        output.state.lock().unwrap().open_streams -= 1;
        output.changed.send_modify(|n| *n += 1);
    });
}
