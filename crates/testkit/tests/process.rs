//! `Proc`: readiness lines, early exit, and stopping by PID.

use bowline_testkit::Proc;
use std::process::Command;
use std::time::{Duration, Instant};

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn wait_for_line_returns_the_matching_line_from_either_stream() {
    let proc = Proc::spawn(
        "sh",
        sh("echo starting; echo 'listening on 1.2.3.4:5' >&2; exec sleep 60"),
    )
    .unwrap();
    let line = proc
        .wait_for_line("listening on", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(line, "listening on 1.2.3.4:5");
    // The two streams are read independently, so the stdout line may arrive later.
    proc.wait_for_line("starting", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        proc.logs().contains("listening on 1.2.3.4:5"),
        "{}",
        proc.logs()
    );
}

#[tokio::test]
async fn wait_for_line_fails_fast_when_the_process_exits_without_it() {
    let proc = Proc::spawn("sh", sh("echo oops; exit 3")).unwrap();
    let started = Instant::now();
    let err = proc
        .wait_for_line("never", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the full timeout"
    );
    assert!(format!("{err:#}").contains("oops"), "{err:#}");
}

#[tokio::test]
async fn wait_for_line_is_bounded() {
    let proc = Proc::spawn("sh", sh("exec sleep 60")).unwrap();
    let err = proc
        .wait_for_line("never", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("within 200ms"), "{err:#}");
}

#[test]
fn drop_stops_the_child() {
    let proc = Proc::spawn("sh", sh("exec sleep 60")).unwrap();
    let pid = proc.pid();
    assert!(alive(pid));
    drop(proc);
    assert!(!alive(pid), "pid {pid} still alive after drop");
}

#[tokio::test]
async fn terminate_reports_a_clean_exit() {
    let mut proc = Proc::spawn(
        "polite",
        sh("trap 'exit 0' TERM; echo armed; while :; do sleep 0.05; done"),
    )
    .unwrap();
    proc.wait_for_line("armed", Duration::from_secs(10))
        .await
        .unwrap();
    let status = proc.terminate(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn terminate_kills_what_ignores_sigterm_after_the_grace() {
    let mut proc = Proc::spawn(
        "stubborn",
        sh("trap '' TERM; echo armed; while :; do sleep 0.05; done"),
    )
    .unwrap();
    proc.wait_for_line("armed", Duration::from_secs(10))
        .await
        .unwrap();
    let started = Instant::now();
    let status = proc.terminate(Duration::from_millis(300)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(status.code(), None, "SIGKILLed: {status}");
}
