//! Supervised processes: started in the host or in a replica's network namespace (as the
//! proxy's uid for sidecars, so capture rules let their traffic through), their output
//! streamed with a `[name]` prefix, stopped by PID with SIGTERM then SIGKILL.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Where a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Host,
    /// In `/run/netns/<ns>` through `ip netns exec` (so `/etc/netns/<ns>/hosts` is its
    /// /etc/hosts), as root.
    Netns(String),
    /// In the namespace as `uid`/`gid` (setns then setuid before exec; `ip netns exec` would
    /// need root after the switch).
    NetnsAs {
        ns: String,
        uid: u32,
        gid: u32,
    },
}

struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    exited: Option<ExitStatus>,
}

/// The processes of one mesh, in start order.
#[derive(Default)]
pub struct Supervisor {
    procs: Vec<Proc>,
}

impl Supervisor {
    /// Starts `program` with `args` and `env` (added to ours). Its stdout and stderr lines
    /// are printed as `[name] line`; stdout lines are also kept for [`Self::wait_for_line`].
    /// Its stdin is `stdin` when given (a file opened here, as root: a sidecar running as
    /// the proxy uid reads its bootstrap from `/dev/stdin` even when the state directory is
    /// not open to that uid), else empty.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &str,
        args: &[String],
        env: &[(String, String)],
        place: &Place,
        stdin: Option<std::fs::File>,
    ) -> std::io::Result<u32> {
        let mut cmd = match place {
            Place::Host | Place::NetnsAs { .. } => Command::new(program),
            Place::Netns(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
        };
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If `bowline up` dies without stopping us (SIGKILL, a crash), the kernel sends
        // SIGTERM: no workload outlives its mesh. Set last: a credential change clears it.
        let set_parent_death_signal = || {
            // SAFETY: prctl with an integer argument; async-signal-safe.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        if let Place::NetnsAs { ns, uid, gid } = place {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).map_err(|e| {
                std::io::Error::new(e.kind(), format!("network namespace {ns}: {e}"))
            })?;
            let (uid, gid) = (*uid, *gid);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    use std::os::fd::AsRawFd;
                    if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0
                        || libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    set_parent_death_signal()
                });
            }
        } else {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe { cmd.pre_exec(set_parent_death_signal) };
        }
        let mut child = cmd.spawn().map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start {name} ({program}): {e}"))
        })?;
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let prefix = format!("[{name}]");
        let p = prefix.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{p} {line}");
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                println!("{prefix} {line}");
            }
        });
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            lines: rx,
            exited: None,
        });
        Ok(pid)
    }

    /// Waits (at most `timeout`) for a stdout line of `name` that `ready` accepts; fails
    /// early if the process exits.
    pub fn wait_for_line(
        &mut self,
        name: &str,
        ready: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> std::io::Result<String> {
        let deadline = Instant::now() + timeout;
        let proc = self
            .procs
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| std::io::Error::other(format!("no process named {name}")))?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match proc
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) if ready(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) | Err(RecvTimeoutError::Timeout)
                    if proc.child.try_wait()?.is_some() =>
                {
                    return Err(std::io::Error::other(format!(
                        "{name} exited before it was ready"
                    )))
                }
                Err(_) if left.is_zero() => {
                    return Err(std::io::Error::other(format!(
                        "{name} not ready after {timeout:?}"
                    )))
                }
                Err(_) => {}
            }
        }
    }

    /// (name, pid) of every process started.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .map(|p| (p.name.clone(), p.child.id()))
            .collect()
    }

    /// Processes that exited since the last call, with their status.
    pub fn newly_exited(&mut self) -> Vec<(String, ExitStatus)> {
        let mut out = Vec::new();
        for p in &mut self.procs {
            if p.exited.is_none() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    p.exited = Some(status);
                    out.push((p.name.clone(), status));
                }
            }
        }
        out
    }

    /// SIGTERM to every process (newest first, so gateways and sidecars drain before the
    /// applications behind them go), up to `grace` for all to exit, then SIGKILL to the rest.
    /// Every child is reaped. Returns the names of those that had to be killed.
    pub fn stop_all(&mut self, grace: Duration) -> Vec<String> {
        for p in self.procs.iter_mut().rev() {
            if p.exited.is_none() && matches!(p.child.try_wait(), Ok(None)) {
                // SAFETY: kill(2) on our own child's PID, which is not reaped yet.
                unsafe { libc::kill(p.child.id() as libc::pid_t, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + grace;
        let mut killed = Vec::new();
        for p in self.procs.iter_mut().rev() {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        killed.push(p.name.clone());
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.procs.clear();
        killed
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(2));
    }
}

/// True while `pid` names a live (or unreaped) process.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}
