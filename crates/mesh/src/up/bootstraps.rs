//! The seam between `bowline up` and the Envoy bootstraps its proxies start from. The
//! builder lives with `bowline bootstrap envoy` (in the CLI), so the command and the mesh
//! write the same bootstrap; the mesh only adds its node metadata.

use std::net::SocketAddr;

/// Where the mesh's proxies find the control plane: its address and, for its secure port,
/// the mesh root (PEM) that vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneAddr {
    pub addr: SocketAddr,
    pub root_pem: Option<String>,
}

/// Builds Envoy bootstraps as Envoy's JSON (what bowline-proxy and Envoy both read).
pub trait Bootstraps {
    /// A sidecar's bootstrap: delta ADS to `xds`, its admin on `admin`, and Istio's node
    /// metadata with `OUTBOUND_PORT`/`INBOUND_PORT`. `node_id` is Istio's sidecar form
    /// (`sidecar~<ip>~<workload>.<ns>~<ns>.svc.cluster.local`); the mesh builds it.
    fn sidecar(
        &self,
        node_id: &str,
        xds: &ControlPlaneAddr,
        admin: SocketAddr,
        outbound_port: u16,
        inbound_port: u16,
    ) -> serde_json::Value;

    /// Adds Istio's `sds-grpc` cluster (the SDS agent on Unix socket `socket`; a leading `@`
    /// is abstract) to a bootstrap, for an Envoy sidecar.
    fn add_sds_cluster(&self, bootstrap: &mut serde_json::Value, socket: &str);
}
