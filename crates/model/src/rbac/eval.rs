//! The RBAC decision: Envoy's `RoleBasedAccessControlEngineImpl::handleAction` as a pure
//! function of the filter's model and what it knows of the request.

use super::{Permission, Policy, Principal, Rbac, RbacAction, RbacRules};
use crate::route::RequestHead;
use http::HeaderMap;
use std::net::IpAddr;

/// What RBAC looks at in a request and its connection.
#[derive(Debug, Clone, Copy)]
pub struct RequestAttrs<'a> {
    /// The connection's peer after a PROXY protocol header (the peer itself without one).
    pub source_ip: IpAddr,
    /// The connection's peer, never rewritten.
    pub direct_remote_ip: IpAddr,
    /// The client as the connection manager determined it (`x-forwarded-for` when trusted).
    pub remote_ip: IpAddr,
    /// The connection's local address and port (the original destination under capture).
    pub destination_ip: IpAddr,
    pub destination_port: u16,
    /// The URI SAN of the verified peer certificate (`spiffe://cluster.local/ns/foo/sa/bar`);
    /// `None` without mTLS or without a URI SAN.
    pub peer_principal: Option<&'a str>,
    pub method: &'a str,
    /// The path with its query string, after the connection manager's normalisation.
    pub path: &'a str,
    /// `host[:port]` as sent.
    pub authority: &'a str,
    pub headers: &'a HeaderMap,
    /// Dynamic metadata by filter name, e.g. `{"envoy.filters.http.jwt_authn": {…}}`;
    /// `Value::Null` when there is none.
    pub dynamic_metadata: &'a serde_json::Value,
}

/// The outcome of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineDecision<'r> {
    pub allowed: bool,
    /// The policy that decided: ALLOW — the first matching policy when allowed, `None` when
    /// denied (nothing matched); DENY — the first matching policy when denied, `None` when
    /// allowed; LOG — the first matching policy (the request is to be logged), else `None`.
    pub policy: Option<&'r str>,
    /// A LOG engine matched: Envoy sets the `access_log_hint` dynamic metadata to true.
    pub logged: bool,
}

/// The filter's outcome: the enforced engine's, and the shadow engine's for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RbacDecision<'r> {
    /// `allowed` with no policy when the filter has no `rules`.
    pub enforced: EngineDecision<'r>,
    pub shadow: Option<EngineDecision<'r>>,
}

impl RbacDecision<'_> {
    /// Whether the request may proceed (the enforced engine's verdict).
    pub fn allowed(&self) -> bool {
        self.enforced.allowed
    }
}

impl Rbac {
    /// The filter's decision for one request. The proxy answers 403 (`RBAC: access denied`)
    /// when it is not [`RbacDecision::allowed`].
    pub fn evaluate<'r>(&'r self, req: &RequestAttrs<'_>) -> RbacDecision<'r> {
        let enforced = match &self.rules {
            Some(rules) => rules.evaluate(req),
            None => EngineDecision {
                allowed: true,
                policy: None,
                logged: false,
            },
        };
        RbacDecision {
            enforced,
            shadow: self.shadow_rules.as_ref().map(|r| r.evaluate(req)),
        }
    }
}

impl RbacRules {
    /// One engine's decision (see [`EngineDecision::policy`] for which policy is named).
    pub fn evaluate<'r>(&'r self, req: &RequestAttrs<'_>) -> EngineDecision<'r> {
        let matched = self.first_match(req);
        let (allowed, logged) = match self.action {
            RbacAction::Allow => (matched.is_some(), false),
            RbacAction::Deny => (matched.is_none(), false),
            RbacAction::Log => (true, matched.is_some()),
        };
        EngineDecision {
            allowed,
            policy: matched,
            logged,
        }
    }

    /// The name of the first policy, in name order, that matches.
    pub fn first_match<'r>(&'r self, req: &RequestAttrs<'_>) -> Option<&'r str> {
        self.policies
            .iter()
            .find(|(_, p)| p.matches(req))
            .map(|(name, _)| name.as_str())
    }
}

impl Policy {
    pub fn matches(&self, req: &RequestAttrs<'_>) -> bool {
        self.permissions.iter().any(|p| p.matches(req))
            && self.principals.iter().any(|p| p.matches(req))
    }
}

impl RequestAttrs<'_> {
    fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: self.method,
            authority: self.authority,
            path: self.path,
            // Not part of what RBAC is given; `:scheme` matchers see it empty.
            scheme: "",
            headers: self.headers,
        }
    }

    /// The path without query string or fragment (what `url_path` matches).
    fn path_only(&self) -> &str {
        self.path.split(['?', '#']).next().unwrap_or_default()
    }
}

impl Permission {
    pub fn matches(&self, req: &RequestAttrs<'_>) -> bool {
        match self {
            Permission::And(list) => list.iter().all(|p| p.matches(req)),
            Permission::Or(list) => list.iter().any(|p| p.matches(req)),
            Permission::Not(p) => !p.matches(req),
            Permission::Any => true,
            Permission::Header(h) => h.matches(&req.head()),
            Permission::UrlPath(m) => m.matches(req.path_only()),
            Permission::DestinationPort(port) => req.destination_port == *port,
            Permission::DestinationPortRange { start, end } => {
                (*start..*end).contains(&u32::from(req.destination_port))
            }
            Permission::DestinationIp(cidr) => cidr.contains(req.destination_ip),
            Permission::Metadata(m) => m.matches(req.dynamic_metadata),
        }
    }
}

impl Principal {
    pub fn matches(&self, req: &RequestAttrs<'_>) -> bool {
        match self {
            Principal::And(list) => list.iter().all(|p| p.matches(req)),
            Principal::Or(list) => list.iter().any(|p| p.matches(req)),
            Principal::Not(p) => !p.matches(req),
            Principal::Any => true,
            Principal::Authenticated(name) => match (req.peer_principal, name) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(san), Some(m)) => m.matches(san),
            },
            Principal::SourceIp(cidr) => cidr.contains(req.source_ip),
            Principal::DirectRemoteIp(cidr) => cidr.contains(req.direct_remote_ip),
            Principal::RemoteIp(cidr) => cidr.contains(req.remote_ip),
            Principal::Header(h) => h.matches(&req.head()),
            Principal::UrlPath(m) => m.matches(req.path_only()),
            Principal::Metadata(m) => m.matches(req.dynamic_metadata),
        }
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
