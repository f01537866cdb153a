//! TCP proxy: copy bytes both ways, pass half-closes through (a FIN from one side shuts down
//! writing on the other, reading continues), and close both after an idle timeout, or when
//! told to stop.

pub mod serve;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes copied (downstream → upstream, upstream → downstream).
pub type Copied = (u64, u64);

/// How long [`proxy_until`] waits for its shutdowns to be written (a TLS `close_notify`
/// can wait on a full send buffer) before it drops both sides anyway.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// How [`proxy_until`] ended.
#[derive(Debug)]
pub enum Ended<T> {
    /// Copying ended by itself: both directions saw EOF, an error, or the idle timeout.
    Copied(io::Result<Copied>),
    /// The stop signal came first, with this value; both sides were shut down.
    Stopped(T),
}

/// Copies until both directions saw EOF, or nothing moved for `idle` (Envoy's default for
/// tcp_proxy is 1 h; `None` disables it).
pub async fn proxy<D, U>(downstream: D, upstream: U, idle: Option<Duration>) -> io::Result<Copied>
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let never = std::future::pending::<Infallible>();
    match proxy_until(downstream, upstream, idle, never).await {
        Ended::Copied(copied) => copied,
        Ended::Stopped(never) => match never {},
    }
}

/// [`proxy`] until `stop` resolves: then both sides are shut down (a FIN, or TLS
/// `close_notify`, each way, waiting at most [`SHUTDOWN_WAIT`]) and dropped, which closes
/// them.
pub async fn proxy_until<D, U, F>(
    downstream: D,
    upstream: U,
    idle: Option<Duration>,
    stop: F,
) -> Ended<F::Output>
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
    F: Future,
{
    proxy_counted(downstream, upstream, idle, stop, &Counts::default()).await
}

/// Bytes read from each side so far, readable while the copy runs and however it ends
/// (access logs and metrics report them).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub from_downstream: Arc<AtomicU64>,
    pub from_upstream: Arc<AtomicU64>,
}

/// [`proxy_until`], counting the bytes read from each side into `counts`.
pub async fn proxy_counted<D, U, F>(
    downstream: D,
    upstream: U,
    idle: Option<Duration>,
    stop: F,
    counts: &Counts,
) -> Ended<F::Output>
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
    F: Future,
{
    let activity = Arc::new(AtomicU64::new(0));
    let mut down = Active::new(downstream, activity.clone(), counts.from_downstream.clone());
    let mut up = Active::new(upstream, activity.clone(), counts.from_upstream.clone());
    let stopped = {
        let copy = async {
            let copy = tokio::io::copy_bidirectional(&mut down, &mut up);
            match idle {
                None => copy.await,
                Some(idle) => tokio::select! {
                    copied = copy => copied,
                    () = idle_expired(&activity, idle) => Err(io::Error::new(io::ErrorKind::TimedOut, "tcp proxy idle timeout")),
                },
            }
        };
        tokio::select! {
            copied = copy => return Ended::Copied(copied),
            stopped = stop => stopped,
        }
    };
    let shutdown = async { tokio::join!(down.inner.shutdown(), up.inner.shutdown()) };
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, shutdown).await;
    Ended::Stopped(stopped)
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

/// A stream that counts its successful reads into a shared activity counter, and the bytes
/// read into its own.
struct Active<S> {
    inner: S,
    activity: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl<S> Active<S> {
    fn new(inner: S, activity: Arc<AtomicU64>, bytes: Arc<AtomicU64>) -> Self {
        Active {
            inner,
            activity,
            bytes,
        }
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
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(read as u64, Ordering::Relaxed);
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

    #[tokio::test]
    async fn a_stop_shuts_both_sides_down_and_says_why() {
        let (client, proxy_down) = tokio::io::duplex(1024);
        let (proxy_up, server) = tokio::io::duplex(1024);
        let (stop, stopped) = tokio::sync::oneshot::channel::<&str>();
        let stopped = async { stopped.await.unwrap() };
        let task = tokio::spawn(proxy_until(proxy_down, proxy_up, None, stopped));
        let (mut client_r, mut client_w) = tokio::io::split(client);
        let (mut server_r, mut server_w) = tokio::io::split(server);
        client_w.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server_r.read_exact(&mut buf).await.unwrap();
        server_w.write_all(b"pong").await.unwrap();
        client_r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong", "copies until stopped");
        stop.send("cluster removed").unwrap();
        match task.await.unwrap() {
            Ended::Stopped(why) => assert_eq!(why, "cluster removed"),
            Ended::Copied(copied) => panic!("ended by itself: {copied:?}"),
        }
        let mut rest = Vec::new();
        client_r.read_to_end(&mut rest).await.unwrap();
        server_r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "both sides saw EOF");
    }
}
