//! Leader election over a `coordination.k8s.io` Lease, as client-go's leaderelection does:
//! the holder renews the lease; another replica takes it only once it has not been renewed
//! for its duration. Every write carries the resourceVersion it read, so two replicas that
//! race get one success and one 409.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use std::time::Duration;

/// One replica's claim on a lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    holder: String,
    duration: Duration,
}

impl Elector {
    /// `holder` names this replica (its pod name); `duration` is how long a lease not renewed
    /// keeps others out (client-go's default: 15 s).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        holder: &str,
        duration: Duration,
    ) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            holder: holder.to_string(),
            duration,
        }
    }

    /// How often a leader renews: a third of the duration, so two renewals can fail before
    /// another replica may take over.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Takes or renews the lease; true when this replica holds it afterwards.
    pub async fn try_lead(&self) -> Result<bool, kube::Error> {
        let now = chrono_now();
        let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.holder.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: acquired.or_else(|| Some(now.clone())),
            renew_time: Some(now.clone()),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec(0, None)),
                };
                conflict_is_false(self.api.create(&PostParams::default(), &lease).await)
            }
            Some(mut lease) => {
                let current = lease.spec.clone().unwrap_or_default();
                let ours = current.holder_identity.as_deref() == Some(self.holder.as_str());
                if !ours && !expired(&current, self.duration) {
                    return Ok(false);
                }
                let transitions = current.lease_transitions.unwrap_or(0) + i32::from(!ours);
                let acquired = if ours { current.acquire_time } else { None };
                lease.spec = Some(spec(transitions, acquired));
                conflict_is_false(
                    self.api
                        .replace(&self.name, &PostParams::default(), &lease)
                        .await,
                )
            }
        }
    }
}

/// A 409 (another replica wrote first) is a lost race, not an error.
fn conflict_is_false(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn expired(spec: &LeaseSpec, duration: Duration) -> bool {
    let Some(MicroTime(renewed)) = &spec.renew_time else {
        return true;
    };
    let held = spec
        .lease_duration_seconds
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .unwrap_or(duration);
    let age = jiff_age(renewed);
    age > held
}

fn chrono_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn jiff_age(then: &k8s_openapi::jiff::Timestamp) -> Duration {
    let now = k8s_openapi::jiff::Timestamp::now();
    let span = now.duration_since(*then);
    Duration::try_from(span).unwrap_or(Duration::ZERO)
}
