//! SPIFFE identities in Istio's form: `spiffe://<trust-domain>/ns/<namespace>/sa/<account>`.

use std::fmt;

/// A workload identity. The trust domain is the mesh's (`cluster.local` by default).
/// Istio's default trust domain (MeshConfig `trustDomain`).
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

/// Why a URI is not an Istio SPIFFE id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{uri:?} is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>: {reason}")]
pub struct InvalidSpiffeId {
    pub uri: String,
    pub reason: &'static str,
}

impl SpiffeId {
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> SpiffeId {
        SpiffeId {
            trust_domain: trust_domain.to_string(),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        }
    }

    pub fn parse(uri: &str) -> Result<SpiffeId, InvalidSpiffeId> {
        let bad = |reason| InvalidSpiffeId {
            uri: uri.to_string(),
            reason,
        };
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or(bad("no spiffe:// scheme"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [td, "ns", ns, "sa", sa] = parts[..] else {
            return Err(bad(
                "expected exactly <trust-domain>/ns/<namespace>/sa/<account>",
            ));
        };
        if [td, ns, sa].iter().any(|p| p.is_empty()) {
            return Err(bad("an empty part"));
        }
        if !td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(bad("the trust domain has characters SPIFFE does not allow"));
        }
        Ok(SpiffeId::new(td, ns, sa))
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_forms() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bookinfo-reviews").unwrap();
        assert_eq!(
            id,
            SpiffeId::new("cluster.local", "default", "bookinfo-reviews")
        );
        assert_eq!(
            id.to_string(),
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        );
        for bad in [
            "https://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://Cluster.Local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a/sa/b/extra",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
    }
}
