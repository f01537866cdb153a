//! The proxy's side of the client: what it is given and what it answers.

use std::collections::{BTreeMap, BTreeSet};

use crate::pb::google::protobuf::Any;

/// What the proxy does with the resources the control plane sends.
///
/// Called on the client's task, one response at a time, never while disconnected; keep it
/// quick (convert, validate, swap in the new config).
pub trait AdsHandler: Send + 'static {
    /// Applies one response's worth of resources of `type_url`.
    ///
    /// Apply what is good and list what is not in [`ApplyResult::rejected`]: the client NACKs
    /// naming each rejected resource, and keeps reporting the previous version of it as held.
    fn apply(&mut self, type_url: &str, update: Update) -> ApplyResult;
}

/// One response of one type, as the handler sees it in either flavor.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// `version_info` (SotW) or `system_version_info` (delta) of the response.
    pub version: String,
    /// Added or changed resources. When `full_state` is true, this is every resource of the
    /// type the server has for this proxy.
    pub resources: Vec<Resource>,
    /// Names the proxy held and must drop: a delta response's `removed_resources`, or for a
    /// SotW wildcard type (CDS, LDS) the held names missing from the response.
    pub removed: Vec<String>,
    /// SotW wildcard types: `resources` is the complete set. False for delta, and for SotW
    /// EDS/RDS, where a missing name means "unchanged", not "removed".
    pub full_state: bool,
}

/// One resource of an update.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The resource's name (a cluster load assignment's `cluster_name`).
    pub name: String,
    /// Delta: the server's per-resource version. SotW: the response's `version_info`.
    pub version: String,
    /// The packed resource; its type URL is the update's (the client checked).
    pub resource: Any,
}

/// The handler's answer to an [`Update`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyResult {
    /// `(name, reason)` of each resource that was not applied; the rest were.
    pub rejected: Vec<(String, String)>,
    /// For each listed type (EDS, RDS, ...), the complete set of names the proxy needs now,
    /// e.g. the EDS service names of all its clusters after a CDS update. Types not listed
    /// keep their subscription. Subscribing to no names of a type ends its subscription; the
    /// client forgets what it held of names it unsubscribes (drop them yourself).
    pub subscribe: BTreeMap<String, BTreeSet<String>>,
}

impl ApplyResult {
    /// Everything applied, no subscription change.
    pub fn accepted() -> Self {
        Self::default()
    }

    /// Adds a rejected resource.
    pub fn reject(mut self, name: impl Into<String>, reason: impl Into<String>) -> Self {
        self.rejected.push((name.into(), reason.into()));
        self
    }

    /// Sets the complete set of names needed of `type_url`.
    pub fn need<I, S>(mut self, type_url: &str, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subscribe.insert(
            type_url.to_string(),
            names.into_iter().map(Into::into).collect(),
        );
        self
    }
}
