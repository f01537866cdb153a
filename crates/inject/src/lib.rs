//! Sidecar injection, as `docs/kubernetes-sidecar.md` specifies it: pod templates in, pod
//! templates with bowline's capture init container (`bowline-init`), sidecar
//! (`bowline-proxy`), volumes, rewritten probes, annotations and labels out.
//!
//! Pure: no I/O, no async. The webhook (`bowline-kube`) and `bowline inject -f` call
//! [`inject_object`] (or [`inject_pod_template`]) and, for an AdmissionReview, [`json_patch`].
//!
//! Injection is idempotent: an injected pod carries `sidecar.bowline.io/status`, and
//! [`decide`] skips such a pod, so injecting the output again gives it back unchanged.

pub mod annotations;
mod capture;
mod decide;
mod error;
mod objects;
mod patch;
mod probes;
mod proxy_config;
mod sidecar;
mod template;

use std::collections::BTreeMap;

pub use decide::decide;
pub mod admission;
pub mod config_file;
pub use error::InjectError;
pub use objects::inject_object;
pub use patch::json_patch;
pub use template::inject_pod_template;

/// What the injector needs to know about the installation (not about the pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Image registry: images are `<hub>/bowline:<tag>` and `<hub>/bowline-proxy:<tag>`.
    pub hub: String,
    pub tag: String,
    /// The control plane's xDS and CA address, `host:port` (`BOWLINE_XDS_ADDR`).
    pub xds_address: String,
    /// The cluster runs native sidecars (Kubernetes ≥ 1.29): the proxy goes into
    /// `initContainers` with `restartPolicy: Always` unless the pod opts out.
    pub native_sidecars: bool,
    /// The proxy's log level unless `sidecar.istio.io/logLevel` says otherwise.
    pub log_level: String,
    /// The proxy's resources unless the `sidecar.istio.io/proxyCPU`, `proxyMemory`,
    /// `proxyCPULimit` and `proxyMemoryLimit` annotations say otherwise.
    pub proxy_resources: annotations::Resources,
    /// `imagePullPolicy` of the injected containers; `None` leaves Kubernetes' default.
    pub image_pull_policy: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hub: "ghcr.io/bowline-mesh".to_string(),
            tag: env!("CARGO_PKG_VERSION").to_string(),
            xds_address: "bowline.bowline-system.svc:15012".to_string(),
            native_sidecars: true,
            log_level: "warning".to_string(),
            proxy_resources: annotations::Resources {
                requests: ("100m".to_string(), "128Mi".to_string()),
                limits: ("2000m".to_string(), "1Gi".to_string()),
            },
            image_pull_policy: None,
        }
    }
}

/// Which namespace rules apply to a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// `bowline inject -f` (like `istioctl kube-inject`): namespace labels are ignored, every
    /// pod template that does not opt out is injected.
    Offline,
    /// The webhook: the pod's namespace and that namespace's labels.
    Namespace {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

/// Whether a pod gets the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Inject,
    /// Not injected; the reason, human readable.
    Skip(String),
}

/// Names injection writes, shared by the modules and the tests.
pub mod names {
    pub const INIT_CONTAINER: &str = "bowline-init";
    pub const PROXY_CONTAINER: &str = "bowline-proxy";
    pub const STATUS_ANNOTATION: &str = "sidecar.bowline.io/status";
    /// What Istio's injector marks its pods with.
    pub const ISTIO_STATUS_ANNOTATION: &str = "sidecar.istio.io/status";
    pub const PROBERS_ENV: &str = "BOWLINE_APP_PROBERS";
    pub const STATUS_PORT: u16 = 15020;
    pub const TOKEN_VOLUME: &str = "bowline-token";
    pub const CA_ROOT_VOLUME: &str = "bowline-ca-root";
    pub const RUN_VOLUME: &str = "bowline-run";
    /// Inbound ports never captured (Istio's own set).
    pub const EXCLUDED_INBOUND_PORTS: [u16; 6] = [15000, 15001, 15006, 15020, 15021, 15090];
}
