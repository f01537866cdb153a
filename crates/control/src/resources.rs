//! Every resource as users see it: the document, where it came from, and a status in the
//! shapes Istio users know — `status.conditions` (Accepted, Programmed) with
//! `observedGeneration`, and `validationMessages` — plus the convergence answer:
//! "generation G programmed on N of M proxies".
//!
//! A proxy has programmed a resource when it has ACKed a snapshot at least as new as the
//! one that first carried the resource's current version. Every proxy counts for every
//! resource (pushes are not yet scoped to the proxies a change concerns); proxies that
//! disconnected recently are still expected, and count as not programmed.

use bowline_config::diag::{Diagnostic, Severity};
use bowline_config::{Kind, ResourceKey};
use bowline_registry::store::Entry;
use bowline_translate::gateway_api::GatewayApiStatus;
use bowline_xds_server::SyncStatus;
use serde::Serialize;
use serde_json::{json, Value};

/// The proxies the mesh expects, and the generation each has applied.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    /// Node id → applied generation (`None`: connected, nothing ACKed yet; departed
    /// proxies are `None` too).
    pub expected: Vec<(String, Option<u64>, bool)>,
}

impl Proxies {
    pub fn from_sync(sync: &SyncStatus) -> Proxies {
        // By node id: a node with several streams (a reconnect in progress) counts once, at
        // its best; a departed node only if it has no stream.
        let mut by_node: std::collections::BTreeMap<String, (Option<u64>, bool)> =
            std::collections::BTreeMap::new();
        for p in sync.proxies() {
            let seen = by_node.entry(p.node_id).or_insert((None, true));
            seen.0 = seen.0.max(p.applied_generation);
        }
        for (p, _) in sync.departed() {
            by_node.entry(p.node_id).or_insert((None, false));
        }
        let mut expected: Vec<(String, Option<u64>, bool)> = by_node
            .into_iter()
            .map(|(id, (applied, connected))| (id, applied, connected))
            .collect();
        expected.sort();
        Proxies { expected }
    }
}

/// How far one resource's current version has reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Programmed {
    /// The resource's `metadata.generation`.
    pub generation: u64,
    /// The config (snapshot) generation that first carried it.
    pub config_generation: u64,
    pub proxies: usize,
    pub of: usize,
    /// Node ids that have not programmed it (disconnected ones say so).
    pub pending: Vec<String>,
}

impl Programmed {
    pub fn of(entry: &Entry, proxies: &Proxies) -> Option<Programmed> {
        Programmed::naming(entry, proxies, usize::MAX)
    }

    /// Like [`Programmed::of`], naming at most `names` pending proxies (the count says how
    /// many there are): a status written to every object of a large mesh would otherwise
    /// carry every proxy's id in each.
    pub fn naming(entry: &Entry, proxies: &Proxies, names: usize) -> Option<Programmed> {
        entry.served.as_ref()?;
        let mut pending = Vec::new();
        let mut done = 0;
        for (id, applied, connected) in &proxies.expected {
            if entry.config_generation > 0 && applied.is_some_and(|g| g >= entry.config_generation)
            {
                done += 1;
            } else if pending.len() < names {
                pending.push(if *connected {
                    id.clone()
                } else {
                    format!("{id} (disconnected)")
                });
            }
        }
        Some(Programmed {
            generation: entry.generation,
            config_generation: entry.config_generation,
            proxies: done,
            of: proxies.expected.len(),
            pending,
        })
    }

    pub fn is_complete(&self) -> bool {
        self.proxies == self.of
    }
}

/// The resource as `bowline get -o yaml` shows it. Gateway API resources also carry the
/// Gateway API's own status (from `gateway_api`): a Gateway its conditions (Accepted,
/// Programmed, ...) and listeners with attached routes; a route its `parents`, each with
/// Accepted and ResolvedRefs.
pub fn view(entry: &Entry, proxies: &Proxies, gateway_api: &GatewayApiStatus) -> Value {
    let key = &entry.key;
    let mut doc = match &entry.served {
        Some(served) => served.raw.value(),
        None => json!({
            "apiVersion": api_version(key.kind),
            "kind": key.kind.as_str(),
            "metadata": {"name": key.name, "namespace": key.namespace},
        }),
    };
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), key.namespace.clone().into());
        meta.insert("generation".into(), entry.generation.into());
        let source = entry
            .served
            .as_ref()
            .map(|s| s.source.to_string())
            .or_else(|| entry.refused.as_ref().map(|r| r.source.to_string()));
        if let Some(source) = source {
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.insert("bowline.io/source".into(), source.into());
            }
        }
    }
    let mut status = status(entry, proxies);
    gateway_api_status(entry, gateway_api, &mut status);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("status".into(), status);
    }
    doc
}

/// Adds the Gateway API's status of `entry`, when it is one of its kinds and serves.
pub fn gateway_api_status(entry: &Entry, computed: &GatewayApiStatus, status: &mut Value) {
    let key = &entry.key;
    if entry.served.is_none() {
        return;
    }
    match key.kind {
        Kind::K8sGateway => {
            let Some(g) = computed
                .gateways
                .iter()
                .find(|g| g.namespace == key.namespace && g.name == key.name)
            else {
                return;
            };
            status["listeners"] = serde_json::to_value(&g.listeners).unwrap_or_default();
            // The Gateway API's conditions, with ours: its Accepted (more specific than "the
            // spec validated") unless the latest edit was refused, and our Programmed
            // (programmed on N of M proxies) in place of its own.
            if let Some(conditions) = status["conditions"].as_array_mut() {
                for c in &g.conditions {
                    let ours = conditions
                        .iter()
                        .position(|have| have["type"] == c.kind.as_str());
                    let value = serde_json::to_value(c).unwrap_or_default();
                    match ours {
                        None => conditions.push(value),
                        Some(i) if c.kind == "Accepted" && entry.refused.is_none() => {
                            conditions[i] = value
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Kind::HttpRoute | Kind::GrpcRoute => {
            if let Some(r) = computed.routes.iter().find(|r| {
                r.kind == key.kind.as_str() && r.namespace == key.namespace && r.name == key.name
            }) {
                status["parents"] = serde_json::to_value(&r.parents).unwrap_or_default();
            }
        }
        _ => {}
    }
}

/// `status`: conditions, validation messages and programming progress.
pub fn status(entry: &Entry, proxies: &Proxies) -> Value {
    status_naming(entry, proxies, usize::MAX)
}

/// [`status`] naming at most `names` of the proxies that have not programmed it.
pub fn status_naming(entry: &Entry, proxies: &Proxies, names: usize) -> Value {
    let programmed = Programmed::naming(entry, proxies, names);
    let mut conditions = Vec::new();
    match (&entry.refused, &entry.served) {
        (None, Some(_)) => conditions.push(condition("Accepted", true, "Accepted", "accepted")),
        (Some(refusal), served) => {
            let first = refusal
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.to_string())
                .unwrap_or_default();
            let keeps = if served.is_some() {
                format!(
                    "; the last good version (generation {}) keeps serving",
                    entry.generation
                )
            } else {
                "; nothing of it serves".into()
            };
            conditions.push(condition(
                "Accepted",
                false,
                "Invalid",
                &format!("refused: {first}{keeps}"),
            ));
        }
        (None, None) => {}
    }
    if let Some(p) = &programmed {
        let message = format!(
            "generation {} programmed on {} of {} proxies",
            p.generation, p.proxies, p.of
        );
        let reason = if p.is_complete() {
            "Programmed"
        } else {
            "Pending"
        };
        conditions.push(condition("Programmed", p.is_complete(), reason, &message));
    }
    let mut messages: Vec<Value> = entry
        .messages
        .iter()
        .chain(&entry.analysis)
        .map(message)
        .collect();
    if let Some(refusal) = &entry.refused {
        messages.extend(refusal.diagnostics.iter().map(message));
    }
    let mut out = json!({
        "observedGeneration": entry.generation,
        "conditions": conditions,
        "validationMessages": messages,
    });
    if let Some(p) = programmed {
        out["programmed"] = serde_json::to_value(p).unwrap_or_default();
    }
    out
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
    })
}

/// Istio's `validationMessages` item, with where it was found.
fn message(d: &Diagnostic) -> Value {
    json!({
        "level": match d.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        },
        "type": {"code": d.code},
        "field": d.field,
        "file": d.file.display().to_string(),
        "line": d.line,
        "description": d.message,
    })
}

/// The apiVersion a kind is shown with.
pub fn api_version(kind: Kind) -> &'static str {
    match kind.group() {
        "" => "v1",
        "networking.istio.io" => "networking.istio.io/v1",
        "security.istio.io" => "security.istio.io/v1",
        _ => "gateway.networking.k8s.io/v1",
    }
}

/// What needs attention, for `bowline status`: refused resources and resources whose
/// current version some expected proxy has not programmed.
pub fn summary(generation: u64, entries: &[Entry], proxies: &Proxies) -> Value {
    let mut refused = Vec::new();
    let mut pending = Vec::new();
    for entry in entries {
        if let Some(r) = &entry.refused {
            refused.push(json!({
                "resource": entry.key.to_string(),
                "serving": entry.served.is_some(),
                "diagnostics": r.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect::<Vec<_>>(),
            }));
        }
        if let Some(p) = Programmed::of(entry, proxies).filter(|p| !p.is_complete()) {
            pending.push(json!({
                "resource": entry.key.to_string(),
                "generation": p.generation,
                "programmed": p.proxies,
                "of": p.of,
                "pending": p.pending,
            }));
        }
    }
    json!({
        "generation": generation,
        "resources": entries.iter().filter(|e| e.served.is_some()).count(),
        "proxies": proxies.expected.iter().map(|(id, applied, connected)| json!({
            "node_id": id, "applied_generation": applied, "connected": connected,
        })).collect::<Vec<_>>(),
        "refused": refused,
        "not_programmed": pending,
    })
}

/// Whether `entry` matches a `bowline get` filter.
pub fn matches(
    key: &ResourceKey,
    kind: Option<Kind>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    kind.is_none_or(|k| k == key.kind)
        && namespace.is_none_or(|n| n == key.namespace)
        && name.is_none_or(|n| n == key.name)
}
