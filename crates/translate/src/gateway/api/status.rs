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
