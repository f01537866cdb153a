//! Workload identity from Kubernetes: a pod's projected service-account token, checked
//! with the API server's TokenReview for bowline's audience, stands for that service
//! account's SPIFFE id — what istiod's CA does with `istio-ca` tokens.

use bowline_identity::{SpiffeId, TokenReviewer};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};

/// The audience injection asks the kubelet to bind tokens to (see docs/kubernetes-sidecar.md).
pub const AUDIENCE: &str = "bowline-ca";

/// Checks tokens with TokenReview.
pub struct KubeTokenReviewer {
    client: Client,
    trust_domain: String,
    audience: String,
}

impl KubeTokenReviewer {
    pub fn new(client: Client, trust_domain: &str) -> KubeTokenReviewer {
        KubeTokenReviewer {
            client,
            trust_domain: trust_domain.to_string(),
            audience: AUDIENCE.to_string(),
        }
    }
}

/// The service account a TokenReview's username names
/// (`system:serviceaccount:<namespace>:<name>`); users and nodes are not workloads.
pub fn service_account(username: &str) -> Result<(&str, &str), String> {
    let rest = username
        .strip_prefix("system:serviceaccount:")
        .ok_or_else(|| format!("{username:?} is not a service account"))?;
    match rest.split_once(':') {
        Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains(':') => Ok((ns, sa)),
        _ => Err(format!("{username:?} is not a service account")),
    }
}

impl TokenReviewer for KubeTokenReviewer {
    fn review(
        &self,
        token: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SpiffeId, String>> + Send>> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let (audience, trust_domain) = (self.audience.clone(), self.trust_domain.clone());
        Box::pin(async move {
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token),
                    audiences: Some(vec![audience.clone()]),
                },
                ..Default::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| format!("TokenReview failed: {e}"))?;
            let status = answer.status.unwrap_or_default();
            if status.authenticated != Some(true) {
                return Err(status.error.unwrap_or_else(|| "not authenticated".into()));
            }
            // A server that ignores audiences would vouch for a token meant for someone else.
            if !status.audiences.unwrap_or_default().contains(&audience) {
                return Err(format!("the token is not for audience {audience}"));
            }
            let username = status.user.and_then(|u| u.username).unwrap_or_default();
            let (namespace, account) = service_account(&username)?;
            Ok(SpiffeId::new(&trust_domain, namespace, account))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_service_accounts_are_workloads() {
        assert_eq!(
            service_account("system:serviceaccount:default:bookinfo-reviews"),
            Ok(("default", "bookinfo-reviews"))
        );
        for bad in [
            "admin",
            "system:node:kind-worker",
            "system:serviceaccount:default",
            "system:serviceaccount::x",
            "system:serviceaccount:a:b:c",
        ] {
            assert!(service_account(bad).is_err(), "{bad}");
        }
    }
}
