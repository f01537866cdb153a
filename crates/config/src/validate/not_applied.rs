//! "Never silently ignored": the ledger of which spec fields bowline applies, and a warning
//! for every field a resource sets that it does not.
//!
//! The ledger ([`ledger`]) has an entry for every field of every spec type bowline reads,
//! at its path pattern (`spec.http[*].delegate`; `[*]` is any list index, `*` any map key),
//! saying whether translation applies it ([`Status::Applied`], naming a test that shows the
//! effect) or not ([`Status::NotApplied`], with the reason users see). An entry may hold only
//! for some values of the field ([`When`]): a Gateway server's `tls.mode` is applied when
//! `SIMPLE`, not when `MUTUAL`. `crates/config/tests/not_applied_ledger.rs` walks the serde
//! types and fails when a field has no entry, so a new field cannot be forgotten.
//!
//! [`not_applied`] walks a resource's spec as JSON (serialised from the typed spec, so it
//! sees exactly what was accepted) and reports each set field whose entry is `NotApplied`,
//! once, at its own path with indices (`spec.tls[0]`): the fields below it are not reported
//! again. Unset values — null, `""`, `false`, empty lists and maps — are not "set": every
//! boolean the ledger marks not applied defaults to false in Istio.

mod gateway_api;
mod istio;
mod routing;

use crate::diag::{code, Finding};
use crate::positions::join;
use crate::resource::{Kind, Resource, Spec};
use serde_json::Value;
use std::sync::OnceLock;

/// What bowline does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Translation reads it; `shown_by` is the name of a test (`fn shown_by`) in the
    /// workspace that shows its effect.
    Applied { shown_by: &'static str },
    /// Accepted, but it changes nothing bowline serves: a resource setting it gets a warning
    /// with this reason.
    NotApplied { reason: &'static str },
    /// Not read, and no warning, because bowline already behaves as the field asks by
    /// another route; `how` says which.
    Implicit { how: &'static str },
    /// Validation refuses it with an error, so it never reaches translation.
    Refused,
}

/// For which values of a field an entry holds (string values, compared ignoring case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    OneOf(&'static [&'static str]),
    NoneOf(&'static [&'static str]),
}

impl When {
    fn holds(self, value: &Value) -> bool {
        let text = value.as_str().unwrap_or_default();
        let listed = |values: &[&str]| values.iter().any(|v| v.eq_ignore_ascii_case(text));
        match self {
            When::Always => true,
            When::OneOf(values) => listed(values),
            When::NoneOf(values) => !listed(values),
        }
    }
}

/// One ledger line: a field (path pattern) of a kind, for some of its values, and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub path: String,
    pub when: When,
    pub status: Status,
}

/// A table row before it is mounted on a kind at a prefix.
pub(crate) type Row = (&'static str, When, Status);

pub(crate) const fn applied(path: &'static str, shown_by: &'static str) -> Row {
    (path, When::Always, Status::Applied { shown_by })
}

pub(crate) const fn unapplied(path: &'static str, reason: &'static str) -> Row {
    (path, When::Always, Status::NotApplied { reason })
}

/// Not applied when the value is one of `values`.
pub(crate) const fn unapplied_for(
    path: &'static str,
    values: &'static [&'static str],
    reason: &'static str,
) -> Row {
    (path, When::OneOf(values), Status::NotApplied { reason })
}

/// Not applied when the value is none of `values` (those are what bowline assumes).
pub(crate) const fn unapplied_unless(
    path: &'static str,
    values: &'static [&'static str],
    reason: &'static str,
) -> Row {
    (path, When::NoneOf(values), Status::NotApplied { reason })
}

pub(crate) const fn implicit(path: &'static str, how: &'static str) -> Row {
    (path, When::Always, Status::Implicit { how })
}

pub(crate) const fn refused(path: &'static str) -> Row {
    (path, When::Always, Status::Refused)
}

/// The whole ledger: every kind's entries, expanded from the tables in `istio` and
/// `gateway_api`.
pub fn ledger() -> &'static [Entry] {
    static LEDGER: OnceLock<Vec<Entry>> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let mut out = Vec::new();
        istio::entries(&mut out);
        gateway_api::entries(&mut out);
        out
    })
}

/// Adds `rows` for `kind`, each path below `prefix` (`""` = from the resource root).
pub(crate) fn mount(out: &mut Vec<Entry>, kind: Kind, prefix: &str, rows: &[Row]) {
    out.extend(rows.iter().map(|(path, when, status)| Entry {
        kind,
        path: match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => prefix.to_string(),
            (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
            (false, false) => format!("{prefix}.{path}"),
        },
        when: *when,
        status: *status,
    }));
}

/// Whether a concrete field path (`spec.http[0].match[1].headers.x-user`) fits a pattern
/// (`spec.http[*].match[*].headers.*`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, c) = (segments(pattern), segments(path));
    p.len() == c.len()
        && p.iter().zip(&c).all(|(p, c)| match (*p, *c) {
            ("[*]", c) => c.starts_with('['),
            ("*", c) => !c.starts_with('['),
            (p, c) => p == c,
        })
}

/// `a.b[2].c` → `a`, `b`, `[2]`, `c`. Map keys containing `.` or `[` are not split apart
/// from their neighbours reliably; spec fields never have such names, and user keys (header
/// names, labels) only ever meet a `*`, which a split key would fail to match: such a key
/// falls back on its parent's status.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(&rest[..open]);
            }
            let close = rest[open..].find(']').map_or(rest.len(), |c| open + c + 1);
            out.push(&rest[open..close]);
            rest = &rest[close..];
        }
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

/// The entry deciding a field of `kind` at concrete `path` holding `value`: an entry for some
/// values before one for all of them. `None` when no entry names the field itself (its
/// parent's status then holds).
pub fn entry_for(kind: Kind, path: &str, value: &Value) -> Option<&'static Entry> {
    let candidates = || {
        ledger()
            .iter()
            .filter(move |e| e.kind == kind && path_matches(&e.path, path))
    };
    candidates()
        .find(|e| e.when != When::Always && e.when.holds(value))
        .or_else(|| candidates().find(|e| e.when == When::Always))
}

/// A warning for each field `resource` sets that bowline accepts but does not apply.
pub fn not_applied(resource: &Resource) -> Vec<Finding> {
    let mut out = Vec::new();
    let spec = spec_json(&resource.spec);
    walk(resource.kind(), "spec", &spec, &mut out);
    out
}

fn walk(kind: Kind, path: &str, value: &Value, out: &mut Vec<Finding>) {
    if let Some(Entry {
        status: Status::NotApplied { reason },
        when,
        ..
    }) = entry_for(kind, path, value)
    {
        let what = match (when, value.as_str()) {
            (When::Always, _) | (_, None) => format!("`{path}`"),
            (_, Some(v)) => format!("`{path}: {v}`"),
        };
        out.push(Finding::warning(
            code::NOT_APPLIED_FIELD,
            path,
            format!("{what} is accepted but not applied: {reason}"),
        ));
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(kind, &join(path, key), child, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(kind, &format!("{path}[{i}]"), item, out);
            }
        }
        _ => {}
    }
}

/// A spec as JSON with unset values left out (see the module docs); the spec itself is
/// always an object, even when nothing in it is set.
pub fn spec_json(spec: &Spec) -> Value {
    let value = match spec {
        Spec::VirtualService(s) => serde_json::to_value(s),
        Spec::DestinationRule(s) => serde_json::to_value(s),
        Spec::ServiceEntry(s) => serde_json::to_value(s),
        Spec::WorkloadEntry(s) => serde_json::to_value(s),
        Spec::Gateway(s) => serde_json::to_value(s),
        Spec::Sidecar(s) => serde_json::to_value(s),
        Spec::PeerAuthentication(s) => serde_json::to_value(s),
        Spec::AuthorizationPolicy(s) => serde_json::to_value(s),
        Spec::RequestAuthentication(s) => serde_json::to_value(s),
        Spec::Telemetry(s) => serde_json::to_value(s),
        Spec::K8sGateway(s) => serde_json::to_value(s),
        Spec::HttpRoute(s) => serde_json::to_value(s),
        Spec::GrpcRoute(s) => serde_json::to_value(s),
        // Kubernetes' own object: the mesh reads a few of its fields and leaves the rest to
        // Kubernetes, so none is "accepted but not applied".
        Spec::Service(_) => Ok(Value::Object(Default::default())),
        Spec::ReferenceGrant(s) => serde_json::to_value(s),
    };
    // Serialising plain data into a `Value` cannot fail (keys are strings or numbers).
    prune(value.unwrap_or_default()).unwrap_or_else(|| Value::Object(Default::default()))
}

/// `None` for an unset value; collections keep only their set members.
fn prune(value: Value) -> Option<Value> {
    match value {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(items) => {
            // Items keep their places (indices name them), so an unset item stays as `{}`.
            let kept: Vec<Value> = items
                .into_iter()
                .map(|i| prune(i).unwrap_or(Value::Object(Default::default())))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests;
