//! From a manifest to everything the runtime will create, decided without I/O: each
//! replica's name, IP, ports, environment and sidecar ports; the services and their virtual
//! IPs; the registry entries the control plane reads; each namespace's hosts file.

use crate::manifest::{GatewaySpec, Manifest, WorkloadSpec};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// How applications reach their sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// Each replica in its own network namespace; iptables sends its traffic through the
    /// sidecar (Istio's REDIRECT mode). Needs root.
    Transparent { subnet: Subnet },
    /// Everything on 127.0.0.1; applications use the sidecar as `HTTP_PROXY`.
    Explicit,
}

/// The /24 a transparent mesh lives in: the bridge at `.1`, replicas from `.2`, service
/// virtual IPs from `.128` (no route needed: capture rewrites them before they leave).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
}

impl Subnet {
    pub const PREFIX_LEN: u8 = 24;
    const FIRST_POD: u8 = 2;
    const FIRST_VIP: u8 = 128;

    pub fn bridge_ip(self) -> Ipv4Addr {
        self.host(1)
    }
    fn host(self, last: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.base.octets();
        Ipv4Addr::new(a, b, c, last)
    }
}

/// Sidecar ports, Istio's in transparent mode (every replica has its own namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidecarPorts {
    pub outbound: u16,
    pub inbound: u16,
    pub admin: u16,
}

pub const ISTIO_SIDECAR_PORTS: SidecarPorts = SidecarPorts {
    outbound: 15001,
    inbound: 15006,
    admin: 15000,
};

/// One port of a replica: the service's port number and where the application listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    pub name: String,
    pub service_port: u16,
    /// Equal to `service_port` in transparent mode; a free loopback port in explicit mode.
    pub app_port: u16,
    pub protocol: Option<String>,
}

/// One replica of a workload and its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `<workload>-<replica>`: the WorkloadEntry, the node id's workload and the log prefix.
    pub name: String,
    pub workload: String,
    pub namespace: String,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub ip: Ipv4Addr,
    pub ports: Vec<PortPlan>,
    pub command: String,
    /// With `${VAR}` expanded from `env`.
    pub args: Vec<String>,
    /// The manifest's env plus POD_NAME, POD_NAMESPACE, POD_IP, SERVICE_ACCOUNT, PORT (the
    /// first port), PORT_<NAME>, and in explicit mode HTTP_PROXY / NO_PROXY.
    pub env: BTreeMap<String, String>,
    pub sidecar: SidecarPorts,
    pub sidecar_kind: crate::manifest::SidecarKind,
    /// `region/zone/subzone`, or empty.
    pub locality: String,
    /// The network namespace (transparent mode).
    pub netns: Option<String>,
}

impl Instance {
    /// The node id the sidecar announces (Istio's form).
    pub fn node_id(&self) -> String {
        let ns = &self.namespace;
        format!(
            "sidecar~{}~{}.{ns}~{ns}.svc.cluster.local",
            self.ip, self.name
        )
    }
}

/// (name, number, Istio protocol).
pub type ServicePort = (String, u16, Option<String>);

/// A service: the workloads of one namespace sharing an `app` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub app: String,
    pub namespace: String,
    pub vip: Option<Ipv4Addr>,
    /// Union of its workloads' ports by name.
    pub ports: Vec<ServicePort>,
}

impl ServicePlan {
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.app, self.namespace)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mesh: String,
    pub capture: Capture,
    pub instances: Vec<Instance>,
    pub services: Vec<ServicePlan>,
    /// The ingress gateway, on 127.0.0.1: the host's entry to the mesh.
    pub ingress: Option<GatewayPlan>,
    /// The egress gateway, where the workloads reach it (the bridge under capture) and in
    /// the registry as a service.
    pub egress: Option<GatewayPlan>,
}

/// A gateway proxy: its manifest entry with every port concrete, and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPlan {
    /// `ports` has no 0 left: each became a free port.
    pub spec: GatewaySpec,
    /// The address its listeners bind (its node id's IP).
    pub ip: Ipv4Addr,
    /// Its process's log prefix and name in messages: `gateway` or `egress-gateway`.
    pub label: &'static str,
}

impl GatewayPlan {
    fn new(
        spec: &GatewaySpec,
        ip: Ipv4Addr,
        label: &'static str,
        free_port: &mut dyn FnMut() -> u16,
    ) -> GatewayPlan {
        let mut spec = spec.clone();
        for local in spec.ports.values_mut() {
            if *local == 0 {
                *local = free_port();
            }
        }
        GatewayPlan { spec, ip, label }
    }

    /// Istio's router node id; the control plane binds the gateway's listeners on its IP.
    pub fn node_id(&self) -> String {
        let (name, ns) = (&self.spec.name, &self.spec.namespace);
        format!("router~{}~{name}.{ns}~{ns}.svc.cluster.local", self.ip)
    }

    /// `<name>.<namespace>.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!(
            "{}.{}.svc.cluster.local",
            self.spec.name, self.spec.namespace
        )
    }

    /// (port name, server port, bound port), named as Istio's gateway Services name them:
    /// `http2` for 80, `https` for 443, `tcp-<port>` otherwise.
    pub fn ports(&self) -> Vec<(String, u16, u16)> {
        self.spec
            .ports
            .iter()
            .map(|(server, local)| {
                let name = match server {
                    80 => "http2".to_string(),
                    443 => "https".to_string(),
                    p => format!("tcp-{p}"),
                };
                (name, *server, *local)
            })
            .collect()
    }
}

/// Why a manifest does not fit the network it is given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0} replicas do not fit the mesh's /24 (at most 126)")]
    TooManyReplicas(usize),
    #[error("{0} services do not fit the mesh's /24 (at most 127)")]
    TooManyServices(usize),
}

impl Plan {
    /// Decides everything. `free_port` gives a free loopback port (explicit mode only).
    pub fn new(
        manifest: &Manifest,
        capture: Capture,
        free_port: &mut dyn FnMut() -> u16,
    ) -> Result<Plan, PlanError> {
        let replicas: usize = manifest.workloads.iter().map(|w| w.replicas as usize).sum();
        if replicas > usize::from(Subnet::FIRST_VIP - Subnet::FIRST_POD) {
            return Err(PlanError::TooManyReplicas(replicas));
        }
        let mut instances = Vec::new();
        for w in &manifest.workloads {
            for replica in 0..w.replicas {
                let index = instances.len();
                instances.push(instance(manifest, w, replica, index, capture, free_port));
            }
        }
        let services = services(&manifest.workloads, capture)?;
        let ingress = manifest
            .gateway
            .as_ref()
            .map(|g| GatewayPlan::new(g, Ipv4Addr::LOCALHOST, "gateway", free_port));
        let egress_ip = match capture {
            Capture::Transparent { subnet } => subnet.bridge_ip(),
            Capture::Explicit => Ipv4Addr::LOCALHOST,
        };
        let egress = manifest
            .egress_gateway
            .as_ref()
            .map(|g| GatewayPlan::new(g, egress_ip, "egress-gateway", free_port));
        Ok(Plan {
            mesh: manifest.name.clone(),
            capture,
            instances,
            services,
            ingress,
            egress,
        })
    }

    /// The ServiceEntries and WorkloadEntries the control plane reads, as one YAML stream
    /// (JSON documents: YAML 1.2 reads them and no value needs quoting rules).
    pub fn registry_yaml(&self) -> String {
        let mut docs: Vec<Value> = Vec::new();
        for s in &self.services {
            let ports: Vec<Value> = s
                .ports
                .iter()
                .map(|(name, number, protocol)| {
                    let mut p = json!({"number": number, "name": name});
                    if let Some(protocol) = protocol {
                        p["protocol"] = json!(protocol);
                    }
                    p
                })
                .collect();
            let mut spec = json!({
                "hosts": [s.host()],
                "location": "MESH_INTERNAL",
                "resolution": "STATIC",
                "ports": ports,
                "workloadSelector": {"labels": {"app": s.app}},
            });
            if let Some(vip) = s.vip {
                spec["addresses"] = json!([vip.to_string()]);
            }
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": s.app, "namespace": s.namespace},
                "spec": spec,
            }));
        }
        for i in &self.instances {
            let ports: BTreeMap<&str, u16> = i
                .ports
                .iter()
                .map(|p| (p.name.as_str(), p.app_port))
                .collect();
            // Under capture every connection to the workload passes its sidecar, so peers
            // can use mutual TLS: the label Istio's injector sets says so (auto mTLS). In
            // explicit mode peers reach the application directly: no label, plaintext.
            let mut labels = i.labels.clone();
            if i.netns.is_some() {
                labels.insert("security.istio.io/tlsMode".into(), "istio".into());
            }
            let mut spec = json!({
                "address": i.ip.to_string(),
                "ports": ports,
                "labels": labels,
                "serviceAccount": i.service_account,
            });
            if !i.locality.is_empty() {
                spec["locality"] = json!(i.locality);
            }
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "WorkloadEntry",
                "metadata": {"name": i.name, "namespace": i.namespace},
                "spec": spec,
            }));
        }
        // The egress gateway is a service of the mesh, as its Kubernetes Service makes it in
        // Istio: sidecars route to it, with the gateway's identity for ISTIO_MUTUAL. No
        // tlsMode label: what the sidecars send it is the DestinationRule's choice (the
        // gateway's servers decide what they accept), as with Istio's gateway pods.
        if let Some(g) = &self.egress {
            let ports = g.ports();
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": g.spec.name, "namespace": g.spec.namespace},
                "spec": {
                    "hosts": [g.host()],
                    "location": "MESH_INTERNAL",
                    "resolution": "STATIC",
                    "ports": ports.iter().map(|(name, server, _)| json!({"number": server, "name": name})).collect::<Vec<_>>(),
                    "workloadSelector": {"labels": g.spec.labels},
                },
            }));
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "WorkloadEntry",
                "metadata": {"name": g.spec.name, "namespace": g.spec.namespace},
                "spec": {
                    "address": g.ip.to_string(),
                    "ports": ports.iter().map(|(name, _, local)| (name.clone(), *local)).collect::<BTreeMap<_, _>>(),
                    "labels": g.spec.labels,
                    "serviceAccount": g.spec.service_account(),
                },
            }));
        }
        let mut out = String::from(
            "# Written by `bowline up` from the mesh manifest; rewritten at every start.\n",
        );
        for doc in docs {
            out.push_str("---\n");
            out.push_str(&doc.to_string());
            out.push('\n');
        }
        out
    }

    /// `/etc/hosts` for a replica's namespace: services by virtual IP under their short name
    /// (same namespace only, as Kubernetes DNS search paths give), `<app>.<ns>`,
    /// `<app>.<ns>.svc` and the full name; the replica's own name.
    pub fn hosts_file(&self, instance: &Instance) -> String {
        let mut out = String::from("127.0.0.1\tlocalhost\n");
        out.push_str(&format!("{}\t{}\n", instance.ip, instance.name));
        for s in &self.services {
            let Some(vip) = s.vip else { continue };
            let (app, ns) = (&s.app, &s.namespace);
            let mut names = Vec::new();
            if *ns == instance.namespace {
                names.push(app.clone());
            }
            names.extend([format!("{app}.{ns}"), format!("{app}.{ns}.svc"), s.host()]);
            out.push_str(&format!("{vip}\t{}\n", names.join(" ")));
        }
        out
    }
}

fn instance(
    manifest: &Manifest,
    w: &WorkloadSpec,
    replica: u32,
    index: usize,
    capture: Capture,
    free_port: &mut dyn FnMut() -> u16,
) -> Instance {
    let name = format!("{}-{replica}", w.name);
    let (ip, sidecar, netns) = match capture {
        Capture::Transparent { subnet } => (
            subnet.host(Subnet::FIRST_POD + index as u8),
            ISTIO_SIDECAR_PORTS,
            Some(format!("bowline-{}-{name}", manifest.name)),
        ),
        Capture::Explicit => (
            Ipv4Addr::LOCALHOST,
            SidecarPorts {
                outbound: free_port(),
                inbound: free_port(),
                admin: free_port(),
            },
            None,
        ),
    };
    let ports: Vec<PortPlan> = w
        .ports
        .iter()
        .map(|p| PortPlan {
            name: p.name.clone(),
            service_port: p.port,
            app_port: match capture {
                Capture::Transparent { .. } => p.port,
                Capture::Explicit => free_port(),
            },
            protocol: p.protocol.clone(),
        })
        .collect();
    let mut env = w.env.clone();
    let mut set = |k: &str, v: String| {
        env.entry(k.to_string()).or_insert(v);
    };
    set("POD_NAME", name.clone());
    set("POD_NAMESPACE", w.namespace.clone());
    set("POD_IP", ip.to_string());
    set("SERVICE_ACCOUNT", w.service_account.clone());
    if let Some(first) = ports.first() {
        set("PORT", first.app_port.to_string());
    }
    for p in &ports {
        set(
            &format!("PORT_{}", env_name(&p.name)),
            p.app_port.to_string(),
        );
    }
    if capture == Capture::Explicit {
        set(
            "HTTP_PROXY",
            format!("http://127.0.0.1:{}", sidecar.outbound),
        );
        set("NO_PROXY", "localhost,127.0.0.1".into());
    }
    let args = w.args.iter().map(|a| expand(a, &env)).collect();
    Instance {
        name,
        workload: w.name.clone(),
        namespace: w.namespace.clone(),
        service_account: w.service_account.clone(),
        labels: w.labels.clone(),
        ip,
        ports,
        command: w.command.clone(),
        args,
        env,
        sidecar,
        sidecar_kind: w.sidecar,
        locality: w.locality.clone(),
        netns,
    }
}

fn services(workloads: &[WorkloadSpec], capture: Capture) -> Result<Vec<ServicePlan>, PlanError> {
    let mut by_app: BTreeMap<(String, String), Vec<ServicePort>> = BTreeMap::new();
    for w in workloads {
        let app = w.labels.get("app").cloned().unwrap_or_default();
        let ports = by_app.entry((w.namespace.clone(), app)).or_default();
        for p in w.ports.iter() {
            if !ports.iter().any(|(name, _, _)| *name == p.name) {
                ports.push((p.name.clone(), p.port, p.protocol.clone()));
            }
        }
    }
    let count = by_app.len();
    if count > usize::from(u8::MAX - Subnet::FIRST_VIP) {
        return Err(PlanError::TooManyServices(count));
    }
    Ok(by_app
        .into_iter()
        .enumerate()
        .map(|(k, ((namespace, app), ports))| ServicePlan {
            app,
            namespace,
            vip: match capture {
                Capture::Transparent { subnet } => Some(subnet.host(Subnet::FIRST_VIP + k as u8)),
                Capture::Explicit => None,
            },
            ports,
        })
        .collect())
}

/// `http-web` → `HTTP_WEB`.
fn env_name(port_name: &str) -> String {
    port_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Replaces `${VAR}` with `env[VAR]`; unknown variables and a lone `$` stay as written.
pub fn expand(template: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if env.contains_key(&after[..end]) => {
                out.push_str(&env[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const MANIFEST: &str = "name: demo
workloads:
- name: productpage
  labels: {app: productpage, version: v1}
  command: bowline
  args: [echo, --listen, '0.0.0.0:${PORT}', --service, productpage, '${NOPE}']
  ports: [{name: http, port: 9080}]
- name: reviews-v1
  serviceAccount: reviews
  labels: {app: reviews, version: v1}
  command: bowline
  ports: [{name: http, port: 9080}]
  replicas: 2
- name: db
  namespace: data
  labels: {app: db}
  command: sleep
  ports: [{name: tcp, port: 5432, protocol: TCP}]
";

    fn manifest() -> Manifest {
        Manifest::parse(Path::new("m.yaml"), MANIFEST).unwrap()
    }

    fn subnet() -> Subnet {
        Subnet {
            base: Ipv4Addr::new(10, 213, 7, 0),
        }
    }

    #[test]
    fn transparent_gives_each_replica_an_ip_and_istio_ports() {
        let plan = Plan::new(
            &manifest(),
            Capture::Transparent { subnet: subnet() },
            &mut || panic!("no port allocation in transparent mode"),
        )
        .unwrap();
        let names: Vec<(&str, String, Option<&str>)> = plan
            .instances
            .iter()
            .map(|i| (i.name.as_str(), i.ip.to_string(), i.netns.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "productpage-0",
                    "10.213.7.2".into(),
                    Some("bowline-demo-productpage-0")
                ),
                (
                    "reviews-v1-0",
                    "10.213.7.3".into(),
                    Some("bowline-demo-reviews-v1-0")
                ),
                (
                    "reviews-v1-1",
                    "10.213.7.4".into(),
                    Some("bowline-demo-reviews-v1-1")
                ),
                ("db-0", "10.213.7.5".into(), Some("bowline-demo-db-0")),
            ]
        );
        let pp = &plan.instances[0];
        assert_eq!(pp.args[2], "0.0.0.0:9080");
        assert_eq!(pp.args[5], "${NOPE}", "unknown variables stay");
        assert_eq!(pp.sidecar, ISTIO_SIDECAR_PORTS);
        assert!(!pp.env.contains_key("HTTP_PROXY"));
        assert_eq!(
            pp.node_id(),
            "sidecar~10.213.7.2~productpage-0.default~default.svc.cluster.local"
        );
        let vips: Vec<(String, Option<Ipv4Addr>)> =
            plan.services.iter().map(|s| (s.host(), s.vip)).collect();
        assert_eq!(
            vips,
            [
                (
                    "db.data.svc.cluster.local".into(),
                    Some(Ipv4Addr::new(10, 213, 7, 128))
                ),
                (
                    "productpage.default.svc.cluster.local".into(),
                    Some(Ipv4Addr::new(10, 213, 7, 129))
                ),
                (
                    "reviews.default.svc.cluster.local".into(),
                    Some(Ipv4Addr::new(10, 213, 7, 130))
                ),
            ]
        );
        let hosts = plan.hosts_file(pp);
        assert!(hosts.contains("10.213.7.130\treviews reviews.default reviews.default.svc reviews.default.svc.cluster.local\n"), "{hosts}");
        assert!(
            hosts.contains("10.213.7.128\tdb.data db.data.svc"),
            "other namespaces: no short name\n{hosts}"
        );
    }

    #[test]
    fn explicit_puts_everything_on_loopback_with_free_ports() {
        let mut next = 40000;
        let plan = Plan::new(&manifest(), Capture::Explicit, &mut || {
            next += 1;
            next
        })
        .unwrap();
        let pp = &plan.instances[0];
        assert_eq!(pp.ip, Ipv4Addr::LOCALHOST);
        assert_eq!(
            pp.sidecar,
            SidecarPorts {
                outbound: 40001,
                inbound: 40002,
                admin: 40003
            }
        );
        assert_eq!(pp.ports[0].app_port, 40004);
        assert_eq!(pp.ports[0].service_port, 9080);
        assert_eq!(pp.args[2], "0.0.0.0:40004");
        assert_eq!(pp.env["HTTP_PROXY"], "http://127.0.0.1:40001");
        assert_eq!(pp.env["PORT_HTTP"], "40004");
        assert!(plan.services.iter().all(|s| s.vip.is_none()));
        assert!(pp.netns.is_none());
    }

    #[test]
    fn registry_entries_load_as_istio_config() {
        let plan = Plan::new(
            &manifest(),
            Capture::Transparent { subnet: subnet() },
            &mut || 0,
        )
        .unwrap();
        let loaded = bowline_config::load_str(Path::new("mesh.yaml"), &plan.registry_yaml());
        assert!(
            loaded
                .diagnostics
                .iter()
                .all(|d| d.severity != bowline_config::Severity::Error),
            "{:?}",
            loaded.diagnostics
        );
        assert_eq!(loaded.config.resources.len(), 3 + 4);
    }

    #[test]
    fn expands_variables() {
        let env: BTreeMap<String, String> = [("PORT".to_string(), "80".to_string())].into();
        for (input, want) in [
            ("${PORT}", "80"),
            (":${PORT}/x${PORT}", ":80/x80"),
            ("$PORT", "$PORT"),
            ("${PORT", "${PORT"),
            ("${OTHER}${PORT}", "${OTHER}80"),
        ] {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }
}
