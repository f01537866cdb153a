//! The workload side: a key generated in memory, a CSR to the CA, and rotation before
//! expiry. What Istio's pilot-agent does for Envoy, built into the proxy.
//!
//! Rotation happens at about half the certificate's lifetime (between 45 % and 55 %,
//! chosen at random so that workloads started together do not all call the CA at once). A
//! failed renewal is retried with backoff while the current certificate is still valid;
//! the current certificate keeps serving until the new one is in place, so a rotation
//! never fails a request: new handshakes use the new certificate, existing connections keep
//! theirs.

use crate::api::{create_certificate, RequestError};
use crate::tls::Material;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How to reach the CA and who we are to it.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The CA (the control plane's gRPC address, over TLS in a mesh).
    pub ca: crate::api::CaEndpoint,
    /// The bearer token `bowline up` issued to this workload.
    pub token: String,
    /// Where the token is read from at each request instead, when set: on Kubernetes the
    /// kubelet rotates a projected service-account token in place (it lives 12 h, less than
    /// a certificate's first renewal), so a token read once would be stale by then.
    pub token_file: Option<std::path::PathBuf>,
    /// Lifetime to ask for; `None` = the CA's default.
    pub ttl: Option<Duration>,
}

/// A certificate the CA issued, with its key and the trust anchor.
#[derive(Clone)]
pub struct WorkloadCert {
    /// Leaf first, then intermediates (the root is not sent to peers).
    pub chain_pem: Vec<String>,
    pub key_pem: String,
    pub root_pem: String,
    /// The URI SAN the CA put in the leaf.
    pub identity: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// When we received it. `not_before` is back-dated for clock skew, so lifetimes are
    /// measured from here.
    pub issued_at: SystemTime,
}

impl std::fmt::Debug for WorkloadCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadCert")
            .field("identity", &self.identity)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("the CA's answer cannot be used: {0}")]
    BadAnswer(String),
}

/// Generates a key, sends a CSR and returns what the CA issued.
pub async fn fetch(config: &AgentConfig) -> Result<WorkloadCert, AgentError> {
    let key = rcgen::KeyPair::generate().map_err(|e| AgentError::BadAnswer(e.to_string()))?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| AgentError::BadAnswer(e.to_string()))?;
    let issued_at = SystemTime::now();
    let token = match &config.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .map_err(|e| AgentError::BadAnswer(format!("token file {}: {e}", path.display())))?,
        None => config.token.clone(),
    };
    let mut chain = create_certificate(&config.ca, &token, csr, config.ttl).await?;
    let root_pem = if chain.len() > 1 {
        chain.pop().expect("non-empty")
    } else {
        chain[0].clone()
    };
    let (identity, not_before, not_after) =
        crate::tls::leaf_facts(&chain[0]).map_err(AgentError::BadAnswer)?;
    Ok(WorkloadCert {
        chain_pem: chain,
        key_pem: key.serialize_pem(),
        root_pem,
        identity,
        not_before,
        not_after,
        issued_at,
    })
}

/// When to renew `cert`: `issued_at + remaining lifetime × (0.5 + jitter)`, `jitter` in
/// [-0.05, 0.05] (clamped).
pub fn renewal_time(cert: &WorkloadCert, jitter: f64) -> SystemTime {
    let lifetime = cert
        .not_after
        .duration_since(cert.issued_at)
        .unwrap_or_default();
    cert.issued_at + lifetime.mul_f64(0.5 + jitter.clamp(-0.05, 0.05))
}

/// A workload identity that stays current: the first certificate is fetched by
/// [`Agent::start`], later ones by the task it spawns.
pub struct Agent {
    current: watch::Receiver<Option<Arc<Material>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    /// Fetches the first certificate (retrying for up to `first_deadline`), then keeps it
    /// rotated in the background until the agent is dropped.
    pub async fn start(config: AgentConfig, first_deadline: Duration) -> Result<Agent, AgentError> {
        let deadline = tokio::time::Instant::now() + first_deadline;
        let mut backoff = Duration::from_millis(100);
        let first = loop {
            match fetch(&config).await {
                Ok(cert) => break cert,
                // The CA said no: asking again will not change its mind.
                Err(e @ AgentError::Request(RequestError::Refused(_))) => return Err(e),
                Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                    tracing::warn!(error = %e, "no workload certificate yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        };
        let material = Material::new(first).map_err(AgentError::BadAnswer)?;
        tracing::info!(identity = %material.cert.identity, "workload certificate issued");
        let (tx, current) = watch::channel(Some(Arc::new(material)));
        let task = tokio::spawn(rotate(config, tx));
        Ok(Agent { current, task })
    }

    /// The live identity, for TLS configurations.
    pub fn handle(&self) -> crate::tls::IdentityHandle {
        crate::tls::IdentityHandle::new(self.current.clone())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn rotate(config: AgentConfig, tx: watch::Sender<Option<Arc<Material>>>) {
    loop {
        let Some(current) = tx.borrow().clone() else {
            return;
        };
        let jitter = rand::random::<f64>() * 0.1 - 0.05;
        let at = renewal_time(&current.cert, jitter);
        let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait).await;
        let mut backoff = Duration::from_millis(200);
        loop {
            match fetch(&config)
                .await
                .and_then(|c| Material::new(c).map_err(AgentError::BadAnswer))
            {
                Ok(material) => {
                    tracing::info!(
                        identity = %material.cert.identity,
                        "workload certificate rotated"
                    );
                    tx.send_replace(Some(Arc::new(material)));
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "certificate renewal failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
