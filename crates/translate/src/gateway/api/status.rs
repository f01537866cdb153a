//! The status Kubernetes would show for Gateway API resources, as plain data: for each
//! HTTPRoute/GRPCRoute and each of its Gateway parentRefs the `Accepted` and
//! `ResolvedRefs` conditions; for each Gateway `Accepted`, `Programmed` and per listener
//! `Accepted`, `ResolvedRefs`, `Programmed`, `Conflicted` with its attached route count.
//! Conditions have Kubernetes' shape (`type`, `status` "True"/"False", `reason`,
//! `message`, `observedGeneration` = the resource's `metadata.generation` when known).
//!
//! Pure: it reads the snapshot's config and, for `BackendNotFound`, its service registry.

mod gateways;
mod routes;

use bowline_registry::Snapshot;
use serde::Serialize;

/// The controller that writes these statuses (`RouteParentStatus.controllerName`).
pub const CONTROLLER_NAME: &str = "bowline.dev/gateway-controller";

/// One Kubernetes condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `"True"` or `"False"`.
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    pub(crate) fn new(
        kind: &str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) -> Condition {
        Condition {
            kind: kind.to_string(),
            status: if ok { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
            observed_generation: generation,
        }
    }

    /// True when `status` is "True".
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Everything computed for one snapshot, resources in load order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct GatewayApiStatus {
    pub gateways: Vec<GatewayStatus>,
    pub routes: Vec<RouteStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    pub namespace: String,
    pub name: String,
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    /// Routes with at least one parentRef attached to this listener.
    pub attached_routes: u32,
    pub supported_kinds: Vec<RouteGroupKind>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteGroupKind {
    pub group: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// One per Gateway parentRef, in the route's order.
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    pub parent_ref: ParentRef,
    pub controller_name: String,
    pub conditions: Vec<Condition>,
}

/// A parentRef with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// The status of every Gateway API Gateway and route of `snapshot`.
pub fn gateway_api_status(snapshot: &Snapshot) -> GatewayApiStatus {
    GatewayApiStatus {
        gateways: gateways::statuses(&snapshot.config),
        routes: routes::statuses(snapshot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, generation: 3}
spec:
  gatewayClassName: bowline
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}
  - {name: all, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: mesh, port: 15008, protocol: HBONE}
  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: cert, namespace: certs}]}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: infra}
spec: {hosts: [web.infra.svc.cluster.local], ports: [{number: 8080, name: http, protocol: HTTP}], resolution: STATIC}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: apps}
spec: {hosts: [db.apps.svc.cluster.local], ports: [{number: 8080, name: http, protocol: HTTP}], resolution: STATIC}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ok, namespace: infra, generation: 7}
spec:
  parentRefs: [{name: gw, sectionName: http}, {name: gw, port: 9999}, {name: gw, sectionName: mesh}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: elsewhere, namespace: apps}
spec:
  parentRefs: [{name: gw, namespace: infra, sectionName: http}, {name: gw, namespace: infra, sectionName: all}]
  rules: [{backendRefs: [{name: web, namespace: infra, port: 8080}, {name: db, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: wronghost, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [other.org]
  rules: [{backendRefs: [{name: missing, port: 8080}, {kind: Bucket, name: b}]}]
";

    fn conditions(list: &[Condition]) -> Vec<(String, String, String)> {
        list.iter()
            .map(|c| (c.kind.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn c(kind: &str, status: &str, reason: &str) -> (String, String, String) {
        (kind.into(), status.into(), reason.into())
    }

    #[test]
    fn route_and_gateway_conditions() {
        let loaded = bowline_config::load_str(std::path::Path::new("t.yaml"), CONFIG);
        let snapshot = Snapshot::build(1, loaded.config);
        let status = gateway_api_status(&snapshot);
        let route = |name: &str| status.routes.iter().find(|r| r.name == name).unwrap();

        let ok = route("ok");
        let got: Vec<_> = ok
            .parents
            .iter()
            .map(|p| conditions(&p.conditions))
            .collect();
        assert_eq!(
            got,
            [
                vec![
                    c("Accepted", "True", "Accepted"),
                    c("ResolvedRefs", "True", "ResolvedRefs")
                ],
                vec![
                    c("Accepted", "False", "NoMatchingParent"),
                    c("ResolvedRefs", "True", "ResolvedRefs")
                ],
                vec![
                    c("Accepted", "False", "NotAllowedByListeners"),
                    c("ResolvedRefs", "True", "ResolvedRefs")
                ],
            ]
        );
        assert_eq!(ok.parents[0].conditions[0].observed_generation, Some(7));
        assert_eq!(ok.parents[0].parent_ref.namespace, "infra");

        let elsewhere = route("elsewhere");
        let got: Vec<_> = elsewhere
            .parents
            .iter()
            .map(|p| conditions(&p.conditions))
            .collect();
        assert_eq!(
            got,
            [
                vec![
                    c("Accepted", "False", "NotAllowedByListeners"),
                    c("ResolvedRefs", "False", "RefNotPermitted")
                ],
                vec![
                    c("Accepted", "True", "Accepted"),
                    c("ResolvedRefs", "False", "RefNotPermitted")
                ],
            ]
        );

        let grpc = route("wronghost");
        assert_eq!(grpc.kind, "GRPCRoute");
        assert_eq!(
            conditions(&grpc.parents[0].conditions),
            [
                c("Accepted", "False", "NoMatchingListenerHostname"),
                c("ResolvedRefs", "False", "BackendNotFound")
            ]
        );
        assert!(
            grpc.parents[0].conditions[1]
                .message
                .contains("backendRefs[1]"),
            "every failing ref is named"
        );

        let gw = &status.gateways[0];
        assert_eq!(
            conditions(&gw.conditions),
            [
                c("Accepted", "True", "Accepted"),
                c("Programmed", "True", "Programmed")
            ]
        );
        let listener = |name: &str| gw.listeners.iter().find(|l| l.name == name).unwrap();
        assert_eq!(listener("http").attached_routes, 1);
        assert_eq!(listener("all").attached_routes, 1);
        assert_eq!(listener("mesh").attached_routes, 0);
        assert_eq!(
            conditions(&listener("mesh").conditions),
            [
                c("Accepted", "False", "UnsupportedProtocol"),
                c("ResolvedRefs", "True", "ResolvedRefs"),
                c("Programmed", "False", "Invalid"),
                c("Conflicted", "False", "NoConflicts"),
            ]
        );
        assert!(listener("mesh").supported_kinds.is_empty());
        assert_eq!(
            conditions(&listener("https").conditions)[1],
            c("ResolvedRefs", "False", "RefNotPermitted")
        );
        assert_eq!(listener("http").supported_kinds.len(), 2);
        assert_eq!(listener("http").conditions[0].observed_generation, Some(3));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json["routes"][0]["parents"][0]["conditions"][0]["type"],
            "Accepted"
        );
        assert_eq!(
            json["routes"][0]["parents"][0]["conditions"][0]["observedGeneration"],
            7
        );
        assert_eq!(json["gateways"][0]["listeners"][0]["attachedRoutes"], 1);
    }
}
