//! TCP proxy: copy bytes both ways, pass half-closes through (a FIN from one side shuts down
//! writing on the other, reading continues), and close both after an idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes copied (downstream → upstream, upstream → downstream).
pub type Copied = (u64, u64);

/// Copies until both directions saw EOF, or nothing moved for `idle` (Envoy's default for
/// tcp_proxy is 1 h; `None` disables it).
pub async fn proxy<D, U>(downstream: D, upstream: U, idle: Option<Duration>) -> io::Result<Copied>
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Arc::new(AtomicU64::new(0));
    let mut down = Active::new(downstream, activity.clone());
    let mut up = Active::new(upstream, activity.clone());
    let copy = tokio::io::copy_bidirectional(&mut down, &mut up);
    match idle {
        None => copy.await,
        Some(idle) => tokio::select! {
            copied = copy => copied,
            () = idle_expired(&activity, idle) => Err(io::Error::new(io::ErrorKind::TimedOut, "tcp proxy idle timeout")),
        },
    }
}

/// Resolves once a whole `idle` period passed without a read on either side. Checks once per
/// period instead of resetting a timer on every read.
async fn idle_expired(activity: &AtomicU64, idle: Duration) {
    let mut seen = activity.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(idle).await;
        let now = activity.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// A stream that counts its successful reads into a shared activity counter.
struct Active<S> {
    inner: S,
    activity: Arc<AtomicU64>,
}

impl<S> Active<S> {
    fn new(inner: S, activity: Arc<AtomicU64>) -> Self {
        Active { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Active<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Active<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn copies_both_ways_and_passes_half_close() {
        let (client, proxy_down) = tokio::io::duplex(1024);
        let (proxy_up, server) = tokio::io::duplex(1024);
        let task = tokio::spawn(proxy(proxy_down, proxy_up, None));
        let (mut client_r, mut client_w) = tokio::io::split(client);
        let (mut server_r, mut server_w) = tokio::io::split(server);
        client_w.write_all(b"ping").await.unwrap();
        client_w.shutdown().await.unwrap();
        let mut got = Vec::new();
        server_r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping", "the half-close reached the server");
        server_w.write_all(b"pong").await.unwrap();
        server_w.shutdown().await.unwrap();
        let mut got = Vec::new();
        client_r.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got, b"pong",
            "the client still reads after its own half-close"
        );
        assert_eq!(task.await.unwrap().unwrap(), (4, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed() {
        let (_client, proxy_down) = tokio::io::duplex(1024);
        let (proxy_up, _server) = tokio::io::duplex(1024);
        let err = proxy(proxy_down, proxy_up, Some(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
