//! The CustomResourceDefinitions of the kinds bowline reads, generated from its own kind table
//! ([`crate::kinds`] and [`Kind::ALL`]), so the CRDs a cluster gets and the kinds the control
//! plane accepts cannot drift apart.
//!
//! Each CRD has the name, group, kinds, plural, short names, categories, scope and versions
//! that Istio's (and the Gateway API's) own CRDs use, so **those CRDs can be installed
//! instead** of these, or over them, without touching stored resources: the object names
//! (`virtualservices.networking.istio.io`, ...) and every served version are the same.
//!
//! The schema of `spec` and `status` is deliberately open (`type: object`,
//! `x-kubernetes-preserve-unknown-fields: true`): the API server stores what it is given, and
//! bowline validates each resource itself (the same validation `bowline validate` runs, with
//! field paths and did-you-mean suggestions) and reports the outcome per resource in its
//! `status`, rather than having the API server refuse a whole `kubectl apply` with a schema
//! message. Every version is served; `storage` is the newest stable version (`v1`); the
//! versions share one schema, so no conversion webhook is needed.
//!
//! Besides the kinds bowline reads, the Gateway API's `GatewayClass` is defined (see
//! [`COMPANIONS`]): Gateway API manifests and tools expect the kind to exist, even though
//! bowline serves every Gateway whatever its class.

use crate::kinds::{resolve, KindLookup};
use crate::resource::Kind;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// The Gateway API's group.
const GATEWAY_API: &str = "gateway.networking.k8s.io";

/// Kinds defined beside those bowline reads: (group, kind, the read kind whose versions it is
/// served under, why).
pub const COMPANIONS: &[(&str, &str, Kind, &str)] = &[(
    GATEWAY_API,
    "GatewayClass",
    Kind::K8sGateway,
    "Gateway API manifests create and reference GatewayClasses; bowline serves every Gateway \
     whatever its class, but the kind must exist for those manifests to apply",
)];

/// Everything a CRD is generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdKind {
    pub group: &'static str,
    pub kind: &'static str,
    /// Lowercase, with Istio's plural rules (`serviceentries`, `gatewayclasses`).
    pub plural: String,
    pub singular: String,
    pub list_kind: String,
    /// `Namespaced` or `Cluster`.
    pub scope: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: Vec<String>,
    /// Every version bowline accepts, newest first (Kubernetes' version priority).
    pub versions: Vec<String>,
    /// The storage version: the newest stable one.
    pub storage: String,
}

impl CrdKind {
    /// The CRD's object name, `<plural>.<group>`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// Every (group, kind) that gets a CRD: the custom-resource kinds of the kind table, then the
/// [`COMPANIONS`]. Kubernetes' built-in kinds (Service) are left out.
pub fn crd_kinds() -> Vec<CrdKind> {
    let mut out: Vec<CrdKind> = Kind::ALL
        .iter()
        .copied()
        .filter(|k| is_custom_group(k.group()))
        .map(|k| crd_kind(k.group(), k.as_str(), accepted_versions(k)))
        .collect();
    for (group, kind, versions_of, _) in COMPANIONS {
        out.push(crd_kind(group, kind, accepted_versions(*versions_of)));
    }
    out
}

/// One `apiextensions.k8s.io/v1` CustomResourceDefinition per entry of [`crd_kinds`], in that
/// order. See the module documentation for the open schema and why.
pub fn custom_resource_definitions() -> Vec<Value> {
    crd_kinds().iter().map(definition).collect()
}

fn crd_kind(group: &'static str, kind: &'static str, mut versions: Vec<String>) -> CrdKind {
    versions.sort_by(|a, b| version_priority(b, a));
    let storage = versions
        .iter()
        .find(|v| stability(v).0 == 2)
        .or(versions.first())
        .cloned()
        .unwrap_or_default();
    let singular = kind.to_ascii_lowercase();
    CrdKind {
        group,
        kind,
        plural: plural(&singular),
        singular,
        list_kind: format!("{kind}List"),
        scope: if (group, kind) == (GATEWAY_API, "GatewayClass") {
            "Cluster"
        } else {
            "Namespaced"
        },
        short_names: short_names(group, kind),
        categories: categories(group),
        versions,
        storage,
    }
}

/// Whether `group` is not one of Kubernetes' own: the kind table skips unknown kinds of
/// Kubernetes' groups as "not mesh config", and calls them unknown anywhere else.
fn is_custom_group(group: &str) -> bool {
    !matches!(
        resolve(&format!("{group}/v1"), "NoSuchKindForCrdProbe"),
        KindLookup::Skipped { .. }
    )
}

/// The versions under which the kind table reads `kind`: asked for with a version it has not,
/// the table answers with every `group/version` it accepts for that kind name.
fn accepted_versions(kind: Kind) -> Vec<String> {
    let group = kind.group();
    match resolve(&format!("{group}/v0crdprobe"), kind.as_str()) {
        KindLookup::WrongVersion { accepted } => accepted
            .iter()
            .filter_map(|gv| gv.strip_prefix(group)?.strip_prefix('/'))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Istio's (and Kubernetes') pluralisation of a lowercase kind.
fn plural(singular: &str) -> String {
    if let Some(stem) = singular.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    if singular.ends_with('s') || singular.ends_with('x') || singular.ends_with("ch") {
        return format!("{singular}es");
    }
    format!("{singular}s")
}

/// The short names Istio's and the Gateway API's CRDs declare.
fn short_names(group: &str, kind: &str) -> &'static [&'static str] {
    match (group, kind) {
        ("networking.istio.io", "VirtualService") => &["vs"],
        ("networking.istio.io", "DestinationRule") => &["dr"],
        ("networking.istio.io", "ServiceEntry") => &["se"],
        ("networking.istio.io", "WorkloadEntry") => &["we"],
        ("networking.istio.io", "Gateway") => &["gw"],
        ("security.istio.io", "PeerAuthentication") => &["pa"],
        ("security.istio.io", "RequestAuthentication") => &["ra"],
        ("security.istio.io", "AuthorizationPolicy") => &["ap"],
        ("telemetry.istio.io", "Telemetry") => &["telemetry"],
        (GATEWAY_API, "Gateway") => &["gtw"],
        (GATEWAY_API, "GatewayClass") => &["gc"],
        (GATEWAY_API, "ReferenceGrant") => &["refgrant"],
        _ => &[],
    }
}

/// Istio's categories (`istio-io` plus the group with dashes: `kubectl get istio-io`), the
/// Gateway API's `gateway-api`.
fn categories(group: &str) -> Vec<String> {
    if group == GATEWAY_API {
        vec!["gateway-api".into()]
    } else {
        vec!["istio-io".into(), group.replace('.', "-")]
    }
}

/// `(2 = GA, 1 = beta, 0 = alpha, major, minor)`.
fn stability(version: &str) -> (u8, u32, u32) {
    let rest = version.strip_prefix('v').unwrap_or(version);
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let major = rest[..digits].parse().unwrap_or(0);
    let tail = &rest[digits..];
    let (level, minor) = if let Some(n) = tail.strip_prefix("beta") {
        (1, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n)
    } else {
        (2, tail)
    };
    (level, major, minor.parse().unwrap_or(0))
}

/// Kubernetes' version priority: GA before beta before alpha, then the higher number.
fn version_priority(a: &str, b: &str) -> Ordering {
    stability(a).cmp(&stability(b))
}

/// Columns `kubectl get` shows, as Istio's and the Gateway API's CRDs declare them.
fn printer_columns(group: &str, kind: &str) -> Vec<Value> {
    // Istio's columns carry a description, the Gateway API's (empty here) none.
    let col = |name: &str, path: &str, description: &str| {
        let mut c = json!({"name": name, "type": "string", "jsonPath": path});
        if !description.is_empty() {
            c["description"] = json!(description);
        }
        c
    };
    let mut cols = match (group, kind) {
        ("networking.istio.io", "VirtualService") => vec![
            col(
                "Gateways",
                ".spec.gateways",
                "The names of gateways and sidecars that should apply these routes",
            ),
            col(
                "Hosts",
                ".spec.hosts",
                "The destination hosts to which traffic is being sent",
            ),
        ],
        ("networking.istio.io", "DestinationRule") => vec![col(
            "Host",
            ".spec.host",
            "The name of a service from the service registry",
        )],
        ("networking.istio.io", "ServiceEntry") => vec![
            col(
                "Hosts",
                ".spec.hosts",
                "The hosts associated with the ServiceEntry",
            ),
            col(
                "Location",
                ".spec.location",
                "Whether the service is external to the mesh or part of the mesh (MESH_EXTERNAL or MESH_INTERNAL)",
            ),
            col(
                "Resolution",
                ".spec.resolution",
                "Service resolution mode for the hosts (NONE, STATIC, or DNS)",
            ),
        ],
        (GATEWAY_API, "GatewayClass") => vec![
            col("Controller", ".spec.controllerName", ""),
            col(
                "Accepted",
                ".status.conditions[?(@.type==\"Accepted\")].status",
                "",
            ),
        ],
        (GATEWAY_API, "Gateway") => vec![
            col("Class", ".spec.gatewayClassName", ""),
            col("Address", ".status.addresses[*].value", ""),
            col(
                "Programmed",
                ".status.conditions[?(@.type==\"Programmed\")].status",
                "",
            ),
        ],
        (GATEWAY_API, "HTTPRoute") | (GATEWAY_API, "GRPCRoute") => {
            vec![col("Hostnames", ".spec.hostnames", "")]
        }
        _ => vec![],
    };
    cols.push(json!({
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
    }));
    cols
}

fn definition(k: &CrdKind) -> Value {
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let schema = json!({
        "openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": open, "status": open},
        }
    });
    let columns = printer_columns(k.group, k.kind);
    let versions: Vec<Value> = k
        .versions
        .iter()
        .map(|v| {
            json!({
                "name": v,
                "served": true,
                "storage": *v == k.storage,
                "additionalPrinterColumns": columns,
                "schema": schema,
                "subresources": {"status": {}},
            })
        })
        .collect();
    let mut names = Map::new();
    names.insert("kind".into(), json!(k.kind));
    names.insert("listKind".into(), json!(k.list_kind));
    names.insert("plural".into(), json!(k.plural));
    names.insert("singular".into(), json!(k.singular));
    if !k.short_names.is_empty() {
        names.insert("shortNames".into(), json!(k.short_names));
    }
    names.insert("categories".into(), json!(k.categories));
    let mut annotations = Map::new();
    // CRDs outlive a Helm release: uninstalling must not delete every user's resources.
    annotations.insert("helm.sh/resource-policy".into(), json!("keep"));
    if k.group.ends_with(".k8s.io") {
        // The API server refuses CRDs in *.k8s.io groups without this (KEP-1111); the Gateway
        // API's own CRDs carry the same value.
        annotations.insert(
            "api-approved.kubernetes.io".into(),
            json!("https://github.com/kubernetes-sigs/gateway-api/pull/2466"),
        );
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": k.name(),
            "annotations": annotations,
            "labels": {"app.kubernetes.io/part-of": "bowline"},
        },
        "spec": {
            "group": k.group,
            "names": names,
            "scope": k.scope,
            "versions": versions,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn by_name() -> Vec<(String, CrdKind)> {
        crd_kinds().into_iter().map(|k| (k.name(), k)).collect()
    }

    #[test]
    fn names_are_istios_and_the_gateway_apis() {
        let names: BTreeSet<String> = by_name().into_iter().map(|(n, _)| n).collect();
        let expected: BTreeSet<String> = [
            "virtualservices.networking.istio.io",
            "destinationrules.networking.istio.io",
            "serviceentries.networking.istio.io",
            "workloadentries.networking.istio.io",
            "gateways.networking.istio.io",
            "sidecars.networking.istio.io",
            "peerauthentications.security.istio.io",
            "authorizationpolicies.security.istio.io",
            "requestauthentications.security.istio.io",
            "telemetries.telemetry.istio.io",
            "gateways.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
            "grpcroutes.gateway.networking.k8s.io",
            "referencegrants.gateway.networking.k8s.io",
            "gatewayclasses.gateway.networking.k8s.io",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn kubernetes_built_ins_get_no_crd() {
        assert!(crd_kinds().iter().all(|k| k.kind != "Service"));
        assert!(!is_custom_group(""));
        assert!(!is_custom_group("apps"));
        assert!(is_custom_group("networking.istio.io"));
        assert!(is_custom_group(GATEWAY_API));
    }

    #[test]
    fn plurals_follow_istios_rules() {
        let cases = [
            ("gateway", "gateways"),
            ("serviceentry", "serviceentries"),
            ("authorizationpolicy", "authorizationpolicies"),
            ("telemetry", "telemetries"),
            ("gatewayclass", "gatewayclasses"),
            ("httproute", "httproutes"),
            ("sidecar", "sidecars"),
            ("workloadgroup", "workloadgroups"),
        ];
        for (singular, want) in cases {
            assert_eq!(plural(singular), want, "{singular}");
        }
    }

    #[test]
    fn every_read_kind_and_version_resolves_through_the_kind_table() {
        for k in crd_kinds() {
            if COMPANIONS
                .iter()
                .any(|(g, kind, _, _)| (*g, *kind) == (k.group, k.kind))
            {
                continue;
            }
            assert!(!k.versions.is_empty(), "{}", k.name());
            for v in &k.versions {
                let api = format!("{}/{v}", k.group);
                assert!(
                    matches!(resolve(&api, k.kind), KindLookup::Supported(_)),
                    "{api} {}",
                    k.kind
                );
            }
        }
    }

    #[test]
    fn versions_storage_scope_and_short_names() {
        let all = by_name();
        let get = |n: &str| &all.iter().find(|(name, _)| name == n).unwrap().1;
        let vs = get("virtualservices.networking.istio.io");
        assert_eq!(vs.versions, ["v1", "v1beta1", "v1alpha3"]);
        assert_eq!(vs.storage, "v1");
        assert_eq!(vs.short_names, ["vs"]);
        assert_eq!(vs.list_kind, "VirtualServiceList");
        assert_eq!(vs.categories, ["istio-io", "networking-istio-io"]);
        let tel = get("telemetries.telemetry.istio.io");
        assert_eq!(tel.versions, ["v1", "v1alpha1"]);
        assert_eq!(tel.categories, ["istio-io", "telemetry-istio-io"]);
        let ap = get("authorizationpolicies.security.istio.io");
        assert_eq!(ap.short_names, ["ap"]);
        assert_eq!(ap.singular, "authorizationpolicy");
        let grpc = get("grpcroutes.gateway.networking.k8s.io");
        assert_eq!(grpc.versions, ["v1"]);
        assert_eq!(grpc.categories, ["gateway-api"]);
        let gc = get("gatewayclasses.gateway.networking.k8s.io");
        assert_eq!(gc.scope, "Cluster");
        assert_eq!(gc.versions, ["v1", "v1beta1"]);
        assert_eq!(get("gateways.networking.istio.io").short_names, ["gw"]);
        assert_eq!(
            get("gateways.gateway.networking.k8s.io").scope,
            "Namespaced"
        );
        assert!(get("sidecars.networking.istio.io").short_names.is_empty());
    }

    #[test]
    fn version_priority_is_kubernetes() {
        let mut v = vec!["v1alpha3", "v1", "v1beta1", "v2beta1", "v1alpha10", "v2"];
        v.sort_by(|a, b| version_priority(b, a));
        assert_eq!(
            v,
            ["v2", "v1", "v2beta1", "v1beta1", "v1alpha10", "v1alpha3"]
        );
    }

    #[test]
    fn definitions_are_open_schema_with_status_and_one_storage_version() {
        let crds = custom_resource_definitions();
        assert_eq!(crds.len(), crd_kinds().len());
        for crd in &crds {
            let name = crd["metadata"]["name"].as_str().unwrap();
            let spec = &crd["spec"];
            assert_eq!(
                name,
                format!(
                    "{}.{}",
                    spec["names"]["plural"].as_str().unwrap(),
                    spec["group"].as_str().unwrap()
                )
            );
            let versions = spec["versions"].as_array().unwrap();
            let storage: Vec<_> = versions.iter().filter(|v| v["storage"] == true).collect();
            assert_eq!(storage.len(), 1, "{name}");
            assert_eq!(storage[0]["name"], "v1", "{name}");
            for v in versions {
                assert_eq!(v["served"], true);
                assert_eq!(v["subresources"], json!({"status": {}}));
                let props = &v["schema"]["openAPIV3Schema"]["properties"];
                for field in ["spec", "status"] {
                    assert_eq!(
                        props[field],
                        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                        "{name} {field}"
                    );
                }
            }
            let approved = &crd["metadata"]["annotations"]["api-approved.kubernetes.io"];
            assert_eq!(
                approved.is_string(),
                name.ends_with(".k8s.io"),
                "{name}: protected groups need the approval annotation"
            );
        }
    }
}
