//! The ledger for Istio's kinds (networking.istio.io, security.istio.io, telemetry.istio.io). Audited against
//! `crates/translate` and `crates/registry`: an entry is `applied` only where their code
//! reads the field, and names a test that shows the effect.

use super::routing::*;
use super::{applied, implicit, mount, unapplied, unapplied_for};
use super::{Entry, Row};
use crate::resource::Kind;

pub(super) fn entries(out: &mut Vec<Entry>) {
    use Kind::*;
    mount(out, VirtualService, "spec", VIRTUAL_SERVICE);
    mount(out, VirtualService, "spec.http[*]", HTTP_ROUTE);
    mount(out, VirtualService, "spec.http[*].match[*]", HTTP_MATCH);
    for at in [
        "spec.http[*].route[*].destination",
        "spec.http[*].mirror",
        "spec.http[*].mirrors[*].destination",
        "spec.tcp[*].route[*].destination",
        "spec.tls[*].route[*].destination",
    ] {
        mount(out, VirtualService, at, DESTINATION);
    }
    mount(out, DestinationRule, "spec", DESTINATION_RULE);
    for at in ["spec.trafficPolicy", "spec.subsets[*].trafficPolicy"] {
        mount(out, DestinationRule, at, TRAFFIC_POLICY);
        mount(out, DestinationRule, at, PORT_POLICY);
        let port_level = format!("{at}.portLevelSettings[*]");
        mount(out, DestinationRule, &port_level, PORT_POLICY);
        mount(out, DestinationRule, &port_level, PORT_LEVEL);
    }
    mount(out, ServiceEntry, "spec", SERVICE_ENTRY);
    mount(out, ServiceEntry, "spec.endpoints[*]", WORKLOAD);
    mount(out, WorkloadEntry, "spec", WORKLOAD);
    mount(out, Gateway, "spec", GATEWAY);
    mount(out, Sidecar, "spec", SIDECAR);
    mount(out, PeerAuthentication, "spec", PEER_AUTHENTICATION);
    mount(out, AuthorizationPolicy, "spec", AUTHORIZATION_POLICY);
    mount(out, RequestAuthentication, "spec", REQUEST_AUTHENTICATION);
    mount(out, Telemetry, "spec", TELEMETRY);
}

const SERVICE_ENTRY: &[Row] = &[
    applied("hosts", "default_sidecar"),
    applied("addresses", "service_addresses_become_cidr_ranges"),
    applied("ports[*].number", "default_sidecar"),
    applied("ports[*].protocol", "default_sidecar"),
    applied("ports[*].name", "default_sidecar"),
    applied("ports[*].targetPort", "service_port_target_port"),
    implicit(
        "location",
        "mutual TLS to a service is decided by its endpoints' security.istio.io/tlsMode label, which external endpoints do not carry",
    ),
    unapplied_for(
        "resolution",
        &["DYNAMIC_DNS"],
        "DYNAMIC_DNS is resolved like DNS (Envoy's dynamic forward proxy is not used), so each host needs an endpoint or the host name itself must resolve",
    ),
    applied("resolution", "dns_resolved_service"),
    applied("workloadSelector.labels", "default_sidecar"),
    applied(
        "exportTo",
        "service_entry_export_to_hides_a_service_from_other_namespaces",
    ),
    unapplied(
        "subjectAltNames",
        "sidecars verify the identities of the endpoints' own service accounts, not these names",
    ),
];

/// A WorkloadEntry, or a ServiceEntry's inline endpoint.
const WORKLOAD: &[Row] = &[
    applied("address", "endpoints_by_subset_and_locality"),
    applied("ports", "endpoints_by_subset_and_locality"),
    applied("labels", "endpoints_by_subset_and_locality"),
    unapplied(
        "network",
        "multi-network meshes are not supported; every endpoint is dialled directly",
    ),
    applied("locality", "endpoints_by_subset_and_locality"),
    applied("weight", "endpoints_by_subset_and_locality"),
    applied(
        "serviceAccount",
        "auto_mtls_goes_to_sidecars_and_checks_their_spiffe_id",
    ),
];

const NOT_TERMINATED: &str = "the server's TLS is not terminated with it";

const GATEWAY: &[Row] = &[
    applied("selector", "gateway_istio"),
    applied("servers[*].port.number", "gateway_istio"),
    applied("servers[*].port.protocol", "server_kinds"),
    applied("servers[*].port.name", "gateway_istio"),
    unapplied(
        "servers[*].port.targetPort",
        "the gateway binds the port its GATEWAY_PORT_MAP gives for the server port, not targetPort",
    ),
    applied("servers[*].hosts", "hosts_and_gateway_references"),
    unapplied(
        "servers[*].bind",
        "listeners bind the gateway proxy's own address",
    ),
    unapplied(
        "servers[*].defaultEndpoint",
        "default endpoints are not served",
    ),
    unapplied("servers[*].name", "server names are not used"),
    applied("servers[*].tls.httpsRedirect", "server_kinds"),
    unapplied_for(
        "servers[*].tls.mode",
        &["AUTO_PASSTHROUGH"],
        "AUTO_PASSTHROUGH (multi-network east-west gateways) is not served; this server gets no listener",
    ),
    applied("servers[*].tls.mode", "server_kinds"),
    applied("servers[*].tls.serverCertificate", "server_kinds"),
    applied("servers[*].tls.privateKey", "server_kinds"),
    applied("servers[*].tls.credentialName", "server_kinds"),
    applied("servers[*].tls.caCertificates", "server_kinds"),
    unapplied(
        "servers[*].tls.caCrl",
        "certificate revocation lists are not checked",
    ),
    unapplied("servers[*].tls.credentialNames", NOT_TERMINATED),
    unapplied("servers[*].tls.tlsCertificates", NOT_TERMINATED),
    unapplied(
        "servers[*].tls.caCertCredentialName",
        "client certificates are verified against the CA only",
    ),
    unapplied(
        "servers[*].tls.subjectAltNames",
        "client certificates are verified against the CA only",
    ),
    unapplied(
        "servers[*].tls.verifyCertificateSpki",
        "client certificates are verified against the CA only",
    ),
    unapplied(
        "servers[*].tls.verifyCertificateHash",
        "client certificates are verified against the CA only",
    ),
    unapplied(
        "servers[*].tls.minProtocolVersion",
        "TLS protocol versions are Envoy's defaults",
    ),
    unapplied(
        "servers[*].tls.maxProtocolVersion",
        "TLS protocol versions are Envoy's defaults",
    ),
    unapplied(
        "servers[*].tls.cipherSuites",
        "cipher suites are Envoy's defaults",
    ),
    unapplied(
        "servers[*].tls.ecdhCurves",
        "ECDH curves are Envoy's defaults",
    ),
    unapplied(
        "servers[*].tls.insecureSkipVerify",
        "client certificates are verified against the CA only",
    ),
];

const SIDECAR: &[Row] = &[
    applied(
        "workloadSelector.labels",
        "sidecar_workload_selector_wins_over_the_namespace_default",
    ),
    applied(
        "egress[*].hosts",
        "sidecar_egress_hosts_narrow_what_a_proxy_is_given",
    ),
    applied(
        "egress[*].port.number",
        "sidecar_egress_port_narrows_hosts_to_that_port",
    ),
    unapplied(
        "egress[*].port.protocol",
        "the services' own port protocols are used on a Sidecar egress port",
    ),
    implicit(
        "egress[*].port.name",
        "a port name only labels the port; bowline names listeners by port number",
    ),
    unapplied(
        "egress[*].port.targetPort",
        "Sidecar egress ports are not remapped",
    ),
    unapplied(
        "egress[*].bind",
        "egress traffic is captured on the sidecar's one outbound listener, not on per-listener binds",
    ),
    unapplied(
        "egress[*].captureMode",
        "the capture mode is the proxy's (its INTERCEPTION_MODE), not per egress listener",
    ),
    applied(
        "ingress[*].port.number",
        "sidecar_ingress_listeners_replace_the_workloads_ports",
    ),
    applied(
        "ingress[*].port.protocol",
        "sidecar_ingress_listeners_replace_the_workloads_ports",
    ),
    applied(
        "ingress[*].port.name",
        "sidecar_ingress_listeners_replace_the_workloads_ports",
    ),
    applied(
        "ingress[*].defaultEndpoint",
        "sidecar_ingress_listeners_replace_the_workloads_ports",
    ),
    unapplied(
        "ingress[*].port.targetPort",
        "the listener's port is taken as written; defaultEndpoint names the application's",
    ),
    unapplied(
        "ingress[*].bind",
        "inbound traffic is captured on the sidecar's one inbound listener, not on per-listener binds",
    ),
    unapplied(
        "ingress[*].captureMode",
        "the capture mode is the proxy's (its INTERCEPTION_MODE), not per ingress listener",
    ),
    unapplied(
        "ingress[*].tls",
        "an ingress listener's own TLS is not served; inbound TLS is the mesh's mutual TLS",
    ),
    unapplied(
        "ingress[*].connectionPool",
        "inbound connection pools are not applied: inbound connections are not limited",
    ),
    unapplied(
        "inboundConnectionPool",
        "inbound connection pools are not applied: inbound connections are not limited",
    ),
    applied(
        "outboundTrafficPolicy.mode",
        "sidecar_outbound_traffic_policy_overrides_the_mesh_for_the_proxies_it_applies_to",
    ),
    applied(
        "outboundTrafficPolicy.egressProxy.host",
        "sidecar_egress_proxy_takes_the_calls_outside_the_registry",
    ),
    applied(
        "outboundTrafficPolicy.egressProxy.port.number",
        "sidecar_egress_proxy_takes_the_calls_outside_the_registry",
    ),
    applied(
        "outboundTrafficPolicy.egressProxy.subset",
        "sidecar_egress_proxy_takes_the_calls_outside_the_registry",
    ),
];

const PEER_AUTHENTICATION: &[Row] = &[
    applied(
        "selector.matchLabels",
        "peer_authentication_follows_istios_precedence",
    ),
    applied("mtls.mode", "peer_authentication_follows_istios_precedence"),
    applied(
        "portLevelMtls.*.mode",
        "peer_authentication_follows_istios_precedence",
    ),
];

const TARGETED: &str = "policies attached by targetRef (to a Gateway or Service) are not enforced yet; this policy has no effect";
const EXT_AUTHZ: &str =
    "CUSTOM (external authorization) is not enforced yet; this policy has no effect";

const AUTHORIZATION_POLICY: &[Row] = &[
    applied(
        "selector.matchLabels",
        "service_account_allow_names_the_rule",
    ),
    unapplied("targetRef", TARGETED),
    unapplied("targetRefs", TARGETED),
    unapplied_for("action", &["CUSTOM"], EXT_AUTHZ),
    applied("action", "deny_beats_allow_and_audit_comes_first"),
    unapplied("provider", EXT_AUTHZ),
    applied(
        "rules[*].from[*].source.principals",
        "principal_forms_and_service_accounts",
    ),
    applied(
        "rules[*].from[*].source.notPrincipals",
        "sources_namespaces_ip_blocks_and_negations",
    ),
    applied(
        "rules[*].from[*].source.requestPrincipals",
        "request_principals_and_claims_read_the_jwt_payload",
    ),
    applied(
        "rules[*].from[*].source.notRequestPrincipals",
        "request_principals_and_claims_read_the_jwt_payload",
    ),
    applied(
        "rules[*].from[*].source.namespaces",
        "sources_namespaces_ip_blocks_and_negations",
    ),
    applied(
        "rules[*].from[*].source.notNamespaces",
        "sources_namespaces_ip_blocks_and_negations",
    ),
    applied(
        "rules[*].from[*].source.serviceAccounts",
        "principal_forms_and_service_accounts",
    ),
    applied(
        "rules[*].from[*].source.notServiceAccounts",
        "principal_forms_and_service_accounts",
    ),
    applied(
        "rules[*].from[*].source.ipBlocks",
        "sources_namespaces_ip_blocks_and_negations",
    ),
    applied(
        "rules[*].from[*].source.notIpBlocks",
        "sources_namespaces_ip_blocks_and_negations",
    ),
    applied(
        "rules[*].from[*].source.remoteIpBlocks",
        "authz_trust_domains_and_remote_ip_blocks",
    ),
    applied(
        "rules[*].from[*].source.notRemoteIpBlocks",
        "authz_trust_domains_and_remote_ip_blocks",
    ),
    applied(
        "rules[*].from[*].source.trustDomains",
        "authz_trust_domains_and_remote_ip_blocks",
    ),
    applied(
        "rules[*].from[*].source.notTrustDomains",
        "authz_trust_domains_and_remote_ip_blocks",
    ),
    applied(
        "rules[*].to[*].operation.hosts",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.notHosts",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.ports",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.notPorts",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.methods",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.notMethods",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.paths",
        "operations_paths_methods_hosts_ports",
    ),
    applied(
        "rules[*].to[*].operation.notPaths",
        "operations_paths_methods_hosts_ports",
    ),
    applied("rules[*].when[*].key", "when_conditions_are_and_ed"),
    applied("rules[*].when[*].values", "when_conditions_are_and_ed"),
    applied("rules[*].when[*].notValues", "when_conditions_are_and_ed"),
];

const REQUEST_AUTHENTICATION: &[Row] = &[
    applied(
        "selector.matchLabels",
        "selected_policies_become_istio_providers",
    ),
    unapplied("targetRef", TARGETED),
    unapplied("targetRefs", TARGETED),
    applied(
        "jwtRules[*].issuer",
        "selected_policies_become_istio_providers",
    ),
    applied(
        "jwtRules[*].audiences",
        "selected_policies_become_istio_providers",
    ),
    applied("jwtRules[*].jwksUri", "jwks_uri_host_and_port"),
    applied("jwtRules[*].jwks", "no_policy_no_filter_and_uri_forms"),
    applied(
        "jwtRules[*].fromHeaders[*].name",
        "selected_policies_become_istio_providers",
    ),
    applied(
        "jwtRules[*].fromHeaders[*].prefix",
        "selected_policies_become_istio_providers",
    ),
    applied(
        "jwtRules[*].fromParams",
        "selected_policies_become_istio_providers",
    ),
    unapplied_for(
        "jwtRules[*].presence",
        &["REQUIRED"],
        "a required token is not enforced by the JWT filter itself; require one with an AuthorizationPolicy on requestPrincipals",
    ),
    applied(
        "jwtRules[*].fromCookies",
        "selected_policies_become_istio_providers",
    ),
    applied(
        "jwtRules[*].outputPayloadToHeader",
        "selected_policies_become_istio_providers",
    ),
    applied(
        "jwtRules[*].forwardOriginalToken",
        "selected_policies_become_istio_providers",
    ),
    unapplied(
        "jwtRules[*].outputClaimToHeaders",
        "claims are copied to headers only by Envoy: bowline's own proxy refuses the listener that carries them",
    ),
    applied(
        "jwtRules[*].timeout",
        "selected_policies_become_istio_providers",
    ),
    applied(
        "jwtRules[*].spaceDelimitedClaims",
        "jwt_space_delimited_claims_are_normalised",
    ),
];

const TELEMETRY: &[Row] = &[
    applied(
        "selector.matchLabels",
        "telemetry_access_logging_follows_istios_precedence",
    ),
    unapplied(
        "targetRef",
        "Telemetry attached by targetRef (to a Gateway or Service) is not applied yet; select the workloads with `selector`",
    ),
    unapplied(
        "targetRefs",
        "Telemetry attached by targetRef (to a Gateway or Service) is not applied yet; select the workloads with `selector`",
    ),
    applied(
        "metrics[*].providers[*].name",
        "metrics_overrides_follow_istios_precedence",
    ),
    applied(
        "metrics[*].overrides[*].disabled",
        "metrics_overrides_follow_istios_precedence",
    ),
    applied(
        "metrics[*].overrides[*].match.metric",
        "metrics_overrides_follow_istios_precedence",
    ),
    applied(
        "metrics[*].overrides[*].match.mode",
        "metrics_overrides_follow_istios_precedence",
    ),
    unapplied(
        "metrics[*].overrides[*].match.customMetric",
        "bowline-proxy reports Istio's standard metrics only; custom metrics are not defined",
    ),
    applied(
        "metrics[*].overrides[*].tagOverrides.*.operation",
        "tag_overrides_follow_istios_precedence_per_metric_and_tag",
    ),
    applied(
        "metrics[*].overrides[*].tagOverrides.*.value",
        "tag_overrides_follow_istios_precedence_per_metric_and_tag",
    ),
    unapplied(
        "metrics[*].reportingInterval",
        "TCP metrics are reported every 5 s and when the connection closes",
    ),
    applied(
        "tracing[*].providers[*].name",
        "a_request_is_one_trace_at_a_zipkin_receiver",
    ),
    applied(
        "tracing[*].randomSamplingPercentage",
        "a_request_is_one_trace_at_an_otlp_receiver",
    ),
    applied("tracing[*].match.mode", "tracing_follows_istios_precedence"),
    applied(
        "tracing[*].disableSpanReporting",
        "tracing_follows_istios_precedence",
    ),
    applied(
        "tracing[*].enableIstioTags",
        "tracing_follows_istios_precedence",
    ),
    applied(
        "tracing[*].customTags.*.literal.value",
        "tracing_follows_istios_precedence",
    ),
    applied(
        "tracing[*].customTags.*.header.name",
        "tracing_follows_istios_precedence",
    ),
    applied(
        "tracing[*].customTags.*.header.defaultValue",
        "tracing_follows_istios_precedence",
    ),
    applied(
        "tracing[*].customTags.*.environment.name",
        "tracing_follows_istios_precedence",
    ),
    applied(
        "tracing[*].customTags.*.environment.defaultValue",
        "tracing_follows_istios_precedence",
    ),
    unapplied(
        "tracing[*].customTags.*.formatter",
        "formatter tags (Envoy command operators) are not applied: the tag is left out",
    ),
    unapplied(
        "tracing[*].useRequestIdForTraceSampling",
        "the sampling decision does not read x-request-id: every proxy decides for itself unless a decision arrives with the request",
    ),
    unapplied(
        "tracing[*].disableContextPropagation",
        "trace headers are always propagated",
    ),
    applied(
        "accessLogging[*].providers[*].name",
        "telemetry_access_logging_follows_istios_precedence",
    ),
    applied(
        "accessLogging[*].disabled",
        "telemetry_access_logging_follows_istios_precedence",
    ),
    applied(
        "accessLogging[*].match.mode",
        "access_log_match_mode_splits_client_and_server",
    ),
    applied(
        "accessLogging[*].filter.expression",
        "a_providers_filter_becomes_envoys_cel_access_log_filter",
    ),
];
