//! One run, start to end: generate the mesh, start the control plane, connect the proxies,
//! then measure the full push, an endpoint change, a route change and an idle period.
//! Every wait is bounded by `timeout`; the control plane is killed when the run ends.

use crate::control::{raise_nofile_limit, ControlFlags, ControlPlane};
use crate::fleet::Fleet;
use crate::measure::{wait_until, Spread};
use crate::mesh::{Mesh, MeshSpec, ServiceEdit};
use crate::proxy::record::{Kind, Probe};
use crate::proxy::Protocol;
use crate::report::{ChangeResult, Results};
use anyhow::Context;
use bowline_xds::pb::envoy::config::core::v3::address;
use bowline_xds::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use bowline_xds::pb::envoy::config::route::v3::{route, route_action, RouteConfiguration};
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::unpack;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which protocol the proxies speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolChoice {
    Sotw,
    Delta,
    /// Even proxies SotW, odd ones delta.
    Mixed,
}

impl ProtocolChoice {
    fn of(self, j: usize) -> Protocol {
        match self {
            ProtocolChoice::Sotw => Protocol::Sotw,
            ProtocolChoice::Delta => Protocol::Delta,
            ProtocolChoice::Mixed if j.is_multiple_of(2) => Protocol::Sotw,
            ProtocolChoice::Mixed => Protocol::Delta,
        }
    }
}

/// Where the mesh comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    /// Files in the watched config directory (one per service, renamed into place).
    Files,
    /// A stand-in Kubernetes API server (Services, Pods, EndpointSlices, Istio kinds) the
    /// control plane watches with `--kubernetes`, through the real kube-rs client.
    Kubernetes,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: MeshSpec,
    pub proxies: usize,
    pub protocol: ProtocolChoice,
    pub bowline: PathBuf,
    /// Bound of every wait (start, full push, each change).
    pub timeout: Duration,
    /// Proxies started at a time.
    pub wave: usize,
    /// After a change reached every proxy using the changed service: how long to keep
    /// counting responses (to see unrelated types pushed too, or proxies that do not use it
    /// sent something).
    pub settle: Duration,
    pub idle: Duration,
    /// Endpoint changes to make, one after the other, each on another service; the
    /// latency spread is over every (change, using proxy) pair.
    pub endpoint_changes: usize,
    pub flags: ControlFlags,
    pub source: SourceChoice,
}

/// Runs the scenario; an error means the run itself failed (the control plane did not
/// start, refused the generated config, or proxies never completed the first push).
pub async fn run(opts: &Options) -> anyhow::Result<Results> {
    let spec = opts.spec;
    let clusters = (0..opts.proxies).map(|j| spec.expected_clusters(j));
    let mut res = Results {
        spec: Some(spec),
        proxies: opts.proxies,
        protocol: format!("{:?}", opts.protocol).to_lowercase(),
        expected_clusters: clusters.clone().max().unwrap_or(0),
        expected_clusters_min: clusters.min().unwrap_or(0),
        nofile_limit: raise_nofile_limit().context("raise RLIMIT_NOFILE")?,
        ..Default::default()
    };
    let root = tempfile::Builder::new().prefix("xds-load-").tempdir()?;
    let mesh = match opts.source {
        SourceChoice::Files => Mesh::write(spec, root.path())?,
        SourceChoice::Kubernetes => Mesh::serve(spec, root.path()).await?,
    };
    let (mut cp, start) = ControlPlane::start(
        &opts.bowline,
        &mesh.sink,
        root.path(),
        &opts.flags,
        spec.expected_resources(),
        opts.timeout,
    )
    .await?;
    res.listening_ms = ms(start.listening);
    res.ready_ms = ms(start.ready);
    res.config_loaded_ms = ms(start.config_loaded);

    // b. full push
    let protocols: Vec<Protocol> = (0..opts.proxies).map(|j| opts.protocol.of(j)).collect();
    let deadline = Instant::now() + opts.timeout;
    let mut fleet = Fleet::start(cp.xds_addr, &spec, &protocols, opts.wave, deadline).await;
    wait_until(deadline, || fleet.all(|r| r.complete_at.is_some())).await;
    let done = fleet.collect(|_, r| (r.first_connect, r.complete_at));
    res.complete = done.iter().filter(|(_, c)| c.is_some()).count();
    let first = done.iter().filter_map(|(f, _)| *f).min();
    let last = done.iter().filter_map(|(_, c)| *c).max();
    if let (Some(first), Some(last)) = (first, last) {
        res.full_push_ms = ms(last.saturating_duration_since(first));
    }
    res.per_proxy_complete = Spread::of_ms(
        done.iter()
            .filter_map(|(f, c)| Some(c.as_ref()?.saturating_duration_since((*f)?))),
    );
    if res.complete < opts.proxies {
        let alive = cp.alive();
        anyhow::bail!(
            "only {}/{} proxies got the complete config ({}–{} clusters) within {:?} (control plane alive: {alive}); {}",
            res.complete, opts.proxies, res.expected_clusters_min, res.expected_clusters,
            opts.timeout, incomplete_hint(&fleet)
        );
    }

    // c. endpoint changes: services 1, 2, ... (skipping those with a DestinationRule, and
    // those no proxy uses) each move their endpoint 0 to a fresh address, one change after
    // the other.
    let mut rounds = Vec::new();
    let services = spec.endpoint_change_services(opts.proxies, opts.endpoint_changes.max(1));
    for (round, service) in services.into_iter().enumerate() {
        let moved_to = spec.fresh_address(round);
        let wanted = moved_to.clone();
        let probe = Probe {
            id: 0,
            kind: Kind::Eds,
            name: spec.cluster(service, ""),
            matches: Box::new(move |any| cla_has_address(any, &wanted)),
        };
        let edit = ServiceEdit {
            moved: Some((0, moved_to)),
            ..Default::default()
        };
        let users = spec.users(service, opts.proxies);
        rounds.push(
            change(&mut fleet, probe, &users, opts, || {
                mesh.rewrite_service(service, &edit)
            })
            .await?,
        );
    }
    res.endpoint_change = ChangeResult::merge(rounds);

    // d. route change: service 0's VirtualService goes 90/10 → 70/30 (proxy 0 is in its
    // namespace, so it has a user whatever the scope).
    let v1 = spec.cluster(0, "v1");
    let probe = Probe {
        id: 0,
        kind: Kind::Rds,
        name: crate::mesh::SERVICE_PORT.to_string(),
        matches: Box::new(move |any| route_weight(any, &v1) == Some(70)),
    };
    let edit = ServiceEdit {
        v1_weight: 70,
        ..Default::default()
    };
    let users = spec.users(0, opts.proxies);
    res.route_change = change(&mut fleet, probe, &users, opts, || {
        mesh.rewrite_service(0, &edit)
    })
    .await?;

    // e. idle
    let before = cp.cost();
    let t0 = Instant::now();
    tokio::time::sleep(opts.idle).await;
    res.idle_s = t0.elapsed().as_secs_f64();
    res.idle_cpu_s = cp.cost().cpu_s - before.cpu_s;
    res.idle_responses = fleet
        .collect(|_, r| r.arrivals.iter().filter(|(t, _)| *t >= t0).count() as u64)
        .iter()
        .sum();

    // f. totals
    let syncz = cp.syncz().await.context("read /debug/syncz")?;
    (res.final_generation, res.proxies_at_final_generation) = at_final_generation(&syncz);
    let cost = cp.cost();
    res.cpu_s = cost.cpu_s;
    res.peak_rss_mb = cost.peak_rss_kb as f64 / 1024.0;
    res.bytes_per_proxy = Spread::of(fleet.collect(|_, r| r.bytes as f64));
    for counts in fleet.collect(|_, r| r.responses) {
        for (total, n) in res.responses_by_type.iter_mut().zip(counts) {
            *total += n;
        }
    }
    for t in fleet.collect(|_, r| r.troubles) {
        res.connect_failures += t.connect_failures;
        res.stream_errors += t.stream_errors;
        res.server_closed += t.server_closed;
        res.reconnects += t.reconnects;
        res.nacks += t.nacks;
    }
    let errors: BTreeSet<String> = fleet
        .collect(|_, r| r.last_error.clone())
        .into_iter()
        .flatten()
        .collect();
    res.errors = errors.into_iter().take(5).collect();
    // SotW and delta versions are different strings: compare within each protocol.
    for kind in Kind::ALL {
        let versions: BTreeSet<(&str, String)> = fleet
            .collect(|p, r| (p.as_str(), r.last_version[kind as usize].clone()))
            .into_iter()
            .collect();
        res.distinct_final_versions[kind as usize] = [Protocol::Sotw, Protocol::Delta]
            .iter()
            .map(|p| versions.iter().filter(|(q, _)| *q == p.as_str()).count())
            .max()
            .unwrap_or(0);
    }
    drop(fleet);
    drop(cp);
    Ok(res)
}

/// The control plane's generation and how many proxies `/debug/syncz` shows at it.
fn at_final_generation(syncz: &serde_json::Value) -> (u64, usize) {
    let generation = syncz["generation"].as_u64().unwrap_or(0);
    let at = syncz["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["applied_generation"].as_u64() == Some(generation))
        .count();
    (generation, at)
}

/// Applies one change and measures how it reaches the proxies (see [`ChangeResult`]):
/// waits until every proxy `users` marks got the probe (or the timeout passed), then the
/// settle window; latencies are over the users, and what the others received after the
/// change is counted apart.
async fn change(
    fleet: &mut Fleet,
    probe: Probe,
    users: &[bool],
    opts: &Options,
    apply: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<ChangeResult> {
    let id = fleet.arm(probe);
    let t0 = Instant::now();
    apply()?;
    let hit = |r: &crate::proxy::record::Record| r.probe_hit.filter(|(p, _)| *p == id);
    let uses = |j: usize| users.get(j).copied().unwrap_or(false);
    wait_until(t0 + opts.timeout, || {
        fleet.all_where(uses, |r| hit(r).is_some())
    })
    .await;
    tokio::time::sleep(opts.settle).await;
    fleet.disarm();
    let seen = fleet.collect(|_, r| {
        let after: Vec<Kind> = r
            .arrivals
            .iter()
            .filter(|(t, _)| *t >= t0)
            .map(|(_, k)| *k)
            .collect();
        (hit(r).map(|(_, t)| t.saturating_duration_since(t0)), after)
    });
    Ok(tally(seen, uses))
}

/// What one proxy saw of a change: when the probe matched (after the change), and the type
/// of every response it received after the change.
type Seen = (Option<Duration>, Vec<Kind>);

/// The [`ChangeResult`] of what each proxy saw, proxy `j` being a user when `uses(j)`:
/// users give the latencies and the per-type counts, non-users only how much they received.
fn tally(seen: Vec<Seen>, uses: impl Fn(usize) -> bool) -> ChangeResult {
    let (used, unused): (Vec<_>, Vec<_>) =
        seen.into_iter().enumerate().partition(|(j, _)| uses(*j));
    let mut out = ChangeResult {
        of: used.len(),
        non_users: unused.len(),
        ..Default::default()
    };
    out.samples = used.iter().filter_map(|(_, (d, _))| *d).collect();
    out.latency = Spread::of_ms(out.samples.iter().copied());
    out.reached = out.latency.n;
    for (_, (_, after)) in &used {
        if !after.is_empty() {
            out.proxies_with_any_response += 1;
        }
        for kind in Kind::ALL {
            let n = after.iter().filter(|k| **k == kind).count();
            out.responses_by_type[kind as usize] += n as u64;
            out.proxies_by_type[kind as usize] += usize::from(n > 0);
        }
    }
    for (_, (_, after)) in &unused {
        out.non_users_with_any_response += usize::from(!after.is_empty());
        out.non_user_responses += after.len() as u64;
    }
    out
}

/// Whether a ClusterLoadAssignment lists `address`.
fn cla_has_address(any: &Any, address: &str) -> bool {
    let Ok(cla) = unpack::<ClusterLoadAssignment>(any) else {
        return false;
    };
    cla.endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => ep.address.as_ref(),
            _ => None,
        })
        .any(|a| matches!(&a.address, Some(address::Address::SocketAddress(s)) if s.address == address))
}

/// The weight a RouteConfiguration gives `cluster` in a weighted route, if any.
fn route_weight(any: &Any, cluster: &str) -> Option<u32> {
    let rc = unpack::<RouteConfiguration>(any).ok()?;
    rc.virtual_hosts
        .iter()
        .flat_map(|vh| &vh.routes)
        .filter_map(|r| match &r.action {
            Some(route::Action::Route(a)) => match &a.cluster_specifier {
                Some(route_action::ClusterSpecifier::WeightedClusters(w)) => Some(w),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|w| &w.clusters)
        .find(|c| c.name == cluster)
        .and_then(|c| c.weight.as_ref().map(|w| w.value))
}

/// What the first incomplete proxy lacks, for the error message.
fn incomplete_hint(fleet: &Fleet) -> String {
    let lacking = fleet.collect(|p, r| {
        (r.complete_at.is_none()).then(|| {
            format!(
                "e.g. a {} proxy: connected {}, responses CDS/EDS/LDS/RDS {:?}, held {:?}, wanted EDS {} RDS {}, troubles {:?}",
                p.as_str(),
                r.first_connect.is_some(),
                r.responses,
                r.held.iter().map(|h| h.len()).collect::<Vec<_>>(),
                r.wanted[Kind::Eds as usize].len(),
                r.wanted[Kind::Rds as usize].len(),
                r.troubles
            )
        })
    });
    lacking.into_iter().flatten().next().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_at_the_final_generation_are_counted_from_syncz() {
        let syncz = serde_json::json!({"generation": 7, "proxies": [
            {"node_id": "a", "applied_generation": 7},
            {"node_id": "b", "applied_generation": 6},
            {"node_id": "c", "applied_generation": null},
            {"node_id": "d", "applied_generation": 7},
        ]});
        assert_eq!(at_final_generation(&syncz), (7, 2));
        assert_eq!(at_final_generation(&serde_json::json!({})), (0, 0));
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn tally_times_users_and_counts_what_non_users_received() {
        let seen: Vec<Seen> = vec![
            (Some(5 * MS), vec![Kind::Eds]),
            (None, vec![Kind::Cds, Kind::Eds]),
            (None, vec![]),
            (Some(9 * MS), vec![Kind::Eds, Kind::Eds]),
            (None, vec![]),
        ];
        // Proxies 0 and 3 use the service; 1, 2 and 4 do not.
        let c = tally(seen.clone(), |j| j == 0 || j == 3);
        assert_eq!((c.reached, c.of), (2, 2));
        assert_eq!((c.latency.p50, c.latency.max), (5.0, 9.0));
        assert_eq!(c.proxies_with_any_response, 2);
        assert_eq!(c.responses_by_type, [0, 3, 0, 0]);
        assert_eq!(c.proxies_by_type, [0, 2, 0, 0]);
        assert_eq!(
            (
                c.non_users,
                c.non_users_with_any_response,
                c.non_user_responses
            ),
            (3, 1, 2)
        );

        // Everyone a user (no Sidecar scope): no non-users, every proxy counted as before.
        let all = tally(seen, |_| true);
        assert_eq!((all.reached, all.of, all.non_users), (2, 5, 0));
        assert_eq!(
            (all.non_users_with_any_response, all.non_user_responses),
            (0, 0)
        );
        assert_eq!(all.proxies_with_any_response, 3);
        assert_eq!(all.responses_by_type, [1, 4, 0, 0]);

        let merged = ChangeResult::merge(vec![c, all]);
        assert_eq!((merged.reached, merged.of, merged.non_users), (4, 7, 3));
        assert_eq!(
            (
                merged.non_users_with_any_response,
                merged.non_user_responses
            ),
            (1, 2)
        );
    }
}
