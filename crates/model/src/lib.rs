//! bowline-proxy's model of its configuration: validated, immutable, plain Rust.
//!
//! Envoy xDS v3 resources are converted here, once, at the edge (`TryFrom<&pb::…>`), and
//! nothing past this crate sees a protobuf type. A conversion either yields a model the proxy
//! implements completely or an `Invalid*` error naming the resource and the field path, so
//! that the resource is NACKed with a reason and the last good one keeps serving. A field we
//! do not implement is refused by name when it is not at its proto default, and a filter or
//! extension we do not implement is refused by name and type URL: silently ignoring config
//! would make the proxy behave unlike Envoy on the same xDS.
//!
//! The decisions the data path takes (virtual host and route selection, weighted picks,
//! faults, retries, rewrites, redirects, CORS, filter-chain selection, the form of a local
//! reply) are pure functions of the model and the request; the async code in `bowline-proxy`
//! only performs them.

// Conversions must name deprecated proto fields too, to refuse them when set.
#![allow(deprecated)]

pub mod access_log;
mod address;
mod cidr;
pub mod cluster;
mod duration;
mod endpoints;
mod error;
mod fraction;
#[cfg(test)]
mod fuzz;
pub(crate) mod hcm;
pub mod istio_stats;
pub mod jwt;
pub(crate) mod listener;
pub mod local_reply;
mod matcher;
pub mod path;
pub mod rbac;
mod regex;
pub mod route;
mod tcp;
pub mod tls;
pub mod tracing;
mod unsupported;

pub use address::DnsHost;
pub use cidr::Cidr;
pub use cluster::Cluster;
pub use endpoints::{
    ClusterLoadAssignment, HealthStatus, LbEndpoint, Locality, LocalityLbEndpoints,
};
pub use error::{InvalidCluster, InvalidEndpoints, InvalidListener, InvalidRoute, Problem};
pub use fraction::Fraction;
pub use hcm::{
    Codec, EscapedSlashes, ForwardClientCert, ForwardClientCertMode, HttpConnectionManager,
    HttpFilter, RouteSource, Router, DEFAULT_MAX_HEADERS_COUNT, DEFAULT_MAX_REQUEST_HEADERS_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
};
pub use jwt::JwtAuthn;
pub use listener::{
    ConnectionInfo, FilterChain, FilterChainMatch, Listener, NetworkFilter, PortPredicate,
    SourceType, TrafficDirection,
};
pub use matcher::{StringMatcher, StringPattern};
pub use rbac::{
    EngineDecision, Permission, Policy, Principal, Rbac, RbacAction, RbacDecision, RbacRules,
    RequestAttrs,
};
pub use regex::Regex;
pub use route::{
    ClusterSpecifier, DomainMatcher, RequestHead, Route, RouteConfig, VirtualHost, WeightedCluster,
};
pub use tcp::TcpProxy;
