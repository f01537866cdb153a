//! Leader election over a Lease, against the stand-in API server with the real kube-rs
//! client: of two replicas one leads and the other waits; the leader renews; once it stops,
//! the other takes the lease after its duration, and not before.

use anyhow::{bail, Result};
use bowline_kube::lease::Elector;
use bowline_testkit::kube_api::ApiServer;
use bowline_testkit::wait_until;
use std::time::{Duration, Instant};

fn client(api: &ApiServer) -> kube::Client {
    let config = kube::Config::new(format!("http://{}", api.addr).parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_only_after_the_lease_expires() -> Result<()> {
    let api = ApiServer::start().await?;
    let duration = Duration::from_secs(2);
    let a = Elector::new(
        client(&api),
        "bowline-system",
        "bowline-status-leader",
        "bowline-a",
        duration,
    );
    let b = Elector::new(
        client(&api),
        "bowline-system",
        "bowline-status-leader",
        "bowline-b",
        duration,
    );

    assert!(a.try_lead().await?, "the first replica takes a free lease");
    assert!(!b.try_lead().await?, "the second waits while it is held");
    assert!(a.try_lead().await?, "the holder renews");
    let renewed = Instant::now();
    assert!(!b.try_lead().await?);
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "bowline-system",
            "bowline-status-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "bowline-a");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);

    // `a` stops renewing: `b` gets the lease once it has expired, never before.
    wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            if b.try_lead().await? {
                Ok(())
            } else {
                bail!("b does not lead yet")
            }
        },
    )
    .await?;
    assert!(
        renewed.elapsed() >= duration,
        "taken over after {:?}",
        renewed.elapsed()
    );
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "bowline-system",
            "bowline-status-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "bowline-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(!a.try_lead().await?, "the old leader now waits");
    Ok(())
}
