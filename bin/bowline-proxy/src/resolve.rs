//! `host:port` addresses (the control plane's, `BOWLINE_XDS_ADDR`) and their resolution at
//! start: DNS retried with backoff for a bounded time (CoreDNS may not answer yet while the
//! pod starts), then one address, of the pod's own family when there is a choice.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Result};

/// `host:port`, the host a DNS name or an IP address (`[v6]:port` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// The address itself when the host is an IP literal (no DNS needed).
    pub fn literal(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPort, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("{s:?} is not host:port"));
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{s:?}: port {port:?} is not a number up to 65535"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if host.is_empty() || !host.chars().all(valid) {
            return Err(format!("{s:?}: {host:?} is not a host name"));
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.literal() {
            Some(addr) => write!(f, "{addr}"),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// How long the control plane's name may take to resolve at start before the proxy gives up.
pub const RESOLVE_DEADLINE: Duration = Duration::from_secs(60);

/// Resolves `target`, retrying failures and empty answers with backoff (100 ms doubling up
/// to 2 s) until `deadline` has passed; the error names the host and the last failure.
/// Among several addresses the first of `prefer`'s family wins (a dual-stack cluster lists
/// both; the pod's own family is the one it can reach), else the first.
pub async fn resolve(
    target: &HostPort,
    prefer: Option<IpAddr>,
    deadline: Duration,
) -> Result<SocketAddr> {
    if let Some(addr) = target.literal() {
        return Ok(addr);
    }
    let give_up = tokio::time::Instant::now() + deadline;
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = give_up.saturating_duration_since(tokio::time::Instant::now());
        let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
        let failure = match tokio::time::timeout(left, lookup).await {
            Ok(Ok(addrs)) => match pick(addrs.collect(), prefer) {
                Some(addr) => {
                    tracing::info!(host = %target.host, %addr, "resolved");
                    return Ok(addr);
                }
                None => "no addresses".to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        let left = give_up.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            bail!(
                "cannot resolve {target} after {attempts} attempts in {}s: {failure}",
                deadline.as_secs_f32()
            );
        }
        tracing::warn!(host = %target.host, error = %failure, "cannot resolve yet; retrying");
        tokio::time::sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// The first address of `prefer`'s family, else the first.
pub fn pick(addrs: Vec<SocketAddr>, prefer: Option<IpAddr>) -> Option<SocketAddr> {
    prefer
        .and_then(|p| addrs.iter().find(|a| a.is_ipv4() == p.is_ipv4()).copied())
        .or_else(|| addrs.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parses() {
        let ok = |s: &str, host: &str, port: u16| {
            assert_eq!(
                s.parse::<HostPort>(),
                Ok(HostPort {
                    host: host.into(),
                    port
                }),
                "{s}"
            );
        };
        ok(
            "bowline.bowline-system.svc:15012",
            "bowline.bowline-system.svc",
            15012,
        );
        ok("localhost:1", "localhost", 1);
        ok("10.0.0.1:15012", "10.0.0.1", 15012);
        ok("[::1]:15012", "::1", 15012);
        for bad in [
            "bowline.bowline-system.svc",
            ":15012",
            "host:70000",
            "host:x",
            "a b:1",
            "::1:15012",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
        assert_eq!(
            "[::1]:15012".parse::<HostPort>().unwrap().to_string(),
            "[::1]:15012"
        );
    }

    #[test]
    fn pick_prefers_the_pods_family() {
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let pod4: IpAddr = "10.0.0.7".parse().unwrap();
        let pod6: IpAddr = "fd00::7".parse().unwrap();
        assert_eq!(pick(vec![v6, v4], Some(pod4)), Some(v4));
        assert_eq!(pick(vec![v4, v6], Some(pod6)), Some(v6));
        assert_eq!(pick(vec![v6], Some(pod4)), Some(v6));
        assert_eq!(pick(vec![v6, v4], None), Some(v6));
        assert_eq!(pick(vec![], Some(pod4)), None);
    }

    #[tokio::test]
    async fn resolves_localhost_and_gives_up_on_a_name_that_never_resolves() {
        let localhost: HostPort = "localhost:15012".parse().unwrap();
        let addr = resolve(
            &localhost,
            Some("127.0.0.1".parse().unwrap()),
            RESOLVE_DEADLINE,
        )
        .await
        .unwrap();
        assert_eq!(addr, "127.0.0.1:15012".parse().unwrap());

        let missing: HostPort = "bowline.invalid:15012".parse().unwrap();
        let error = resolve(&missing, None, Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot resolve bowline.invalid:15012"),
            "{error}"
        );
    }
}
