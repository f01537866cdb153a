//! Validation: what `istioctl validate` checks per resource and the most useful
//! `istioctl analyze` checks across resources. Checks see typed resources and name fields by
//! path; they never see files, so they are pure and table-testable. [`crate::load`] turns the
//! findings into positioned [`Diagnostic`]s.

pub mod analyze;
mod authorization;
mod destination_rule;
pub mod fields;
mod gateway;
mod gateway_api;
mod http_policies;
pub mod labels;
mod load_balancer;
mod metadata;
mod names;
pub mod not_applied;
mod security;
mod service_entry;
mod telemetry;
mod virtual_service;

use crate::diag::{Diagnostic, Finding};
use crate::resource::{ConfigSet, Resource, Spec};

/// What a per-resource check may know beyond the resource itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Another VirtualService delegates to this one (so it may omit hosts, must not delegate).
    pub is_delegate: bool,
}

/// Checks one resource's own fields: its metadata, then its spec.
pub fn check_resource(resource: &Resource, ctx: &Context) -> Vec<Finding> {
    let mut findings = metadata::check(&resource.meta);
    findings.extend(check_spec(resource, ctx));
    // A field a check already said is not applied needs no second word from the ledger.
    let ledger: Vec<Finding> = not_applied::not_applied(resource)
        .into_iter()
        .filter(|l| {
            !findings.iter().any(|f| {
                f.code == crate::diag::code::NOT_APPLIED && l.field.starts_with(f.field.as_str())
            })
        })
        .collect();
    findings.extend(ledger);
    findings
}

fn check_spec(resource: &Resource, ctx: &Context) -> Vec<Finding> {
    match &resource.spec {
        Spec::VirtualService(vs) => virtual_service::check(vs, ctx),
        Spec::DestinationRule(dr) => destination_rule::check(dr),
        Spec::ServiceEntry(se) => service_entry::check_service_entry(se),
        Spec::WorkloadEntry(we) => service_entry::check_workload_entry(we),
        Spec::Gateway(gw) => gateway::check_gateway(gw),
        Spec::Sidecar(sc) => gateway::check_sidecar(sc),
        Spec::PeerAuthentication(pa) => security::check_peer_authentication(pa),
        Spec::AuthorizationPolicy(ap) => authorization::check_authorization_policy(ap),
        Spec::RequestAuthentication(ra) => security::check_request_authentication(ra),
        Spec::Telemetry(t) => telemetry::check_telemetry(t),
        Spec::K8sGateway(gw) => gateway_api::check_gateway(gw),
        Spec::HttpRoute(r) => gateway_api::check_http_route(r),
        Spec::GrpcRoute(r) => gateway_api::check_grpc_route(r),
        // Kubernetes validated it; the mesh only reads it.
        Spec::Service(_) => Vec::new(),
        Spec::ReferenceGrant(g) => gateway_api::check_reference_grant(g),
    }
}

/// Every check over a set: each resource's fields, then cross-resource analysis. Findings
/// are paired with the index of their resource in `config.resources`.
pub fn check_config(config: &ConfigSet) -> Vec<(usize, Finding)> {
    let mut out: Vec<(usize, Finding)> = Vec::new();
    // Each resource is judged on its own; what its neighbours are is analysis.
    for (i, r) in config.resources.iter().enumerate() {
        out.extend(
            check_resource(r, &Context::default())
                .into_iter()
                .map(|f| (i, f)),
        );
    }
    out.extend(analyze::analyze(config));
    out
}

/// [`check_config`] for a set that was not loaded from files by [`crate::load_paths`]
/// (e.g. built from the Kubernetes API): findings are positioned at each resource's origin.
pub fn validate_config(config: &ConfigSet) -> Vec<Diagnostic> {
    check_config(config)
        .into_iter()
        .map(|(i, f)| {
            let r = &config.resources[i];
            Diagnostic {
                severity: f.severity,
                code: f.code,
                file: r.origin.file.clone(),
                line: r.origin.line,
                column: r.origin.column,
                resource: Some(r.resource_ref()),
                field: f.field,
                message: f.message,
            }
        })
        .collect()
}
