//! `bowline bootstrap envoy`'s builder, handed to `bowline up`'s mesh so the command and the
//! mesh's proxies start from the same bootstrap.

use bowline_mesh::up::{Bootstraps, ControlPlaneAddr};
use std::net::SocketAddr;

/// The CLI's bootstrap builder (`crate::bootstrap`).
pub struct Cli;

impl Bootstraps for Cli {
    fn sidecar(
        &self,
        node_id: &str,
        xds: &ControlPlaneAddr,
        admin: SocketAddr,
        outbound_port: u16,
        inbound_port: u16,
    ) -> serde_json::Value {
        let xds = crate::bootstrap::ControlPlaneAddr {
            addr: xds.addr,
            root_pem: xds.root_pem.clone(),
        };
        crate::bootstrap::sidecar(node_id, &xds, admin, outbound_port, inbound_port)
    }

    fn add_sds_cluster(&self, bootstrap: &mut serde_json::Value, socket: &str) {
        crate::bootstrap::add_sds_cluster(bootstrap, socket)
    }
}
