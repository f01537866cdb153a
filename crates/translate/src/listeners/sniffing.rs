//! Protocol detection on ports whose protocol nothing declares (Istio's protocol sniffing).
//!
//! Istio picks a port's protocol from its declared `protocol`, its Kubernetes
//! `appProtocol`, or its name's prefix (`http-…`, `tcp-…`). When none says, the outbound
//! listener decides per connection: the HTTP inspector reads the client's first bytes, an
//! HTTP request goes to the port's HTTP routes, anything else to its TCP chain.
//!
//! A server-first protocol (MySQL, SMTP: the server speaks first) sends no client bytes
//! until it sees a banner, so detection must give up: after the detection timeout the
//! connection continues as TCP. That timeout is MeshConfig's `protocolDetectionTimeout`
//! when set; Istio's default, 0, disables it (and makes server-first protocols on such ports
//! hang), so bowline uses 100 ms instead — Istio's own default before 1.8. An HTTP client
//! whose first request line has not arrived by then is taken for TCP: its bytes still reach
//! the service, without HTTP routing.
//!
//! The inspector is disabled on every other port (its `filter_disabled`, as Istio does), so
//! declared ports, TCP services and passthrough traffic never wait for it. The same goes for
//! the TLS inspector, which reads the SNI a VirtualService's `tls` rules route by: it runs
//! only on the ports that have such rules, under the same timeout.

use crate::proto::duration;
use bowline_config::MeshConfig;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::listener::v3::{
    listener_filter, listener_filter_chain_match_predicate::MatchSet,
    listener_filter_chain_match_predicate::Rule, ListenerFilter,
    ListenerFilterChainMatchPredicate as Predicate,
};
use bowline_xds::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use bowline_xds::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use bowline_xds::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use bowline_xds::pb::envoy::r#type::v3::Int32Range;
use bowline_xds::pb::google::protobuf::Duration;
use std::collections::BTreeSet;

const HTTP_INSPECTOR: &str = "envoy.filters.listener.http_inspector";
const ORIGINAL_DST: &str = "envoy.filters.listener.original_dst";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";

/// bowline's detection timeout when MeshConfig leaves it at 0.
pub(crate) const DEFAULT_DETECTION_TIMEOUT: std::time::Duration =
    std::time::Duration::from_millis(100);

/// The application protocols the HTTP inspector names for an HTTP client, which a sniffed
/// port's HTTP chain matches on.
pub(crate) fn http_protocols() -> Vec<String> {
    ["http/1.0", "http/1.1", "h2c"]
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// How long the outbound listener waits for a client's first bytes on a sniffed port.
pub(crate) fn detection_timeout(mesh: &MeshConfig) -> Duration {
    let configured = mesh.protocol_detection_timeout.as_std();
    duration(match configured.is_zero() {
        true => DEFAULT_DETECTION_TIMEOUT,
        false => configured,
    })
}

/// The listener filters that read the client's first bytes: the TLS inspector (SNI) on
/// `tls_ports`, then the HTTP inspector on `http_ports` (the sniffed ones); none without
/// either. The original destination is restored first (`envoy.filters.listener.original_dst`,
/// as Istio lists it): Envoy tests an inspector's `filter_disabled` against the connection's
/// local port, which before that is the listener's own.
pub(crate) fn listener_filters(
    http_ports: &BTreeSet<u16>,
    tls_ports: &BTreeSet<u16>,
) -> Vec<ListenerFilter> {
    let inspectors: Vec<ListenerFilter> = [
        only_on(tls_ports).map(|d| inspector(TLS_INSPECTOR, pack(&TlsInspector::default()), d)),
        only_on(http_ports).map(|d| inspector(HTTP_INSPECTOR, pack(&HttpInspector::default()), d)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if inspectors.is_empty() {
        return Vec::new();
    }
    let original_dst = ListenerFilter {
        name: ORIGINAL_DST.into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
            &OriginalDst::default(),
        ))),
        ..Default::default()
    };
    std::iter::once(original_dst).chain(inspectors).collect()
}

fn inspector(
    name: &str,
    config: bowline_xds::pb::google::protobuf::Any,
    disabled: Predicate,
) -> ListenerFilter {
    ListenerFilter {
        name: name.into(),
        filter_disabled: Some(disabled),
        config_type: Some(listener_filter::ConfigType::TypedConfig(config)),
    }
}

/// A `filter_disabled` that leaves a filter running on `ports` only; `None` without any.
fn only_on(ports: &BTreeSet<u16>) -> Option<Predicate> {
    let range = |p: &u16| Predicate {
        rule: Some(Rule::DestinationPortRange(Int32Range {
            start: i32::from(*p),
            end: i32::from(*p) + 1,
        })),
    };
    let mut on: Vec<Predicate> = ports.iter().map(range).collect();
    let on = match on.len() {
        0 => return None,
        1 => on.remove(0),
        _ => Predicate {
            rule: Some(Rule::OrMatch(MatchSet { rules: on })),
        },
    };
    Some(Predicate {
        rule: Some(Rule::NotMatch(Box::new(on))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inspector_runs_only_on_sniffed_ports_and_the_timeout_has_a_floor() {
        assert!(listener_filters(&BTreeSet::new(), &BTreeSet::new()).is_empty());
        for ports in [vec![3306], vec![3306, 8000]] {
            let filters = listener_filters(&ports.iter().copied().collect(), &BTreeSet::new());
            let listener = bowline_xds::pb::envoy::config::listener::v3::Listener {
                name: "l".into(),
                address: Some(crate::proto::socket_address("127.0.0.1", 1)),
                listener_filters: filters,
                default_filter_chain: Some(
                    bowline_xds::pb::envoy::config::listener::v3::FilterChain {
                        filters: vec![crate::listeners::tcp_proxy_to("c", &[])],
                        ..Default::default()
                    },
                ),
                ..Default::default()
            };
            // The proxy's own model reads where it runs.
            let model = bowline_model::Listener::try_from(&listener);
            let disabled = match model {
                Ok(m) => {
                    assert!(m.use_original_dst, "the original_dst filter restores it");
                    m.http_inspector_disabled.unwrap()
                }
                Err(e) => panic!("{e}"),
            };
            for port in [3306u16, 8000, 80] {
                assert_eq!(
                    !disabled.matches(port),
                    ports.contains(&port),
                    "{ports:?} {port}"
                );
            }
        }
        let mut mesh = MeshConfig::default();
        assert_eq!(
            detection_timeout(&mesh),
            duration(DEFAULT_DETECTION_TIMEOUT)
        );
        mesh.protocol_detection_timeout =
            bowline_config::common::Duration(std::time::Duration::from_secs(1));
        assert_eq!(
            detection_timeout(&mesh),
            duration(std::time::Duration::from_secs(1))
        );
    }
}
