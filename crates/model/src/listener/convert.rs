//! `envoy.config.listener.v3.Listener` → [`Listener`].

use super::predicate::port_predicate;
use super::{
    FilterChain, FilterChainMatch, Listener, NetworkFilter, PortPredicate, SourceType,
    TrafficDirection,
};
use crate::address::ip_socket_address;
use crate::cidr::cidr;
use crate::duration::timeout;
use crate::error::{At, InvalidListener, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::TrafficDirection as PbDirection;
use bowline_xds::pb::envoy::config::listener::v3::{
    filter, filter_chain_match::ConnectionSourceType, listener_filter, Filter,
    FilterChain as PbFilterChain, FilterChainMatch as PbMatch, Listener as PbListener,
    ListenerFilter,
};
use bowline_xds::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use bowline_xds::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use bowline_xds::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager as PbHcm;
use bowline_xds::pb::envoy::extensions::filters::network::rbac::v3::Rbac as PbNetworkRbac;
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy as PbTcpProxy;
use bowline_xds::prost::Name;

impl TryFrom<&PbListener> for Listener {
    type Error = InvalidListener;

    fn try_from(l: &PbListener) -> Result<Listener, InvalidListener> {
        listener(l).map_err(|problem| InvalidListener {
            name: l.name.clone(),
            problem,
        })
    }
}

fn listener(l: &PbListener) -> Result<Listener, Problem> {
    let at = At::root("listener");
    let PbListener {
        name,
        address,
        filter_chains,
        use_original_dst,
        default_filter_chain,
        traffic_direction,
        // Not implemented: refused below unless at their defaults.
        additional_addresses,
        stat_prefix,
        stats_matcher,
        fcds_config,
        filter_chain_matcher,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        metadata,
        deprecated_v1,
        drain_type,
        listener_filters,
        listener_filters_timeout,
        continue_on_listener_filters_timeout,
        transparent,
        freebind,
        socket_options,
        tcp_fast_open_queue_length,
        udp_listener_config,
        api_listener,
        connection_balance_config,
        reuse_port,
        enable_reuse_port,
        access_log,
        tcp_backlog_size,
        max_connections_to_accept_per_socket_event,
        bind_to_port,
        enable_mptcp,
        ignore_global_conn_limit,
        bypass_overload_manager,
        tcp_keepalive,
        listener_specifier,
    } = l;
    refuse_unsupported!(at;
        additional_addresses, stat_prefix, stats_matcher, fcds_config, filter_chain_matcher,
        per_connection_buffer_limit_bytes, per_connection_buffer_high_watermark_timeout,
        metadata, deprecated_v1, drain_type, transparent, freebind, socket_options,
        tcp_fast_open_queue_length, udp_listener_config, api_listener,
        connection_balance_config, reuse_port, enable_reuse_port, access_log, tcp_backlog_size,
        max_connections_to_accept_per_socket_event, bind_to_port, enable_mptcp,
        ignore_global_conn_limit, bypass_overload_manager, tcp_keepalive, listener_specifier,
    );
    if name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    let address = match address {
        Some(a) => ip_socket_address(a, &at.field("address"))?,
        None => return Err(at.field("address").invalid("is required")),
    };
    let traffic_direction = match PbDirection::try_from(*traffic_direction) {
        Ok(PbDirection::Unspecified) => TrafficDirection::Unspecified,
        Ok(PbDirection::Inbound) => TrafficDirection::Inbound,
        Ok(PbDirection::Outbound) => TrafficDirection::Outbound,
        Err(_) => {
            return Err(at
                .field("traffic_direction")
                .invalid(format!("unknown value {traffic_direction}")))
        }
    };
    let chains = filter_chains
        .iter()
        .enumerate()
        .map(|(i, c)| filter_chain(c, &at.index("filter_chains", i)))
        .collect::<Result<Vec<_>, _>>()?;
    // Envoy: "multiple filter chains with the same matching rules are defined".
    for (i, c) in chains.iter().enumerate() {
        if chains[..i]
            .iter()
            .any(|earlier| earlier.matcher == c.matcher)
        {
            return Err(at
                .index("filter_chains", i)
                .field("filter_chain_match")
                .invalid("another filter chain has the same match"));
        }
    }
    let default_filter_chain = default_filter_chain
        .as_ref()
        .map(|c| filter_chain(c, &at.field("default_filter_chain")))
        .transpose()?;
    if chains.is_empty() && default_filter_chain.is_none() {
        return Err(at
            .field("filter_chains")
            .invalid("no filter chains specified"));
    }
    let mut inspectors = Inspectors::default();
    for (i, f) in listener_filters.iter().enumerate() {
        listener_filter(f, &at.index("listener_filters", i), &mut inspectors)?;
    }
    let inspection_timeout = timeout(
        listener_filters_timeout,
        Some(DEFAULT_LISTENER_FILTERS_TIMEOUT),
        &at.field("listener_filters_timeout"),
    )?;
    Ok(Listener {
        name: name.clone(),
        address,
        use_original_dst: use_original_dst.as_ref().is_some_and(|b| b.value)
            || inspectors.original_dst,
        traffic_direction,
        tls_inspector: inspectors.tls,
        http_inspector: inspectors.http,
        tls_inspector_disabled: inspectors.tls_disabled,
        http_inspector_disabled: inspectors.http_disabled,
        inspection_timeout,
        continue_on_inspection_timeout: *continue_on_listener_filters_timeout,
        filter_chains: chains,
        default_filter_chain,
    })
}

fn filter_chain(c: &PbFilterChain, at: &At) -> Result<FilterChain, Problem> {
    let PbFilterChain {
        filter_chain_match,
        filters,
        name,
        use_proxy_proto,
        metadata,
        transport_socket,
        transport_socket_connect_timeout,
    } = c;
    refuse_unsupported!(at; use_proxy_proto, transport_socket_connect_timeout);
    let key = crate::istio_stats::STATS_METADATA_KEY;
    let istio_stats = crate::istio_stats::only_metadata(metadata, key, at)?
        .map(|s| {
            let at = at.field("metadata").field("filter_metadata").field(key);
            crate::istio_stats::stats_from_metadata(s, &at).map(std::sync::Arc::new)
        })
        .transpose()?;
    let matcher = match filter_chain_match {
        Some(m) => chain_match(m, &at.field("filter_chain_match"))?,
        None => FilterChainMatch::default(),
    };
    let tls = match transport_socket {
        Some(ts) => crate::tls::downstream(ts, &at.field("transport_socket"))?,
        None => None,
    };
    let (network_rbac, network) = network_filters(filters, at)?;
    Ok(FilterChain {
        name: name.clone(),
        matcher,
        tls,
        network_rbac,
        network,
        istio_stats,
    })
}

#[derive(Default)]
struct Inspectors {
    /// `envoy.filters.listener.original_dst`: the same as `use_original_dst` here (bowline
    /// restores the destination before any inspector runs, wherever the filter is listed).
    original_dst: bool,
    tls: bool,
    http: bool,
    tls_disabled: Option<PortPredicate>,
    http_disabled: Option<PortPredicate>,
}

/// Envoy's default `listener_filters_timeout`.
const DEFAULT_LISTENER_FILTERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The listener filters implemented: the original destination, the TLS inspector (its
/// options at their defaults) and the HTTP inspector; any other is refused by name.
fn listener_filter(f: &ListenerFilter, at: &At, found: &mut Inspectors) -> Result<(), Problem> {
    let ListenerFilter {
        name,
        filter_disabled,
        config_type,
    } = f;
    let disabled = filter_disabled
        .as_ref()
        .map(|p| port_predicate(p, &at.field("filter_disabled")))
        .transpose()?;
    let any = match config_type {
        Some(listener_filter::ConfigType::TypedConfig(any)) => any,
        _ => return Err(at.field("typed_config").invalid("is required")),
    };
    if same_type(&any.type_url, &OriginalDst::type_url()) {
        if disabled.is_some() {
            return Err(at
                .field("filter_disabled")
                .invalid("the original destination is always restored by bowline-proxy"));
        }
        found.original_dst = true;
        return Ok(());
    }
    if same_type(&any.type_url, &HttpInspector::type_url()) {
        found.http = true;
        found.http_disabled = disabled;
        return Ok(());
    }
    if !same_type(&any.type_url, &TlsInspector::type_url()) {
        return Err(at.unsupported_filter(name, &any.type_url));
    }
    found.tls = true;
    found.tls_disabled = disabled;
    let inspector: TlsInspector =
        bowline_xds::unpack(any).map_err(|e| at.field("typed_config").invalid(e))?;
    let at = at.field("typed_config");
    let TlsInspector {
        enable_ja3_fingerprinting,
        enable_ja4_fingerprinting,
        initial_read_buffer_size,
        close_connection_on_client_hello_parsing_errors,
        max_client_hello_size,
    } = &inspector;
    refuse_unsupported!(at; enable_ja3_fingerprinting, enable_ja4_fingerprinting,
        initial_read_buffer_size, close_connection_on_client_hello_parsing_errors,
        max_client_hello_size);
    Ok(())
}

/// RBAC network filters, then exactly one terminal filter: HTTP connection manager or
/// tcp_proxy. Any other network filter (ext_authz, …) is refused by name.
fn network_filters(
    filters: &[Filter],
    at: &At,
) -> Result<(Vec<crate::rbac::Rbac>, NetworkFilter), Problem> {
    let Some((last, before)) = filters.split_last() else {
        return Err(at.field("filters").invalid(
            "a terminal network filter (http_connection_manager or tcp_proxy) is required",
        ));
    };
    let mut rbac = Vec::new();
    for (i, f) in before.iter().enumerate() {
        let at = at.index("filters", i);
        let type_url = type_url_of(f);
        if is_terminal(type_url) {
            return Err(at.invalid(format!(
                "terminal filter {} must be the last filter",
                f.name
            )));
        }
        let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
            return Err(at.unsupported_filter(&f.name, type_url));
        };
        if !same_type(type_url, &PbNetworkRbac::type_url()) {
            return Err(at.unsupported_filter(&f.name, type_url));
        }
        let at = at.field("typed_config");
        let pb: PbNetworkRbac = bowline_xds::unpack(any).map_err(|e| at.invalid(e))?;
        rbac.push(crate::rbac::network_rbac_filter(&pb, &at)?);
    }
    let terminal = network_filter(last, &at.index("filters", filters.len() - 1))?;
    Ok((rbac, terminal))
}

fn type_url_of(f: &Filter) -> &str {
    match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) => &any.type_url,
        _ => "",
    }
}

fn is_terminal(type_url: &str) -> bool {
    same_type(type_url, &PbHcm::type_url()) || same_type(type_url, &PbTcpProxy::type_url())
}

/// Type URLs compare by the part after the last `/` (the prefix is arbitrary).
pub(crate) fn same_type(a: &str, b: &str) -> bool {
    a.rsplit('/').next() == b.rsplit('/').next()
}

/// Envoy picks a filter's implementation by the type URL of its `typed_config` (the name is
/// informational).
fn network_filter(f: &Filter, at: &At) -> Result<NetworkFilter, Problem> {
    let Filter { name, config_type } = f;
    let any = match config_type {
        Some(filter::ConfigType::TypedConfig(any)) => any,
        Some(filter::ConfigType::ConfigDiscovery(_)) => {
            return Err(at.field("config_discovery").unsupported())
        }
        None => return Err(at.field("typed_config").invalid("is required")),
    };
    let at = at.field("typed_config");
    let decode_error = |e: bowline_xds::UnpackError| at.invalid(e);
    if same_type(&any.type_url, &PbHcm::type_url()) {
        let hcm: PbHcm = bowline_xds::unpack(any).map_err(decode_error)?;
        Ok(NetworkFilter::Http(crate::hcm::http_connection_manager(
            &hcm, &at,
        )?))
    } else if same_type(&any.type_url, &PbTcpProxy::type_url()) {
        let tcp: PbTcpProxy = bowline_xds::unpack(any).map_err(decode_error)?;
        Ok(NetworkFilter::Tcp(crate::tcp::tcp_proxy(&tcp, &at)?))
    } else {
        Err(at.unsupported_filter(name, &any.type_url))
    }
}

fn chain_match(m: &PbMatch, at: &At) -> Result<FilterChainMatch, Problem> {
    let PbMatch {
        destination_port,
        prefix_ranges,
        server_names,
        transport_protocol,
        application_protocols,
        source_type,
        source_prefix_ranges,
        source_ports,
        address_suffix,
        suffix_len,
        direct_source_prefix_ranges,
    } = m;
    refuse_unsupported!(at; address_suffix, suffix_len, direct_source_prefix_ranges);
    let port = |p: u32, at: At| match u16::try_from(p) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(at.invalid(format!("{p} is not a port (1..=65535)"))),
    };
    let ranges = |list: &[bowline_xds::pb::envoy::config::core::v3::CidrRange], name: &str| {
        list.iter()
            .enumerate()
            .map(|(i, r)| cidr(r, &at.index(name, i)))
            .collect::<Result<Vec<_>, _>>()
    };
    let source_type = match ConnectionSourceType::try_from(*source_type) {
        Ok(ConnectionSourceType::Any) => SourceType::Any,
        Ok(ConnectionSourceType::SameIpOrLoopback) => SourceType::SameIpOrLoopback,
        Ok(ConnectionSourceType::External) => SourceType::External,
        Err(_) => {
            return Err(at
                .field("source_type")
                .invalid(format!("unknown value {source_type}")))
        }
    };
    Ok(FilterChainMatch {
        destination_port: destination_port
            .as_ref()
            .map(|p| port(p.value, at.field("destination_port")))
            .transpose()?,
        prefix_ranges: ranges(prefix_ranges, "prefix_ranges")?,
        server_names: server_names
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        transport_protocol: transport_protocol.clone(),
        application_protocols: application_protocols.clone(),
        source_type,
        source_prefix_ranges: ranges(source_prefix_ranges, "source_prefix_ranges")?,
        source_ports: source_ports
            .iter()
            .enumerate()
            .map(|(i, p)| port(*p, at.index("source_ports", i)))
            .collect::<Result<_, _>>()?,
    })
}
