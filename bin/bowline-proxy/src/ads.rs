//! The ADS handler: converts each resource with the model's `TryFrom` (a bad one is
//! rejected by name with its reason, the rest apply), applies the batch to the proxy, and
//! asks for the EDS and RDS names the new configuration refers to.

use std::sync::Arc;

use bowline_model as model;
use bowline_proxy::{Change, Proxy};
use bowline_xds::client::{AdsHandler, ApplyResult, Update};
use bowline_xds::pb::envoy::config::{
    cluster::v3 as cds, endpoint::v3 as eds, listener::v3 as lds, route::v3 as rds,
};
use bowline_xds::{type_url, unpack};

pub struct Handler {
    proxy: Arc<Proxy>,
    seen_cds: bool,
    seen_lds: bool,
}

impl Handler {
    pub fn new(proxy: Arc<Proxy>) -> Handler {
        Handler {
            proxy,
            seen_cds: false,
            seen_lds: false,
        }
    }

    /// Envoy is ready once its first CDS and LDS are in and every route configuration its
    /// listeners name has arrived (listener warming).
    fn update_readiness(&self) {
        let state = self.proxy.state();
        if state.is_ready() || !(self.seen_cds && self.seen_lds) {
            return;
        }
        let config = state.config.load();
        if config
            .rds_names()
            .iter()
            .all(|name| config.routes.contains_key(name))
        {
            state.set_ready();
            tracing::info!("initial configuration applied: ready");
        }
    }
}

/// Converts every resource of an update; `Err((name, reason))` for the bad ones.
fn convert<P, M, E>(update: &Update) -> (Vec<M>, Vec<(String, String)>)
where
    P: prost::Name + prost::Message + Default,
    M: for<'a> TryFrom<&'a P, Error = E>,
    E: std::fmt::Display,
{
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for resource in &update.resources {
        let converted = unpack::<P>(&resource.resource)
            .map_err(|e| e.to_string())
            .and_then(|pb| M::try_from(&pb).map_err(|e| e.to_string()));
        match converted {
            Ok(model) => good.push(model),
            Err(reason) => bad.push((resource.name.clone(), reason)),
        }
    }
    (good, bad)
}

impl AdsHandler for Handler {
    fn apply(&mut self, type_url: &str, update: Update) -> ApplyResult {
        let mut change = Change::default();
        let rejected = match type_url {
            type_url::CLUSTER => {
                let (good, bad) = convert::<cds::Cluster, model::Cluster, _>(&update);
                change.clusters = good;
                change.removed_clusters = update.removed.clone();
                self.seen_cds = true;
                bad
            }
            type_url::ENDPOINT => {
                let (good, bad) =
                    convert::<eds::ClusterLoadAssignment, model::ClusterLoadAssignment, _>(&update);
                change.assignments = good;
                change.removed_assignments = update.removed.clone();
                bad
            }
            type_url::LISTENER => {
                let (good, bad) = convert::<lds::Listener, model::Listener, _>(&update);
                change.listeners = good;
                change.removed_listeners = update.removed.clone();
                self.seen_lds = true;
                bad
            }
            type_url::ROUTE => {
                let (good, bad) =
                    convert::<rds::RouteConfiguration, model::RouteConfig, _>(&update);
                change.routes = good;
                change.removed_routes = update.removed.clone();
                bad
            }
            other => {
                return update
                    .resources
                    .iter()
                    .fold(ApplyResult::accepted(), |r, res| {
                        r.reject(&res.name, format!("type {other} is not supported"))
                    });
            }
        };
        for (name, reason) in &rejected {
            tracing::warn!(r#type = type_url::short(type_url), resource = %name, %reason, "rejected");
        }
        let mut rejected = rejected;
        for error in self.proxy.apply(change) {
            tracing::warn!(%error, "listener not bound");
            rejected.push((error.name.clone(), error.to_string()));
        }
        let state = self.proxy.state();
        state.set_version(type_url, &update.version);
        self.update_readiness();
        let config = state.config.load();
        let mut result = ApplyResult {
            rejected,
            ..ApplyResult::default()
        };
        match type_url {
            type_url::CLUSTER => result = result.need(type_url::ENDPOINT, config.eds_names()),
            type_url::LISTENER => result = result.need(type_url::ROUTE, config.rds_names()),
            _ => {}
        }
        result
    }
}
