//! Sidecar mode (`--sidecar`): what injection puts in the pod's environment
//! (docs/kubernetes-sidecar.md, "The proxy in sidecar mode") read into [`SidecarEnv`], and
//! the bootstrap built from it in-process, as `bowline bootstrap envoy` would print it.
//!
//! Besides the contract's variables, a few overrides exist for tests and local runs (never
//! set by injection): `BOWLINE_STATUS_ADDR` (the status listener, default `0.0.0.0:15020`,
//! `[::]:15020` for an IPv6 pod; port 0 picks one, logged as `status listening on <addr>`),
//! `BOWLINE_OUTBOUND_PORT` and `BOWLINE_INBOUND_PORT` (15001 and 15006),
//! `BOWLINE_XDS_SERVER_NAME` (the name the control plane's certificate must carry; default
//! the host of `BOWLINE_XDS_ADDR`), and the existing `BOWLINE_ADMIN_ADDR` (`--admin-addr`,
//! default 127.0.0.1:15000).
//!
//! Without `BOWLINE_CA_ROOT_FILE` the control plane is reached in plaintext (a warning says
//! so); without `BOWLINE_CA_TOKEN_FILE` (and `--ca-token`) there is no workload certificate.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bowline_bootstrap::build::{
    parse_node_id, set_metadata, sidecar_bootstrap, RootSource, SidecarSpec,
};
use bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap;

use crate::resolve::HostPort;

pub const POD_NAME: &str = "POD_NAME";
pub const POD_NAMESPACE: &str = "POD_NAMESPACE";
pub const INSTANCE_IP: &str = "INSTANCE_IP";
pub const XDS_ADDR: &str = "BOWLINE_XDS_ADDR";
pub const CA_ROOT_FILE: &str = "BOWLINE_CA_ROOT_FILE";
pub const CA_TOKEN_FILE: &str = "BOWLINE_CA_TOKEN_FILE";
pub const APP_PROBERS: &str = "BOWLINE_APP_PROBERS";
pub const DRAIN_DURATION: &str = "BOWLINE_DRAIN_DURATION";
pub const STATUS_ADDR: &str = "BOWLINE_STATUS_ADDR";
pub const OUTBOUND_PORT: &str = "BOWLINE_OUTBOUND_PORT";
pub const INBOUND_PORT: &str = "BOWLINE_INBOUND_PORT";
pub const XDS_SERVER_NAME: &str = "BOWLINE_XDS_SERVER_NAME";
pub const SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
pub const NODE_NAME: &str = "NODE_NAME";
pub const PROXY_CONFIG: &str = "PROXY_CONFIG";

/// The contract's fixed addresses.
pub const ADMIN_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15000);
pub const STATUS_PORT: u16 = 15020;
pub const OUTBOUND: u16 = 15001;
pub const INBOUND: u16 = 15006;
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// Everything sidecar mode reads from the environment, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarEnv {
    pub pod_name: String,
    pub pod_namespace: String,
    pub instance_ip: IpAddr,
    /// `SERVICE_ACCOUNT` and `NODE_NAME`, passed on in the node metadata as Istio's agent does.
    pub service_account: Option<String>,
    pub node_name: Option<String>,
    /// `PROXY_CONFIG` (the `proxy.istio.io/config` annotation as JSON), passed on in the node
    /// metadata.
    pub proxy_config: Option<serde_json::Value>,
    pub xds: HostPort,
    /// The name the control plane's certificate must carry.
    pub xds_server_name: String,
    /// The mesh root; without it the control plane is reached in plaintext.
    pub root_file: Option<PathBuf>,
    /// The projected service-account token for the CA; without it, no workload certificate.
    pub token_file: Option<PathBuf>,
    /// `BOWLINE_APP_PROBERS` as given (parsed by [`crate::probe::parse`]).
    pub app_probers: Option<String>,
    pub drain_duration: Duration,
    pub status_addr: SocketAddr,
    pub outbound_port: u16,
    pub inbound_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("{0} is not set (sidecar mode reads it from the pod's environment; see docs/kubernetes-sidecar.md)")]
    Missing(&'static str),
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl SidecarEnv {
    /// Reads the environment through `var` (`std::env::var` in the binary, a table in tests).
    /// An empty value counts as unset.
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<SidecarEnv, EnvError> {
        let get = |name: &'static str| var(name).filter(|v| !v.trim().is_empty());
        let need = |name: &'static str| get(name).ok_or(EnvError::Missing(name));
        let invalid = |name: &'static str, value: &str, reason: String| EnvError::Invalid {
            name,
            value: value.to_owned(),
            reason,
        };
        fn parsed<T: std::str::FromStr>(
            name: &'static str,
            value: Option<String>,
            default: T,
        ) -> Result<T, EnvError>
        where
            T::Err: std::fmt::Display,
        {
            match value {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|e: T::Err| EnvError::Invalid {
                    name,
                    value: v.clone(),
                    reason: e.to_string(),
                }),
            }
        }

        let pod_name = need(POD_NAME)?;
        let pod_namespace = need(POD_NAMESPACE)?;
        let ip = need(INSTANCE_IP)?;
        let instance_ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| invalid(INSTANCE_IP, &ip, "not an IP address".into()))?;
        let xds_text = need(XDS_ADDR)?;
        let xds: HostPort = xds_text
            .trim()
            .parse()
            .map_err(|e| invalid(XDS_ADDR, &xds_text, e))?;
        let xds_server_name = get(XDS_SERVER_NAME).unwrap_or_else(|| xds.host.clone());
        let drain_duration = match get(DRAIN_DURATION) {
            None => DEFAULT_DRAIN,
            Some(v) => go_duration(v.trim()).map_err(|e| invalid(DRAIN_DURATION, &v, e))?,
        };
        let proxy_config = match get(PROXY_CONFIG) {
            None => None,
            Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(value @ serde_json::Value::Object(_)) => Some(value),
                Ok(_) => return Err(invalid(PROXY_CONFIG, &text, "not a JSON object".into())),
                Err(e) => return Err(invalid(PROXY_CONFIG, &text, e.to_string())),
            },
        };
        let env = SidecarEnv {
            pod_name,
            pod_namespace,
            instance_ip,
            service_account: get(SERVICE_ACCOUNT),
            node_name: get(NODE_NAME),
            proxy_config,
            xds,
            xds_server_name,
            root_file: get(CA_ROOT_FILE).map(PathBuf::from),
            token_file: get(CA_TOKEN_FILE).map(PathBuf::from),
            app_probers: get(APP_PROBERS),
            drain_duration,
            status_addr: parsed(
                STATUS_ADDR,
                get(STATUS_ADDR),
                // Every address of the pod's family (an IPv6 pod's kubelet probes its IPv6
                // address; `[::]` takes IPv4 too unless the host forbids it).
                match instance_ip {
                    IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], STATUS_PORT)),
                    IpAddr::V6(_) => {
                        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, STATUS_PORT))
                    }
                },
            )?,
            outbound_port: parsed(OUTBOUND_PORT, get(OUTBOUND_PORT), OUTBOUND)?,
            inbound_port: parsed(INBOUND_PORT, get(INBOUND_PORT), INBOUND)?,
        };
        // The node id must be Istio's form: a pod name or namespace with '~' or a '.' in the
        // name's place would make the control plane read another workload.
        parse_node_id(&env.node_id()).map_err(|reason| EnvError::Invalid {
            name: POD_NAME,
            value: format!("{}.{}", env.pod_name, env.pod_namespace),
            reason: format!("node id {:?}: {reason}", env.node_id()),
        })?;
        Ok(env)
    }

    /// `sidecar~<INSTANCE_IP>~<POD_NAME>.<POD_NAMESPACE>~<POD_NAMESPACE>.svc.cluster.local`.
    pub fn node_id(&self) -> String {
        format!(
            "sidecar~{}~{}.{}~{}.svc.cluster.local",
            self.instance_ip, self.pod_name, self.pod_namespace, self.pod_namespace
        )
    }

    /// The sidecar bootstrap: delta ADS to `xds_addr` (the resolved `BOWLINE_XDS_ADDR`), over
    /// TLS verified against the root file and [`SidecarEnv::xds_server_name`] when there is
    /// a root file; admin on `admin`; Istio's node metadata with the capture ports and
    /// `INTERCEPTION_MODE=REDIRECT` (capture is iptables REDIRECT, the only mode injection
    /// supports), plus `SERVICE_ACCOUNT`, `NODE_NAME`, `NAME` (the pod) and `PROXY_CONFIG`.
    pub fn bootstrap(&self, xds_addr: SocketAddr, admin: SocketAddr) -> Bootstrap {
        let node_id = self.node_id();
        let node = parse_node_id(&node_id).expect("checked by SidecarEnv::read");
        let mut bootstrap = sidecar_bootstrap(&SidecarSpec {
            node_id: &node_id,
            node: &node,
            cluster: None,
            xds_addr,
            admin_addr: admin,
            outbound_port: self.outbound_port,
            inbound_port: self.inbound_port,
            delta: true,
            xds_root: self.root_file.as_deref().map(RootSource::File),
            control_plane_name: &self.xds_server_name,
        });
        let string = |s: &str| serde_json::Value::String(s.to_owned());
        set_metadata(&mut bootstrap, "INTERCEPTION_MODE", string("REDIRECT"));
        set_metadata(&mut bootstrap, "NAME", string(&self.pod_name));
        if let Some(account) = &self.service_account {
            set_metadata(&mut bootstrap, "SERVICE_ACCOUNT", string(account));
        }
        if let Some(node_name) = &self.node_name {
            set_metadata(&mut bootstrap, "NODE_NAME", string(node_name));
        }
        if let Some(config) = &self.proxy_config {
            set_metadata(&mut bootstrap, "PROXY_CONFIG", config.clone());
        }
        bootstrap
    }
}

/// Go's `time.ParseDuration` (what Kubernetes and Istio write: `5s`, `1m30s`, `500ms`,
/// `1.5h`, `0`); no sign.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: missing unit (ns, us, ms, s, m, h)"))?;
        let number = &rest[..number_len];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(format!("{text:?}: expected a number before the unit"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            unit => return Err(format!("{text:?}: unknown unit {unit:?}")),
        };
        let too_long = || format!("{text:?}: too long");
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        // Digits past nanoseconds are dropped, as Go does.
        let fraction: String = fraction.chars().take(18).collect();
        let scale = 10u128.pow(fraction.len() as u32);
        let fraction: u128 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| too_long())?
        };
        nanos = whole
            .checked_mul(unit)
            .and_then(|n| n.checked_add(fraction * unit / scale))
            .and_then(|n| nanos.checked_add(n))
            .ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("{text:?}: too long"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::config::core::v3::{address, socket_address};
    use bowline_xds::pb::google::protobuf::value::Kind;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<SidecarEnv, EnvError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SidecarEnv::read(|name| map.get(name).cloned())
    }

    const POD: &[(&str, &str)] = &[
        ("POD_NAME", "reviews-v1-7d4b9"),
        ("POD_NAMESPACE", "bookinfo"),
        ("INSTANCE_IP", "10.244.0.7"),
        ("BOWLINE_XDS_ADDR", "bowline.bowline-system.svc:15012"),
        (
            "BOWLINE_CA_ROOT_FILE",
            "/var/run/secrets/bowline/root-cert.pem",
        ),
        (
            "BOWLINE_CA_TOKEN_FILE",
            "/var/run/secrets/tokens/bowline-token",
        ),
    ];

    fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<_> = POD
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .copied()
            .collect();
        vars.extend(changes.iter().filter(|(_, v)| !v.is_empty()).copied());
        vars
    }

    #[test]
    fn the_injected_environment_reads_with_the_contracts_defaults() {
        let e = env(POD).unwrap();
        assert_eq!(
            e.node_id(),
            "sidecar~10.244.0.7~reviews-v1-7d4b9.bookinfo~bookinfo.svc.cluster.local"
        );
        assert_eq!(
            e.xds,
            HostPort {
                host: "bowline.bowline-system.svc".into(),
                port: 15012
            }
        );
        assert_eq!(e.xds_server_name, "bowline.bowline-system.svc");
        assert_eq!(
            e.root_file.as_deref(),
            Some(std::path::Path::new(
                "/var/run/secrets/bowline/root-cert.pem"
            ))
        );
        assert_eq!(e.status_addr, "0.0.0.0:15020".parse().unwrap());
        let v6 = env(&with(&[("INSTANCE_IP", "fd00::7")])).unwrap();
        assert_eq!(v6.status_addr, "[::]:15020".parse().unwrap());
        assert_eq!((e.outbound_port, e.inbound_port), (15001, 15006));
        assert_eq!(e.drain_duration, Duration::from_secs(5));
        assert_eq!(e.app_probers, None);
    }

    #[test]
    fn overrides_and_optional_variables() {
        let e = env(&with(&[
            ("BOWLINE_DRAIN_DURATION", "1m30s"),
            ("BOWLINE_STATUS_ADDR", "127.0.0.1:0"),
            ("BOWLINE_OUTBOUND_PORT", "0"),
            ("BOWLINE_INBOUND_PORT", "0"),
            ("BOWLINE_XDS_SERVER_NAME", "istiod.istio-system.svc"),
            ("BOWLINE_CA_ROOT_FILE", ""),
            ("INSTANCE_IP", "fd00::7"),
        ]))
        .unwrap();
        assert_eq!(e.drain_duration, Duration::from_secs(90));
        assert_eq!(e.status_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!((e.outbound_port, e.inbound_port), (0, 0));
        assert_eq!(e.xds_server_name, "istiod.istio-system.svc");
        assert_eq!(e.root_file, None);
        assert_eq!(
            e.node_id(),
            "sidecar~fd00::7~reviews-v1-7d4b9.bookinfo~bookinfo.svc.cluster.local"
        );
    }

    #[test]
    fn a_missing_or_wrong_variable_is_named() {
        for (name, value, want) in [
            ("POD_NAME", "", "POD_NAME is not set"),
            ("POD_NAMESPACE", "", "POD_NAMESPACE is not set"),
            ("INSTANCE_IP", "", "INSTANCE_IP is not set"),
            ("BOWLINE_XDS_ADDR", "", "BOWLINE_XDS_ADDR is not set"),
            ("POD_NAME", "   ", "POD_NAME is not set"),
            (
                "INSTANCE_IP",
                "pod-ip",
                "INSTANCE_IP=\"pod-ip\": not an IP address",
            ),
            (
                "BOWLINE_XDS_ADDR",
                "bowline.bowline-system.svc",
                "BOWLINE_XDS_ADDR=",
            ),
            (
                "BOWLINE_DRAIN_DURATION",
                "5",
                "BOWLINE_DRAIN_DURATION=\"5\"",
            ),
            (
                "BOWLINE_DRAIN_DURATION",
                "5 seconds",
                "BOWLINE_DRAIN_DURATION=",
            ),
            ("BOWLINE_STATUS_ADDR", ":15020", "BOWLINE_STATUS_ADDR="),
            ("BOWLINE_INBOUND_PORT", "70000", "BOWLINE_INBOUND_PORT="),
            ("POD_NAME", "a~b", "node id"),
            (
                "PROXY_CONFIG",
                "[1]",
                "PROXY_CONFIG=\"[1]\": not a JSON object",
            ),
            ("PROXY_CONFIG", "{", "PROXY_CONFIG="),
        ] {
            let error = env(&with(&[(name, value)])).unwrap_err().to_string();
            assert!(error.contains(want), "{name}={value:?}: {error}");
        }
    }

    #[test]
    fn the_bootstrap_says_who_the_pod_is_and_where_the_control_plane_is() {
        let e = env(&with(&[
            ("SERVICE_ACCOUNT", "bookinfo-reviews"),
            (
                "PROXY_CONFIG",
                r#"{"holdApplicationUntilProxyStarts":true}"#,
            ),
        ]))
        .unwrap();
        let xds: SocketAddr = "10.96.0.12:15012".parse().unwrap();
        let b = e.bootstrap(xds, ADMIN_ADDR);
        let node = b.node.as_ref().unwrap();
        assert_eq!(node.id, e.node_id());
        assert_eq!(node.cluster, "reviews-v1-7d4b9.bookinfo");
        let meta = &node.metadata.as_ref().unwrap().fields;
        let string = |k: &str| match &meta[k].kind {
            Some(Kind::StringValue(s)) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(string("OUTBOUND_PORT"), "15001");
        assert_eq!(string("INBOUND_PORT"), "15006");
        assert_eq!(string("NAMESPACE"), "bookinfo");
        assert_eq!(string("INTERCEPTION_MODE"), "REDIRECT");
        assert_eq!(string("NAME"), "reviews-v1-7d4b9");
        assert_eq!(string("SERVICE_ACCOUNT"), "bookinfo-reviews");
        assert!(!meta.contains_key("NODE_NAME"));
        let Some(Kind::StructValue(proxy_config)) = &meta["PROXY_CONFIG"].kind else {
            panic!("{:?}", meta["PROXY_CONFIG"])
        };
        assert!(proxy_config
            .fields
            .contains_key("holdApplicationUntilProxyStarts"));

        let admin = b.admin.as_ref().unwrap().address.as_ref().unwrap();
        let Some(address::Address::SocketAddress(s)) = &admin.address else {
            panic!("{admin:?}")
        };
        assert_eq!(s.address, "127.0.0.1");
        assert_eq!(
            s.port_specifier,
            Some(socket_address::PortSpecifier::PortValue(15000))
        );

        let settings = bowline_bootstrap::ads_settings(&b).unwrap().unwrap();
        let tls = settings.tls.expect("TLS with a root file");
        assert_eq!(tls.server_name, "bowline.bowline-system.svc");
        assert!(matches!(
            tls.trusted_ca,
            bowline_bootstrap::PemSource::File(ref p)
                if p == std::path::Path::new("/var/run/secrets/bowline/root-cert.pem")
        ));
        let ads = bowline_bootstrap::ads_client_config(&b).unwrap().unwrap();
        assert_eq!(ads.endpoint, xds);
        assert_eq!(ads.node.id, e.node_id());

        let plain = env(&with(&[("BOWLINE_CA_ROOT_FILE", "")]))
            .unwrap()
            .bootstrap(xds, ADMIN_ADDR);
        assert!(bowline_bootstrap::ads_settings(&plain)
            .unwrap()
            .unwrap()
            .tls
            .is_none());
    }

    #[test]
    fn go_durations() {
        for (text, want) in [
            ("0", Some(Duration::ZERO)),
            ("5s", Some(Duration::from_secs(5))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("1.5h", Some(Duration::from_secs(5400))),
            ("2us", Some(Duration::from_micros(2))),
            ("10ns", Some(Duration::from_nanos(10))),
            ("", None),
            ("5", None),
            ("s", None),
            ("5x", None),
            ("-5s", None),
            ("1..5s", None),
        ] {
            assert_eq!(go_duration(text).ok(), want, "{text:?}");
        }
    }
}
