//! The capture rules applied for real: each script goes into a fresh network namespace
//! through `iptables-restore`, and what `iptables-save` reads back must be the script's
//! rules, chain by chain, in order. Needs root (`ip netns`, nat table); skipped otherwise.
//! No traffic is sent and nothing waits.

use bowline_mesh::iptables::{self, CaptureRules, Selection, ISTIO_EXCLUDED_INBOUND_PORTS};
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A network namespace deleted on drop, whether the test passed or panicked.
struct Netns(String);

impl Netns {
    fn create(name: String) -> Netns {
        // A namespace of that name left by a killed earlier run of this pid would make
        // `add` fail: remove it first (absent is fine).
        let _ = Command::new("ip")
            .args(["netns", "delete", &name])
            .stderr(Stdio::null())
            .status();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            text(&out.stderr)
        );
        Netns(name)
    }

    /// Runs `program args…` inside the namespace, `stdin` fed to it.
    fn exec(&self, program: &str, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ip netns exec");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn restore(&self, script: &str, noflush: bool) {
        let args: &[&str] = if noflush { &["--noflush"] } else { &[] };
        let out = self.exec("iptables-restore", args, script);
        assert!(
            out.status.success(),
            "iptables-restore in {}: {}\n{script}",
            self.0,
            text(&out.stderr)
        );
    }

    /// The nat table as `iptables-save` prints it.
    fn saved(&self) -> String {
        let out = self.exec("iptables-save", &["-t", "nat"], "");
        assert!(out.status.success(), "iptables-save: {}", text(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `f` on a thread that has joined the namespace (`setns` moves only the calling
    /// thread; the programs it starts inherit the namespace).
    fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("open the namespace");
                let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
                // SAFETY: fd is an open namespace file; only this thread changes namespace.
                let rc = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("namespace thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

const CHAINS: [&str; 6] = [
    "PREROUTING",
    "OUTPUT",
    "BOWLINE_INBOUND",
    "BOWLINE_IN_REDIRECT",
    "BOWLINE_OUTPUT",
    "BOWLINE_REDIRECT",
];

/// The rules appended to `chain`, with the `-m tcp` iptables-save adds to a `--dport` match
/// taken out (the script leaves it implicit).
fn rules_of(text: &str, chain: &str) -> Vec<String> {
    let prefix = format!("-A {chain} ");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.replace(" -p tcp -m tcp ", " -p tcp "))
        .collect()
}

fn declared(text: &str, chain: &str) -> bool {
    let decl = format!(":{chain} ");
    text.lines().any(|l| l.starts_with(&decl))
}

fn net(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

fn cases() -> Vec<(&'static str, CaptureRules)> {
    let default = CaptureRules::default;
    vec![
        ("defaults", default()),
        (
            "the CLI's default exclusions",
            CaptureRules {
                exclude_inbound_ports: iptables::parse_ports(
                    "exclude-inbound-ports",
                    ISTIO_EXCLUDED_INBOUND_PORTS,
                )
                .unwrap(),
                ..default()
            },
        ),
        (
            "inbound ports listed",
            CaptureRules {
                include_inbound_ports: Selection::Only(vec![8080, 9090]),
                ..default()
            },
        ),
        (
            "no inbound capture",
            CaptureRules {
                include_inbound_ports: Selection::none(),
                ..default()
            },
        ),
        (
            "outbound ranges listed, one of them loopback",
            CaptureRules {
                include_outbound_ip_ranges: Selection::Only(vec![
                    net("10.0.0.0/8"),
                    net("127.0.0.0/8"),
                ]),
                ..default()
            },
        ),
        (
            "no outbound capture",
            CaptureRules {
                include_outbound_ip_ranges: Selection::none(),
                ..default()
            },
        ),
        (
            "every flag",
            CaptureRules {
                proxy_uid: 1500,
                proxy_gid: 1600,
                outbound_port: 16001,
                inbound_port: 16006,
                include_inbound_ports: Selection::All,
                exclude_inbound_ports: vec![15000, 22],
                include_outbound_ip_ranges: Selection::Only(vec![net("10.1.2.3/8")]),
                exclude_outbound_ip_ranges: vec![net("10.96.0.0/12"), net("169.254.169.254/32")],
                include_outbound_ports: vec![443, 5432],
                exclude_outbound_ports: vec![53, 3306],
            },
        ),
    ]
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn scripts_install_as_written_and_apply_replaces_them() {
    if !is_root() {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    let ns = Netns::create(format!("bwl-ipt-{}", std::process::id()));

    for (name, rules) in cases() {
        // A clean nat table (restoring without --noflush replaces it), then the script the
        // way `apply` feeds it.
        ns.restore("*nat\nCOMMIT\n", false);
        let script = rules.restore_script();
        ns.restore(&script, true);
        let saved = ns.saved();
        for chain in CHAINS {
            assert_eq!(
                rules_of(&saved, chain),
                rules_of(&script, chain),
                "{name}: chain {chain}\nscript:\n{script}\nsaved:\n{saved}"
            );
        }
        for chain in &CHAINS[2..] {
            assert!(declared(&saved, chain), "{name}: {chain} missing:\n{saved}");
        }
    }

    // `apply` and `remove` themselves, from a thread inside the namespace: applying twice
    // (the second time with other flags) leaves the second set alone, and `remove` leaves
    // nothing of ours.
    ns.restore("*nat\nCOMMIT\n", false);
    let first = CaptureRules::default();
    let second = CaptureRules {
        include_outbound_ip_ranges: Selection::Only(vec![net("10.0.0.0/8")]),
        exclude_outbound_ports: vec![53],
        ..CaptureRules::default()
    };
    ns.within(|| first.apply()).expect("first apply");
    ns.within(|| second.apply()).expect("second apply");
    let saved = ns.saved();
    let script = second.restore_script();
    for chain in CHAINS {
        assert_eq!(
            rules_of(&saved, chain),
            rules_of(&script, chain),
            "after re-apply: chain {chain}\n{saved}"
        );
    }
    ns.within(iptables::remove).expect("remove");
    let saved = ns.saved();
    assert!(!saved.contains("BOWLINE"), "after remove:\n{saved}");
}
