//! The simulated proxies as a whole: started in waves on the harness's runtime, read
//! together by the scenario, aborted when dropped.

use crate::measure::wait_until;
use crate::mesh::MeshSpec;
use crate::proxy::record::{Probe, Record, Shared};
use crate::proxy::{self, Protocol};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::task::JoinSet;

/// Every proxy's shared record and protocol; their tasks end when this is dropped.
pub struct Fleet {
    pub proxies: Vec<(Protocol, Shared)>,
    probe: Arc<RwLock<Option<Probe>>>,
    next_probe: u64,
    _tasks: JoinSet<()>,
}

impl Fleet {
    /// Starts `protocols.len()` proxies against `addr`, `wave` at a time: a wave's proxies
    /// must all have connected (or `deadline` passed) before the next wave starts. Proxy `j`
    /// is `spec.identity(j)` and is complete at `spec.expected_clusters(j)` clusters.
    pub async fn start(
        addr: SocketAddr,
        spec: &MeshSpec,
        protocols: &[Protocol],
        wave: usize,
        deadline: Instant,
    ) -> Fleet {
        let probe = Arc::new(RwLock::new(None));
        let mut tasks = JoinSet::new();
        let mut proxies = Vec::with_capacity(protocols.len());
        for (j, protocol) in protocols.iter().enumerate() {
            let shared = Shared {
                record: Arc::new(Mutex::new(Record::default())),
                probe: probe.clone(),
                expected_clusters: spec.expected_clusters(j),
            };
            let node = proxy::node(&spec.identity(j));
            tasks.spawn(proxy::run(addr, *protocol, node, shared.clone()));
            proxies.push((*protocol, shared));
            if (j + 1) % wave.max(1) == 0 {
                let this_wave = &proxies[j + 1 - wave.max(1)..];
                wait_until(deadline, || {
                    this_wave
                        .iter()
                        .all(|(_, s)| s.with(|r| r.first_connect.is_some()))
                })
                .await;
            }
        }
        Fleet {
            proxies,
            probe,
            next_probe: 0,
            _tasks: tasks,
        }
    }

    /// Runs `f` over every record, in order.
    pub fn collect<T>(&self, mut f: impl FnMut(Protocol, &Record) -> T) -> Vec<T> {
        self.proxies
            .iter()
            .map(|(p, s)| s.with(|r| f(*p, r)))
            .collect()
    }

    pub fn all(&self, mut f: impl FnMut(&Record) -> bool) -> bool {
        self.proxies.iter().all(|(_, s)| s.with(|r| f(r)))
    }

    /// Whether `f` holds for the record of every proxy `j` that `pick(j)` selects.
    pub fn all_where(
        &self,
        pick: impl Fn(usize) -> bool,
        mut f: impl FnMut(&Record) -> bool,
    ) -> bool {
        self.proxies
            .iter()
            .enumerate()
            .filter(|(j, _)| pick(*j))
            .all(|(_, (_, s))| s.with(|r| f(r)))
    }

    /// Arms a probe (replacing any), returning its id.
    pub fn arm(&mut self, mut probe: Probe) -> u64 {
        self.next_probe += 1;
        probe.id = self.next_probe;
        *self.probe.write().unwrap_or_else(|e| e.into_inner()) = Some(probe);
        self.next_probe
    }

    pub fn disarm(&self) {
        *self.probe.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
