//! What the leader publishes into the cluster besides status, as istiod's namespace and
//! webhook controllers do: the mesh root in a ConfigMap of every namespace (injected pods
//! mount it to verify the control plane), and the root as the `caBundle` of the injection
//! webhook (the API server verifies the webhook's certificate with it).

use crate::source::Namespaces;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::{BTreeMap, HashSet};

/// The ConfigMap injected pods mount (docs/kubernetes-sidecar.md).
pub const ROOT_CONFIG_MAP: &str = "bowline-ca-root-cert";
/// Its key.
pub const ROOT_KEY: &str = "root-cert.pem";

/// What to publish.
#[derive(Clone)]
pub struct Publish {
    pub root_pem: String,
    /// The MutatingWebhookConfiguration whose webhooks get the root as `caBundle`.
    pub webhook_configuration: Option<String>,
    pub namespaces: Namespaces,
}

/// Remembers what is already published, so a leader's periodic pass costs a request only
/// for what is new (a namespace created since, a webhook configuration replaced).
#[derive(Default)]
pub struct Published {
    namespaces: HashSet<String>,
    webhook: bool,
}

impl Publish {
    /// One pass; errors are logged and retried at the next pass.
    pub async fn publish(&self, client: &Client, done: &mut Published) {
        for namespace in self.namespaces.names() {
            if done.namespaces.contains(&namespace) {
                continue;
            }
            match self.root_config_map(client, &namespace).await {
                Ok(()) => {
                    done.namespaces.insert(namespace);
                }
                Err(e) => tracing::warn!("kubernetes: {ROOT_CONFIG_MAP} in {namespace}: {e}"),
            }
        }
        if let (Some(name), false) = (&self.webhook_configuration, done.webhook) {
            match self.ca_bundle(client, name).await {
                Ok(()) => done.webhook = true,
                Err(e) => tracing::warn!("kubernetes: caBundle of {name}: {e}"),
            }
        }
    }

    async fn root_config_map(&self, client: &Client, namespace: &str) -> Result<(), kube::Error> {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let data = BTreeMap::from([(ROOT_KEY.to_string(), self.root_pem.clone())]);
        match api.get_opt(ROOT_CONFIG_MAP).await? {
            Some(cm) if cm.data.as_ref() == Some(&data) => Ok(()),
            Some(mut cm) => {
                cm.data = Some(data);
                api.replace(ROOT_CONFIG_MAP, &PostParams::default(), &cm)
                    .await
                    .map(|_| ())
            }
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(ROOT_CONFIG_MAP.into()),
                        namespace: Some(namespace.into()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/managed-by".to_string(),
                            "bowline".to_string(),
                        )])),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => Ok(()),
                    // Another replica, or our last leader, made it: checked at the next pass.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn ca_bundle(&self, client: &Client, name: &str) -> Result<(), kube::Error> {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let mut config = api.get(name).await?;
        let bundle = ByteString(self.root_pem.as_bytes().to_vec());
        let mut changed = false;
        for webhook in config.webhooks.iter_mut().flatten() {
            if webhook.client_config.ca_bundle.as_ref() != Some(&bundle) {
                webhook.client_config.ca_bundle = Some(bundle.clone());
                changed = true;
            }
        }
        if changed {
            api.replace(name, &PostParams::default(), &config).await?;
        }
        Ok(())
    }
}
