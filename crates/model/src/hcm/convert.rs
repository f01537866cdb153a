//! `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager` →
//! [`HttpConnectionManager`].

use super::{
    Codec, EscapedSlashes, ForwardClientCert, ForwardClientCertMode, HttpConnectionManager,
    HttpFilter, RouteSource, Router, DEFAULT_MAX_HEADERS_COUNT, DEFAULT_MAX_REQUEST_HEADERS_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
};
use crate::duration::timeout;
use crate::error::{At, Problem};
use crate::listener::same_type;
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{
    config_source, ConfigSource, Http1ProtocolOptions, HttpProtocolOptions,
};
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::Cors;
use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use bowline_xds::pb::envoy::extensions::filters::http::jwt_authn::v3::JwtAuthentication;
use bowline_xds::pb::envoy::extensions::filters::http::rbac::v3::Rbac as PbRbac;
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router as PbRouter;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{
        CodecType, ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier,
        SetCurrentClientCertDetails, UpgradeConfig,
    },
    http_filter, HttpConnectionManager as PbHcm, HttpFilter as PbHttpFilter, Rds,
};
use bowline_xds::prost::Name;
use std::sync::Arc;

pub(crate) fn http_connection_manager(
    h: &PbHcm,
    at: &At,
) -> Result<HttpConnectionManager, Problem> {
    let PbHcm {
        codec_type,
        stat_prefix,
        http_filters,
        route_specifier,
        generate_request_id,
        normalize_path,
        merge_slashes,
        path_with_escaped_slashes_action,
        http_protocol_options,
        upgrade_configs,
        use_remote_address,
        request_headers_timeout,
        stream_idle_timeout,
        max_request_headers_kb,
        common_http_protocol_options,
        forward_client_cert_details,
        set_current_client_cert_details,
        access_log,
        // Not implemented: refused below unless at their defaults.
        add_user_agent,
        tracing,
        http1_safe_max_connection_duration,
        http2_protocol_options,
        http3_protocol_options,
        server_name,
        server_header_transformation,
        scheme_header_transformation,
        stream_flush_timeout,
        request_timeout,
        drain_timeout,
        drain_timeout_jitter,
        delayed_close_timeout,
        access_log_flush_interval,
        flush_access_log_on_new_request,
        access_log_options,
        xff_num_trusted_hops,
        original_ip_detection_extensions,
        early_header_mutation_extensions,
        internal_address_config,
        skip_xff_append,
        via,
        preserve_external_request_id,
        always_set_request_id_in_response,
        forward_client_cert_matcher,
        proxy_100_continue,
        represent_ipv4_remote_address_as_ipv4_mapped_ipv6,
        request_id_extension,
        local_reply_config,
        strip_matching_host_port,
        stream_error_on_invalid_http_message,
        path_normalization_options,
        strip_trailing_host_dot,
        proxy_status_config,
        typed_header_validation_config,
        append_x_forwarded_port,
        append_local_overload,
        add_proxy_protocol_connection_state,
        forward_proto_config,
        strip_port_mode,
    } = h;
    refuse_unsupported!(at;
        add_user_agent, http1_safe_max_connection_duration,
        http2_protocol_options, http3_protocol_options, server_name, server_header_transformation,
        scheme_header_transformation,
        stream_flush_timeout, request_timeout, drain_timeout,
        drain_timeout_jitter, delayed_close_timeout, access_log_flush_interval,
        flush_access_log_on_new_request, access_log_options, xff_num_trusted_hops,
        original_ip_detection_extensions, early_header_mutation_extensions,
        internal_address_config, skip_xff_append, via, preserve_external_request_id,
        always_set_request_id_in_response, forward_client_cert_matcher, proxy_100_continue,
        represent_ipv4_remote_address_as_ipv4_mapped_ipv6, request_id_extension,
        local_reply_config, strip_matching_host_port, stream_error_on_invalid_http_message,
        path_normalization_options, strip_trailing_host_dot, proxy_status_config,
        typed_header_validation_config, append_x_forwarded_port, append_local_overload,
        add_proxy_protocol_connection_state, forward_proto_config, strip_port_mode,
    );
    if stat_prefix.is_empty() {
        return Err(at.field("stat_prefix").invalid("must not be empty"));
    }
    let codec = match CodecType::try_from(*codec_type) {
        Ok(CodecType::Auto) => Codec::Auto,
        Ok(CodecType::Http1) => Codec::Http1,
        Ok(CodecType::Http2) => Codec::Http2,
        Ok(CodecType::Http3) => {
            return Err(at
                .field("codec_type")
                .unsupported_because("HTTP/3 is not implemented"))
        }
        Err(_) => {
            return Err(at
                .field("codec_type")
                .invalid(format!("unknown value {codec_type}")))
        }
    };
    let route = match route_specifier {
        Some(RouteSpecifier::Rds(rds)) => RouteSource::Rds(rds_name(rds, &at.field("rds"))?),
        Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Static(Arc::new(
            crate::route::route_config(rc, &at.field("route_config"))?,
        )),
        Some(RouteSpecifier::ScopedRoutes(_)) => {
            return Err(at.field("scoped_routes").unsupported())
        }
        None => return Err(at.invalid("one of rds, route_config is required")),
    };
    let escaped_slashes =
        match PathWithEscapedSlashesAction::try_from(*path_with_escaped_slashes_action) {
            Ok(
                PathWithEscapedSlashesAction::ImplementationSpecificDefault
                | PathWithEscapedSlashesAction::KeepUnchanged,
            ) => EscapedSlashes::KeepUnchanged,
            Ok(PathWithEscapedSlashesAction::RejectRequest) => EscapedSlashes::RejectRequest,
            Ok(PathWithEscapedSlashesAction::UnescapeAndRedirect) => {
                EscapedSlashes::UnescapeAndRedirect
            }
            Ok(PathWithEscapedSlashesAction::UnescapeAndForward) => {
                EscapedSlashes::UnescapeAndForward
            }
            Err(_) => {
                return Err(at
                    .field("path_with_escaped_slashes_action")
                    .invalid(format!("unknown value {path_with_escaped_slashes_action}")))
            }
        };
    let (allow_absolute_url, accept_http_10) = match http_protocol_options {
        Some(o) => http1_options(o, &at.field("http_protocol_options"))?,
        None => (true, false),
    };
    let websocket = upgrades(upgrade_configs, at)?;
    let max_request_headers_bytes = match max_request_headers_kb {
        None => DEFAULT_MAX_REQUEST_HEADERS_BYTES,
        // Envoy's bounds: 1 to 8192 KiB.
        Some(kb) if (1..=8192).contains(&kb.value) => kb.value as usize * 1024,
        Some(kb) => {
            return Err(at
                .field("max_request_headers_kb")
                .invalid(format!("{} is outside 1..=8192", kb.value)))
        }
    };
    let max_headers_count = match common_http_protocol_options {
        Some(o) => common_options(o, &at.field("common_http_protocol_options"))?,
        None => DEFAULT_MAX_HEADERS_COUNT,
    };
    let client_cert = client_cert(
        *forward_client_cert_details,
        set_current_client_cert_details.as_ref(),
        at,
    )?;
    Ok(HttpConnectionManager {
        stat_prefix: stat_prefix.clone(),
        codec,
        route,
        http_filters: filters(http_filters, at)?,
        generate_request_id: generate_request_id.as_ref().is_none_or(|b| b.value),
        normalize_path: normalize_path.as_ref().is_some_and(|b| b.value),
        merge_slashes: *merge_slashes,
        escaped_slashes,
        allow_absolute_url,
        accept_http_10,
        websocket,
        use_remote_address: use_remote_address.as_ref().is_some_and(|b| b.value),
        request_headers_timeout: timeout(
            request_headers_timeout,
            None,
            &at.field("request_headers_timeout"),
        )?,
        stream_idle_timeout: timeout(
            stream_idle_timeout,
            Some(DEFAULT_STREAM_IDLE_TIMEOUT),
            &at.field("stream_idle_timeout"),
        )?,
        max_request_headers_bytes,
        max_headers_count,
        client_cert,
        access_log: crate::access_log::access_logs(access_log, at)?,
        tracing: tracing
            .as_ref()
            .map(|t| crate::tracing::tracing(t, &at.field("tracing")).map(Arc::new))
            .transpose()?,
    })
}

/// The connection manager's common protocol options: only the header count is implemented.
fn common_options(o: &HttpProtocolOptions, at: &At) -> Result<usize, Problem> {
    let HttpProtocolOptions {
        max_headers_count,
        idle_timeout,
        max_connection_duration,
        max_connection_duration_jitter,
        max_response_headers_kb,
        max_stream_duration,
        headers_with_underscores_action,
        max_requests_per_connection,
    } = o;
    refuse_unsupported!(at;
        idle_timeout, max_connection_duration, max_connection_duration_jitter,
        max_response_headers_kb, max_stream_duration, headers_with_underscores_action,
        max_requests_per_connection,
    );
    match max_headers_count {
        None => Ok(DEFAULT_MAX_HEADERS_COUNT),
        Some(n) if n.value >= 1 => Ok(n.value as usize),
        Some(_) => Err(at.field("max_headers_count").invalid("must be at least 1")),
    }
}

/// `forward_client_cert_details` and `set_current_client_cert_details`.
fn client_cert(
    mode: i32,
    set: Option<&SetCurrentClientCertDetails>,
    at: &At,
) -> Result<ForwardClientCert, Problem> {
    let mode = match ForwardClientCertDetails::try_from(mode) {
        Ok(ForwardClientCertDetails::Sanitize) => ForwardClientCertMode::Sanitize,
        Ok(ForwardClientCertDetails::ForwardOnly) => ForwardClientCertMode::ForwardOnly,
        Ok(ForwardClientCertDetails::AppendForward) => ForwardClientCertMode::AppendForward,
        Ok(ForwardClientCertDetails::SanitizeSet) => ForwardClientCertMode::SanitizeSet,
        Ok(ForwardClientCertDetails::AlwaysForwardOnly) => ForwardClientCertMode::AlwaysForwardOnly,
        Err(_) => {
            return Err(at
                .field("forward_client_cert_details")
                .invalid(format!("unknown value {mode}")))
        }
    };
    let mut out = ForwardClientCert {
        mode,
        ..ForwardClientCert::default()
    };
    if let Some(set) = set {
        let at = at.field("set_current_client_cert_details");
        let SetCurrentClientCertDetails {
            subject,
            uri,
            dns,
            cert,
            chain,
            issuer,
            format,
        } = set;
        refuse_unsupported!(at; cert, chain, issuer, format);
        out.subject = subject.as_ref().is_some_and(|b| b.value);
        out.uri = *uri;
        out.dns = *dns;
    }
    Ok(out)
}

/// The route configuration name of an RDS source, which must be ADS (the only transport
/// the proxy speaks) or `self` (the server the listener came from: the same ADS stream).
fn rds_name(rds: &Rds, at: &At) -> Result<String, Problem> {
    let Rds {
        config_source,
        route_config_name,
    } = rds;
    match config_source {
        Some(cs) => ads_config_source(cs, &at.field("config_source"))?,
        None => return Err(at.field("config_source").invalid("is required")),
    }
    if route_config_name.is_empty() {
        return Err(at.field("route_config_name").invalid("must not be empty"));
    }
    Ok(route_config_name.clone())
}

/// A config source the proxy can honour: ADS (or `self`, which is the ADS stream too).
pub(crate) fn ads_config_source(cs: &ConfigSource, at: &At) -> Result<(), Problem> {
    let ConfigSource {
        authorities,
        initial_fetch_timeout,
        resource_api_version,
        config_source_specifier,
    } = cs;
    refuse_unsupported!(at; authorities, initial_fetch_timeout);
    // AUTO (0) and V3 (2) both mean v3 today; V2 is gone.
    if *resource_api_version == 1 {
        return Err(at
            .field("resource_api_version")
            .invalid("the v2 API is not supported"));
    }
    match config_source_specifier {
        Some(config_source::ConfigSourceSpecifier::Ads(_)) => Ok(()),
        Some(config_source::ConfigSourceSpecifier::Self_(s)) if s.transport_api_version != 1 => {
            Ok(())
        }
        Some(_) => Err(at.unsupported_because("only ads (or self) config sources are implemented")),
        None => Err(at.invalid("a config source specifier is required")),
    }
}

/// `(allow_absolute_url, accept_http_10)`.
fn http1_options(o: &Http1ProtocolOptions, at: &At) -> Result<(bool, bool), Problem> {
    let Http1ProtocolOptions {
        allow_absolute_url,
        accept_http_10,
        default_host_for_http_10,
        header_key_format,
        enable_trailers,
        allow_chunked_length,
        override_stream_error_on_invalid_http_message,
        send_fully_qualified_url,
        use_balsa_parser,
        allow_custom_methods,
        ignore_http_11_upgrade,
    } = o;
    refuse_unsupported!(at;
        default_host_for_http_10, header_key_format, enable_trailers,
        allow_chunked_length, override_stream_error_on_invalid_http_message,
        send_fully_qualified_url, use_balsa_parser, allow_custom_methods, ignore_http_11_upgrade,
    );
    // Envoy's defaults: absolute URLs yes (`parseHttp1Settings`), HTTP/1.0 no.
    Ok((
        allow_absolute_url.as_ref().is_none_or(|b| b.value),
        *accept_http_10,
    ))
}

/// Whether websocket upgrades are allowed; other upgrade types are refused.
fn upgrades(configs: &[UpgradeConfig], at: &At) -> Result<bool, Problem> {
    let mut websocket = false;
    for (i, u) in configs.iter().enumerate() {
        let at = at.index("upgrade_configs", i);
        let UpgradeConfig {
            upgrade_type,
            filters,
            enabled,
        } = u;
        refuse_unsupported!(at; filters);
        if !upgrade_type.eq_ignore_ascii_case("websocket") {
            return Err(at.field("upgrade_type").unsupported_because(format!(
                "{upgrade_type:?}: only websocket upgrades are implemented"
            )));
        }
        websocket = enabled.as_ref().is_none_or(|b| b.value);
    }
    Ok(websocket)
}

/// The HTTP filters, which must end with the router (Envoy refuses a chain that does not).
fn filters(list: &[PbHttpFilter], at: &At) -> Result<Vec<HttpFilter>, Problem> {
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let at = at.index("http_filters", i);
        if let Some(filter) = http_filter(f, &at)? {
            if matches!(out.last(), Some(HttpFilter::Router(_))) {
                return Err(at.invalid("the router filter must be the last filter"));
            }
            out.push(filter);
        }
    }
    if !matches!(out.last(), Some(HttpFilter::Router(_))) {
        return Err(at
            .field("http_filters")
            .invalid("the last filter must be the router (envoy.filters.http.router)"));
    }
    Ok(out)
}

/// One HTTP filter, chosen by its type URL. `Ok(None)` for a filter we do not implement that
/// is marked `is_optional`: Envoy's contract lets a client that lacks it skip it.
fn http_filter(f: &PbHttpFilter, at: &At) -> Result<Option<HttpFilter>, Problem> {
    let PbHttpFilter {
        name,
        is_optional,
        disabled,
        config_type,
    } = f;
    refuse_unsupported!(at; disabled);
    let any = match config_type {
        Some(http_filter::ConfigType::TypedConfig(any)) => any,
        Some(http_filter::ConfigType::ConfigDiscovery(_)) => {
            return Err(at.field("config_discovery").unsupported())
        }
        None => return Err(at.field("typed_config").invalid("is required")),
    };
    let at = at.field("typed_config");
    let bad = |e: bowline_xds::UnpackError| at.invalid(e);
    let filter = if same_type(&any.type_url, &HttpFault::type_url()) {
        let fault: HttpFault = bowline_xds::unpack(any).map_err(bad)?;
        HttpFilter::Fault(crate::route::fault_policy(&fault, &at)?)
    } else if same_type(&any.type_url, &Cors::type_url()) {
        let Cors {} = bowline_xds::unpack(any).map_err(bad)?;
        HttpFilter::Cors
    } else if same_type(&any.type_url, &JwtAuthentication::type_url()) {
        let jwt: JwtAuthentication = bowline_xds::unpack(any).map_err(bad)?;
        HttpFilter::JwtAuthn(crate::jwt::jwt_authn(&jwt, &at)?)
    } else if same_type(&any.type_url, &PbRbac::type_url()) {
        let rbac: PbRbac = bowline_xds::unpack(any).map_err(bad)?;
        HttpFilter::Rbac(crate::rbac::rbac_filter(&rbac, &at)?)
    } else if same_type(&any.type_url, &PbRouter::type_url()) {
        HttpFilter::Router(router(&bowline_xds::unpack(any).map_err(bad)?, &at)?)
    } else if *is_optional {
        return Ok(None);
    } else {
        return Err(at.unsupported_filter(name, &any.type_url));
    };
    Ok(Some(filter))
}

fn router(r: &PbRouter, at: &At) -> Result<Router, Problem> {
    let PbRouter {
        dynamic_stats,
        suppress_envoy_headers,
        start_child_span,
        upstream_log,
        upstream_log_options,
        strict_check_headers,
        respect_expected_rq_timeout,
        suppress_grpc_request_failure_code_stats,
        upstream_http_filters,
        reject_connect_request_early_data,
    } = r;
    refuse_unsupported!(at;
        start_child_span, upstream_log, upstream_log_options, strict_check_headers,
        respect_expected_rq_timeout, suppress_grpc_request_failure_code_stats,
        upstream_http_filters, reject_connect_request_early_data,
    );
    Ok(Router {
        dynamic_stats: dynamic_stats.as_ref().is_none_or(|b| b.value),
        suppress_envoy_headers: *suppress_envoy_headers,
    })
}
