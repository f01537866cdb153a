//! Istio's standard metrics (`istio_requests_total`, `istio_tcp_sent_bytes_total`, …) from
//! bowline-proxy: who the two sides of a request are, and the store they are counted in.
//!
//! How each side learns the other (bowline's way, documented in README.md):
//! - **HTTP**: Istio's metadata exchange. A reporting chain adds `x-envoy-peer-metadata-id`
//!   and `x-envoy-peer-metadata` (its workload, base64 protobuf `Struct`) to the requests it
//!   sends upstream (source reporter) and to the responses it returns to a client that sent
//!   them (destination reporter), and removes the other side's from what it passes on. It
//!   works on plaintext and mTLS alike, and with Istio's own sidecars.
//! - **When no header came** (a TCP connection, or a peer without the exchange, such as an
//!   Envoy sidecar): the client side knows the endpoint it picked from its EDS metadata
//!   (Istio's `workload` value), and the server side looks the client's address up among
//!   every endpoint the proxy knows ([`PeerIndex`]); an address shared by several workloads
//!   (one machine without capture: all are 127.0.0.1) stays unknown rather than guessed.
//! - **Principals** are the mTLS certificates': the peer's SPIFFE id when the connection was
//!   mutual TLS, never taken from a header alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::HeaderValue;

use bowline_model as model;
use bowline_telemetry::access_log::AccessRecord;
use bowline_telemetry::cel::{Attributes, Expr};
use bowline_telemetry::exchange::{self, NodeMetadata};
use bowline_telemetry::metrics::{
    Families, IstioMetrics, Peer, Protocol, Reporter, RequestLabels, SecurityPolicy, TagEdits,
    TcpLabels,
};
use bowline_telemetry::ResponseFlags;

/// A peer workload as the metrics label it: with its principal (the connection was mutual
/// TLS) and without (plaintext, where Istio prints `unknown`).
#[derive(Debug, Default, PartialEq)]
pub struct KnownPeer {
    pub with_principal: Arc<Peer>,
    pub without_principal: Arc<Peer>,
}

impl KnownPeer {
    fn new(peer: Peer) -> KnownPeer {
        let without = Peer {
            principal: String::new(),
            ..peer.clone()
        };
        KnownPeer {
            with_principal: Arc::new(peer),
            without_principal: Arc::new(without),
        }
    }

    /// The labels for a connection that was (`mtls`) or was not mutual TLS.
    pub fn labels(&self, mtls: bool) -> &Arc<Peer> {
        if mtls {
            &self.with_principal
        } else {
            &self.without_principal
        }
    }

    /// An endpoint as its EDS metadata names it (Istio: app and version are the canonical
    /// service and revision there). Its principal is not in the metadata: the client side
    /// learns it from the connection's certificate or the exchange.
    pub fn of_endpoint(w: &model::istio_stats::EndpointWorkload) -> KnownPeer {
        KnownPeer::new(Peer {
            workload: w.workload.clone(),
            namespace: w.namespace.clone(),
            principal: String::new(),
            app: w.canonical_service.clone(),
            version: w.canonical_revision.clone(),
            cluster: w.cluster.clone(),
            canonical_service: w.canonical_service.clone(),
            canonical_revision: w.canonical_revision.clone(),
        })
    }

    /// A peer whose only known attribute is its certificate's SPIFFE id.
    pub fn principal_only(principal: &str) -> Arc<Peer> {
        Arc::new(Peer {
            principal: principal.to_string(),
            ..Peer::default()
        })
    }
}

/// The `destination_service*` labels of one service.
#[derive(Debug)]
pub struct ServiceLabels {
    pub host: Arc<str>,
    pub name: Arc<str>,
    pub namespace: Arc<str>,
}

impl ServiceLabels {
    /// From a host: `name.namespace.svc.<domain>` splits into its name and namespace; any
    /// other host (a ServiceEntry's) is its own name, namespace unknown (empty).
    pub fn of_host(host: &str) -> ServiceLabels {
        let host = host.trim_end_matches('.');
        let (name, namespace) = match host.split('.').collect::<Vec<_>>()[..] {
            [name, namespace, "svc", ..] => (name, namespace),
            _ => (host, ""),
        };
        ServiceLabels {
            host: host.into(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// From an outbound cluster name: Istio's `outbound|port|subset|host` names its host;
    /// `PassthroughCluster` and `BlackHoleCluster` name themselves (Istio's
    /// `destination_service_name` for traffic outside the registry), their host then being
    /// the request's authority.
    pub fn of_cluster(cluster: &str) -> Option<ServiceLabels> {
        outbound_port_host(cluster).map(|(_, host)| ServiceLabels::of_host(host))
    }

    /// Traffic outside the registry (Istio): the authority's host, named after the cluster
    /// that took it (`PassthroughCluster`, `BlackHoleCluster`).
    pub fn outside_registry(authority: &str, cluster: &str) -> ServiceLabels {
        let host = ServiceLabels::of_authority(authority, "");
        ServiceLabels {
            host: host.host,
            name: cluster.into(),
            namespace: "".into(),
        }
    }

    /// A request's authority as a service host: the port dropped, and a short name (`details`)
    /// completed in `namespace` as the cluster's DNS would.
    pub fn of_authority(authority: &str, namespace: &str) -> ServiceLabels {
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        };
        let short = !host.is_empty() && !host.contains('.') && !host.starts_with('[');
        if short && !namespace.is_empty() {
            return ServiceLabels::of_host(&format!("{host}.{namespace}.svc.cluster.local"));
        }
        ServiceLabels::of_host(host)
    }
}

/// The service labels made last for one key (a request's authority), kept so that the
/// requests that follow with the same key share them rather than each building them: a
/// cluster naming no service (the passthrough cluster, above all) labels by the authority,
/// and so does an inbound chain serving several services.
#[derive(Debug, Default)]
pub struct LastLabels(Mutex<Option<(Box<str>, Arc<ServiceLabels>)>>);

impl LastLabels {
    /// The labels for `key`, made by `make` when the last ones were for another key.
    pub fn get(&self, key: &str, make: impl FnOnce() -> ServiceLabels) -> Arc<ServiceLabels> {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, labels)) = last.as_ref() {
            if **seen == *key {
                return labels.clone();
            }
        }
        let labels = Arc::new(make());
        *last = Some((key.into(), labels.clone()));
        labels
    }
}

/// The port and host an Istio outbound cluster name (`outbound|port|subset|host`) names.
pub fn outbound_port_host(cluster: &str) -> Option<(&str, &str)> {
    let mut parts = cluster.split('|');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("outbound"), Some(port), Some(_), Some(host)) if !host.is_empty() => {
            Some((port, host))
        }
        _ => None,
    }
}

/// A filter chain's Istio metrics: who reports, who this proxy is, and the headers it sends.
#[derive(Debug)]
pub struct StatsRt {
    pub reporter: Reporter,
    pub local: KnownPeer,
    /// `spiffe://<trust domain>` of the local principal: a peer named by the exchange gets
    /// its principal in the same trust domain.
    trust_domain: String,
    /// The service an inbound chain serves, when it serves one.
    pub service: Option<Arc<ServiceLabels>>,
    /// A peer nothing is known of.
    unknown: Arc<Peer>,
    /// A service nothing is known of.
    unknown_service: Arc<ServiceLabels>,
    pub exchange_id: HeaderValue,
    pub exchange_value: HeaderValue,
    pub metrics: Arc<IstioMetrics>,
    pub peers: Arc<PeerCache>,
    /// The metrics recorded (all but those the Telemetry API disabled).
    pub families: Families,
    /// The Telemetry API's tag overrides, per metric (one family each).
    tags: Vec<FamilyTags>,
    /// Some tag override of a recorded HTTP metric reads the request's attributes.
    reads_requests: bool,
    /// Inbound without one service: the labels of the last authority seen.
    pub by_authority: LastLabels,
}

/// One metric's tag overrides, parsed: label name → its value's expression (UPSERT) or
/// `None` (REMOVE).
#[derive(Debug)]
struct FamilyTags {
    family: Families,
    tags: Vec<(String, Option<Expr>)>,
}

/// The evaluated tag overrides of a TCP connection's metrics (none by default), computed
/// once when its peer is known.
#[derive(Debug, Default)]
pub struct TcpEdits(Vec<(Families, Edits)>);

/// One metric's evaluated tag overrides (see [`TagEdits`]).
type Edits = Vec<(String, Option<String>)>;

impl TcpEdits {
    fn of(&self, family: Families) -> &TagEdits {
        self.0
            .iter()
            .find(|(f, _)| *f == family)
            .map_or(&[], |(_, edits)| edits.as_slice())
    }
}

/// What an override's expression gives for one request: its value as a label, or Istio's
/// `unknown` when it cannot be evaluated.
fn evaluate(tags: &[(String, Option<Expr>)], attrs: &dyn Attributes) -> Edits {
    tags.iter()
        .map(|(name, expr)| {
            let value = expr.as_ref().map(|e| match e.eval(attrs) {
                Ok(v) => v.to_label(),
                Err(_) => "unknown".to_string(),
            });
            (name.clone(), value)
        })
        .collect()
}

impl StatsRt {
    pub fn new(
        config: &model::istio_stats::IstioStats,
        metrics: Arc<IstioMetrics>,
        peers: Arc<PeerCache>,
    ) -> Result<StatsRt, String> {
        let model::istio_stats::IstioStats {
            reporter,
            local,
            service,
            disabled_metrics,
            tag_overrides,
        } = config;
        let mut families = Families::ALL;
        for name in disabled_metrics {
            match Families::by_name(name) {
                Some(f) => families = families.without(f),
                None => return Err(format!("istio.stats: unknown metric {name:?}")),
            }
        }
        let mut tags = Vec::new();
        for (metric, overrides) in tag_overrides {
            let family = Families::by_name(metric)
                .filter(|f| *f != Families::ALL)
                .ok_or_else(|| {
                    format!("istio.stats: unknown metric {metric:?} in tag_overrides")
                })?;
            let parsed = overrides
                .iter()
                .map(|(tag, value)| {
                    let expr = value
                        .as_deref()
                        .map(Expr::parse)
                        .transpose()
                        .map_err(|e| format!("istio.stats: tag {tag:?} of {metric}: {e}"))?;
                    Ok((tag.clone(), expr))
                })
                .collect::<Result<_, String>>()?;
            tags.push(FamilyTags {
                family,
                tags: parsed,
            });
        }
        let reads_requests = tags
            .iter()
            .any(|t| Families::HTTP.contains(t.family) && families.contains(t.family));
        let model::istio_stats::LocalWorkload {
            node_id,
            name,
            workload,
            namespace,
            cluster,
            service_account,
            principal,
            labels,
        } = local;
        let meta = NodeMetadata {
            name: name.clone(),
            namespace: namespace.clone(),
            workload_name: workload.clone(),
            cluster_id: cluster.clone(),
            service_account: service_account.clone(),
            labels: labels.clone(),
        };
        let mut peer = meta.peer();
        peer.principal = principal.clone();
        let header = |v: String, what: &str| {
            HeaderValue::try_from(v)
                .map_err(|_| format!("istio.stats: {what} is not a header value"))
        };
        Ok(StatsRt {
            reporter: match reporter {
                model::istio_stats::StatsReporter::Source => Reporter::Source,
                model::istio_stats::StatsReporter::Destination => Reporter::Destination,
            },
            local: KnownPeer::new(peer),
            trust_domain: trust_domain(principal).to_string(),
            service: service
                .as_deref()
                .map(|host| Arc::new(ServiceLabels::of_host(host))),
            unknown: Arc::default(),
            unknown_service: Arc::new(ServiceLabels::of_host("")),
            exchange_id: header(node_id.clone(), "node_id")?,
            exchange_value: header(exchange::encode(&meta), "the metadata")?,
            metrics,
            peers,
            families,
            tags,
            reads_requests,
            by_authority: LastLabels::default(),
        })
    }

    /// Whether tag overrides read a request's attributes (its record is then kept).
    pub fn reads_requests(&self) -> bool {
        self.reads_requests
    }

    /// The tag overrides of a TCP connection's metrics, evaluated over its `record`.
    pub fn tcp_edits(&self, record: &AccessRecord<'_>) -> TcpEdits {
        TcpEdits(
            self.tags
                .iter()
                .filter(|t| !Families::HTTP.contains(t.family))
                .map(|t| (t.family, evaluate(&t.tags, record)))
                .collect(),
        )
    }

    /// The peer a metadata-exchange header names (decoded once per distinct value).
    pub fn exchanged_peer(&self, value: &HeaderValue) -> Option<Arc<KnownPeer>> {
        self.peers.get(value, &self.trust_domain)
    }

    /// The two sides of a request or connection, and how the destination saw it secured.
    /// The destination reporter takes the client's principal from its certificate (never
    /// from a header alone: a named peer whose certificate says otherwise is labelled with
    /// the certificate's); the source reporter reports the principals when its cluster
    /// speaks mutual TLS, and `unknown` security (Istio: not known from the source side).
    fn sides(&self, seen: &Sides<'_>) -> (Arc<Peer>, Arc<Peer>, SecurityPolicy) {
        match self.reporter {
            Reporter::Destination => {
                let principal = seen.downstream_principal;
                let source = match (seen.peer, principal) {
                    (Some(p), Some(pr)) if p.with_principal.principal == pr => {
                        p.with_principal.clone()
                    }
                    (Some(p), Some(pr)) => Arc::new(Peer {
                        principal: pr.to_string(),
                        ..(*p.without_principal).clone()
                    }),
                    (Some(p), None) => p.without_principal.clone(),
                    (None, Some(pr)) => KnownPeer::principal_only(pr),
                    (None, None) => self.unknown.clone(),
                };
                let mtls = principal.is_some();
                let policy = if mtls {
                    SecurityPolicy::MutualTls
                } else {
                    SecurityPolicy::None
                };
                (source, self.local.labels(mtls).clone(), policy)
            }
            Reporter::Source => {
                let mtls = seen.upstream_mtls;
                let known = seen.peer.or(seen.upstream_peer);
                let destination = match (known, seen.upstream_principal) {
                    (Some(p), Some(pr)) if p.with_principal.principal != pr => Arc::new(Peer {
                        principal: pr.to_string(),
                        ..(*p.without_principal).clone()
                    }),
                    (None, Some(pr)) => KnownPeer::principal_only(pr),
                    (Some(p), _) => p.labels(mtls).clone(),
                    (None, None) => self.unknown.clone(),
                };
                (
                    self.local.labels(mtls).clone(),
                    destination,
                    SecurityPolicy::Unknown,
                )
            }
        }
    }

    /// Counts one finished HTTP request.
    pub fn record_request(&self, r: &RequestReport<'_>) {
        let (source, destination, policy) = self.sides(&r.sides);
        let service = r.sides.service.unwrap_or(&self.unknown_service);
        let labels = RequestLabels {
            reporter: self.reporter,
            source,
            destination,
            destination_service: service.host.clone(),
            destination_service_name: service.name.clone(),
            destination_service_namespace: service.namespace.clone(),
            request_protocol: if r.grpc {
                Protocol::Grpc
            } else {
                Protocol::Http
            },
            response_code: r.status,
            grpc_response_status: r.grpc_status,
            response_flags: r.flags,
            connection_security_policy: policy,
        };
        let mut plain = self.families;
        let http = Families(self.families.0 & Families::HTTP.0);
        for t in self.tags.iter().filter(|t| http.contains(t.family)) {
            plain = plain.without(t.family);
            let edits = evaluate(&t.tags, r.record.unwrap_or(&AccessRecord::default()));
            self.metrics.record_request_edited(
                t.family,
                &labels,
                &edits,
                r.duration,
                r.request_bytes,
                r.response_bytes,
            );
        }
        self.metrics.record_request_of(
            plain,
            &labels,
            r.duration,
            r.request_bytes,
            r.response_bytes,
        );
    }

    /// A connection opened (unless the Telemetry API disabled the metric).
    pub fn tcp_opened(&self, labels: &TcpLabels, edits: &TcpEdits) {
        let family = Families::TCP_OPENED_CONNECTIONS;
        if self.families.contains(family) {
            self.metrics.tcp_opened(labels, edits.of(family));
        }
    }

    pub fn tcp_closed(&self, labels: &TcpLabels, edits: &TcpEdits) {
        let family = Families::TCP_CLOSED_CONNECTIONS;
        if self.families.contains(family) {
            self.metrics.tcp_closed(labels, edits.of(family));
        }
    }

    pub fn tcp_bytes(&self, labels: &TcpLabels, edits: &TcpEdits, sent: u64, received: u64) {
        if edits.0.is_empty() {
            // Both counters of one series: one lookup.
            self.metrics
                .tcp_bytes_of(self.families, labels, &[], sent, received);
            return;
        }
        // Each byte counter with its own overrides.
        for family in [Families::TCP_SENT_BYTES, Families::TCP_RECEIVED_BYTES] {
            if self.families.contains(family) {
                self.metrics
                    .tcp_bytes_of(family, labels, edits.of(family), sent, received);
            }
        }
    }

    /// The labels of a TCP connection.
    pub fn tcp_labels(&self, sides: &Sides<'_>, flags: ResponseFlags) -> TcpLabels {
        let (source, destination, policy) = self.sides(sides);
        let service = sides.service.unwrap_or(&self.unknown_service);
        TcpLabels {
            reporter: self.reporter,
            source,
            destination,
            destination_service: service.host.clone(),
            destination_service_name: service.name.clone(),
            destination_service_namespace: service.namespace.clone(),
            response_flags: flags,
            connection_security_policy: policy,
        }
    }
}

/// What a chain saw of the two sides of a request or connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sides<'a> {
    /// Named by a metadata-exchange header, or (inbound) by the client's address.
    pub peer: Option<&'a Arc<KnownPeer>>,
    /// The upstream endpoint picked (outbound), by its EDS metadata.
    pub upstream_peer: Option<&'a Arc<KnownPeer>>,
    /// The client certificate's SPIFFE id (inbound, mutual TLS).
    pub downstream_principal: Option<&'a str>,
    /// The upstream cluster presents a client certificate.
    pub upstream_mtls: bool,
    /// The upstream certificate's SPIFFE id, when the connection shows it (TCP).
    pub upstream_principal: Option<&'a str>,
    pub service: Option<&'a Arc<ServiceLabels>>,
}

/// One finished HTTP request, as Istio's request metrics count it.
#[derive(Debug)]
pub struct RequestReport<'a> {
    pub sides: Sides<'a>,
    pub grpc: bool,
    /// The status sent downstream (0 when none was).
    pub status: u16,
    pub grpc_status: Option<u32>,
    pub flags: ResponseFlags,
    pub duration: std::time::Duration,
    /// Wire bytes, headers and body, as Istio counts them.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The request's record, which tag overrides read (`None`: they see no attribute).
    pub record: Option<&'a AccessRecord<'a>>,
}

/// `spiffe://td` of `spiffe://td/ns/x/sa/y` (empty when the principal is not a SPIFFE id).
fn trust_domain(principal: &str) -> &str {
    let Some(rest) = principal.strip_prefix("spiffe://") else {
        return "";
    };
    let end = rest
        .find('/')
        .map_or(principal.len(), |i| i + "spiffe://".len());
    &principal[..end]
}

/// Decoded metadata-exchange values: a client sends the same value on every request, so it
/// is decoded once. Bounded: when full it starts over (values are few — one per peer
/// workload — unless a client sends garbage, which then costs it a decode each time).
#[derive(Debug, Default)]
pub struct PeerCache {
    decoded: Mutex<HashMap<Bytes, Option<Arc<KnownPeer>>>>,
}

const PEER_CACHE_CAPACITY: usize = 4096;

impl PeerCache {
    fn get(&self, value: &HeaderValue, trust_domain: &str) -> Option<Arc<KnownPeer>> {
        let mut decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = decoded.get(value.as_bytes()) {
            return known.clone();
        }
        let known = exchange::decode(value.as_bytes()).ok().map(|meta| {
            let mut peer = meta.peer();
            if !trust_domain.is_empty()
                && !meta.namespace.is_empty()
                && !meta.service_account.is_empty()
            {
                peer.principal = format!(
                    "{trust_domain}/ns/{}/sa/{}",
                    meta.namespace, meta.service_account
                );
            }
            Arc::new(KnownPeer::new(peer))
        });
        if decoded.len() >= PEER_CACHE_CAPACITY {
            decoded.clear();
        }
        decoded.insert(Bytes::copy_from_slice(value.as_bytes()), known.clone());
        known
    }
}

/// Every endpoint the proxy knows, by IP: how the server side names a client that sent no
/// exchange header. An IP claimed by two different workloads maps to `None`.
#[derive(Debug, Default)]
pub struct PeerIndex {
    by_ip: HashMap<IpAddr, Option<Arc<KnownPeer>>>,
}

impl PeerIndex {
    pub fn new<'a>(
        assignments: impl Iterator<Item = &'a model::ClusterLoadAssignment>,
    ) -> PeerIndex {
        let mut seen: HashMap<IpAddr, Option<&model::istio_stats::EndpointWorkload>> =
            HashMap::new();
        for cla in assignments {
            for e in cla.endpoints.iter().flat_map(|l| &l.lb_endpoints) {
                let Some(w) = e.workload.as_deref() else {
                    continue;
                };
                seen.entry(e.address.ip())
                    .and_modify(|known| {
                        if known
                            .is_some_and(|k| k.workload != w.workload || k.namespace != w.namespace)
                        {
                            *known = None;
                        }
                    })
                    .or_insert(Some(w));
            }
        }
        PeerIndex {
            by_ip: seen
                .into_iter()
                .map(|(ip, w)| (ip, w.map(|w| Arc::new(KnownPeer::of_endpoint(w)))))
                .collect(),
        }
    }

    pub fn get(&self, ip: IpAddr) -> Option<&Arc<KnownPeer>> {
        self.by_ip.get(&ip)?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_labels_from_hosts_clusters_and_authorities() {
        let cases = [
            (
                ServiceLabels::of_host("details.default.svc.cluster.local"),
                ("details.default.svc.cluster.local", "details", "default"),
            ),
            (
                ServiceLabels::of_host("api.example.com"),
                ("api.example.com", "api.example.com", ""),
            ),
            (
                ServiceLabels::of_cluster("outbound|9080|v1|reviews.bookinfo.svc.cluster.local")
                    .unwrap(),
                ("reviews.bookinfo.svc.cluster.local", "reviews", "bookinfo"),
            ),
            (
                ServiceLabels::of_authority("details:9080", "default"),
                ("details.default.svc.cluster.local", "details", "default"),
            ),
            (
                ServiceLabels::of_authority("details.other:9080", "default"),
                ("details.other", "details.other", ""),
            ),
            (
                ServiceLabels::of_authority("[::1]:80", "default"),
                ("[::1]", "[::1]", ""),
            ),
        ];
        for (got, (host, name, namespace)) in cases {
            assert_eq!(
                (&*got.host, &*got.name, &*got.namespace),
                (host, name, namespace)
            );
        }
        assert!(ServiceLabels::of_cluster("PassthroughCluster").is_none());
        assert!(ServiceLabels::of_cluster("inbound|9080||").is_none());
    }

    #[test]
    fn trust_domain_of_principals() {
        assert_eq!(
            trust_domain("spiffe://cluster.local/ns/a/sa/b"),
            "spiffe://cluster.local"
        );
        assert_eq!(trust_domain("spiffe://td"), "spiffe://td");
        assert_eq!(trust_domain("not-spiffe"), "");
    }

    fn endpoint(ip: [u8; 4], workload: &str) -> model::LbEndpoint {
        model::LbEndpoint {
            address: (ip, 9080).into(),
            weight: 1,
            health: Default::default(),
            workload: Some(Arc::new(model::istio_stats::EndpointWorkload {
                workload: workload.into(),
                namespace: "default".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn an_address_shared_by_two_workloads_names_neither() {
        let cla = model::ClusterLoadAssignment {
            cluster_name: "c".into(),
            endpoints: vec![model::LocalityLbEndpoints {
                locality: None,
                priority: 0,
                weight: None,
                lb_endpoints: vec![
                    endpoint([10, 0, 0, 1], "details-v1"),
                    endpoint([10, 0, 0, 1], "details-v1"),
                    endpoint([127, 0, 0, 1], "details-v1"),
                    endpoint([127, 0, 0, 1], "reviews-v1"),
                ],
            }],
            overprovisioning_factor: 140,
        };
        let index = PeerIndex::new(std::iter::once(&cla));
        let known = index.get([10, 0, 0, 1].into()).expect("one workload");
        assert_eq!(known.with_principal.workload, "details-v1");
        assert!(index.get([127, 0, 0, 1].into()).is_none());
        assert!(index.get([10, 9, 9, 9].into()).is_none());
    }
}
