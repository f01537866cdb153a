//! The transparent-mode network: a bridge on the host holding the mesh's /24, and per
//! replica a network namespace joined to it by a veth pair, with its own IP, a default route
//! through the bridge and a hosts file (`ip netns exec` mounts `/etc/netns/<ns>/hosts` over
//! `/etc/hosts`). Everything is named after the subnet's third octet, so two meshes can run
//! side by side and a teardown removes exactly what its setup made.

use crate::plan::Subnet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

/// Where the subnets are taken from: 10.213.<n>.0/24 for n in 0..=255.
const NETWORK_PREFIX: [u8; 2] = [10, 213];

/// Serialises subnet choice between `bowline up` processes (and parallel tests).
const LOCK_FILE: &str = "/run/bowline-network.lock";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    pub bridge: String,
    pub bridge_ip: Ipv4Addr,
    /// Namespaces created so far, with their host-side veth.
    pub namespaces: Vec<(String, String)>,
}

/// Runs `ip ARGS`, turning a failure into an error that shows the command and ip's message.
pub fn ip(args: &[&str]) -> std::io::Result<()> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Third octets already used by an IPv4 address on this host in 10.213.0.0/16, read from
/// `ip -o -4 addr` output.
pub fn used_octets(ip_addr_output: &str) -> Vec<u8> {
    ip_addr_output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            let addr: Ipv4Addr = words.next()?.split('/').next()?.parse().ok()?;
            let [a, b, c, _] = addr.octets();
            ([a, b] == NETWORK_PREFIX).then_some(c)
        })
        .collect()
}

/// Holds the host-wide lock while a subnet is chosen and its bridge created.
pub struct SubnetLock {
    /// The lock lives as long as the open file.
    _file: std::fs::File,
}

impl SubnetLock {
    pub fn acquire() -> std::io::Result<SubnetLock> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)?;
        // Blocks until the other holder has created its bridge (a few ms).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SubnetLock { _file: file })
    }
}

impl Network {
    /// Picks a free /24 and creates its bridge (with the lock held, so two callers never
    /// pick the same one).
    pub fn create() -> std::io::Result<(Network, Subnet)> {
        let _lock = SubnetLock::acquire()?;
        let out = Command::new("ip").args(["-o", "-4", "addr"]).output()?;
        let used = used_octets(&String::from_utf8_lossy(&out.stdout));
        let octet = (0..=255u8)
            .find(|n| !used.contains(n))
            .ok_or_else(|| std::io::Error::other("every 10.213.x.0/24 is in use"))?;
        let subnet = Subnet {
            base: Ipv4Addr::new(NETWORK_PREFIX[0], NETWORK_PREFIX[1], octet, 0),
        };
        let network = Network {
            bridge: format!("blbr{octet}"),
            bridge_ip: subnet.bridge_ip(),
            namespaces: Vec::new(),
        };
        let cidr = format!("{}/{}", network.bridge_ip, Subnet::PREFIX_LEN);
        // A bridge of that name without the address is a leftover: replace it.
        let _ = ip(&["link", "del", &network.bridge]);
        ip(&["link", "add", "name", &network.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &cidr, "dev", &network.bridge])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        Ok((network, subnet))
    }

    /// Creates namespace `ns` with `ip` on `eth0`, joined to the bridge, default route via
    /// the bridge, loopback up, and `hosts` as its /etc/hosts. Recorded before it is made,
    /// so a failure half-way is still torn down.
    pub fn add_namespace(&mut self, ns: &str, addr: Ipv4Addr, hosts: &str) -> std::io::Result<()> {
        let octet = self.bridge_ip.octets()[2];
        let veth = format!("blv{octet}-{}", self.namespaces.len());
        self.namespaces.push((ns.to_string(), veth.clone()));
        let cidr = format!("{addr}/{}", Subnet::PREFIX_LEN);
        let gw = self.bridge_ip.to_string();
        let _ = ip(&["netns", "del", ns]);
        ip(&["netns", "add", ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ])?;
        ip(&["link", "set", &veth, "master", &self.bridge, "up"])?;
        ip(&["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "route", "add", "default", "via", &gw])?;
        let etc = etc_dir(ns);
        std::fs::create_dir_all(&etc)?;
        std::fs::write(etc.join("hosts"), hosts)?;
        Ok(())
    }

    /// Removes every namespace (its veth, addresses and iptables rules go with it), its
    /// /etc/netns directory, then the bridge. Keeps going past errors and reports the first.
    pub fn teardown(&self) -> std::io::Result<()> {
        let mut first: Option<std::io::Error> = None;
        let mut note = |r: std::io::Result<()>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        for (ns, veth) in &self.namespaces {
            if namespace_exists(ns) {
                // The veth pair goes with the namespace (the kernel removes it shortly after).
                note(ip(&["netns", "del", ns]));
            } else if link_exists(veth) {
                // A setup that failed before moving the peer into the namespace.
                note(ip(&["link", "del", veth]).or_else(gone));
            }
            let etc = etc_dir(ns);
            if etc.exists() {
                note(std::fs::remove_dir_all(&etc));
            }
        }
        if link_exists(&self.bridge) {
            note(ip(&["link", "del", &self.bridge]).or_else(gone));
        }
        first.map_or(Ok(()), Err)
    }
}

/// A link that vanished between the check and the delete is what we wanted.
fn gone(e: std::io::Error) -> std::io::Result<()> {
    if e.to_string().contains("Cannot find device") {
        Ok(())
    } else {
        Err(e)
    }
}

fn etc_dir(ns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(ns)
}

pub fn namespace_exists(ns: &str) -> bool {
    PathBuf::from("/run/netns").join(ns).exists()
}

pub fn link_exists(name: &str) -> bool {
    PathBuf::from("/sys/class/net").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_octets_in_ip_addr_output() {
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever
7: blbr0    inet 10.213.0.1/24 scope global blbr0\\       valid_lft forever
9: blbr3    inet 10.213.3.1/24 scope global blbr3
2: eth0    inet 10.214.5.1/24 brd 10.0.2.255 scope global eth0
";
        assert_eq!(used_octets(out), [0, 3]);
    }
}
