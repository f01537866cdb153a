//! Transparent capture rules, written the way istio-iptables writes them (nat table,
//! REDIRECT): the application's outbound TCP goes to the sidecar's outbound port, inbound
//! TCP to its inbound port, and the proxy's own traffic (by its uid and gid) is left alone
//! so it can reach the real destination without looping back into itself.
//!
//! The rules are built as `iptables-restore` input by a pure function and applied in the
//! calling process's network namespace (`ip netns exec NS bowline iptables …`).

use std::io::Write;
use std::process::{Command, Stdio};

/// Istio's proxy uid and gid: `-m owner --uid-owner 1337` is how the rules tell the proxy's
/// sockets from the application's.
pub const PROXY_UID: u32 = 1337;

/// What to capture and where to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRules {
    pub proxy_uid: u32,
    pub proxy_gid: u32,
    /// Where the application's outbound TCP goes (the sidecar's `virtualOutbound`).
    pub outbound_port: u16,
    /// Where inbound TCP goes (`virtualInbound`).
    pub inbound_port: u16,
    /// Inbound destination ports not captured (the proxy's admin port, so readiness can be
    /// checked from outside).
    pub exclude_inbound_ports: Vec<u16>,
}

impl Default for CaptureRules {
    fn default() -> Self {
        CaptureRules {
            proxy_uid: PROXY_UID,
            proxy_gid: PROXY_UID,
            outbound_port: 15001,
            inbound_port: 15006,
            exclude_inbound_ports: vec![15000],
        }
    }
}

/// Our chains, named after Istio's with our prefix.
const CHAINS: [&str; 4] = [
    "BOWLINE_INBOUND",
    "BOWLINE_IN_REDIRECT",
    "BOWLINE_OUTPUT",
    "BOWLINE_REDIRECT",
];

impl CaptureRules {
    /// `iptables-restore --noflush` input. Line for line Istio's REDIRECT rule set:
    /// inbound: every TCP port but the excluded ones → inbound port; outbound: traffic the
    /// proxy sends (uid/gid) and traffic to 127.0.0.1 passes, the application's own traffic
    /// to another pod address over `lo` goes inbound, everything else → outbound port.
    pub fn restore_script(&self) -> String {
        let (uid, gid) = (self.proxy_uid, self.proxy_gid);
        let mut lines = vec!["*nat".to_string()];
        lines.extend(CHAINS.iter().map(|c| format!(":{c} - [0:0]")));
        lines.push("-A PREROUTING -p tcp -j BOWLINE_INBOUND".into());
        lines.push("-A OUTPUT -p tcp -j BOWLINE_OUTPUT".into());
        for port in &self.exclude_inbound_ports {
            lines.push(format!(
                "-A BOWLINE_INBOUND -p tcp --dport {port} -j RETURN"
            ));
        }
        lines.push("-A BOWLINE_INBOUND -p tcp -j BOWLINE_IN_REDIRECT".into());
        lines.push(format!(
            "-A BOWLINE_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        ));
        lines.push(format!(
            "-A BOWLINE_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        ));
        lines.extend([
            "-A BOWLINE_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN".to_string(),
            format!("-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner {uid} -j BOWLINE_IN_REDIRECT"),
            format!("-A BOWLINE_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN"),
            format!("-A BOWLINE_OUTPUT -m owner --uid-owner {uid} -j RETURN"),
            format!("-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner {gid} -j BOWLINE_IN_REDIRECT"),
            format!("-A BOWLINE_OUTPUT -o lo -m owner ! --gid-owner {gid} -j RETURN"),
            format!("-A BOWLINE_OUTPUT -m owner --gid-owner {gid} -j RETURN"),
            "-A BOWLINE_OUTPUT -d 127.0.0.1/32 -j RETURN".to_string(),
            "-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT".to_string(),
            "COMMIT".to_string(),
        ]);
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }

    /// Installs the rules in this network namespace (needs CAP_NET_ADMIN). Rules of an
    /// earlier install are removed first, so applying twice leaves one set.
    pub fn apply(&self) -> std::io::Result<()> {
        remove()?;
        let mut child = Command::new("iptables-restore")
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("iptables-restore: {e}")))?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(self.restore_script().as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "iptables-restore failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// Removes our jump rules and chains from this network namespace; absent ones are fine.
pub fn remove() -> std::io::Result<()> {
    let run = |args: &[&str]| -> std::io::Result<bool> {
        Ok(Command::new("iptables")
            .args(["-w", "5", "-t", "nat"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| std::io::Error::new(e.kind(), format!("iptables: {e}")))?
            .success())
    };
    // A jump may have been added more than once by hand: delete until none is left (bounded).
    for (chain, target) in [
        ("PREROUTING", "BOWLINE_INBOUND"),
        ("OUTPUT", "BOWLINE_OUTPUT"),
    ] {
        for _ in 0..16 {
            if !run(&["-D", chain, "-p", "tcp", "-j", target])? {
                break;
            }
        }
    }
    for chain in CHAINS {
        run(&["-F", chain])?;
    }
    for chain in CHAINS {
        run(&["-X", chain])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_rule_set_with_our_ports() {
        let script = CaptureRules {
            outbound_port: 16001,
            inbound_port: 16006,
            exclude_inbound_ports: vec![15000, 22],
            ..CaptureRules::default()
        }
        .restore_script();
        for want in [
            "-A PREROUTING -p tcp -j BOWLINE_INBOUND\n",
            "-A BOWLINE_INBOUND -p tcp --dport 15000 -j RETURN\n-A BOWLINE_INBOUND -p tcp --dport 22 -j RETURN\n-A BOWLINE_INBOUND -p tcp -j BOWLINE_IN_REDIRECT\n",
            "-A BOWLINE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n",
            "-A BOWLINE_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n",
            "-A BOWLINE_OUTPUT -m owner --uid-owner 1337 -j RETURN\n",
            "-A BOWLINE_OUTPUT -d 127.0.0.1/32 -j RETURN\n-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT\nCOMMIT\n",
        ] {
            assert!(script.contains(want), "missing {want:?} in\n{script}");
        }
        // The proxy's exemption must come before the catch-all redirect, or it loops.
        let exempt = script.find("--uid-owner 1337 -j RETURN").unwrap();
        let redirect = script
            .find("-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT")
            .unwrap();
        assert!(exempt < redirect);
    }
}
