//! Bounded polling.

use anyhow::{anyhow, Result};
use std::future::Future;
use std::time::Duration;

/// Calls `f` every `poll_interval` until it returns `Ok`, and returns that value. Fails after
/// `timeout` with the last error `f` returned (each call is also cut off at the deadline), so
/// the message says what was still missing.
pub async fn wait_until<T, F, Fut>(
    timeout: Duration,
    poll_interval: Duration,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = anyhow!("the condition was never checked");
    loop {
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => last_error = e,
            Err(_) => break,
        }
        if tokio::time::Instant::now() + poll_interval >= deadline {
            break;
        }
        tokio::time::sleep(poll_interval).await;
    }
    Err(last_error.context(format!("condition not met within {timeout:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_success() {
        let mut calls = 0;
        let got = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    bail!("only {n} calls")
                }
                Ok(n)
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_last_error() {
        let err = wait_until(
            Duration::from_secs(1),
            Duration::from_millis(100),
            || async { bail!("listener missing") as Result<()> },
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("within 1s") && text.contains("listener missing"),
            "{text}"
        );
    }
}
