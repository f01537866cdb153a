//! A listener as the accept loop uses it: the model plus, per filter chain, what serving a
//! connection needs precomputed (stats handles, the fault filter's policy, whether CORS is
//! on), so accepting a connection looks nothing up by name.

use crate::istio_metrics::StatsRt;
use std::sync::Arc;

use bowline_model as model;
use model::{FilterChain, Listener, NetworkFilter};

use crate::access_log::AccessLogRt;
use crate::http::runtime::HttpRt;
use crate::stats::{ListenerStats, Stats};

#[derive(Debug)]
pub struct ListenerRt {
    pub model: Listener,
    /// Parallel to `model.filter_chains`.
    pub chains: Vec<ChainRt>,
    pub default_chain: Option<ChainRt>,
    pub stats: Arc<ListenerStats>,
}

/// A filter chain ready to serve: TLS to terminate first (if any), then its network filter.
#[derive(Debug, Clone)]
pub struct ChainRt {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The chain's own certificate, when it terminates TLS.
    pub local_cert: Option<crate::tls::LocalCert>,
    /// The same TLS without ALPN, for clients whose ALPN list has nothing in common with
    /// ours: Envoy then simply selects no protocol, where rustls would end the handshake
    /// (sidecars offer `istio-peer-exchange`/`istio` to servers that speak `h2`/`http/1.1`).
    pub tls_no_alpn: Option<Arc<rustls::ServerConfig>>,
    /// Network RBAC filters, decided once per connection before the network filter runs.
    pub network_rbac: Arc<[model::rbac::Rbac]>,
    pub filter: Chain,
}

impl ChainRt {
    /// The server configuration for a client that offered `alpn`.
    pub fn tls_for(&self, alpn: &[String]) -> Option<Arc<rustls::ServerConfig>> {
        let tls = self.tls.as_ref()?;
        let overlap = alpn.is_empty()
            || tls.alpn_protocols.iter().any(|ours| {
                alpn.iter()
                    .any(|theirs| theirs.as_bytes() == ours.as_slice())
            });
        if overlap {
            Some(tls.clone())
        } else {
            self.tls_no_alpn.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub enum Chain {
    Http(Arc<HttpRt>),
    Tcp(Arc<TcpRt>),
}

/// A tcp_proxy ready to serve.
#[derive(Debug)]
pub struct TcpRt {
    pub model: model::TcpProxy,
    /// A line per connection in each (rendered when it has ended).
    pub access_logs: Vec<crate::access_log::AccessLogRt>,
    /// Istio's standard metrics for the chain's connections.
    pub istio: Option<Arc<StatsRt>>,
}

impl ListenerRt {
    /// Precomputes every chain. Fails (naming the chain) when a chain's TLS certificate or
    /// key cannot be read or used: the listener is then refused, as Envoy refuses it.
    pub fn new(
        model: Listener,
        stats: &Stats,
        identity: Option<&bowline_identity::IdentityHandle>,
    ) -> Result<ListenerRt, String> {
        // Where each field of the model goes (exhaustive: a field the model gains is a
        // compile error here until the data path consumes it): the accept loop reads
        // `address`, `use_original_dst` and the inspection fields (inspectors, where they are
        // disabled, their timeout) from `model`;
        // chains are built below. `traffic_direction` makes an inbound connection manager's
        // span the server side of its requests (Envoy's `ingress`).
        let Listener {
            name: _,
            address: _,
            use_original_dst: _,
            traffic_direction,
            tls_inspector: _,
            http_inspector: _,
            tls_inspector_disabled: _,
            http_inspector_disabled: _,
            inspection_timeout: _,
            continue_on_inspection_timeout: _,
            filter_chains: _,
            default_filter_chain: _,
        } = &model;
        let inbound = *traffic_direction == model::TrafficDirection::Inbound;
        let chain = |c: &FilterChain| -> Result<ChainRt, String> {
            let FilterChain {
                name: _,
                matcher: _,
                tls: _,
                network_rbac: _,
                network: _,
                istio_stats: _,
            } = c;
            let tls = c
                .tls
                .as_ref()
                .map(|tls| crate::tls::server_config(tls, identity))
                .transpose()
                .map_err(|e| format!("filter chain {:?}: {e}", c.name))?;
            let local_cert = c
                .tls
                .as_ref()
                .map(|tls| crate::tls::LocalCert::new(tls, identity))
                .transpose()
                .map_err(|e| format!("filter chain {:?}: {e}", c.name))?;
            let tls_no_alpn = tls.as_ref().map(|config| {
                let mut config = (**config).clone();
                config.alpn_protocols.clear();
                Arc::new(config)
            });
            Ok(ChainRt {
                tls,
                local_cert,
                tls_no_alpn,
                network_rbac: c.network_rbac.clone().into(),
                filter: Chain::new(c, stats, inbound)
                    .map_err(|e| format!("filter chain {:?}: {e}", c.name))?,
            })
        };
        Ok(ListenerRt {
            chains: model
                .filter_chains
                .iter()
                .map(chain)
                .collect::<Result<_, _>>()?,
            default_chain: model.default_filter_chain.as_ref().map(chain).transpose()?,
            stats: stats.listener(&model.name),
            model,
        })
    }

    /// The HTTP runtime of the chain named `name`: what a request on an open connection
    /// uses after an update. `None` for an unnamed chain (it cannot be told apart from
    /// others) or a name that is not there any more.
    pub fn http_chain(&self, name: &str) -> Option<&Arc<HttpRt>> {
        if name.is_empty() {
            return None;
        }
        let chain = match self.model.filter_chains.iter().position(|c| c.name == name) {
            Some(i) => self.chains.get(i),
            None => self.default_chain.as_ref().filter(|_| {
                self.model
                    .default_filter_chain
                    .as_ref()
                    .is_some_and(|d| d.name == name)
            }),
        }?;
        match &chain.filter {
            Chain::Http(http) => Some(http),
            Chain::Tcp(_) => None,
        }
    }

    /// The runtime chain of a model chain that selection returned (by identity).
    pub fn chain_of(&self, selected: &FilterChain) -> Option<&ChainRt> {
        if let Some(i) = self
            .model
            .filter_chains
            .iter()
            .position(|c| std::ptr::eq(c, selected))
        {
            return self.chains.get(i);
        }
        self.default_chain.as_ref()
    }
}

impl Chain {
    fn new(chain: &FilterChain, stats: &Stats, inbound: bool) -> Result<Chain, String> {
        let istio = chain
            .istio_stats
            .as_deref()
            .map(|config| StatsRt::new(config, stats.istio.clone(), stats.peers.clone()))
            .transpose()?
            .map(Arc::new);
        Ok(match &chain.network {
            NetworkFilter::Http(hcm) => {
                Chain::Http(Arc::new(HttpRt::new(hcm, stats, istio, inbound)?))
            }
            NetworkFilter::Tcp(tcp) => Chain::Tcp(Arc::new(TcpRt {
                model: tcp.clone(),
                access_logs: AccessLogRt::all(&tcp.access_log)?,
                istio,
            })),
        })
    }
}
