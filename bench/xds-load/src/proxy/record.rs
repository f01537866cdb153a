//! What one simulated proxy knows and has seen, shared with the scenario that measures it.
//!
//! The proxy's task writes; the scenario reads snapshots of it under the lock. Timestamps
//! are taken by the proxy when a response arrives, so how often the scenario looks does not
//! change any measured latency.

use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::type_url;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// The four resource types a sidecar subscribes to, in push order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Cds = 0,
    Eds = 1,
    Lds = 2,
    Rds = 3,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Cds, Kind::Eds, Kind::Lds, Kind::Rds];

    pub fn type_url(self) -> &'static str {
        match self {
            Kind::Cds => type_url::CLUSTER,
            Kind::Eds => type_url::ENDPOINT,
            Kind::Lds => type_url::LISTENER,
            Kind::Rds => type_url::ROUTE,
        }
    }

    pub fn from_type_url(url: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_url() == url)
    }

    pub fn short(self) -> &'static str {
        type_url::short(self.type_url())
    }
}

/// One resource as held: its version and a digest of its bytes (to tell real changes from
/// re-sends), and the names it makes the proxy subscribe to (a cluster's EDS name, a
/// listener's route names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub version: String,
    pub digest: u64,
    pub refs: Vec<String>,
}

/// Connection trouble, counted: every one is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Troubles {
    /// The gRPC connection could not be made.
    pub connect_failures: u64,
    /// The stream failed with an error (transport error or a gRPC status).
    pub stream_errors: u64,
    /// The server ended the stream cleanly (no error): a proxy would reconnect.
    pub server_closed: u64,
    /// Streams opened after the first.
    pub reconnects: u64,
    /// Responses this proxy refused (could not decode): never expected.
    pub nacks: u64,
}

/// Everything the scenario measures about one proxy.
#[derive(Debug, Default)]
pub struct Record {
    pub first_connect: Option<Instant>,
    /// When the proxy first held the complete config (see `is_complete`).
    pub complete_at: Option<Instant>,
    pub held: [BTreeMap<String, Held>; 4],
    /// Names subscribed for EDS and RDS (CDS and LDS are wildcards).
    pub wanted: [BTreeSet<String>; 4],
    /// The version of the last response of each type (SotW `version_info`, delta
    /// `system_version_info`).
    pub last_version: [String; 4],
    /// Whether the last response of each type was ACKed.
    pub acked: [bool; 4],
    /// Encoded bytes of every response received.
    pub bytes: u64,
    pub responses: [u64; 4],
    /// Arrival time of every response, with its type.
    pub arrivals: Vec<(Instant, Kind)>,
    pub troubles: Troubles,
    /// The last stream or connect error, for the report.
    pub last_error: Option<String>,
    /// When the armed probe first matched: (probe id, time).
    pub probe_hit: Option<(u64, Instant)>,
}

impl Record {
    /// Complete: every type answered and ACKed, the expected number of clusters, and every
    /// subscribed endpoint and route name held.
    pub fn is_complete(&self, expected_clusters: usize) -> bool {
        let all_acked = Kind::ALL
            .iter()
            .all(|k| self.responses[*k as usize] > 0 && self.acked[*k as usize]);
        let holds = |k: Kind| {
            let held = &self.held[k as usize];
            !self.wanted[k as usize].is_empty()
                && self.wanted[k as usize].iter().all(|n| held.contains_key(n))
        };
        all_acked
            && self.held[Kind::Cds as usize].len() == expected_clusters
            && !self.held[Kind::Lds as usize].is_empty()
            && holds(Kind::Eds)
            && holds(Kind::Rds)
    }
}

/// A check the scenario arms to time when a specific content reaches each proxy.
pub struct Probe {
    pub id: u64,
    pub kind: Kind,
    pub name: String,
    pub matches: Box<dyn Fn(&Any) -> bool + Send + Sync>,
}

/// What every proxy task shares with the scenario.
#[derive(Clone)]
pub struct Shared {
    pub record: Arc<Mutex<Record>>,
    pub probe: Arc<RwLock<Option<Probe>>>,
    pub expected_clusters: usize,
}

impl Shared {
    /// Runs `f` on the record (the lock is never held across an await).
    pub fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut r = self.record.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r)
    }

    /// Checks the armed probe against a resource that just arrived.
    pub fn check_probe(&self, kind: Kind, name: &str, any: &Any, now: Instant) {
        let probe = self.probe.read().unwrap_or_else(|e| e.into_inner());
        let Some(p) = probe.as_ref() else { return };
        if p.kind != kind || p.name != name {
            return;
        }
        let id = p.id;
        if (p.matches)(any) {
            self.with(|r| {
                if r.probe_hit.is_none_or(|(seen, _)| seen != id) {
                    r.probe_hit = Some((id, now));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_needs_every_type_acked_and_every_wanted_name() {
        let mut r = Record::default();
        let held = |n: &str| {
            (
                n.to_string(),
                Held {
                    version: "1".into(),
                    digest: 0,
                    refs: vec![],
                },
            )
        };
        r.held[Kind::Cds as usize] = [held("a"), held("inbound")].into_iter().collect();
        r.held[Kind::Lds as usize] = [held("virtualOutbound")].into_iter().collect();
        r.wanted[Kind::Eds as usize] = ["a".to_string()].into_iter().collect();
        r.wanted[Kind::Rds as usize] = ["80".to_string()].into_iter().collect();
        r.held[Kind::Eds as usize] = [held("a")].into_iter().collect();
        r.responses = [1; 4];
        r.acked = [true; 4];
        assert!(!r.is_complete(2), "route 80 not held yet");
        r.held[Kind::Rds as usize] = [held("80")].into_iter().collect();
        assert!(r.is_complete(2));
        assert!(!r.is_complete(3), "one cluster missing");
        r.acked[Kind::Eds as usize] = false;
        assert!(!r.is_complete(2));
    }
}
