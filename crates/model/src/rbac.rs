//! Envoy's RBAC HTTP filter (`envoy.filters.http.rbac`,
//! `envoy.extensions.filters.http.rbac.v3.RBAC`): who may do what, decided per request.
//!
//! Implemented: the `rules` (ALLOW, DENY, LOG) and `shadow_rules` engines with their stat
//! prefixes; permissions on headers (pseudo-headers included), the URL path, the
//! destination port (or port range) and IP, and dynamic metadata; principals on the peer
//! certificate's URI SAN, the direct, remote and source IPs, headers, the URL path and
//! dynamic metadata; `and`/`or`/`not`/`any` on both. Refused by name: CEL conditions,
//! the `matcher` API, `requested_server_name`, URI templates, filter state, sourced
//! metadata, custom principals, audit logging and per-rule stats.
//!
//! The decision is a pure function of the model and a [`RequestAttrs`]
//! ([`Rbac::evaluate`]); the proxy answers 403 when it says denied.

mod convert;
mod eval;
mod metadata;

pub(crate) use convert::{network_rbac_filter, rbac_filter};
pub use eval::{EngineDecision, RbacDecision, RequestAttrs};
pub use metadata::{MetadataMatcher, ValueMatcher};

use crate::cidr::Cidr;
use crate::matcher::StringMatcher;
use crate::route::HeaderMatcher;
use std::collections::BTreeMap;

/// The RBAC HTTP filter's configuration.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Rbac {
    /// The enforced engine. `None`: Envoy applies no policy (everything is allowed).
    pub rules: Option<RbacRules>,
    /// Evaluated and reported (stats, dynamic metadata), never enforced.
    pub shadow_rules: Option<RbacRules>,
    /// Prefix of the enforced engine's stats (`<prefix>rbac.allowed`, …); may be empty.
    pub rules_stat_prefix: String,
    /// Prefix of the shadow engine's stats; may be empty.
    pub shadow_rules_stat_prefix: String,
}

/// One engine: an action and named policies.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct RbacRules {
    pub action: RbacAction,
    /// By name. Envoy keeps them in a sorted map, so the policy reported for a request is
    /// the first matching one in lexicographic (byte) order of names.
    pub policies: BTreeMap<String, Policy>,
}

/// What a matching policy means.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacAction {
    /// Safe-list: a request is allowed iff some policy matches.
    Allow,
    /// Block-list: a request is denied iff some policy matches.
    Deny,
    /// Every request is allowed; a matching policy only marks it for the access log.
    Log,
}

/// A policy matches iff at least one permission and at least one principal match (both
/// lists are non-empty: Envoy refuses empty ones).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Policy {
    pub permissions: Vec<Permission>,
    pub principals: Vec<Principal>,
}

/// A condition on what the request does.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum Permission {
    /// All must match (non-empty).
    And(Vec<Permission>),
    /// At least one must match (non-empty).
    Or(Vec<Permission>),
    Not(Box<Permission>),
    Any,
    /// A request header; `:method`, `:path` (with query), `:authority` and `:scheme` read
    /// the request line.
    Header(HeaderMatcher),
    /// The path without its query string or fragment.
    UrlPath(StringMatcher),
    /// The local (destination) port of the connection.
    DestinationPort(u16),
    /// The local port is in `start..end` (end exclusive).
    DestinationPortRange {
        start: u32,
        end: u32,
    },
    /// The local (destination) address of the connection.
    DestinationIp(Cidr),
    Metadata(MetadataMatcher),
}

/// A condition on who sends the request.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum Principal {
    /// All must match (non-empty).
    And(Vec<Principal>),
    /// At least one must match (non-empty).
    Or(Vec<Principal>),
    Not(Box<Principal>),
    Any,
    /// The peer presented a certificate (mTLS). `None` matches any peer certificate;
    /// `Some` is matched against its URI SAN (`spiffe://cluster.local/ns/foo/sa/bar`).
    /// Without a peer certificate nothing matches.
    Authenticated(Option<StringMatcher>),
    /// The connection's peer address (Envoy's deprecated `source_ip`: the address after a
    /// PROXY protocol header, when there is one).
    SourceIp(Cidr),
    /// The connection's peer address, never rewritten.
    DirectRemoteIp(Cidr),
    /// The client address as the connection manager determined it (`x-forwarded-for`
    /// when trusted, the peer otherwise).
    RemoteIp(Cidr),
    Header(HeaderMatcher),
    UrlPath(StringMatcher),
    Metadata(MetadataMatcher),
}
