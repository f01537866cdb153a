//! The application's probes, rewritten by injection to the status port: `BOWLINE_APP_PROBERS`
//! (Istio's `ISTIO_KUBE_APP_PROBERS` format) parsed into typed [`Prober`]s, and each probe
//! run against the pod's own address as the kubelet would have run it.
//!
//! The address is `INSTANCE_IP` (as Istio's status port does since 1.10, and as the kubelet
//! itself probes): an application bound to the loopback only would fail the kubelet's own
//! probe, and a probe of 127.0.0.1 would call it healthy. `httpGet.host`, when given, wins.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// Status-port path (`/app-health/<container>/<livez|readyz|startupz>`) → its prober.
pub type Probers = BTreeMap<String, Prober>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prober {
    pub check: Check,
    /// `timeoutSeconds` (Kubernetes' default, 1 s, when absent or 0).
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Http(HttpGet),
    Tcp { host: Option<String>, port: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGet {
    pub path: String,
    pub port: u16,
    /// `httpGet.host`: the address to probe instead of the pod's.
    pub host: Option<String>,
    pub https: bool,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid BOWLINE_APP_PROBERS: {0}")]
pub struct InvalidProbers(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProber {
    http_get: Option<RawHttpGet>,
    tcp_socket: Option<RawTcp>,
    grpc: Option<serde_json::Value>,
    timeout_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttpGet {
    #[serde(default)]
    path: String,
    port: Port,
    #[serde(default)]
    host: String,
    #[serde(default)]
    scheme: String,
    #[serde(default)]
    http_headers: Vec<RawHeader>,
}

#[derive(Deserialize)]
struct RawTcp {
    port: Port,
    #[serde(default)]
    host: String,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    #[serde(default)]
    value: String,
}

/// Kubernetes' IntOrString; injection resolves named ports, so a name left is an error.
#[derive(Deserialize)]
#[serde(untagged)]
enum Port {
    Number(i64),
    Text(String),
}

fn port(port: &Port, key: &str) -> Result<u16, InvalidProbers> {
    let number = match port {
        Port::Number(n) => *n,
        Port::Text(text) => text.parse().map_err(|_| {
            InvalidProbers(format!(
                "{key}: port {text:?} is a name (injection resolves names to numbers)"
            ))
        })?,
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| InvalidProbers(format!("{key}: port {number} is not 1-65535")))
}

fn host(host: String) -> Option<String> {
    Some(host).filter(|h| !h.is_empty())
}

/// Parses `BOWLINE_APP_PROBERS`. Every key must be `/app-health/<container>/<livez|readyz|startupz>`
/// and every prober an `httpGet` or a `tcpSocket`.
pub fn parse(json: &str) -> Result<Probers, InvalidProbers> {
    let raw: BTreeMap<String, RawProber> =
        serde_json::from_str(json).map_err(|e| InvalidProbers(e.to_string()))?;
    let mut probers = Probers::new();
    for (key, raw) in raw {
        let valid_key = key
            .strip_prefix("/app-health/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(container, kind)| {
                !container.is_empty() && matches!(kind, "livez" | "readyz" | "startupz")
            });
        if !valid_key {
            return Err(InvalidProbers(format!(
                "{key:?} is not /app-health/<container>/<livez|readyz|startupz>"
            )));
        }
        let check = match (raw.http_get, raw.tcp_socket) {
            (Some(get), None) => {
                let https = match get.scheme.to_ascii_uppercase().as_str() {
                    "" | "HTTP" => false,
                    "HTTPS" => true,
                    other => {
                        return Err(InvalidProbers(format!(
                            "{key}: scheme {other:?} is not HTTP or HTTPS"
                        )))
                    }
                };
                let path = if get.path.starts_with('/') {
                    get.path
                } else {
                    format!("/{}", get.path)
                };
                Check::Http(HttpGet {
                    path,
                    port: port(&get.port, &key)?,
                    host: host(get.host),
                    https,
                    headers: get
                        .http_headers
                        .into_iter()
                        .map(|h| (h.name, h.value))
                        .collect(),
                })
            }
            (None, Some(tcp)) => Check::Tcp {
                host: host(tcp.host),
                port: port(&tcp.port, &key)?,
            },
            (Some(_), Some(_)) => {
                return Err(InvalidProbers(format!("{key}: both httpGet and tcpSocket")))
            }
            (None, None) if raw.grpc.is_some() => {
                return Err(InvalidProbers(format!(
                    "{key}: grpc probes are not rewritten (the kubelet probes them itself)"
                )))
            }
            (None, None) => {
                return Err(InvalidProbers(format!(
                    "{key}: neither httpGet nor tcpSocket"
                )))
            }
        };
        let timeout = match raw.timeout_seconds {
            None | Some(0) => Duration::from_secs(1),
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            Some(s) => {
                return Err(InvalidProbers(format!(
                    "{key}: timeoutSeconds {s} is negative"
                )))
            }
        };
        probers.insert(key, Prober { check, timeout });
    }
    Ok(probers)
}

/// What the status port answers for a probe: the application's status when it is an
/// error, 200 for any success (2xx, 3xx: the kubelet's rule), 503 when the application
/// cannot be reached in time.
pub fn verdict(outcome: &Result<StatusCode, String>) -> StatusCode {
    match outcome {
        Ok(code) if code.is_success() || code.is_redirection() => StatusCode::OK,
        Ok(code) if code.is_client_error() || code.is_server_error() => *code,
        // 1xx after the final response cannot happen; treat anything else as unhealthy.
        Ok(_) => StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Runs `prober` against `pod` (or its own `host`), bounded by its timeout. `Ok(status)` of
/// the application's answer (TCP: 200 once connected), `Err` when it could not be reached.
pub async fn run(
    prober: &Prober,
    pod: IpAddr,
    user_agent: Option<&str>,
) -> Result<StatusCode, String> {
    let attempt = async {
        match &prober.check {
            Check::Tcp { host, port } => {
                connect(host.as_deref(), pod, *port).await?;
                Ok(StatusCode::OK)
            }
            Check::Http(get) => http_get(get, pod, user_agent).await,
        }
    };
    tokio::time::timeout(prober.timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", prober.timeout)))
}

async fn connect(
    host: Option<&str>,
    pod: IpAddr,
    port: u16,
) -> Result<tokio::net::TcpStream, String> {
    let stream = match host {
        Some(host) => tokio::net::TcpStream::connect((host, port)).await,
        None => tokio::net::TcpStream::connect(SocketAddr::new(pod, port)).await,
    };
    stream.map_err(|e| format!("connect to port {port}: {e}"))
}

async fn http_get(
    get: &HttpGet,
    pod: IpAddr,
    user_agent: Option<&str>,
) -> Result<StatusCode, String> {
    let stream = connect(get.host.as_deref(), pod, get.port).await?;
    let mut sender = if get.https {
        let name = match &get.host {
            Some(host) => rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("host {host:?}: {e}"))?,
            None => rustls::pki_types::ServerName::IpAddress(pod.into()),
        };
        let tls = tokio_rustls::TlsConnector::from(insecure_tls())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        handshake(tls).await?
    } else {
        handshake(stream).await?
    };
    let authority = match &get.host {
        Some(host) => format!("{host}:{}", get.port),
        None => SocketAddr::new(pod, get.port).to_string(),
    };
    let mut request = http::Request::get(&get.path)
        .header(http::header::HOST, authority)
        .header(
            http::header::USER_AGENT,
            user_agent.unwrap_or("kube-probe/bowline"),
        );
    for (name, value) in &get.headers {
        let headers = request.headers_mut().expect("request under construction");
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("header {name:?}: {e}"))?;
        let value =
            http::HeaderValue::from_str(value).map_err(|e| format!("header {name}: {e}"))?;
        // A Host among the probe's headers replaces the default, as the kubelet does.
        headers.insert(name, value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    // Read (and drop) the body so the application sees a complete exchange.
    let _ = response.into_body().collect().await;
    Ok(status)
}

async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

/// TLS for HTTPS probes: like the kubelet, which does not verify the application's
/// certificate (it checks health, not identity), but with the handshake's signatures checked.
fn insecure_tls() -> std::sync::Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .dangerous()
                .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            std::sync::Arc::new(config)
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(path: &str, port: u16) -> Check {
        Check::Http(HttpGet {
            path: path.into(),
            port,
            host: None,
            https: false,
            headers: vec![],
        })
    }

    #[test]
    fn parses_istios_format() {
        let probers = parse(
            r#"{
              "/app-health/app/livez": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                  "httpHeaders": [{"name": "x", "value": "y"}]}, "timeoutSeconds": 3},
              "/app-health/app/readyz": {"httpGet": {"path": "ready", "port": "8081"}},
              "/app-health/db/startupz": {"tcpSocket": {"port": 5432}, "timeoutSeconds": 0},
              "/app-health/web/livez": {"httpGet": {"path": "/", "port": 8443, "scheme": "HTTPS", "host": "10.0.0.9"},
                  "periodSeconds": 10}
            }"#,
        )
        .unwrap();
        assert_eq!(
            probers["/app-health/app/livez"],
            Prober {
                check: Check::Http(HttpGet {
                    path: "/healthz".into(),
                    port: 8080,
                    host: None,
                    https: false,
                    headers: vec![("x".into(), "y".into())],
                }),
                timeout: Duration::from_secs(3),
            }
        );
        assert_eq!(
            probers["/app-health/app/readyz"].check,
            http("/ready", 8081)
        );
        assert_eq!(
            probers["/app-health/app/readyz"].timeout,
            Duration::from_secs(1)
        );
        assert_eq!(
            probers["/app-health/db/startupz"],
            Prober {
                check: Check::Tcp {
                    host: None,
                    port: 5432
                },
                timeout: Duration::from_secs(1),
            }
        );
        let Check::Http(web) = &probers["/app-health/web/livez"].check else {
            panic!()
        };
        assert!(web.https);
        assert_eq!(web.host.as_deref(), Some("10.0.0.9"));
        assert_eq!(parse("{}").unwrap(), Probers::new());
    }

    #[test]
    fn invalid_probers_say_what_is_wrong() {
        for (json, want) in [
            ("not json", "expected"),
            (r#"{"/app-health/app/livez": 3}"#, "invalid type"),
            (
                r#"{"/healthz": {"tcpSocket": {"port": 1}}}"#,
                "is not /app-health/",
            ),
            (
                r#"{"/app-health/app/alive": {"tcpSocket": {"port": 1}}}"#,
                "is not /app-health/",
            ),
            (
                r#"{"/app-health//livez": {"tcpSocket": {"port": 1}}}"#,
                "is not /app-health/",
            ),
            (
                r#"{"/app-health/app/livez": {}}"#,
                "neither httpGet nor tcpSocket",
            ),
            (
                r#"{"/app-health/app/livez": {"grpc": {"port": 1}}}"#,
                "grpc",
            ),
            (
                r#"{"/app-health/app/livez": {"httpGet": {"port": 1}, "tcpSocket": {"port": 1}}}"#,
                "both",
            ),
            (
                r#"{"/app-health/app/livez": {"httpGet": {"port": "http"}}}"#,
                "is a name",
            ),
            (
                r#"{"/app-health/app/livez": {"httpGet": {"port": 0}}}"#,
                "not 1-65535",
            ),
            (
                r#"{"/app-health/app/livez": {"tcpSocket": {"port": 70000}}}"#,
                "not 1-65535",
            ),
            (
                r#"{"/app-health/app/livez": {"httpGet": {"port": 1, "scheme": "FTP"}}}"#,
                "scheme",
            ),
            (
                r#"{"/app-health/app/livez": {"tcpSocket": {"port": 1}, "timeoutSeconds": -1}}"#,
                "negative",
            ),
            (
                r#"{"/app-health/app/livez": {"httpGet": {"path": "/"}}}"#,
                "port",
            ),
        ] {
            let error = parse(json).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("invalid BOWLINE_APP_PROBERS: ")
                    && error.0.contains(want),
                "{json}: {error}"
            );
        }
    }

    #[test]
    fn verdicts_follow_the_kubelets_rule() {
        for (outcome, want) in [
            (Ok(200), 200),
            (Ok(204), 200),
            (Ok(302), 200),
            (Ok(404), 404),
            (Ok(500), 500),
            (Ok(503), 503),
            (Err("refused".to_string()), 503),
        ] {
            let outcome = outcome.map(|c| StatusCode::from_u16(c).unwrap());
            assert_eq!(verdict(&outcome).as_u16(), want, "{outcome:?}");
        }
    }

    /// An HTTPS application with a self-signed certificate answering `status` to anything.
    async fn https_app(status: u16) -> u16 {
        let cert = rcgen::generate_simple_self_signed(vec!["app.local".into()]).unwrap();
        let chain = vec![cert.cert.der().clone()];
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buf = [0u8; 2048];
                    let _ = tls.read(&mut buf).await;
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_probes_do_not_verify_the_certificate_as_the_kubelet_does_not() {
        let pod: IpAddr = "127.0.0.1".parse().unwrap();
        for status in [200, 503] {
            let port = https_app(status).await;
            let prober = Prober {
                check: Check::Http(HttpGet {
                    path: "/healthz".into(),
                    port,
                    host: None,
                    https: true,
                    headers: vec![],
                }),
                timeout: Duration::from_secs(5),
            };
            assert_eq!(
                run(&prober, pod, None).await.map(|s| s.as_u16()),
                Ok(status)
            );
        }
        // Plain HTTP to a TLS port fails to read a response: unhealthy, not a hang.
        let port = https_app(200).await;
        let plain = Prober {
            check: http("/healthz", port),
            timeout: Duration::from_secs(1),
        };
        assert!(run(&plain, pod, None).await.is_err());
    }

    #[tokio::test]
    async fn probes_reach_the_application_or_say_why_not() {
        let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = app.local_addr().unwrap().port();
        let pod: IpAddr = "127.0.0.1".parse().unwrap();
        let tcp = Prober {
            check: Check::Tcp { host: None, port },
            timeout: Duration::from_secs(5),
        };
        assert_eq!(run(&tcp, pod, None).await, Ok(StatusCode::OK));
        drop(app);
        let error = run(&tcp, pod, None).await.unwrap_err();
        assert!(
            error.contains(&format!("connect to port {port}")),
            "{error}"
        );
    }
}
