//! From the bootstrap to a start-up plan, before any socket opens: command-line overrides
//! applied, the static resources converted to the model (an error names the resource and
//! field), the admin address, and how to reach the control plane.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context, Result};
use std::sync::Arc;

use bowline_bootstrap::{
    ads_client_config, ads_settings, apply_overrides, AdsTls, Overrides, PemSource,
};
use bowline_identity::control::ClientTls;
use bowline_model as model;
use bowline_proxy::Change;
use bowline_xds::client::AdsConfig;
use bowline_xds::client::Connector;
use bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap;
use bowline_xds::pb::envoy::config::core::v3::{address, socket_address, Address};

use crate::args::Args;

#[derive(Debug)]
pub struct Plan {
    pub admin: SocketAddr,
    pub statics: Change,
    pub ads: Option<AdsConfig>,
    /// TLS to the control plane (xDS, and the CA when it is the xDS server).
    pub control_tls: Option<ClientTls>,
}

/// `xds_addr` is `--xds-addr` resolved (None: the bootstrap's own).
pub fn plan(mut bootstrap: Bootstrap, args: &Args, xds_addr: Option<SocketAddr>) -> Result<Plan> {
    apply_overrides(
        &mut bootstrap,
        &Overrides {
            node_id: args.node_id.clone(),
            xds_addr,
            admin_addr: args.admin_addr,
        },
    );
    let admin = match bootstrap.admin.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address) => socket(address).context("admin.address")?,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let settings = ads_settings(&bootstrap)?;
    let control_tls = settings
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .map(client_tls)
        .transpose()
        .context("the control plane's TLS")?;
    let ads_cluster = settings.map(|s| s.cluster_name);
    let mut statics = Change::default();
    if let Some(resources) = &bootstrap.static_resources {
        for (i, pb) in resources.listeners.iter().enumerate() {
            let listener = model::Listener::try_from(pb)
                .map_err(|e| anyhow!("static_resources.listeners[{i}] ({:?}): {e}", pb.name))?;
            statics.listeners.push(listener);
        }
        for (i, pb) in resources.clusters.iter().enumerate() {
            match model::Cluster::try_from(pb) {
                Ok(cluster) => statics.clusters.push(cluster),
                // The control plane's own cluster serves the ADS client, which reads its
                // address itself; HTTP/2 tuning the data path does not implement is fine there.
                Err(e) if ads_cluster.as_deref() == Some(pb.name.as_str()) => {
                    tracing::debug!(cluster = %pb.name, error = %e, "ADS cluster kept out of the data path");
                }
                Err(e) => bail!("static_resources.clusters[{i}] ({:?}): {e}", pb.name),
            }
        }
    }
    let mut ads = ads_client_config(&bootstrap)?;
    if let Some(ads) = &mut ads {
        if ads.node.id.is_empty() {
            bail!("node.id is empty: set it in the bootstrap or pass --node-id");
        }
        if let Some(tls) = &control_tls {
            let tls = tls.clone();
            ads.connector = Some(Connector(Arc::new(move |addr| {
                let tls = tls.clone();
                Box::pin(async move { tls.channel(addr, CONNECT_TIMEOUT).await })
            })));
        }
    }
    Ok(Plan {
        admin,
        statics,
        ads,
        control_tls,
    })
}

/// How long a connection to the control plane may take to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The control plane's TLS from the bootstrap: the mesh root read now (a missing file is a
/// start-up error naming it), the name to check.
fn client_tls(tls: &AdsTls) -> Result<ClientTls> {
    let root = match &tls.trusted_ca {
        PemSource::File(path) => {
            std::fs::read(path).with_context(|| format!("trusted_ca {}", path.display()))?
        }
        PemSource::Inline(text) => text.clone().into_bytes(),
    };
    ClientTls::new(&root, &tls.server_name).map_err(|e| anyhow!(e))
}

fn socket(a: &Address) -> Result<SocketAddr> {
    let Some(address::Address::SocketAddress(s)) = &a.address else {
        bail!("only socket addresses are supported");
    };
    let port = match s.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(p)) => {
            u16::try_from(p).with_context(|| format!("port_value {p} is above 65535"))?
        }
        _ => bail!("port_value is required"),
    };
    let ip = s
        .address
        .parse()
        .with_context(|| format!("{:?} is not an IP address", s.address))?;
    Ok(SocketAddr::new(ip, port))
}
