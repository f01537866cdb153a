//! `bowline iptables` in a real network namespace: installs Istio's REDIRECT rule set,
//! stays one set when applied twice, and `--cleanup` removes every rule and chain.

use std::process::{Command, Output};

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("bltest-{tag}-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .output()
            .unwrap()
    }

    fn nat_rules(&self) -> String {
        let out = self.exec("iptables-save", &["-t", "nat"]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn installs_istio_rules_once_and_cleans_them_up() {
    let ns = Netns::new("ipt");
    let bowline = env!("CARGO_BIN_EXE_bowline");
    for _ in 0..2 {
        let out = ns.exec(
            bowline,
            &["iptables", "--exclude-inbound-ports", "15000,22"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = ns.nat_rules();
    for want in [
        "-A PREROUTING -p tcp -j BOWLINE_INBOUND",
        "-A OUTPUT -p tcp -j BOWLINE_OUTPUT",
        "-A BOWLINE_INBOUND -p tcp -m tcp --dport 22 -j RETURN",
        "-A BOWLINE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-A BOWLINE_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A BOWLINE_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
    ] {
        assert!(rules.contains(want), "missing {want:?}:\n{rules}");
    }
    assert_eq!(
        rules.matches("-j BOWLINE_INBOUND").count(),
        1,
        "applied twice, one set:\n{rules}"
    );

    let out = ns.exec(bowline, &["iptables", "--cleanup"]);
    assert!(out.status.success());
    let rules = ns.nat_rules();
    assert!(!rules.contains("BOWLINE"), "left after cleanup:\n{rules}");
}

#[test]
fn dry_run_prints_the_restore_input() {
    let out = Command::new(env!("CARGO_BIN_EXE_bowline"))
        .args(["iptables", "--dry-run", "--inbound-port", "16006"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("*nat\n") && text.ends_with("COMMIT\n"),
        "{text}"
    );
    assert!(text.contains("REDIRECT --to-ports 16006"), "{text}");
}
