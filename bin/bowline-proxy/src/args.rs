//! Command-line flags. The Envoy flags our test harnesses pass (`--admin-address-path`,
//! `--use-dynamic-base-id`, `--disable-hot-restart`, `-l`) are accepted so bowline-proxy
//! starts wherever Envoy does.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::resolve::HostPort;

#[derive(clap::Parser, Debug)]
#[command(
    name = "bowline-proxy",
    version,
    about = "bowline's data plane: an Envoy-compatible sidecar proxy"
)]
pub struct Args {
    /// Bootstrap file (Envoy's bootstrap YAML or JSON). Required unless --sidecar.
    #[arg(short = 'c', long = "config-path", env = "BOWLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kubernetes sidecar mode: no bootstrap file; the bootstrap is built from the pod's
    /// environment (POD_NAME, POD_NAMESPACE, INSTANCE_IP, BOWLINE_XDS_ADDR,
    /// BOWLINE_CA_ROOT_FILE, BOWLINE_CA_TOKEN_FILE, ...; see docs/kubernetes-sidecar.md),
    /// and the status port (15020) serves readiness, the application's probes and metrics.
    /// (BOWLINE_SIDECAR: true/1/yes/on, or false/0/no/off.)
    #[arg(
        long,
        env = "BOWLINE_SIDECAR",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub sidecar: bool,
    /// Node id sent to the control plane (overrides the bootstrap's node.id).
    #[arg(long, alias = "service-node", env = "BOWLINE_NODE_ID")]
    pub node_id: Option<String>,
    /// Control plane address, host:port (overrides the bootstrap's ADS cluster endpoint). A
    /// host name is resolved by DNS at start (retrying, bounded).
    #[arg(long, env = "BOWLINE_XDS_ADDR")]
    pub xds_addr: Option<HostPort>,
    /// Admin listener, ip:port (overrides the bootstrap's admin address; port 0 picks one).
    #[arg(long, env = "BOWLINE_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Worker threads, each with its own event loop and listener sockets.
    #[arg(long, env = "BOWLINE_CONCURRENCY", default_value_t = 1)]
    pub concurrency: usize,
    /// trace, debug, info, warn(ing), error, critical or off.
    #[arg(short = 'l', long, env = "BOWLINE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Write the admin listener's bound address here once it is bound (as Envoy does).
    #[arg(long, env = "BOWLINE_ADMIN_ADDRESS_PATH")]
    pub admin_address_path: Option<PathBuf>,
    /// Longest wait, in seconds, for open connections to finish on SIGTERM, and how long a
    /// TCP connection a config push makes wrong (cluster removed, network policy denying it)
    /// keeps flowing before it is closed.
    #[arg(
        long = "drain-time-s",
        env = "BOWLINE_DRAIN_TIME_S",
        default_value_t = 5
    )]
    pub drain_time_s: u64,
    /// Bearer token for the mesh CA (`bowline up` issues one per workload). With it the
    /// proxy gets a workload certificate before it asks for config, and keeps it rotated;
    /// it serves the SDS secrets `default` and `ROOTCA` from it.
    #[arg(long, env = "BOWLINE_CA_TOKEN", hide_env_values = true)]
    pub ca_token: Option<String>,
    /// The CA, ip:port (Istio's CSR API). Default: the xDS server's address.
    #[arg(long, env = "BOWLINE_CA_ADDR")]
    pub ca_addr: Option<SocketAddr>,
    /// Certificate lifetime to ask for, in seconds (default: the CA's, 24 h in bowline).
    #[arg(long, env = "BOWLINE_CERT_TTL_S")]
    pub cert_ttl_s: Option<u64>,
    /// Accepted for Envoy compatibility; bowline-proxy has no hot restart.
    #[arg(long, hide = true)]
    pub use_dynamic_base_id: bool,
    /// Accepted for Envoy compatibility; bowline-proxy has no hot restart.
    #[arg(long, hide = true)]
    pub disable_hot_restart: bool,
    /// Envoy's bound on how long access log lines may wait in memory (10 s by default
    /// there). Accepted: bowline-proxy's writers flush whenever their queue runs dry, which
    /// is sooner than any interval.
    #[arg(long = "file-flush-interval-msec", hide = true)]
    pub file_flush_interval_msec: Option<u64>,
}

impl Args {
    /// The tracing filter for `--log-level` (Envoy's names mapped onto tracing's).
    pub fn log_filter(&self) -> String {
        match self.log_level.as_str() {
            "warning" => "warn".into(),
            "critical" => "error".into(),
            other => other.into(),
        }
    }
}
