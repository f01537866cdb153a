//! One replica of a workload: its network namespace and capture rules (transparent mode),
//! the application, its bootstrap and its sidecar (bowline-proxy, or Envoy beside the SDS
//! agent).

use super::{ControlPlaneAddr, PartialMesh, UpError};
use crate::iptables::PROXY_UID;
use crate::manifest::SidecarKind;
use crate::plan::{Instance, Plan};
use crate::process::Place;
use crate::state::WorkloadState;
use bowline_bootstrap::build;
use bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

/// What every proxy's start shares.
pub(super) struct Launch<'a> {
    pub plan: &'a Plan,
    pub self_bin: &'a Path,
    pub proxy_bin: &'a Path,
    pub envoy_bin: Option<&'a Path>,
    pub state_dir: &'a Path,
    pub xds: &'a ControlPlaneAddr,
}

/// Network namespace (transparent), capture rules, the application, its bootstrap and its
/// sidecar.
pub(super) fn start_instance(
    mesh: &mut PartialMesh,
    launch: &Launch<'_>,
    instance: &Instance,
    ca_token: &str,
) -> Result<WorkloadState, UpError> {
    let Launch {
        plan,
        self_bin,
        proxy_bin,
        envoy_bin,
        state_dir,
        xds,
    } = *launch;
    let (app_place, proxy_place, admin_addr) = match &instance.netns {
        Some(ns) => {
            let network = mesh
                .network
                .as_mut()
                .expect("transparent mode has a network");
            network
                .add_namespace(ns, instance.ip, &plan.hosts_file(instance))
                .map_err(UpError::io(format!("creating network namespace {ns}")))?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(self_bin)
                .args(["iptables", "--exclude-inbound-ports"])
                .arg(instance.sidecar.admin.to_string())
                .status()?;
            if !status.success() {
                return Err(UpError::CaptureRules {
                    ns: ns.clone(),
                    status,
                });
            }
            (
                Place::Netns(ns.clone()),
                Place::NetnsAs {
                    ns: ns.clone(),
                    uid: PROXY_UID,
                    gid: PROXY_UID,
                },
                SocketAddr::new(instance.ip.into(), instance.sidecar.admin),
            )
        }
        None => (
            Place::Host,
            Place::Host,
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), instance.sidecar.admin),
        ),
    };
    let program = if instance.command == "bowline" {
        self_bin.display().to_string()
    } else {
        instance.command.clone()
    };
    let env: Vec<(String, String)> = instance.env.clone().into_iter().collect();
    let pid = mesh.supervisor.spawn(
        &instance.name,
        &program,
        &instance.args,
        &env,
        &app_place,
        None,
    )?;

    let mut bootstrap = sidecar_bootstrap(instance, xds, admin_addr)?;
    let sidecar_name = format!("{} proxy", instance.name);
    let token_env = [("BOWLINE_CA_TOKEN".to_string(), ca_token.to_string())];
    let sidecar_pid = match instance.sidecar_kind {
        SidecarKind::Bowline => {
            let file = state_dir.join(format!("bootstrap/{}.json", instance.name));
            std::fs::write(&file, write_bootstrap(&bootstrap)?)?;
            // Handed over as stdin: the proxy's uid may not be able to open the state
            // directory.
            mesh.supervisor.spawn(
                &sidecar_name,
                &proxy_bin.display().to_string(),
                &["-c".to_string(), "/dev/stdin".to_string()],
                &token_env,
                &proxy_place,
                Some(std::fs::File::open(&file)?),
            )?
        }
        SidecarKind::Envoy => {
            // Istio's agent beside Envoy: the certificate over SDS on an abstract socket
            // (private to the namespace; named per instance for explicit mode).
            let socket = format!("@bowline-sds-{}", instance.name);
            let mut sds_env = token_env.to_vec();
            if let Some(root) = &xds.root_pem {
                sds_env.push(("BOWLINE_CA_ROOT_PEM".to_string(), root.clone()));
            }
            mesh.supervisor.spawn(
                &format!("{} sds", instance.name),
                &self_bin.display().to_string(),
                &[
                    "sds".to_string(),
                    "--ca-addr".to_string(),
                    xds.addr.to_string(),
                    "--listen".to_string(),
                    socket.clone(),
                ],
                &sds_env,
                &proxy_place,
                None,
            )?;
            build::add_sds_cluster(&mut bootstrap, &socket);
            std::fs::write(
                state_dir.join(format!("bootstrap/{}.json", instance.name)),
                write_bootstrap(&bootstrap)?,
            )?;
            let envoy = envoy_bin.ok_or(UpError::NoEnvoy)?;
            mesh.supervisor.spawn(
                &sidecar_name,
                &envoy.display().to_string(),
                &[
                    "--config-yaml".to_string(),
                    bowline_bootstrap::to_json(&bootstrap)
                        .map_err(|e| UpError::Bootstrap(e.to_string()))?
                        .to_string(),
                    "--concurrency".to_string(),
                    "1".to_string(),
                    "--use-dynamic-base-id".to_string(),
                    // The drain bowline-proxy sidecars use (5 s): how long a connection a
                    // push makes wrong keeps flowing (Envoy's default is 600 s).
                    "--drain-time-s".to_string(),
                    "5".to_string(),
                    "-l".to_string(),
                    "warning".to_string(),
                ],
                &[],
                &proxy_place,
                None,
            )?
        }
    };
    Ok(WorkloadState {
        name: instance.name.clone(),
        namespace: instance.namespace.clone(),
        ip: instance.ip.to_string(),
        ports: instance
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.service_port, p.app_port))
            .collect(),
        node_id: instance.node_id(),
        pid,
        sidecar_pid,
        sidecar_admin: admin_addr.to_string(),
        netns: instance.netns.clone(),
    })
}

/// The same bootstrap `bowline bootstrap envoy` prints, with the capture mode set.
fn sidecar_bootstrap(
    instance: &Instance,
    xds: &ControlPlaneAddr,
    admin_addr: SocketAddr,
) -> Result<Bootstrap, UpError> {
    let (admin, mode) = match instance.netns {
        // Reachable from the host for readiness; capture rules leave the port alone.
        Some(_) => (
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), admin_addr.port()),
            "REDIRECT",
        ),
        None => (admin_addr, "NONE"),
    };
    let mut bootstrap = build::sidecar(
        &instance.node_id(),
        xds,
        admin,
        instance.sidecar.outbound,
        instance.sidecar.inbound,
        bowline_identity::control::CONTROL_PLANE_NAME,
    )
    .map_err(UpError::Bootstrap)?;
    build::set_metadata(&mut bootstrap, "INTERCEPTION_MODE", json!(mode));
    let account = json!(instance.service_account);
    build::set_metadata(&mut bootstrap, "SERVICE_ACCOUNT", account);
    Ok(bootstrap)
}

/// A bootstrap as the JSON file a proxy reads.
pub(super) fn write_bootstrap(bootstrap: &Bootstrap) -> Result<String, UpError> {
    bowline_bootstrap::to_json_string(bootstrap).map_err(|e| UpError::Bootstrap(e.to_string()))
}
