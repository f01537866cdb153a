//! The mesh CA (Istio's Citadel): a root generated on first start and persisted, or a
//! user-provided CA in Istio's plug-in layout, signing workload certificates from CSRs.
//!
//! The CA decides what a certificate says: a CSR contributes only its public key. Names
//! (exactly one URI SAN, the caller's SPIFFE id, and no subject), validity (now, minus a
//! minute for clock skew, to now + TTL), key usages and CA-ness are set here, whatever the
//! CSR asked for — a workload must not be able to mint itself another identity or a CA.
//!
//! Files in the CA directory:
//! - plug-in (all four present, Istio's `cacerts` layout): `ca-cert.pem` and `ca-key.pem`
//!   sign, `cert-chain.pem` is the chain from `ca-cert.pem` up to the root, `root-cert.pem`
//!   is the trust anchor;
//! - otherwise a self-signed root: `ca-cert.pem`, `ca-key.pem` (mode 0600) and
//!   `root-cert.pem`, created on first start and reused after.

use crate::spiffe::SpiffeId;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// Istio's default workload certificate lifetime.
pub const DEFAULT_CERT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a generated root (Istio's self-signed root: 10 years).
const ROOT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Back-dating of `notBefore`, so a peer whose clock is a little behind accepts the cert.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Where the signing material came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaSource {
    /// Generated now and written to the directory.
    Generated,
    /// A root this CA generated on an earlier start.
    Persisted,
    /// The user's CA in Istio's plug-in layout.
    PluggedIn,
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The I/O error is part of the message, not a separate source: callers that print the
    /// cause chain would otherwise say it twice.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("the CSR cannot be read: {0}")]
    BadCsr(String),
    #[error("a certificate TTL must be at least one second")]
    BadTtl,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A CA ready to sign. Cheap to share behind an `Arc`.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// PEM certificates from the signing certificate up to and including the root: what
    /// follows the leaf in an issued chain.
    chain: Vec<String>,
    root: String,
    pub source: CaSource,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Uses the plug-in CA in `dir` if there is one, else the root generated earlier, else
    /// generates a root (and creates `dir`).
    pub fn load_or_create(dir: &Path) -> Result<Ca, CaError> {
        let file = |name: &str| dir.join(name);
        let plug_in = [
            "ca-cert.pem",
            "ca-key.pem",
            "root-cert.pem",
            "cert-chain.pem",
        ];
        if plug_in.iter().all(|f| file(f).is_file()) {
            return Ca::from_files(dir, CaSource::PluggedIn);
        }
        if file("ca-cert.pem").is_file() && file("ca-key.pem").is_file() {
            return Ca::from_files(dir, CaSource::Persisted);
        }
        Ca::generate(dir)
    }

    fn from_files(dir: &Path, source: CaSource) -> Result<Ca, CaError> {
        let read = |name: &str| -> Result<String, CaError> {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|error| CaError::Io { path, error })
        };
        let bad = |name: &str, e: rcgen::Error| CaError::BadFile {
            path: dir.join(name),
            message: e.to_string(),
        };
        let key = KeyPair::from_pem(&read("ca-key.pem")?).map_err(|e| bad("ca-key.pem", e))?;
        let cert = read("ca-cert.pem")?;
        let issuer = Issuer::from_ca_cert_pem(&cert, key).map_err(|e| bad("ca-cert.pem", e))?;
        let (chain, root) = match source {
            CaSource::PluggedIn => {
                let root = read("root-cert.pem")?;
                let mut chain = split_pem(&read("cert-chain.pem")?);
                // Istio's cert-chain.pem may or may not start with ca-cert.pem itself.
                if chain.first().map(|c| c.trim()) != Some(cert.trim()) {
                    chain.insert(0, cert.clone());
                }
                if chain.last().map(|c| c.trim()) != Some(root.trim()) {
                    chain.push(root.clone());
                }
                (chain, root)
            }
            _ => (vec![cert.clone()], cert),
        };
        Ok(Ca {
            issuer,
            chain,
            root,
            source,
        })
    }

    fn generate(dir: &Path) -> Result<Ca, CaError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| CaError::Io { path, error }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let signing = |e: rcgen::Error| CaError::Signing(e.to_string());
        let key = KeyPair::generate().map_err(signing)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "bowline");
        name.push(DnType::CommonName, "bowline root CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + ROOT_TTL;
        let cert = params.self_signed(&key).map_err(signing)?.pem();

        let key_path = dir.join("ca-key.pem");
        write_file(&key_path, &key.serialize_pem(), 0o600).map_err(io(&key_path))?;
        for name in ["ca-cert.pem", "root-cert.pem"] {
            let path = dir.join(name);
            write_file(&path, &cert, 0o644).map_err(io(&path))?;
        }
        Ok(Ca {
            issuer: Issuer::new(params, key),
            chain: vec![cert.clone()],
            root: cert,
            source: CaSource::Generated,
        })
    }

    /// The trust anchor proxies verify peers against.
    pub fn root_pem(&self) -> &str {
        &self.root
    }

    /// Signs `csr_pem` for `id`, valid for `ttl` from now. Returns the chain as PEM: the
    /// leaf first, then the CA's chain up to the root (Istio's `cert_chain` order).
    pub fn sign(
        &self,
        csr_pem: &str,
        id: &SpiffeId,
        ttl: Duration,
    ) -> Result<Vec<String>, CaError> {
        if ttl < Duration::from_secs(1) {
            return Err(CaError::BadTtl);
        }
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::BadCsr(e.to_string()))?;
        csr.params = leaf_params(id, ttl)?;
        let leaf = csr
            .signed_by(&self.issuer)
            .map_err(|e| CaError::Signing(e.to_string()))?
            .pem();
        let mut chain = vec![leaf];
        chain.extend(self.chain.iter().cloned());
        Ok(chain)
    }
}

impl Ca {
    /// A certificate and key for a server of the mesh itself (the control plane): the
    /// SPIFFE id `id` and the DNS names `dns` (what clients check, as they dial a name), valid
    /// for `ttl`. The key is generated here and never leaves the process.
    pub fn issue_server(
        &self,
        id: &SpiffeId,
        dns: &[&str],
        ttl: Duration,
    ) -> Result<(Vec<String>, String), CaError> {
        if ttl < Duration::from_secs(1) {
            return Err(CaError::BadTtl);
        }
        let key = KeyPair::generate().map_err(|e| CaError::Signing(e.to_string()))?;
        let mut params = leaf_params(id, ttl)?;
        for name in dns {
            let name = (*name)
                .to_string()
                .try_into()
                .map_err(|e: rcgen::Error| CaError::Signing(e.to_string()))?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        let leaf = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CaError::Signing(e.to_string()))?
            .pem();
        let mut chain = vec![leaf];
        chain.extend(self.chain.iter().cloned());
        Ok((chain, key.serialize_pem()))
    }
}

/// Everything the CA puts in a workload certificate, decided here and nowhere else.
fn leaf_params(id: &SpiffeId, ttl: Duration) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let uri = id
        .to_string()
        .try_into()
        .map_err(|e: rcgen::Error| CaError::Signing(e.to_string()))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + ttl;
    Ok(params)
}

/// Creates or replaces `path` with `mode` (set explicitly too: the umask may have narrowed
/// it, and an existing file keeps its old mode on open).
fn write_file(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(text.as_bytes())
}

/// The PEM blocks of a file, each with its armour.
fn split_pem(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}
