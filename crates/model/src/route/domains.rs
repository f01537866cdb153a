//! Virtual host selection by the request's authority, as Envoy's `findVirtualHost` does.

use super::{RouteConfig, VirtualHost};

/// One entry of a virtual host's `domains`, lower-cased.
///
/// Envoy's order for a request: an exact domain, then the longest `*suffix` (the wildcard
/// must cover at least one character), then the longest `prefix*`, then `*`.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainMatcher {
    /// `*`.
    Any,
    Exact(String),
    /// `*.example.com` is `Suffix(".example.com")`; `*-v1.example.com` is
    /// `Suffix("-v1.example.com")`.
    Suffix(String),
    /// `example.*` is `Prefix("example.")`.
    Prefix(String),
}

impl DomainMatcher {
    /// Parses a domain as Envoy does (lower-cased; `*` alone matches anything, a leading
    /// `*` makes a suffix match, else a trailing one a prefix match; a `*` anywhere else is
    /// literal). `None` for an empty domain.
    pub fn parse(domain: &str) -> Option<DomainMatcher> {
        let d = domain.to_ascii_lowercase();
        if d == "*" {
            return Some(DomainMatcher::Any);
        }
        let matcher = if let Some(suffix) = d.strip_prefix('*') {
            DomainMatcher::Suffix(suffix.to_string())
        } else if let Some(prefix) = d.strip_suffix('*') {
            DomainMatcher::Prefix(prefix.to_string())
        } else {
            DomainMatcher::Exact(d)
        };
        (!domain.is_empty()).then_some(matcher)
    }
}

/// Envoy's lookup: exact, longest suffix, longest prefix, default. The authority is
/// lower-cased and compared with its port unless `ignore_port_in_host_matching`.
pub(crate) fn find_virtual_host<'a>(
    config: &'a RouteConfig,
    authority: &str,
) -> Option<&'a VirtualHost> {
    let mut host = authority.to_ascii_lowercase();
    if config.ignore_port_in_host_matching {
        host = strip_port(&host).to_string();
    }
    let domains = || {
        config
            .virtual_hosts
            .iter()
            .flat_map(|v| v.domains.iter().map(move |d| (d, v)))
    };
    if let Some((_, v)) =
        domains().find(|(d, _)| matches!(d, DomainMatcher::Exact(e) if *e == host))
    {
        return Some(v);
    }
    let longest = |pick: fn(&DomainMatcher, &str) -> Option<usize>| {
        domains()
            .filter_map(|(d, v)| pick(d, &host).map(|len| (len, v)))
            // Longest wins; among equals the first declared (domains are unique anyway).
            .fold(
                None,
                |best: Option<(usize, &VirtualHost)>, (len, v)| match best {
                    Some((b, _)) if b >= len => best,
                    _ => Some((len, v)),
                },
            )
            .map(|(_, v)| v)
    };
    let suffix = |d: &DomainMatcher, host: &str| match d {
        DomainMatcher::Suffix(s) if host.len() > s.len() && host.ends_with(s.as_str()) => {
            Some(s.len())
        }
        _ => None,
    };
    let prefix = |d: &DomainMatcher, host: &str| match d {
        DomainMatcher::Prefix(p) if host.len() > p.len() && host.starts_with(p.as_str()) => {
            Some(p.len())
        }
        _ => None,
    };
    longest(suffix).or_else(|| longest(prefix)).or_else(|| {
        domains()
            .find(|(d, _)| **d == DomainMatcher::Any)
            .map(|(_, v)| v)
    })
}

/// `host` without `:port` (IPv6 literals keep their brackets).
pub(crate) fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.rfind("]:") {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &authority[..i],
        _ => authority,
    }
}
