//! The upstream HTTP options of a cluster (`typed_extension_protocol_options`).

use super::super::{
    ConnectionOptions, UpstreamProtocol, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS,
};
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CommonOptions,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        UseDownstreamHttpConfig,
    },
    HttpProtocolOptions,
};
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::prost::Name;
use std::collections::{BTreeMap, HashMap};

/// The key Envoy looks the upstream HTTP options up by.
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The protocol and per-connection limits from `typed_extension_protocol_options` (or the
/// deprecated cluster-level `http2_protocol_options`, which bootstraps still use for the
/// control-plane cluster). Any other extension is refused by its key and type.
pub(super) fn protocol_options(
    typed: &HashMap<String, Any>,
    deprecated_http2: &Option<Http2ProtocolOptions>,
    at: &At,
) -> Result<(UpstreamProtocol, ConnectionOptions), Problem> {
    let mut protocol = UpstreamProtocol::Http1;
    let mut connection = super::default_connection();
    if let Some(h2) = deprecated_http2 {
        protocol = UpstreamProtocol::Http2 {
            max_concurrent_streams: http2(h2, &at.field("http2_protocol_options"))?,
        };
    }
    let sorted: BTreeMap<&String, &Any> = typed.iter().collect();
    for (key, any) in sorted {
        let at = at.key("typed_extension_protocol_options", key);
        if key != HTTP_PROTOCOL_OPTIONS
            || !crate::listener::same_type(&any.type_url, &HttpProtocolOptions::type_url())
        {
            return Err(at.unsupported_filter(key, &any.type_url));
        }
        if deprecated_http2.is_some() {
            return Err(at.invalid("http2_protocol_options is also set"));
        }
        let options: HttpProtocolOptions = bowline_xds::unpack(any).map_err(|e| at.invalid(e))?;
        (protocol, connection) = http_protocol_options(&options, &at)?;
    }
    Ok((protocol, connection))
}

fn http_protocol_options(
    o: &HttpProtocolOptions,
    at: &At,
) -> Result<(UpstreamProtocol, ConnectionOptions), Problem> {
    let HttpProtocolOptions {
        common_http_protocol_options,
        upstream_protocol_options,
        upstream_http_protocol_options,
        http_filters,
        header_validation_config,
        outlier_detection,
        request_mirror_policies,
        hash_policy,
        retry_policy,
    } = o;
    refuse_unsupported!(at;
        upstream_http_protocol_options, http_filters, header_validation_config, outlier_detection,
        request_mirror_policies, hash_policy, retry_policy,
    );
    let connection = match common_http_protocol_options {
        Some(c) => common(c, &at.field("common_http_protocol_options"))?,
        None => super::default_connection(),
    };
    let protocol = match upstream_protocol_options {
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config,
        })) => {
            let at = at.field("explicit_http_config");
            match protocol_config {
                Some(ProtocolConfig::HttpProtocolOptions(h1)) => {
                    http1(h1, &at.field("http_protocol_options"))?;
                    UpstreamProtocol::Http1
                }
                Some(ProtocolConfig::Http2ProtocolOptions(h2)) => UpstreamProtocol::Http2 {
                    max_concurrent_streams: http2(h2, &at.field("http2_protocol_options"))?,
                },
                Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                    return Err(at
                        .field("http3_protocol_options")
                        .unsupported_because("HTTP/3 is not implemented"))
                }
                None => {
                    return Err(at.invalid(
                        "one of http_protocol_options, http2_protocol_options is required",
                    ))
                }
            }
        }
        Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(d)) => {
            let at = at.field("use_downstream_protocol_config");
            let UseDownstreamHttpConfig {
                http_protocol_options,
                http2_protocol_options,
                http3_protocol_options,
            } = d;
            refuse_unsupported!(at; http3_protocol_options);
            if let Some(h1) = http_protocol_options {
                http1(h1, &at.field("http_protocol_options"))?;
            }
            UpstreamProtocol::UseDownstream {
                max_concurrent_streams: match http2_protocol_options {
                    Some(h2) => http2(h2, &at.field("http2_protocol_options"))?,
                    None => DEFAULT_MAX_CONCURRENT_STREAMS,
                },
            }
        }
        Some(UpstreamProtocolOptions::AutoConfig(_)) => {
            return Err(at.field("auto_config").unsupported())
        }
        // Envoy requires a protocol choice whenever the message is present.
        None => return Err(at.invalid("upstream_protocol_options is required")),
    };
    Ok((protocol, connection))
}

fn common(c: &CommonOptions, at: &At) -> Result<ConnectionOptions, Problem> {
    let CommonOptions {
        idle_timeout,
        max_connection_duration,
        max_requests_per_connection,
        max_connection_duration_jitter,
        max_headers_count,
        max_response_headers_kb,
        max_stream_duration,
        headers_with_underscores_action,
    } = c;
    refuse_unsupported!(at;
        max_connection_duration_jitter, max_headers_count, max_response_headers_kb,
        max_stream_duration, headers_with_underscores_action,
    );
    Ok(ConnectionOptions {
        max_requests_per_connection: match max_requests_per_connection {
            Some(n) if n.value == 0 => None,
            n => n.as_ref().map(|n| n.value),
        },
        idle_timeout: crate::duration::timeout(
            idle_timeout,
            Some(DEFAULT_IDLE_TIMEOUT),
            &at.field("idle_timeout"),
        )?,
        max_connection_duration: crate::duration::timeout(
            max_connection_duration,
            None,
            &at.field("max_connection_duration"),
        )?,
        tcp_keepalive: None,
    })
}

/// Upstream HTTP/1.1 options: none is implemented, so all must be at their defaults.
fn http1(h: &Http1ProtocolOptions, at: &At) -> Result<(), Problem> {
    if *h != Http1ProtocolOptions::default() {
        return Err(at.unsupported_because("upstream HTTP/1.1 options are not implemented"));
    }
    Ok(())
}

/// `max_concurrent_streams` (1..=2147483647, Envoy's default the maximum); nothing else.
fn http2(h: &Http2ProtocolOptions, at: &At) -> Result<u32, Problem> {
    let Http2ProtocolOptions {
        max_concurrent_streams,
        hpack_table_size,
        initial_stream_window_size,
        initial_connection_window_size,
        allow_connect,
        allow_metadata,
        max_outbound_frames,
        max_outbound_control_frames,
        max_consecutive_inbound_frames_with_empty_payload,
        max_inbound_priority_frames_per_stream,
        max_inbound_window_update_frames_per_data_frame_sent,
        stream_error_on_invalid_http_messaging,
        override_stream_error_on_invalid_http_message,
        custom_settings_parameters,
        connection_keepalive,
        use_oghttp2_codec,
        max_metadata_size,
        enable_huffman_encoding,
        max_header_field_size_kb,
        disallow_obs_text,
        stream_reset_burst,
        stream_reset_rate,
    } = h;
    refuse_unsupported!(at;
        hpack_table_size, initial_stream_window_size, initial_connection_window_size,
        allow_connect, allow_metadata, max_outbound_frames, max_outbound_control_frames,
        max_consecutive_inbound_frames_with_empty_payload, max_inbound_priority_frames_per_stream,
        max_inbound_window_update_frames_per_data_frame_sent, stream_error_on_invalid_http_messaging,
        override_stream_error_on_invalid_http_message, custom_settings_parameters,
        connection_keepalive, use_oghttp2_codec, max_metadata_size, enable_huffman_encoding,
        max_header_field_size_kb, disallow_obs_text, stream_reset_burst, stream_reset_rate,
    );
    let n = max_concurrent_streams
        .as_ref()
        .map_or(DEFAULT_MAX_CONCURRENT_STREAMS, |v| v.value);
    if !(1..=DEFAULT_MAX_CONCURRENT_STREAMS).contains(&n) {
        return Err(at
            .field("max_concurrent_streams")
            .invalid(format!("{n} is not in 1..=2147483647")));
    }
    Ok(n)
}
