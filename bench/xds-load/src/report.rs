//! The results of one run: raw numbers (JSON) and a markdown table for humans.

use crate::measure::Spread;
use crate::mesh::MeshSpec;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// How one config change reached the proxies.
///
/// The proxies that *use* the changed service (are given it: all of them without the
/// Sidecar scope, those in its namespace with it) must receive the change; every other
/// proxy should receive nothing, so the two are counted apart. Without the scope there are
/// no non-users and their figures are 0.
#[derive(Debug, Clone, Default)]
pub struct ChangeResult {
    /// Using proxies whose copy of the watched resource showed the change, of all users.
    pub reached: usize,
    pub of: usize,
    /// Rename of the file → the using proxy received the changed resource (ms).
    pub latency: Spread,
    /// Using proxies that received any response (any type) after the change, within the
    /// window.
    pub proxies_with_any_response: usize,
    /// Per type (CDS, EDS, LDS, RDS): using proxies that received at least one response of it.
    pub proxies_by_type: [usize; 4],
    /// Per type: responses the using proxies received in all.
    pub responses_by_type: [u64; 4],
    /// Proxies that do not use the changed service.
    pub non_users: usize,
    /// Non-using proxies that received any response after the change, within the window
    /// (should be 0: the change is nothing to them).
    pub non_users_with_any_response: usize,
    /// Responses (any type) the non-using proxies received in all, in the same window.
    pub non_user_responses: u64,
    /// Every latency sample (for merging rounds).
    pub samples: Vec<std::time::Duration>,
}

impl ChangeResult {
    /// Several changes as one: counts add up (`reached`/`of` and the non-user counts count
    /// (change, proxy) pairs) and the latency spread is over every sample.
    pub fn merge(rounds: Vec<ChangeResult>) -> ChangeResult {
        let mut out = ChangeResult::default();
        for r in rounds {
            out.reached += r.reached;
            out.of += r.of;
            out.proxies_with_any_response += r.proxies_with_any_response;
            out.non_users += r.non_users;
            out.non_users_with_any_response += r.non_users_with_any_response;
            out.non_user_responses += r.non_user_responses;
            for i in 0..4 {
                out.proxies_by_type[i] += r.proxies_by_type[i];
                out.responses_by_type[i] += r.responses_by_type[i];
            }
            out.samples.extend(r.samples);
        }
        out.latency = Spread::of_ms(out.samples.iter().copied());
        out
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub spec: Option<MeshSpec>,
    pub proxies: usize,
    pub protocol: String,
    /// Clusters a complete proxy holds: the most any proxy of the run expects, and the
    /// fewest (equal without the Sidecar scope).
    pub expected_clusters: usize,
    pub expected_clusters_min: usize,
    pub nofile_limit: u64,
    pub listening_ms: f64,
    pub ready_ms: f64,
    pub config_loaded_ms: f64,
    /// Proxies that held the complete config, of all.
    pub complete: usize,
    /// First connect → last proxy complete (ms).
    pub full_push_ms: f64,
    /// Per proxy: its connect → complete (ms).
    pub per_proxy_complete: Spread,
    pub endpoint_change: ChangeResult,
    pub route_change: ChangeResult,
    pub idle_s: f64,
    pub idle_cpu_s: f64,
    pub idle_responses: u64,
    pub bytes_per_proxy: Spread,
    /// Responses received by all proxies over the run, per type.
    pub responses_by_type: [u64; 4],
    pub cpu_s: f64,
    pub peak_rss_mb: f64,
    pub connect_failures: u64,
    pub stream_errors: u64,
    pub server_closed: u64,
    pub reconnects: u64,
    pub nacks: u64,
    /// Distinct stream/connect errors the proxies saw last (text), at most a few.
    pub errors: Vec<String>,
    /// Per type: how many different final versions the proxies hold (per protocol); 1
    /// means every proxy ended at the same version. With `--sidecar-scope` EDS and RDS
    /// versions differ by namespace by design (a change moves only its users' versions).
    pub distinct_final_versions: [usize; 4],
    /// The control plane's own account at the end (`/debug/syncz`): its generation, and
    /// how many connected proxies it counts as having applied it (ACKed everything it
    /// holds for them at that generation).
    pub final_generation: u64,
    pub proxies_at_final_generation: usize,
}

const TYPES: [&str; 4] = ["CDS", "EDS", "LDS", "RDS"];

fn spread_json(s: &Spread) -> Value {
    json!({"n": s.n, "p50": s.p50, "p99": s.p99, "max": s.max})
}

fn change_json(c: &ChangeResult) -> Value {
    let by_type = |v: &[usize; 4]| -> Value {
        TYPES
            .iter()
            .zip(v)
            .map(|(t, n)| (t.to_string(), json!(n)))
            .collect()
    };
    json!({
        "reached": c.reached, "of": c.of, "latency_ms": spread_json(&c.latency),
        "proxies_with_any_response": c.proxies_with_any_response,
        "non_users": c.non_users,
        "non_users_with_any_response": c.non_users_with_any_response,
        "non_user_responses": c.non_user_responses,
        "proxies_by_type": by_type(&c.proxies_by_type),
        "responses_by_type": TYPES.iter().zip(&c.responses_by_type)
            .map(|(t, n)| (t.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
    })
}

impl Results {
    pub fn to_json(&self) -> Value {
        let spec = self.spec.unwrap_or_default();
        json!({
            "services": spec.services, "endpoints": spec.endpoints,
            "namespaces": spec.namespaces, "sidecar_scope": spec.sidecar_scope,
            "proxies": self.proxies, "protocol": self.protocol,
            "expected_clusters": self.expected_clusters,
            "expected_clusters_min": self.expected_clusters_min,
            "nofile_limit": self.nofile_limit,
            "start": {"listening_ms": self.listening_ms, "ready_ms": self.ready_ms,
                      "config_loaded_ms": self.config_loaded_ms},
            "full_push": {"complete": self.complete, "total_ms": self.full_push_ms,
                          "per_proxy_ms": spread_json(&self.per_proxy_complete)},
            "endpoint_change": change_json(&self.endpoint_change),
            "route_change": change_json(&self.route_change),
            "idle": {"seconds": self.idle_s, "cpu_s": self.idle_cpu_s,
                     "responses": self.idle_responses},
            "totals": {
                "bytes_per_proxy": spread_json(&self.bytes_per_proxy),
                "responses_by_type": TYPES.iter().zip(&self.responses_by_type)
                    .map(|(t, n)| (t.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "cpu_s": self.cpu_s, "peak_rss_mb": self.peak_rss_mb,
                "connect_failures": self.connect_failures, "stream_errors": self.stream_errors,
                "server_closed": self.server_closed, "reconnects": self.reconnects,
                "nacks": self.nacks, "errors": self.errors,
                "distinct_final_versions": TYPES.iter().zip(&self.distinct_final_versions)
                    .map(|(t, n)| (t.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "final_generation": self.final_generation,
                "proxies_at_final_generation": self.proxies_at_final_generation,
            },
        })
    }

    pub fn to_markdown(&self) -> String {
        let spec = self.spec.unwrap_or_default();
        let ms = |s: &Spread| format!("{:.1} / {:.1} / {:.1}", s.p50, s.p99, s.max);
        let types = |v: &[usize; 4]| {
            TYPES
                .iter()
                .zip(v)
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let change = |c: &ChangeResult| {
            format!(
                "reached {}/{} users; p50/p99/max {} ms; responses after it: {} users ({}); \
                 non-users with any response: {}/{} ({} responses)",
                c.reached,
                c.of,
                ms(&c.latency),
                c.proxies_with_any_response,
                types(&c.proxies_by_type),
                c.non_users_with_any_response,
                c.non_users,
                c.non_user_responses
            )
        };
        let clusters = if self.expected_clusters_min == self.expected_clusters {
            format!("{} clusters each", self.expected_clusters)
        } else {
            format!(
                "{}–{} clusters, min–max over proxies",
                self.expected_clusters_min, self.expected_clusters
            )
        };
        let scope = if spec.sidecar_scope {
            ", a Sidecar per namespace (egress ./*)"
        } else {
            ""
        };
        let counts = |v: &[u64; 4]| {
            let parts: Vec<String> = TYPES
                .iter()
                .zip(v)
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            parts.join(", ")
        };
        let mut t = String::new();
        let _ = writeln!(
            t,
            "## xds-load: {} services × {} endpoints in {} namespaces{scope}, {} proxies ({})\n",
            spec.services, spec.endpoints, spec.namespaces, self.proxies, self.protocol
        );
        let _ = writeln!(t, "| figure | value |\n|---|---|");
        let rows = [
            (
                "start: spawn → listening / ready / config loaded (ms)",
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    self.listening_ms, self.ready_ms, self.config_loaded_ms
                ),
            ),
            (
                "full push: proxies complete",
                format!("{}/{} ({clusters})", self.complete, self.proxies),
            ),
            (
                "full push: first connect → last complete (ms)",
                format!("{:.0}", self.full_push_ms),
            ),
            (
                "full push: per proxy connect → complete p50/p99/max (ms)",
                ms(&self.per_proxy_complete),
            ),
            ("endpoint change", change(&self.endpoint_change)),
            ("route change (90/10 → 70/30)", change(&self.route_change)),
            (
                "idle: CPU s / responses",
                format!(
                    "{:.3} s in {:.0} s / {}",
                    self.idle_cpu_s, self.idle_s, self.idle_responses
                ),
            ),
            (
                "bytes received per proxy p50 / max",
                format!(
                    "{:.0} / {:.0}",
                    self.bytes_per_proxy.p50, self.bytes_per_proxy.max
                ),
            ),
            (
                "responses received, all proxies",
                counts(&self.responses_by_type),
            ),
            (
                "control plane CPU s / peak RSS (MB)",
                format!("{:.2} / {:.1}", self.cpu_s, self.peak_rss_mb),
            ),
            (
                "connect failures / stream errors / server-closed / reconnects / NACKs",
                format!(
                    "{} / {} / {} / {} / {}",
                    self.connect_failures,
                    self.stream_errors,
                    self.server_closed,
                    self.reconnects,
                    self.nacks
                ),
            ),
            (
                "distinct final versions per type (1 = all equal)",
                types(&self.distinct_final_versions),
            ),
            (
                "proxies the control plane counts at its last generation",
                format!(
                    "{}/{} (generation {})",
                    self.proxies_at_final_generation, self.proxies, self.final_generation
                ),
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(t, "| {k} | {v} |");
        }
        for e in &self.errors {
            let _ = writeln!(t, "\nproxy error seen: {e}");
        }
        t
    }
}
