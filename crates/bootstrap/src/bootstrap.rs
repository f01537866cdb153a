//! The top of the document: `node`, `admin`, `static_resources`, `dynamic_resources`.

use bowline_xds::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    Admin, Bootstrap,
};

use crate::cluster::cluster;
use crate::core::{address, api_config_source, config_source, node};
use crate::json::{Field, Result};
use crate::listener::listener;

pub(crate) fn bootstrap(f: Field<'_>) -> Result<Bootstrap> {
    f.object(|o| {
        Ok(Bootstrap {
            node: o.opt("node", node)?,
            admin: o.opt("admin", admin)?,
            static_resources: o.opt("static_resources", static_resources)?,
            dynamic_resources: o.opt("dynamic_resources", dynamic_resources)?,
            ..Default::default()
        })
    })
}

fn admin(f: Field<'_>) -> Result<Admin> {
    f.object(|o| {
        Ok(Admin {
            address: o.opt("address", address)?,
            ..Default::default()
        })
    })
}

fn static_resources(f: Field<'_>) -> Result<StaticResources> {
    f.object(|o| {
        Ok(StaticResources {
            listeners: o.or_default("listeners", |f| f.list(listener))?,
            clusters: o.or_default("clusters", |f| f.list(cluster))?,
            ..Default::default()
        })
    })
}

fn dynamic_resources(f: Field<'_>) -> Result<DynamicResources> {
    f.object(|o| {
        Ok(DynamicResources {
            ads_config: o.opt("ads_config", api_config_source)?,
            cds_config: o.opt("cds_config", config_source)?,
            lds_config: o.opt("lds_config", config_source)?,
            ..Default::default()
        })
    })
}
