//! Transparent capture rules, written the way istio-iptables writes them (nat table,
//! REDIRECT): the application's outbound TCP goes to the sidecar's outbound port, inbound
//! TCP to its inbound port, and the proxy's own traffic (by its uid and gid) is left alone
//! so it can reach the real destination without looping back into itself.
//!
//! What is captured is selected as istio-iptables selects it (its `-b`/`-d`, `-i`/`-x`,
//! `-q`/`-o` flags; Istio's `traffic.sidecar.istio.io/*` annotations): inbound destination
//! ports, outbound destination IPv4 ranges and outbound destination ports, each with an
//! include and an exclude list. IPv4 only: no ip6tables rules are written, so an IPv6
//! range is refused rather than silently left uncaptured.
//!
//! The rules are built as `iptables-restore` input by a pure function and applied in the
//! calling process's network namespace (`ip netns exec NS bowline iptables …`).

use ipnet::{Ipv4Net, Ipv6Net};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// Istio's proxy uid and gid: `-m owner --uid-owner 1337` is how the rules tell the proxy's
/// sockets from the application's.
pub const PROXY_UID: u32 = 1337;

/// The inbound ports Istio's injection always excludes from capture (the proxy's admin,
/// outbound, inbound, status, health and Prometheus ports): `bowline iptables`' default for
/// `--exclude-inbound-ports`.
pub const ISTIO_EXCLUDED_INBOUND_PORTS: &str = "15000,15001,15006,15020,15021,15090";

/// An include list as istio-iptables reads one: `*` (everything), or only the listed items,
/// where an empty list selects nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<T> {
    All,
    Only(Vec<T>),
}

impl<T> Selection<T> {
    /// Nothing selected (the flag given an empty value).
    pub fn none() -> Self {
        Selection::Only(Vec::new())
    }

    fn is_none(&self) -> bool {
        matches!(self, Selection::Only(items) if items.is_empty())
    }
}

/// What to capture and where to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRules {
    pub proxy_uid: u32,
    pub proxy_gid: u32,
    /// Where the application's outbound TCP goes (the sidecar's `virtualOutbound`).
    pub outbound_port: u16,
    /// Where inbound TCP goes (`virtualInbound`).
    pub inbound_port: u16,
    /// Inbound destination ports captured (`--include-inbound-ports`): all, or only these
    /// (then `exclude_inbound_ports` is not consulted, as in istio-iptables); none leaves
    /// inbound traffic alone entirely.
    pub include_inbound_ports: Selection<u16>,
    /// Inbound destination ports not captured when all are (the proxy's admin port, so
    /// readiness can be checked from outside).
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound destinations captured (`--include-outbound-ip-ranges`): all, or only these
    /// ranges; none captures no outbound traffic by address (`include_outbound_ports`
    /// still does by port).
    pub include_outbound_ip_ranges: Selection<Ipv4Net>,
    /// Outbound destinations never captured by address; checked before the included
    /// ranges and ports.
    pub exclude_outbound_ip_ranges: Vec<Ipv4Net>,
    /// Outbound destination ports captured whatever the address (unless excluded by
    /// `exclude_outbound_ip_ranges` or `exclude_outbound_ports`).
    pub include_outbound_ports: Vec<u16>,
    /// Outbound destination ports never captured, checked first (before the proxy's own
    /// exemptions and the application-to-itself redirect).
    pub exclude_outbound_ports: Vec<u16>,
}

impl Default for CaptureRules {
    /// Everything captured but the proxy's admin port 15000 inbound (`bowline up`'s rules;
    /// the `bowline iptables` command excludes Istio's whole list by default).
    fn default() -> Self {
        CaptureRules {
            proxy_uid: PROXY_UID,
            proxy_gid: PROXY_UID,
            outbound_port: 15001,
            inbound_port: 15006,
            include_inbound_ports: Selection::All,
            exclude_inbound_ports: vec![15000],
            include_outbound_ip_ranges: Selection::All,
            exclude_outbound_ip_ranges: Vec::new(),
            include_outbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
        }
    }
}

/// A capture flag's value that does not parse: the flag, the offending item and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {item:?}: {reason}")]
pub struct FlagError {
    /// The flag's long name without the dashes, e.g. `exclude-outbound-ip-ranges`.
    pub flag: &'static str,
    pub item: String,
    pub reason: String,
}

impl FlagError {
    fn new(flag: &'static str, item: &str, reason: impl Into<String>) -> Self {
        FlagError {
            flag,
            item: item.to_string(),
            reason: reason.into(),
        }
    }
}

/// The comma-separated items of a flag value, blanks around each trimmed; an empty (or
/// blank) value has none. An empty item (`1,,2`, a trailing comma) is an error.
fn items<'a>(
    flag: &'static str,
    value: &'a str,
) -> impl Iterator<Item = Result<&'a str, FlagError>> {
    let value = value.trim();
    value
        .split(',')
        .filter(move |_| !value.is_empty())
        .map(move |item| match item.trim() {
            "" => Err(FlagError::new(flag, value, "empty item in the list")),
            item => Ok(item),
        })
}

const WILDCARD_ALONE: &str = "`*` (everything) must be the whole value, not a list item";

/// A comma-separated list of ports (`--exclude-inbound-ports`, `--include-outbound-ports`,
/// `--exclude-outbound-ports`); empty is an empty list.
pub fn parse_ports(flag: &'static str, value: &str) -> Result<Vec<u16>, FlagError> {
    items(flag, value)
        .map(|item| {
            let item = item?;
            match item.parse::<u16>() {
                Ok(port) if port != 0 => Ok(port),
                _ if item == "*" => Err(FlagError::new(flag, item, WILDCARD_ALONE)),
                _ => Err(FlagError::new(flag, item, "not a port number (1-65535)")),
            }
        })
        .collect()
}

/// `*` for all ports, else a list as [`parse_ports`] reads it (`--include-inbound-ports`;
/// empty selects no port).
pub fn parse_port_selection(flag: &'static str, value: &str) -> Result<Selection<u16>, FlagError> {
    if value.trim() == "*" {
        return Ok(Selection::All);
    }
    parse_ports(flag, value).map(Selection::Only)
}

/// A comma-separated list of IPv4 CIDR ranges (`--exclude-outbound-ip-ranges`); empty is an
/// empty list. An IPv6 range, a bare address or `*` is an error.
pub fn parse_ip_ranges(flag: &'static str, value: &str) -> Result<Vec<Ipv4Net>, FlagError> {
    items(flag, value)
        .map(|item| {
            let item = item?;
            if let Ok(net) = item.parse::<Ipv4Net>() {
                return Ok(net);
            }
            let reason = if item == "*" {
                WILDCARD_ALONE.to_string()
            } else if item.parse::<Ipv6Net>().is_ok() {
                "an IPv6 range: only IPv4 traffic is captured (no ip6tables rules are written)"
                    .to_string()
            } else if let Ok(addr) = item.parse::<IpAddr>() {
                format!("an address, not a range (for this address alone write {addr}/32)")
            } else {
                "not an IPv4 CIDR range (a.b.c.d/len)".to_string()
            };
            Err(FlagError::new(flag, item, reason))
        })
        .collect()
}

/// `*` for every destination, else a list as [`parse_ip_ranges`] reads it
/// (`--include-outbound-ip-ranges`; empty selects no range).
pub fn parse_ip_range_selection(
    flag: &'static str,
    value: &str,
) -> Result<Selection<Ipv4Net>, FlagError> {
    if value.trim() == "*" {
        return Ok(Selection::All);
    }
    parse_ip_ranges(flag, value).map(Selection::Only)
}

/// Our chains, named after Istio's with our prefix.
const CHAINS: [&str; 4] = [
    "BOWLINE_INBOUND",
    "BOWLINE_IN_REDIRECT",
    "BOWLINE_OUTPUT",
    "BOWLINE_REDIRECT",
];

impl CaptureRules {
    /// `iptables-restore --noflush` input. Line for line Istio's REDIRECT rule set, in
    /// istio-iptables' order:
    ///
    /// - inbound (`PREROUTING`, jumped to only when some inbound port is captured): with all
    ///   ports captured, a RETURN per excluded port, then every other TCP port → inbound
    ///   port; with a port list, only those ports → inbound port;
    /// - outbound (`OUTPUT`): excluded ports RETURN first; then traffic the proxy sends
    ///   (uid/gid) and traffic to 127.0.0.1 passes, and the application's own traffic to
    ///   another pod address over `lo` goes inbound (unless an included range is loopback:
    ///   then the application's other `lo` traffic is not waved through either); then
    ///   excluded ranges RETURN, included ports → outbound port, and included ranges (or
    ///   everything, for `*`) → outbound port.
    pub fn restore_script(&self) -> String {
        let (uid, gid) = (self.proxy_uid, self.proxy_gid);
        let mut lines = vec!["*nat".to_string()];
        lines.extend(CHAINS.iter().map(|c| format!(":{c} - [0:0]")));
        if !self.include_inbound_ports.is_none() {
            lines.push("-A PREROUTING -p tcp -j BOWLINE_INBOUND".into());
        }
        lines.push("-A OUTPUT -p tcp -j BOWLINE_OUTPUT".into());
        match &self.include_inbound_ports {
            Selection::All => {
                for port in &self.exclude_inbound_ports {
                    lines.push(format!(
                        "-A BOWLINE_INBOUND -p tcp --dport {port} -j RETURN"
                    ));
                }
                lines.push("-A BOWLINE_INBOUND -p tcp -j BOWLINE_IN_REDIRECT".into());
            }
            Selection::Only(ports) => {
                for port in ports {
                    lines.push(format!(
                        "-A BOWLINE_INBOUND -p tcp --dport {port} -j BOWLINE_IN_REDIRECT"
                    ));
                }
            }
        }
        lines.push(format!(
            "-A BOWLINE_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        ));
        lines.push(format!(
            "-A BOWLINE_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        ));
        for port in &self.exclude_outbound_ports {
            lines.push(format!("-A BOWLINE_OUTPUT -p tcp --dport {port} -j RETURN"));
        }
        lines.push("-A BOWLINE_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN".into());
        // istio-iptables drops the application's `lo` waiver when loopback is asked for by
        // an included range (the address as written, as it checks it).
        let loopback_included = matches!(&self.include_outbound_ip_ranges,
            Selection::Only(nets) if nets.iter().any(|net| net.addr().is_loopback()));
        for (owner, id) in [("uid", uid), ("gid", gid)] {
            lines.push(format!("-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --{owner}-owner {id} -j BOWLINE_IN_REDIRECT"));
            if !loopback_included {
                lines.push(format!(
                    "-A BOWLINE_OUTPUT -o lo -m owner ! --{owner}-owner {id} -j RETURN"
                ));
            }
            lines.push(format!(
                "-A BOWLINE_OUTPUT -m owner --{owner}-owner {id} -j RETURN"
            ));
        }
        lines.push("-A BOWLINE_OUTPUT -d 127.0.0.1/32 -j RETURN".into());
        for net in &self.exclude_outbound_ip_ranges {
            lines.push(format!("-A BOWLINE_OUTPUT -d {} -j RETURN", net.trunc()));
        }
        for port in &self.include_outbound_ports {
            lines.push(format!(
                "-A BOWLINE_OUTPUT -p tcp --dport {port} -j BOWLINE_REDIRECT"
            ));
        }
        match &self.include_outbound_ip_ranges {
            Selection::All => lines.push("-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT".into()),
            Selection::Only(nets) => {
                for net in nets {
                    lines.push(format!(
                        "-A BOWLINE_OUTPUT -d {} -j BOWLINE_REDIRECT",
                        net.trunc()
                    ));
                }
            }
        }
        lines.push("COMMIT".into());
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

    /// Today's script, before the capture selection existed: the defaults must still
    /// produce exactly this (`bowline up` relies on it).
    const DEFAULT_SCRIPT: &str = "*nat
:BOWLINE_INBOUND - [0:0]
:BOWLINE_IN_REDIRECT - [0:0]
:BOWLINE_OUTPUT - [0:0]
:BOWLINE_REDIRECT - [0:0]
-A PREROUTING -p tcp -j BOWLINE_INBOUND
-A OUTPUT -p tcp -j BOWLINE_OUTPUT
-A BOWLINE_INBOUND -p tcp --dport 15000 -j RETURN
-A BOWLINE_INBOUND -p tcp -j BOWLINE_IN_REDIRECT
-A BOWLINE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A BOWLINE_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A BOWLINE_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j BOWLINE_IN_REDIRECT
-A BOWLINE_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A BOWLINE_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j BOWLINE_IN_REDIRECT
-A BOWLINE_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A BOWLINE_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A BOWLINE_OUTPUT -d 127.0.0.1/32 -j RETURN
-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT
COMMIT
";

    /// The proxy's exemptions in `BOWLINE_OUTPUT`, unchanged by every capture flag (but an
    /// included loopback range).
    const OWNER_RULES: [&str; 8] = [
        "-A BOWLINE_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN",
        "-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j BOWLINE_IN_REDIRECT",
        "-A BOWLINE_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN",
        "-A BOWLINE_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j BOWLINE_IN_REDIRECT",
        "-A BOWLINE_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN",
        "-A BOWLINE_OUTPUT -m owner --gid-owner 1337 -j RETURN",
        "-A BOWLINE_OUTPUT -d 127.0.0.1/32 -j RETURN",
    ];

    /// The rules appended to `chain`, in order.
    fn chain<'a>(script: &'a str, chain: &str) -> Vec<&'a str> {
        let prefix = format!("-A {chain} ");
        script.lines().filter(|l| l.starts_with(&prefix)).collect()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn outbound(rules: &CaptureRules) -> Vec<String> {
        chain(&rules.restore_script(), "BOWLINE_OUTPUT")
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// `OWNER_RULES` with `before` ahead and `after` behind.
    fn owner_rules_between(before: &[&str], after: &[&str]) -> Vec<String> {
        before
            .iter()
            .chain(OWNER_RULES.iter())
            .chain(after)
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn defaults_are_todays_script() {
        assert_eq!(CaptureRules::default().restore_script(), DEFAULT_SCRIPT);
    }

    #[test]
    fn excluded_inbound_ports_return_in_order_before_the_catch_all() {
        let rules = CaptureRules {
            exclude_inbound_ports: parse_ports(
                "exclude-inbound-ports",
                ISTIO_EXCLUDED_INBOUND_PORTS,
            )
            .unwrap(),
            ..CaptureRules::default()
        };
        let script = rules.restore_script();
        let mut want: Vec<String> = [15000, 15001, 15006, 15020, 15021, 15090]
            .iter()
            .map(|p| format!("-A BOWLINE_INBOUND -p tcp --dport {p} -j RETURN"))
            .collect();
        want.push("-A BOWLINE_INBOUND -p tcp -j BOWLINE_IN_REDIRECT".into());
        assert_eq!(chain(&script, "BOWLINE_INBOUND"), want);
        // Nothing else moves: the script is today's with the five extra RETURNs.
        let extra: String = want[1..6].iter().map(|l| format!("{l}\n")).collect();
        let anchor = "-A BOWLINE_INBOUND -p tcp --dport 15000 -j RETURN\n";
        assert_eq!(
            script,
            DEFAULT_SCRIPT.replace(anchor, &format!("{anchor}{extra}"))
        );
    }

    #[test]
    fn included_inbound_ports_redirect_only_those_and_ignore_the_exclusions() {
        let script = CaptureRules {
            include_inbound_ports: Selection::Only(vec![8080, 9090]),
            exclude_inbound_ports: vec![15000, 8080],
            ..CaptureRules::default()
        }
        .restore_script();
        assert_eq!(
            chain(&script, "BOWLINE_INBOUND"),
            [
                "-A BOWLINE_INBOUND -p tcp --dport 8080 -j BOWLINE_IN_REDIRECT",
                "-A BOWLINE_INBOUND -p tcp --dport 9090 -j BOWLINE_IN_REDIRECT",
            ]
        );
        assert_eq!(
            chain(&script, "PREROUTING"),
            ["-A PREROUTING -p tcp -j BOWLINE_INBOUND"]
        );
        // Outbound is untouched.
        assert_eq!(
            chain(&script, "BOWLINE_OUTPUT"),
            chain(DEFAULT_SCRIPT, "BOWLINE_OUTPUT")
        );
    }

    #[test]
    fn no_included_inbound_port_leaves_inbound_alone() {
        let script = CaptureRules {
            include_inbound_ports: Selection::none(),
            ..CaptureRules::default()
        }
        .restore_script();
        assert!(chain(&script, "PREROUTING").is_empty(), "{script}");
        assert!(chain(&script, "BOWLINE_INBOUND").is_empty(), "{script}");
        // The chain is still declared (so `remove` and a re-apply see the same set), and
        // outbound still captured.
        assert!(script.contains(":BOWLINE_INBOUND - [0:0]\n"));
        assert!(script.contains("-A OUTPUT -p tcp -j BOWLINE_OUTPUT\n"));
        assert!(script.contains("-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT\n"));
    }

    #[test]
    fn included_ranges_replace_the_catch_all() {
        let rules = CaptureRules {
            include_outbound_ip_ranges: Selection::Only(vec![
                net("10.0.0.0/8"),
                net("172.16.0.0/12"),
            ]),
            ..CaptureRules::default()
        };
        assert_eq!(
            outbound(&rules),
            owner_rules_between(
                &[],
                &[
                    "-A BOWLINE_OUTPUT -d 10.0.0.0/8 -j BOWLINE_REDIRECT",
                    "-A BOWLINE_OUTPUT -d 172.16.0.0/12 -j BOWLINE_REDIRECT",
                ]
            )
        );
    }

    #[test]
    fn no_included_range_captures_no_outbound() {
        let rules = CaptureRules {
            include_outbound_ip_ranges: Selection::none(),
            ..CaptureRules::default()
        };
        assert_eq!(outbound(&rules), owner_rules_between(&[], &[]));
        // Inbound is untouched.
        let script = rules.restore_script();
        assert_eq!(
            chain(&script, "BOWLINE_INBOUND"),
            chain(DEFAULT_SCRIPT, "BOWLINE_INBOUND")
        );
    }

    #[test]
    fn excluded_ranges_return_after_localhost_and_before_the_redirect() {
        let rules = CaptureRules {
            exclude_outbound_ip_ranges: vec![net("169.254.169.254/32"), net("10.96.0.0/12")],
            ..CaptureRules::default()
        };
        assert_eq!(
            outbound(&rules),
            owner_rules_between(
                &[],
                &[
                    "-A BOWLINE_OUTPUT -d 169.254.169.254/32 -j RETURN",
                    "-A BOWLINE_OUTPUT -d 10.96.0.0/12 -j RETURN",
                    "-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT",
                ]
            )
        );
    }

    #[test]
    fn ranges_are_written_as_their_network() {
        // iptables masks the address itself; writing the network keeps the script equal to
        // what iptables-save reads back.
        let rules = CaptureRules {
            include_outbound_ip_ranges: Selection::Only(vec![net("10.1.2.3/8")]),
            exclude_outbound_ip_ranges: vec![net("192.168.7.9/16")],
            ..CaptureRules::default()
        };
        let out = outbound(&rules);
        assert_eq!(
            out[out.len() - 2..],
            [
                "-A BOWLINE_OUTPUT -d 192.168.0.0/16 -j RETURN",
                "-A BOWLINE_OUTPUT -d 10.0.0.0/8 -j BOWLINE_REDIRECT",
            ]
        );
    }

    #[test]
    fn included_outbound_ports_redirect_even_outside_the_included_ranges() {
        for (ranges, tail) in [
            (Selection::none(), vec![]),
            (
                Selection::Only(vec![net("10.0.0.0/8")]),
                vec!["-A BOWLINE_OUTPUT -d 10.0.0.0/8 -j BOWLINE_REDIRECT"],
            ),
            (
                Selection::All,
                vec!["-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT"],
            ),
        ] {
            let rules = CaptureRules {
                include_outbound_ip_ranges: ranges,
                include_outbound_ports: vec![5432, 6379],
                ..CaptureRules::default()
            };
            let mut after = vec![
                "-A BOWLINE_OUTPUT -p tcp --dport 5432 -j BOWLINE_REDIRECT",
                "-A BOWLINE_OUTPUT -p tcp --dport 6379 -j BOWLINE_REDIRECT",
            ];
            after.extend(tail);
            assert_eq!(outbound(&rules), owner_rules_between(&[], &after));
        }
    }

    #[test]
    fn excluded_outbound_ports_return_first() {
        let rules = CaptureRules {
            exclude_outbound_ports: vec![3306, 22],
            ..CaptureRules::default()
        };
        assert_eq!(
            outbound(&rules),
            owner_rules_between(
                &[
                    "-A BOWLINE_OUTPUT -p tcp --dport 3306 -j RETURN",
                    "-A BOWLINE_OUTPUT -p tcp --dport 22 -j RETURN",
                ],
                &["-A BOWLINE_OUTPUT -j BOWLINE_REDIRECT"]
            )
        );
    }

    #[test]
    fn an_included_loopback_range_drops_the_applications_lo_waiver() {
        for (range, waived) in [
            ("127.0.0.0/8", false),
            ("127.0.0.1/32", false),
            ("10.0.0.0/8", true),
        ] {
            let rules = CaptureRules {
                include_outbound_ip_ranges: Selection::Only(vec![net(range)]),
                ..CaptureRules::default()
            };
            let script = rules.restore_script();
            for owner in ["uid", "gid"] {
                let waiver =
                    format!("-A BOWLINE_OUTPUT -o lo -m owner ! --{owner}-owner 1337 -j RETURN\n");
                assert_eq!(script.contains(&waiver), waived, "{range}: {script}");
                // The proxy's own exemption stays whatever the ranges.
                assert!(script.contains(&format!(
                    "-A BOWLINE_OUTPUT -m owner --{owner}-owner 1337 -j RETURN\n"
                )));
            }
        }
    }

    #[test]
    fn every_flag_together_in_istio_iptables_order() {
        let rules = CaptureRules {
            proxy_uid: 1500,
            proxy_gid: 1600,
            include_inbound_ports: Selection::Only(vec![8080]),
            exclude_inbound_ports: vec![15000],
            include_outbound_ip_ranges: Selection::Only(vec![net("10.0.0.0/8")]),
            exclude_outbound_ip_ranges: vec![net("10.96.0.0/12")],
            include_outbound_ports: vec![443],
            exclude_outbound_ports: vec![53],
            ..CaptureRules::default()
        };
        let want = "*nat
:BOWLINE_INBOUND - [0:0]
:BOWLINE_IN_REDIRECT - [0:0]
:BOWLINE_OUTPUT - [0:0]
:BOWLINE_REDIRECT - [0:0]
-A PREROUTING -p tcp -j BOWLINE_INBOUND
-A OUTPUT -p tcp -j BOWLINE_OUTPUT
-A BOWLINE_INBOUND -p tcp --dport 8080 -j BOWLINE_IN_REDIRECT
-A BOWLINE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A BOWLINE_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A BOWLINE_OUTPUT -p tcp --dport 53 -j RETURN
-A BOWLINE_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1500 -j BOWLINE_IN_REDIRECT
-A BOWLINE_OUTPUT -o lo -m owner ! --uid-owner 1500 -j RETURN
-A BOWLINE_OUTPUT -m owner --uid-owner 1500 -j RETURN
-A BOWLINE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1600 -j BOWLINE_IN_REDIRECT
-A BOWLINE_OUTPUT -o lo -m owner ! --gid-owner 1600 -j RETURN
-A BOWLINE_OUTPUT -m owner --gid-owner 1600 -j RETURN
-A BOWLINE_OUTPUT -d 127.0.0.1/32 -j RETURN
-A BOWLINE_OUTPUT -d 10.96.0.0/12 -j RETURN
-A BOWLINE_OUTPUT -p tcp --dport 443 -j BOWLINE_REDIRECT
-A BOWLINE_OUTPUT -d 10.0.0.0/8 -j BOWLINE_REDIRECT
COMMIT
";
        assert_eq!(rules.restore_script(), want);
    }

    #[test]
    fn port_lists_parse() {
        let flag = "exclude-outbound-ports";
        assert_eq!(parse_ports(flag, ""), Ok(vec![]));
        assert_eq!(parse_ports(flag, "  "), Ok(vec![]));
        assert_eq!(parse_ports(flag, "22"), Ok(vec![22]));
        assert_eq!(
            parse_ports(flag, " 22 , 3306,65535"),
            Ok(vec![22, 3306, 65535])
        );
        for (value, item, reason) in [
            ("22,ssh", "ssh", "not a port number"),
            ("70000", "70000", "not a port number"),
            ("0", "0", "not a port number"),
            ("-1", "-1", "not a port number"),
            ("22,*", "*", "`*`"),
            ("22,,23", "22,,23", "empty item"),
            ("22,", "22,", "empty item"),
        ] {
            let err = parse_ports(flag, value).unwrap_err();
            assert_eq!((err.flag, err.item.as_str()), (flag, item), "{value}");
            assert!(err.reason.contains(reason), "{value}: {err}");
            let shown = err.to_string();
            assert!(shown.starts_with("--exclude-outbound-ports: "), "{shown}");
            assert!(shown.contains(&format!("{item:?}")), "{shown}");
        }
    }

    #[test]
    fn port_selections_parse() {
        let flag = "include-inbound-ports";
        assert_eq!(parse_port_selection(flag, "*"), Ok(Selection::All));
        assert_eq!(parse_port_selection(flag, " * "), Ok(Selection::All));
        assert_eq!(parse_port_selection(flag, ""), Ok(Selection::none()));
        assert_eq!(
            parse_port_selection(flag, "80,443"),
            Ok(Selection::Only(vec![80, 443]))
        );
        let err = parse_port_selection(flag, "*,80").unwrap_err();
        assert_eq!((err.flag, err.item.as_str()), (flag, "*"));
    }

    #[test]
    fn range_lists_parse() {
        let flag = "exclude-outbound-ip-ranges";
        assert_eq!(parse_ip_ranges(flag, ""), Ok(vec![]));
        assert_eq!(
            parse_ip_ranges(flag, "10.0.0.0/8, 169.254.169.254/32"),
            Ok(vec![net("10.0.0.0/8"), net("169.254.169.254/32")])
        );
        for (value, item, reason) in [
            ("10.0.0.0/8,fd00::/8", "fd00::/8", "IPv6"),
            ("::1/128", "::1/128", "IPv6"),
            ("10.0.0.1", "10.0.0.1", "10.0.0.1/32"),
            ("10.0.0.0/33", "10.0.0.0/33", "not an IPv4 CIDR"),
            ("example.com", "example.com", "not an IPv4 CIDR"),
            ("*", "*", "`*`"),
            ("10.0.0.0/8,", "10.0.0.0/8,", "empty item"),
        ] {
            let err = parse_ip_ranges(flag, value).unwrap_err();
            assert_eq!((err.flag, err.item.as_str()), (flag, item), "{value}");
            assert!(err.reason.contains(reason), "{value}: {err}");
        }
    }

    #[test]
    fn range_selections_parse() {
        let flag = "include-outbound-ip-ranges";
        assert_eq!(parse_ip_range_selection(flag, "*"), Ok(Selection::All));
        assert_eq!(parse_ip_range_selection(flag, ""), Ok(Selection::none()));
        assert_eq!(
            parse_ip_range_selection(flag, "10.0.0.0/8"),
            Ok(Selection::Only(vec![net("10.0.0.0/8")]))
        );
        let err = parse_ip_range_selection(flag, "10.0.0.0/8,*").unwrap_err();
        assert_eq!((err.flag, err.item.as_str()), (flag, "*"));
        let err = parse_ip_range_selection(flag, "2001:db8::/32").unwrap_err();
        assert!(err.to_string().contains("IPv6"), "{err}");
    }
}
