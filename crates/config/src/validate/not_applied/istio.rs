//! The ledger for Istio's kinds (networking.istio.io, security.istio.io). Audited against
//! `crates/translate` and `crates/registry`: an entry is `applied` only where their code
//! reads the field, and names a test that shows the effect.

use super::{applied, implicit, mount, refused, unapplied, unapplied_for, unapplied_unless};
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
}

const VIRTUAL_SERVICE: &[Row] = &[
    applied("hosts", "vs_match"),
    applied("gateways", "gateways_select_the_mesh"),
    applied("exportTo", "export_to_follows_istio"),
    unapplied(
        "tls",
        "TLS routing by SNI is not served yet; this rule has no effect (route TLS as opaque TCP with a `tcp` rule)",
    ),
    applied("tcp[*].match[*].port", "tcp_routes"),
    applied("tcp[*].match[*].sourceLabels", "tcp_routes"),
    applied("tcp[*].match[*].gateways", "source_conditions_are_decided_per_proxy"),
    applied("tcp[*].match[*].sourceNamespace", "source_conditions_are_decided_per_proxy"),
    unapplied(
        "tcp[*].match[*].destinationSubnets",
        "destination subnets are not matched, so the rule applies whatever the destination address",
    ),
    unapplied(
        "tcp[*].match[*].sourceSubnet",
        "source subnets are not matched, so the rule applies whatever the client address",
    ),
    applied("tcp[*].route[*].weight", "tcp_routes"),
];

const HTTP_ROUTE: &[Row] = &[
    applied("name", "vs_forwarding"),
    applied("route[*].weight", "destination_weights_follow_istio"),
    applied("route[*].headers.request.set", "vs_forwarding"),
    applied("route[*].headers.request.add", "vs_forwarding"),
    applied("route[*].headers.request.remove", "vs_forwarding"),
    applied("route[*].headers.response.set", "vs_forwarding"),
    applied("route[*].headers.response.add", "vs_forwarding"),
    applied("route[*].headers.response.remove", "vs_forwarding"),
    applied("redirect.uri", "redirect_codes_and_ports"),
    applied("redirect.authority", "vs_responses"),
    applied("redirect.port", "redirect_codes_and_ports"),
    applied("redirect.derivePort", "redirect_codes_and_ports"),
    applied("redirect.scheme", "vs_responses"),
    applied("redirect.redirectCode", "redirect_codes_and_ports"),
    applied(
        "directResponse.status",
        "direct_responses_envoy_refuses_are_dropped",
    ),
    applied("directResponse.body", "base64_bodies_decode"),
    unapplied(
        "delegate",
        "VirtualService delegation is not served yet; this rule is skipped",
    ),
    applied("rewrite.uri", "vs_forwarding"),
    applied("rewrite.authority", "vs_forwarding"),
    applied("rewrite.uriRegexRewrite.match", "vs_forwarding"),
    applied("rewrite.uriRegexRewrite.rewrite", "vs_forwarding"),
    applied("timeout", "vs_forwarding"),
    applied("retries.attempts", "attempts_decide_whether_to_retry"),
    applied("retries.perTryTimeout", "attempts_decide_whether_to_retry"),
    applied("retries.retryOn", "retry_on_splits_words_from_status_codes"),
    applied("retries.backoff", "attempts_decide_whether_to_retry"),
    applied(
        "retries.retryIgnorePreviousHosts",
        "attempts_decide_whether_to_retry",
    ),
    unapplied(
        "retries.retryRemoteLocalities",
        "retries are not steered to other localities (locality-aware routing is not served)",
    ),
    applied("fault.delay.fixedDelay", "fault_percentages"),
    refused("fault.delay.exponentialDelay"),
    applied("fault.delay.percentage.value", "vs_responses"),
    applied("fault.delay.percent", "fault_percentages"),
    applied("fault.abort.httpStatus", "vs_responses"),
    applied("fault.abort.grpcStatus", "fault_percentages"),
    refused("fault.abort.http2Error"),
    applied("fault.abort.percentage.value", "fault_percentages"),
    applied("mirrorPercentage.value", "vs_forwarding"),
    applied("mirrorPercent", "deprecated_mirror_percent_and_cors_fields"),
    applied("mirrors[*].percentage.value", "vs_forwarding"),
    applied("corsPolicy.allowOrigins", "vs_responses"),
    applied(
        "corsPolicy.allowOrigin",
        "deprecated_mirror_percent_and_cors_fields",
    ),
    applied("corsPolicy.allowMethods", "vs_responses"),
    applied("corsPolicy.allowHeaders", "vs_responses"),
    applied("corsPolicy.exposeHeaders", "vs_responses"),
    applied("corsPolicy.maxAge", "vs_responses"),
    applied("corsPolicy.allowCredentials", "vs_responses"),
    applied(
        "corsPolicy.unmatchedPreflights",
        "deprecated_mirror_percent_and_cors_fields",
    ),
    applied(
        "headers.request.set",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied(
        "headers.request.add",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied(
        "headers.request.remove",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied(
        "headers.response.set",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied("headers.response.add", "vs_forwarding"),
    applied(
        "headers.response.remove",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
];

const HTTP_MATCH: &[Row] = &[
    unapplied(
        "name",
        "match names are not used (Istio joins them into route names for its statistics)",
    ),
    applied("uri", "uris_become_path_specifiers"),
    applied("scheme", "headers_methods_and_query_parameters"),
    applied("method", "headers_methods_and_query_parameters"),
    applied("authority", "headers_methods_and_query_parameters"),
    applied("headers", "headers_methods_and_query_parameters"),
    applied("withoutHeaders", "headers_methods_and_query_parameters"),
    applied("queryParams", "headers_methods_and_query_parameters"),
    applied(
        "ignoreUriCase",
        "ignore_uri_case_turns_case_sensitivity_off",
    ),
    applied("port", "source_conditions_are_decided_per_proxy"),
    applied("sourceLabels", "source_conditions_are_decided_per_proxy"),
    applied("sourceNamespace", "source_conditions_are_decided_per_proxy"),
    applied("gateways", "source_conditions_are_decided_per_proxy"),
    unapplied(
        "statPrefix",
        "per-route statistics prefixes are not emitted",
    ),
];

const DESTINATION: &[Row] = &[
    applied("host", "vs_forwarding"),
    applied("subset", "vs_forwarding"),
    applied("port.number", "vs_forwarding"),
];

const DESTINATION_RULE: &[Row] = &[
    applied("host", "dr_load_balancers"),
    applied("subsets[*].name", "endpoints_by_subset_and_locality"),
    applied("subsets[*].labels", "endpoints_by_subset_and_locality"),
    applied("exportTo", "export_to_follows_istio"),
    applied(
        "workloadSelector.matchLabels",
        "destination_rule_workload_selector_picks_proxies",
    ),
];

/// Fields of a TrafficPolicy that a port-level policy does not have.
const TRAFFIC_POLICY: &[Row] = &[
    unapplied(
        "tunnel",
        "tunnelling to the destination over HTTP CONNECT is not served",
    ),
    unapplied(
        "proxyProtocol",
        "the PROXY protocol header is not sent to upstreams",
    ),
    unapplied(
        "retryBudget",
        "retry budgets are not enforced; retries are bounded by connectionPool.http.maxRetries only",
    ),
];

const PORT_LEVEL: &[Row] = &[applied(
    "port.number",
    "more_specific_levels_replace_whole_fields",
)];

/// A traffic policy's load balancer, connection pool, outlier detection and TLS, at any level.
const PORT_POLICY: &[Row] = &[
    applied("loadBalancer.simple", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpHeaderName", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpCookie.name", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpCookie.path", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpCookie.ttl", "dr_load_balancers"),
    unapplied(
        "loadBalancer.consistentHash.httpCookie.attributes",
        "cookie attributes are not set on the generated cookie",
    ),
    applied("loadBalancer.consistentHash.useSourceIp", "dr_load_balancers"),
    applied(
        "loadBalancer.consistentHash.httpQueryParameterName",
        "dr_load_balancers",
    ),
    applied(
        "loadBalancer.consistentHash.ringHash.minimumRingSize",
        "dr_load_balancers",
    ),
    applied("loadBalancer.consistentHash.maglev.tableSize", "dr_load_balancers"),
    applied(
        "loadBalancer.consistentHash.minimumRingSize",
        "deprecated_minimum_ring_size",
    ),
    unapplied(
        "loadBalancer.localityLbSetting",
        "locality-aware load balancing (distribute, failover) is not served; endpoints are balanced regardless of locality",
    ),
    unapplied(
        "loadBalancer.warmupDurationSecs",
        "slow-start warm-up of new endpoints is not served",
    ),
    unapplied(
        "loadBalancer.warmup",
        "slow-start warm-up of new endpoints is not served",
    ),
    applied("connectionPool.tcp.maxConnections", "dr_pool_outlier"),
    applied("connectionPool.tcp.connectTimeout", "dr_pool_outlier"),
    applied("connectionPool.tcp.tcpKeepalive.probes", "dr_pool_outlier"),
    applied("connectionPool.tcp.tcpKeepalive.time", "dr_pool_outlier"),
    applied("connectionPool.tcp.tcpKeepalive.interval", "dr_pool_outlier"),
    applied("connectionPool.tcp.maxConnectionDuration", "dr_pool_outlier"),
    applied("connectionPool.tcp.idleTimeout", "tcp_idle_timeout_on_http_clusters"),
    applied("connectionPool.http.http1MaxPendingRequests", "dr_pool_outlier"),
    applied("connectionPool.http.http2MaxRequests", "dr_pool_outlier"),
    applied("connectionPool.http.maxRequestsPerConnection", "dr_pool_outlier"),
    applied("connectionPool.http.maxRetries", "dr_pool_outlier"),
    applied("connectionPool.http.idleTimeout", "dr_pool_outlier"),
    applied("connectionPool.http.h2UpgradePolicy", "dr_pool_outlier"),
    applied("connectionPool.http.useClientProtocol", "dr_pool_outlier"),
    applied("connectionPool.http.maxConcurrentStreams", "dr_pool_outlier"),
    applied("outlierDetection.consecutive5xxErrors", "dr_pool_outlier"),
    applied("outlierDetection.consecutiveGatewayErrors", "dr_pool_outlier"),
    applied(
        "outlierDetection.consecutiveLocalOriginFailures",
        "local_origin_and_deprecated_outlier_fields",
    ),
    applied(
        "outlierDetection.consecutiveErrors",
        "local_origin_and_deprecated_outlier_fields",
    ),
    applied(
        "outlierDetection.splitExternalLocalOriginErrors",
        "local_origin_and_deprecated_outlier_fields",
    ),
    applied("outlierDetection.interval", "dr_pool_outlier"),
    applied("outlierDetection.baseEjectionTime", "dr_pool_outlier"),
    applied("outlierDetection.maxEjectionPercent", "dr_pool_outlier"),
    applied("outlierDetection.minHealthPercent", "dr_pool_outlier"),
    applied("tls.mode", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.clientCertificate", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.privateKey", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.caCertificates", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.subjectAltNames", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.sni", "destination_rule_tls_modes_win_over_auto_mtls"),
    unapplied(
        "tls.credentialName",
        "certificates from a Kubernetes secret are not read for upstream TLS; give clientCertificate, privateKey and caCertificates as files",
    ),
    unapplied(
        "tls.insecureSkipVerify",
        "verification follows caCertificates alone: without it the server is not verified, with it it always is",
    ),
    unapplied("tls.caCrl", "certificate revocation lists are not checked"),
];

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
    unapplied(
        "exportTo",
        "ServiceEntry visibility is not applied: every sidecar is given every service",
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
    unapplied_for(
        "servers[*].port.protocol",
        &["TCP", "TLS", "MONGO"],
        "only HTTP, HTTP2, GRPC and HTTPS servers are served; this server gets no listener",
    ),
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
    unapplied_unless(
        "servers[*].tls.mode",
        &["SIMPLE"],
        "only SIMPLE TLS termination is served; this server gets no listener",
    ),
    applied("servers[*].tls.mode", "server_kinds"),
    applied("servers[*].tls.serverCertificate", "server_kinds"),
    applied("servers[*].tls.privateKey", "server_kinds"),
    applied("servers[*].tls.credentialName", "server_kinds"),
    unapplied(
        "servers[*].tls.caCertificates",
        "client certificates are not verified (MUTUAL is not served)",
    ),
    unapplied(
        "servers[*].tls.caCrl",
        "certificate revocation lists are not checked",
    ),
    unapplied("servers[*].tls.credentialNames", NOT_TERMINATED),
    unapplied("servers[*].tls.tlsCertificates", NOT_TERMINATED),
    unapplied(
        "servers[*].tls.caCertCredentialName",
        "client certificates are not verified (MUTUAL is not served)",
    ),
    unapplied(
        "servers[*].tls.subjectAltNames",
        "client certificates are not verified (MUTUAL is not served)",
    ),
    unapplied(
        "servers[*].tls.verifyCertificateSpki",
        "client certificates are not verified (MUTUAL is not served)",
    ),
    unapplied(
        "servers[*].tls.verifyCertificateHash",
        "client certificates are not verified (MUTUAL is not served)",
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
        "servers[*].tls.insecureSkipVerify",
        "client certificates are not verified (MUTUAL is not served)",
    ),
];

const SIDECAR: &[Row] = &[unapplied(
    "",
    "Sidecar resources are not applied yet: every sidecar is given the configuration of the whole mesh",
)];

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
