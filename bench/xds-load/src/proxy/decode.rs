//! Reading just enough of each resource to act like Envoy: its name, and the names it makes
//! the proxy subscribe to next (a cluster's EDS name, the route names of a listener's HTTP
//! connection managers).

use super::record::{Held, Kind};
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use bowline_xds::pb::envoy::config::listener::v3::{filter, Listener};
use bowline_xds::pb::envoy::config::route::v3::RouteConfiguration;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::unpack;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The resource's name and what is held of it; an error is a reason to NACK.
pub fn decode(kind: Kind, any: &Any, version: &str) -> Result<(String, Held), String> {
    let fail = |e: bowline_xds::UnpackError| e.to_string();
    let (name, refs) = match kind {
        Kind::Cds => {
            let c: Cluster = unpack(any).map_err(fail)?;
            let refs = eds_name(&c).into_iter().collect();
            (c.name, refs)
        }
        Kind::Eds => {
            let cla: ClusterLoadAssignment = unpack(any).map_err(fail)?;
            (cla.cluster_name, Vec::new())
        }
        Kind::Lds => {
            let l: Listener = unpack(any).map_err(fail)?;
            let refs = route_names(&l)?;
            (l.name, refs)
        }
        Kind::Rds => {
            let r: RouteConfiguration = unpack(any).map_err(fail)?;
            (r.name, Vec::new())
        }
    };
    if name.is_empty() {
        return Err(format!("a {} resource has no name", kind.short()));
    }
    let mut h = DefaultHasher::new();
    any.value.hash(&mut h);
    let held = Held {
        version: version.to_string(),
        digest: h.finish(),
        refs,
    };
    Ok((name, held))
}

/// The name an EDS cluster's endpoints are requested by (`service_name`, else its name);
/// `None` for clusters not discovered over EDS.
fn eds_name(c: &Cluster) -> Option<String> {
    let eds = cluster::DiscoveryType::Eds as i32;
    match c.cluster_discovery_type {
        Some(cluster::ClusterDiscoveryType::Type(t)) if t == eds => {}
        _ => return None,
    }
    let service_name = c
        .eds_cluster_config
        .as_ref()
        .map(|e| e.service_name.clone())
        .unwrap_or_default();
    Some(if service_name.is_empty() {
        c.name.clone()
    } else {
        service_name
    })
}

/// Route names referenced over RDS by the listener's HTTP connection managers (every
/// filter chain and the default one), deduplicated.
fn route_names(l: &Listener) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let chains = l.filter_chains.iter().chain(l.default_filter_chain.iter());
    for f in chains.flat_map(|c| &c.filters) {
        let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
            continue;
        };
        if !any.type_url.ends_with("HttpConnectionManager") {
            continue;
        }
        let hcm: HttpConnectionManager = unpack(any).map_err(|e| e.to_string())?;
        if let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier {
            if !names.contains(&rds.route_config_name) {
                names.push(rds.route_config_name);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pack;
    use bowline_xds::pb::envoy::config::cluster::v3::cluster::EdsClusterConfig;
    use bowline_xds::pb::envoy::config::listener::v3::{Filter, FilterChain};
    use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::Rds;

    #[test]
    fn an_eds_cluster_asks_for_its_service_name_and_a_static_one_for_nothing() {
        let eds = Cluster {
            name: "outbound|80||a".into(),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            )),
            eds_cluster_config: Some(EdsClusterConfig {
                service_name: "svc-a".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (name, held) = decode(Kind::Cds, &pack(&eds), "1").unwrap();
        assert_eq!(
            (name.as_str(), held.refs),
            ("outbound|80||a", vec!["svc-a".into()])
        );
        let stat = Cluster {
            name: "inbound|8080||".into(),
            ..Default::default()
        };
        assert!(decode(Kind::Cds, &pack(&stat), "1")
            .unwrap()
            .1
            .refs
            .is_empty());
    }

    #[test]
    fn a_listener_asks_for_the_routes_its_connection_managers_name() {
        let hcm = HttpConnectionManager {
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                route_config_name: "80".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let chain = FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
            }],
            ..Default::default()
        };
        let l = Listener {
            name: "virtualOutbound".into(),
            filter_chains: vec![chain.clone(), chain],
            ..Default::default()
        };
        assert_eq!(
            decode(Kind::Lds, &pack(&l), "1").unwrap().1.refs,
            vec!["80"]
        );
    }

    #[test]
    fn the_wrong_type_is_a_reason_to_nack() {
        assert!(decode(Kind::Lds, &pack(&Cluster::default()), "1").is_err());
    }
}
