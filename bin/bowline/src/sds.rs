//! `bowline sds`: Istio's agent, for an Envoy sidecar. Gets the workload certificate from
//! the mesh CA (with the workload's token), keeps it rotated, and serves it to Envoy over SDS
//! on a Unix socket as Istio's agent does: secret `default` is the certificate and key,
//! `ROOTCA` the mesh root. bowline-proxy has this agent built in; Envoy needs it beside it.
//!
//! State of the world: a stream gets every secret it names when it names it, and again on
//! every rotation; ACKs are not answered.
//!
//! With `--cert-dir` it also keeps the certificate in files, as Istio's agent does for a
//! proxyless gRPC workload: `cert-chain.pem`, `key.pem` and `root-cert.pem`, each replaced
//! whole (renamed in) on every rotation. gRPC's `file_watcher` certificate provider reads
//! them (see README, proxyless gRPC).

use anyhow::Context;
use bowline_identity::{Agent, AgentConfig, IdentityHandle};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{data_source, DataSource};
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, CertificateValidationContext, Secret, TlsCertificate,
};
use bowline_xds::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use bowline_xds::pb::envoy::service::secret::v3::secret_discovery_service_server::{
    SecretDiscoveryService, SecretDiscoveryServiceServer,
};
use bowline_xds::type_url;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The mesh CA, ip:port (the control plane's xDS address).
    #[arg(long)]
    ca_addr: SocketAddr,
    /// The workload's CA token (`bowline up` issues it).
    #[arg(long, env = "BOWLINE_CA_TOKEN", hide_env_values = true)]
    ca_token: String,
    /// Unix socket to serve SDS on (the bootstrap's `sds-grpc` cluster points here);
    /// `@NAME` is an abstract socket (private to the network namespace).
    #[arg(long, value_name = "PATH", required_unless_present = "cert_dir")]
    listen: Option<PathBuf>,
    /// Also keep the certificate, key and root in this directory (Istio's file names, for
    /// a proxyless gRPC workload's certificate provider).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Certificate lifetime to ask for, in seconds (default: the CA's).
    #[arg(long)]
    cert_ttl_s: Option<u64>,
    /// The mesh root (PEM): reach the CA over TLS, verified against it (the control plane's
    /// secure port). Without it the token crosses the wire in clear (local tools only).
    #[arg(long, value_name = "FILE", conflicts_with = "ca_root_pem")]
    ca_root: Option<PathBuf>,
    /// The mesh root as PEM text (what `bowline up` passes), instead of --ca-root.
    #[arg(long, env = "BOWLINE_CA_ROOT_PEM", hide_env_values = true)]
    ca_root_pem: Option<String>,
    /// The name the CA's certificate must carry.
    #[arg(long, default_value = bowline_identity::control::CONTROL_PLANE_NAME)]
    ca_server_name: String,
}

pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bowline sds: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bowline sds: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let root = match (&args.ca_root, &args.ca_root_pem) {
        (Some(file), _) => {
            Some(std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?)
        }
        (None, Some(pem)) => Some(pem.clone().into_bytes()),
        (None, None) => None,
    };
    let tls = root
        .map(|root| bowline_identity::control::ClientTls::new(&root, &args.ca_server_name))
        .transpose()
        .map_err(|e| anyhow::anyhow!("the mesh root: {e}"))?;
    let agent = Agent::start(
        AgentConfig {
            ca: bowline_identity::api::CaEndpoint {
                addr: args.ca_addr,
                tls,
            },
            token: args.ca_token.clone(),
            token_file: None,
            ttl: args.cert_ttl_s.map(Duration::from_secs),
        },
        Duration::from_secs(30),
    )
    .await
    .with_context(|| format!("no workload certificate from the CA at {}", args.ca_addr))?;
    if let Some(dir) = &args.cert_dir {
        let identity = agent.handle();
        let material = identity.current().context("the agent has no certificate")?;
        write_certs(dir, &material.cert)
            .with_context(|| format!("cannot write certificates to {}", dir.display()))?;
        // The readiness line scripts and tests wait for.
        println!("certificates written to {}", dir.display());
        // Runs for as long as the runtime, which ends with this function.
        tokio::spawn(keep_written(dir.clone(), identity));
    }
    let Some(listen) = &args.listen else {
        shutdown_signal().await;
        return Ok(());
    };
    let listener = bind(listen).with_context(|| format!("cannot bind {}", listen.display()))?;
    // The readiness line scripts and tests wait for.
    println!("sds listening on {}", listen.display());
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let service = SdsService {
        identity: agent.handle(),
    };
    tonic::transport::Server::builder()
        .add_service(SecretDiscoveryServiceServer::new(service))
        .serve_with_incoming_shutdown(incoming, shutdown_signal())
        .await?;
    Ok(())
}

/// Istio's file names for a workload's certificate chain, key and the mesh root.
const CERT_CHAIN_FILE: &str = "cert-chain.pem";
const KEY_FILE: &str = "key.pem";
const ROOT_FILE: &str = "root-cert.pem";

/// Writes the three files, each to a temporary name then renamed over the old one, so a
/// reader never sees half a file. The key is readable by its owner only.
fn write_certs(
    dir: &std::path::Path,
    cert: &bowline_identity::WorkloadCert,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let chain = cert.chain_pem.join("");
    for (name, text, mode) in [
        (CERT_CHAIN_FILE, chain.as_str(), 0o644),
        (KEY_FILE, cert.key_pem.as_str(), 0o600),
        (ROOT_FILE, cert.root_pem.as_str(), 0o644),
    ] {
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(())
}

/// Rewrites the files at every rotation, for as long as the agent runs. A failed write is
/// reported and retried at the next rotation; the files keep the last good certificate.
async fn keep_written(dir: PathBuf, mut identity: IdentityHandle) {
    while identity.changed().await {
        let Some(material) = identity.current() else {
            continue;
        };
        match write_certs(&dir, &material.cert) {
            Ok(()) => tracing::info!(dir = %dir.display(), "rotated certificates written"),
            Err(e) => eprintln!(
                "bowline sds: cannot write certificates to {}: {e}",
                dir.display()
            ),
        }
    }
}

/// A Unix listener at `path`, or in the abstract namespace for `@name`.
fn bind(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let text = path.to_string_lossy();
    let std_listener = match text.strip_prefix('@') {
        Some(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            std::os::unix::net::UnixListener::bind_addr(&addr)?
        }
        None => {
            let _ = std::fs::remove_file(path);
            let listener = std::os::unix::net::UnixListener::bind(path)?;
            // Envoy may run as another user (the proxy's): it must be able to connect.
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
            listener
        }
    };
    std_listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(std_listener)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

struct SdsService {
    identity: IdentityHandle,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;
type DeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

/// The secrets named `names` as they are now; unknown names are left out (Envoy keeps
/// waiting for them, as it does with Istio's agent).
fn response(identity: &IdentityHandle, names: &[String], version: u64) -> DiscoveryResponse {
    let resources = identity
        .current()
        .map(|m| {
            names
                .iter()
                .filter_map(|name| secret(name, &m.cert))
                .map(|s| pack(&s))
                .collect()
        })
        .unwrap_or_default();
    DiscoveryResponse {
        version_info: version.to_string(),
        resources,
        type_url: type_url::SECRET.into(),
        nonce: version.to_string(),
        ..Default::default()
    }
}

fn inline(text: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(
            text.as_bytes().to_vec(),
        )),
        ..Default::default()
    })
}

fn secret(name: &str, cert: &bowline_identity::WorkloadCert) -> Option<Secret> {
    let r#type = match name {
        "default" => secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(&cert.chain_pem.join("")),
            private_key: inline(&cert.key_pem),
            ..Default::default()
        }),
        "ROOTCA" => secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: inline(&cert.root_pem),
            ..Default::default()
        }),
        _ => return None,
    };
    Some(Secret {
        name: name.to_string(),
        r#type: Some(r#type),
    })
}

#[tonic::async_trait]
impl SecretDiscoveryService for SdsService {
    type DeltaSecretsStream = DeltaStream;
    type StreamSecretsStream = ResponseStream;

    async fn delta_secrets(
        &self,
        _: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        Err(Status::unimplemented("delta SDS: use StreamSecrets"))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let mut requests = request.into_inner();
        let mut identity = self.identity.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut names: Vec<String> = Vec::new();
            let mut version = 0u64;
            loop {
                tokio::select! {
                    next = requests.next() => {
                        let Some(Ok(req)) = next else { return };
                        if let Some(error) = &req.error_detail {
                            tracing::warn!(names = ?req.resource_names, error = %error.message, "Envoy rejected a secret");
                        }
                        let mut asked = req.resource_names.clone();
                        asked.sort();
                        // An ACK (or NACK) of what was sent: nothing new to say.
                        if !req.response_nonce.is_empty() && asked == names {
                            continue;
                        }
                        names = asked;
                    }
                    changed = identity.changed() => {
                        if !changed { return }
                    }
                }
                if names.is_empty() {
                    continue;
                }
                version += 1;
                if tx
                    .send(Ok(response(&identity, &names, version)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let names = request.into_inner().resource_names;
        Ok(Response::new(response(&self.identity, &names, 1)))
    }
}
