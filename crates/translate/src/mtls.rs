//! Mutual TLS between sidecars, as Istio configures it: which mode a workload's port is in
//! (PeerAuthentication), what an outbound cluster originates (auto mTLS, or the
//! DestinationRule's `tls`), and the transport sockets for both sides.
//!
//! Certificates are SDS secrets by Istio's names — `default` (the workload certificate) and
//! `ROOTCA` (the mesh root) — from the `sds-grpc` cluster of the proxy's bootstrap: Istio's
//! agent serves them to Envoy there, and bowline-proxy serves them from its built-in agent.

use crate::proxy_view::ProxyView;
use crate::PushContext;
use bowline_config::common::{selector_matches, Labels};
use bowline_config::istio::destination_rule::ClientTlsSettings;
use bowline_config::istio::security::{MtlsMode, PeerAuthentication};
use bowline_config::Spec;
use bowline_registry::{Endpoint, Service};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{
    api_config_source, config_source, data_source, grpc_service, transport_socket, ApiConfigSource,
    ApiVersion, ConfigSource, DataSource, GrpcService, TransportSocket,
};
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, SdsSecretConfig, SubjectAltNameMatcher, TlsCertificate,
    UpstreamTlsContext,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};

/// The mesh's SPIFFE trust domain.
pub(crate) const TRUST_DOMAIN: &str = "cluster.local";
/// The label Istio's injector puts on workloads that have a sidecar (auto mTLS targets).
pub(crate) const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";
/// The bootstrap cluster that serves SDS (Istio's name).
pub(crate) const SDS_CLUSTER: &str = "sds-grpc";
/// ALPN a sidecar offers to another (Istio's): marks the connection as mesh mTLS.
const MESH_ALPN: [&str; 2] = ["istio-peer-exchange", "istio"];
const TLS_SOCKET: &str = "envoy.transport_sockets.tls";

/// What a workload's port accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerMode {
    /// Mutual TLS only: plaintext connections are refused.
    Strict,
    /// Mutual TLS and plaintext on the same port.
    Permissive,
    /// Plaintext only.
    Disable,
}

/// The PeerAuthentication mode of a workload's port, by Istio's precedence: a policy
/// selecting the workload (its port-level setting first), then the namespace's policy, then
/// the mesh-wide one in the root namespace; UNSET defers to the next level; the default is
/// PERMISSIVE. Among several policies of one level the first by name wins.
pub(crate) fn peer_mode(
    ctx: &PushContext,
    namespace: &str,
    labels: &Labels,
    port: u32,
) -> PeerMode {
    let pa = |i: usize| match &ctx.resource(i).spec {
        Spec::PeerAuthentication(pa) => Some(pa),
        _ => None,
    };
    let mode_of = |pa: &PeerAuthentication| match pa.mtls.as_ref().and_then(|m| m.mode) {
        Some(MtlsMode::Unset) | None => None,
        Some(m) => Some(m),
    };
    let in_ns = ctx.peers_in(namespace);
    let workload = in_ns
        .into_iter()
        .flat_map(|idx| idx.selecting.iter().filter_map(|i| pa(*i)))
        .find(|pa| {
            pa.selector
                .as_ref()
                .is_some_and(|s| selector_matches(&s.match_labels, labels))
        });
    let namespace_wide = in_ns.and_then(|idx| idx.namespace_wide).and_then(pa);
    let mesh_wide = ctx.mesh_wide_peer().and_then(pa);
    let port_level = workload
        .and_then(|pa| pa.port_level_mtls.as_ref()?.get(&port))
        .and_then(|m| m.mode)
        .filter(|m| *m != MtlsMode::Unset);
    let mode = port_level
        .or_else(|| workload.and_then(mode_of))
        .or_else(|| namespace_wide.and_then(mode_of))
        .or_else(|| mesh_wide.and_then(mode_of));
    match mode {
        Some(MtlsMode::Strict) => PeerMode::Strict,
        Some(MtlsMode::Disable) => PeerMode::Disable,
        _ => PeerMode::Permissive,
    }
}

/// The mode of this proxy's own port.
pub(crate) fn own_peer_mode(ctx: &PushContext, proxy: &ProxyView, port: u16) -> PeerMode {
    peer_mode(ctx, &proxy.namespace, &proxy.labels, u32::from(port))
}

/// The SPIFFE id of a service account.
pub(crate) fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}

/// What an outbound cluster to `endpoints` of `service` originates: the DestinationRule's
/// `tls` when it has one; otherwise Istio's auto mTLS — mutual TLS when every endpoint has
/// a sidecar (the tlsMode label) and none of them has mTLS disabled on that port.
pub(crate) fn upstream_transport(
    ctx: &PushContext,
    service: &Service,
    endpoints: &[&Endpoint],
    port_name: &str,
    service_port: u32,
    tls: Option<&ClientTlsSettings>,
    sni: String,
) -> Option<TransportSocket> {
    // The DestinationRule's `sni` wins in every mode: Istio's egress-gateway pattern sends
    // ISTIO_MUTUAL with `sni: <external host>` so that the gateway's server for that host
    // takes the connection.
    let sni = match tls {
        Some(t) if !t.sni.is_empty() => t.sni.clone(),
        _ => sni,
    };
    let mesh = || mesh_upstream(service, endpoints, sni.clone());
    match tls.and_then(|t| t.mode.as_deref()) {
        Some("DISABLE") => None,
        Some("ISTIO_MUTUAL") => Some(mesh()),
        Some("SIMPLE") | Some("MUTUAL") => {
            Some(user_upstream(tls.expect("matched"), &service.hostname))
        }
        _ => {
            let sidecars = !endpoints.is_empty()
                && endpoints
                    .iter()
                    .all(|e| e.labels.get(TLS_MODE_LABEL).map(String::as_str) == Some("istio"));
            let disabled = endpoints.iter().any(|e| {
                let port = e.ports.get(port_name).copied().unwrap_or(service_port);
                let namespace = e
                    .workload
                    .as_deref()
                    .and_then(|w| w.split_once('/'))
                    .map_or(service.namespace.as_str(), |(ns, _)| ns);
                peer_mode(ctx, namespace, &e.labels, port) == PeerMode::Disable
            });
            (sidecars && !disabled).then(mesh)
        }
    }
}

/// ISTIO_MUTUAL: the workload certificate, the mesh root, and the destination's SPIFFE ids
/// (one per service account of its endpoints).
fn mesh_upstream(service: &Service, endpoints: &[&Endpoint], sni: String) -> TransportSocket {
    let ids = destination_ids(service, endpoints);
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: MESH_ALPN.iter().map(|s| s.to_string()).collect(),
            tls_certificate_sds_secret_configs: vec![sds_secret("default")],
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(CertificateValidationContext {
                        match_typed_subject_alt_names: ids
                            .iter()
                            .map(|id| san(SanType::Uri, id))
                            .collect(),
                        ..Default::default()
                    }),
                    validation_context_sds_secret_config: Some(sds_secret("ROOTCA")),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        sni,
        ..Default::default()
    };
    socket(pack(&context))
}

/// SIMPLE / MUTUAL: the user's files. No `caCertificates` = the server is not verified.
/// Without `sni`, the service's host name is sent (Istio's auto SNI); with `caCertificates`
/// and no `subjectAltNames`, the server's certificate must name that host (Istio's
/// `VERIFY_CERTIFICATE_AT_CLIENT`, on by default). A wildcard host names no server: then
/// neither is set.
fn user_upstream(tls: &ClientTlsSettings, host: &str) -> TransportSocket {
    let host = (!host.starts_with('*')).then_some(host);
    let file = |path: &str| {
        (!path.is_empty()).then(|| DataSource {
            specifier: Some(data_source::Specifier::Filename(path.to_string())),
            ..Default::default()
        })
    };
    let validation = file(&tls.ca_certificates).map(|ca| CertificateValidationContext {
        trusted_ca: Some(ca),
        match_typed_subject_alt_names: if tls.subject_alt_names.is_empty() {
            host.map(|h| san(SanType::Dns, h)).into_iter().collect()
        } else {
            tls.subject_alt_names
                .iter()
                .flat_map(|n| [san(SanType::Dns, n), san(SanType::Uri, n)])
                .collect()
        },
        ..Default::default()
    });
    let certificate = (tls.mode.as_deref() == Some("MUTUAL"))
        .then(|| TlsCertificate {
            certificate_chain: file(&tls.client_certificate),
            private_key: file(&tls.private_key),
            ..Default::default()
        })
        .into_iter()
        .collect();
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: certificate,
            validation_context_type: validation.map(ValidationContextType::ValidationContext),
            ..Default::default()
        }),
        sni: if tls.sni.is_empty() {
            host.unwrap_or_default().to_string()
        } else {
            tls.sni.clone()
        },
        ..Default::default()
    };
    socket(pack(&context))
}

/// The SPIFFE ids `endpoints` of `service` present (one per service account), sorted: who
/// the client accepts as the destination.
pub(crate) fn destination_ids(service: &Service, endpoints: &[&Endpoint]) -> Vec<String> {
    let mut ids: Vec<String> = endpoints
        .iter()
        .map(|e| {
            let ns = e
                .workload
                .as_deref()
                .and_then(|w| w.split_once('/'))
                .map_or(service.namespace.as_str(), |(ns, _)| ns);
            spiffe_id(ns, &e.service_account)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The certificate provider instance a proxyless gRPC bootstrap declares (Istio's agent
/// writes `certificate_providers.default`, a `file_watcher` over the workload certificate,
/// key and root), and its two certificates: `default` (the workload's) and `ROOTCA`.
const GRPC_PROVIDER: &str = "default";

fn grpc_provider(certificate: &str) -> Option<CertificateProviderPluginInstance> {
    Some(CertificateProviderPluginInstance {
        instance_name: GRPC_PROVIDER.into(),
        certificate_name: certificate.into(),
    })
}

/// ISTIO_MUTUAL for a proxyless gRPC client: its workload certificate and the mesh root from
/// its certificate provider (gRPC has no SDS), the destination's SPIFFE ids as exact SAN
/// matches. No ALPN nor SNI: gRPC reads neither.
pub(crate) fn grpc_upstream(ids: &[String]) -> TransportSocket {
    #[allow(deprecated)] // gRPC matches `match_subject_alt_names` (Istio's grpcgen sends it).
    let validation = CertificateValidationContext {
        ca_certificate_provider_instance: grpc_provider("ROOTCA"),
        match_subject_alt_names: ids
            .iter()
            .map(|id| StringMatcher {
                match_pattern: Some(MatchPattern::Exact(id.clone())),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: grpc_provider("default"),
            validation_context_type: Some(ValidationContextType::ValidationContext(validation)),
            ..Default::default()
        }),
        ..Default::default()
    };
    socket(pack(&context))
}

/// The server side of mesh mTLS for a proxyless gRPC server: present the workload
/// certificate, require a client certificate from the mesh root (gRPC servers take no SAN
/// match).
pub(crate) fn grpc_downstream() -> TransportSocket {
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: grpc_provider("default"),
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    ca_certificate_provider_instance: grpc_provider("ROOTCA"),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        require_client_certificate: crate::proto::bool_value(true),
        ..Default::default()
    };
    socket(pack(&context))
}

/// The inbound side of mesh mTLS: present the workload certificate, require a client
/// certificate from the mesh root (who the client is, authorization decides).
pub(crate) fn inbound_mtls(alpn: &[&str]) -> TransportSocket {
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: alpn.iter().map(|s| s.to_string()).collect(),
            tls_certificate_sds_secret_configs: vec![sds_secret("default")],
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                sds_secret("ROOTCA"),
            )),
            ..Default::default()
        }),
        require_client_certificate: crate::proto::bool_value(true),
        ..Default::default()
    };
    socket(pack(&context))
}

fn socket(config: bowline_xds::pb::google::protobuf::Any) -> TransportSocket {
    TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(config)),
    }
}

fn san(kind: SanType, value: &str) -> SubjectAltNameMatcher {
    SubjectAltNameMatcher {
        san_type: kind as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(MatchPattern::Exact(value.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An SDS secret from the bootstrap's `sds-grpc` cluster.
pub(crate) fn sds_secret(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_string(),
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(
                ApiConfigSource {
                    api_type: api_config_source::ApiType::Grpc as i32,
                    transport_api_version: ApiVersion::V3 as i32,
                    grpc_services: vec![GrpcService {
                        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                            grpc_service::EnvoyGrpc {
                                cluster_name: SDS_CLUSTER.into(),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
#[path = "mtls/tests.rs"]
mod tests;
