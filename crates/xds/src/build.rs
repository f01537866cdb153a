//! Builders for the few protobuf shapes every xDS producer and test writes by hand: a socket
//! address and a one-locality load assignment.

use crate::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use crate::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};

/// `ip:port` as an Envoy `Address` (TCP).
pub fn socket_address(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// The endpoints of `cluster`: `ip` on each of `ports`, in one locality, default weights.
pub fn load_assignment(cluster: &str, ip: &str, ports: &[u32]) -> ClusterLoadAssignment {
    let endpoint = |port: u32| LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(socket_address(ip, port)),
            ..Default::default()
        })),
        ..Default::default()
    };
    ClusterLoadAssignment {
        cluster_name: cluster.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: ports.iter().copied().map(endpoint).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
