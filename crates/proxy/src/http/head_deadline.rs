//! Deadlines on an HTTP/1 connection between requests, where hyper has none that answers:
//! a client that started a request but has not finished its headers in time gets Envoy's
//! `408 Request Timeout` and the connection closes; a connection idle with no request for
//! the idle timeout is closed quietly.
//!
//! - `request_headers_timeout` (off by default) bounds the time from a request's first byte
//!   to the end of its headers;
//! - `stream_idle_timeout` (5 minutes by default) bounds the silence while headers arrive:
//!   each byte restarts it, as each byte restarts Envoy's stream idle timer;
//! - the connection idle timeout (1 hour by default) bounds a keep-alive connection with no
//!   request in progress.
//!
//! The wrapper sits between hyper and the stream (TLS already terminated). It knows a request
//! is being served from [`Served`], a guard the connection's service holds from the moment
//! hyper hands it a request head until hyper has written the whole response: bytes read
//! while nothing is being served belong to the next head. HTTP/2 connections (recognised by
//! their preface) and upgraded ones (WebSocket tunnels) are left alone: their streams carry
//! their own deadlines.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::head_scan::{HeadFacts, HeadScan};

/// The deadlines; `None` disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    pub headers: Option<Duration>,
    pub idle_while_headers: Option<Duration>,
    pub idle_connection: Option<Duration>,
}

/// What a connection's service and its I/O share.
#[derive(Debug, Default)]
pub struct Activity {
    served: AtomicUsize,
    upgraded: AtomicBool,
    /// What the scan saw in the head being received (the last one handed to the service).
    facts: AtomicU8,
}

/// Held while one request is being served (see the module doc).
#[derive(Debug)]
pub struct Served(Arc<Activity>);

impl Activity {
    pub fn serve(self: &Arc<Self>) -> Served {
        self.served.fetch_add(1, Ordering::Relaxed);
        Served(self.clone())
    }

    /// The connection became a tunnel (a `101 Switching Protocols` went out).
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// What the raw bytes of the request head just handed over said (see [`HeadScan`]).
    pub fn take_facts(&self) -> HeadFacts {
        HeadFacts::from_bits(self.facts.swap(0, Ordering::Relaxed))
    }

    fn busy(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.0.served.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Envoy's answer when a request's headers did not arrive in time.
const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 22\r\n\
content-type: text/plain\r\nconnection: close\r\n\r\nrequest header timeout";

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

pub struct HeadDeadline<S> {
    inner: S,
    limits: HeadLimits,
    activity: Arc<Activity>,
    /// When the head being received started (its first byte), if one is.
    head_started: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    /// What the timer is for.
    waiting: Waiting,
    /// How much of the 408 is written, once a head deadline passed.
    answering: Option<usize>,
    /// HTTP/2 or an upgraded tunnel: pass everything through.
    bypass: bool,
    first_read: bool,
    /// The raw facts of the head being received.
    scan: HeadScan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Nothing,
    Head,
    Idle,
}

impl<S> HeadDeadline<S> {
    pub fn new(inner: S, limits: HeadLimits, activity: Arc<Activity>) -> HeadDeadline<S> {
        HeadDeadline {
            inner,
            limits,
            activity,
            head_started: None,
            timer: None,
            waiting: Waiting::Nothing,
            answering: None,
            bypass: false,
            first_read: true,
            scan: HeadScan::default(),
        }
    }

    fn arm(&mut self, at: Option<Instant>, waiting: Waiting) {
        match at {
            Some(at) => {
                match &mut self.timer {
                    Some(timer) => timer.as_mut().reset(at),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                }
                self.waiting = waiting;
            }
            None => self.disarm(),
        }
    }

    fn disarm(&mut self) {
        self.timer = None;
        self.waiting = Waiting::Nothing;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> HeadDeadline<S> {
    /// Writes what is left of the 408, then ends the read side with an error so hyper drops
    /// the connection.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(written) = self.answering.filter(|w| *w < REQUEST_TIMEOUT.len()) {
            match Pin::new(&mut self.inner).poll_write(cx, &REQUEST_TIMEOUT[written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(n)) => self.answering = Some(written + n),
                Poll::Pending => return Poll::Pending,
            }
        }
        if Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request headers not received in time",
        )))
    }

    /// Bytes arrived while nothing was being served: a head is under way.
    fn head_bytes(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        if self.head_started.is_none() {
            self.scan = HeadScan::default();
        }
        self.scan.feed(bytes);
        // Read by the service when hyper hands it this head (no lock on the request path).
        self.activity
            .facts
            .store(self.scan.facts().bits(), Ordering::Relaxed);
        let started = *self.head_started.get_or_insert(now);
        let total = self.limits.headers.map(|t| started + t);
        let idle = self.limits.idle_while_headers.map(|t| now + t);
        let at = total.into_iter().chain(idle).min();
        self.arm(at, Waiting::Head);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.bypass || this.activity.upgraded.load(Ordering::Relaxed) {
            this.bypass = true;
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.answering.is_some() {
            return this.poll_answer(cx);
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let busy = this.activity.busy();
        match polled {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if this.first_read && !new.is_empty() {
                    this.first_read = false;
                    let n = new.len().min(H2_PREFACE.len());
                    if new[..n] == H2_PREFACE[..n] {
                        this.bypass = true;
                        this.disarm();
                        return Poll::Ready(Ok(()));
                    }
                }
                if busy {
                    this.head_started = None;
                    this.disarm();
                } else if !new.is_empty() {
                    this.head_bytes(new);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if busy {
                    this.head_started = None;
                    this.disarm();
                    return Poll::Pending;
                }
                if this.head_started.is_none() && this.waiting != Waiting::Idle {
                    let at = this.limits.idle_connection.map(|t| Instant::now() + t);
                    this.arm(at, Waiting::Idle);
                }
                let expired = this
                    .timer
                    .as_mut()
                    .is_some_and(|t| t.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                match this.waiting {
                    Waiting::Head => {
                        this.answering = Some(0);
                        this.poll_answer(cx)
                    }
                    // An idle connection ends quietly: hyper sees the client leave.
                    Waiting::Idle => Poll::Ready(Ok(())),
                    Waiting::Nothing => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: HeadLimits = HeadLimits {
        headers: Some(Duration::from_secs(10)),
        idle_while_headers: Some(Duration::from_secs(300)),
        idle_connection: Some(Duration::from_secs(3600)),
    };

    /// A server side wrapped in the deadline, and the client's end.
    fn pair(
        limits: HeadLimits,
    ) -> (
        HeadDeadline<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
    ) {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let activity = Arc::new(Activity::default());
        (HeadDeadline::new(server, limits, activity), client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_head_gets_408_when_the_headers_deadline_passes() {
        let (mut server, mut client) = pair(LIMITS);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(n, 25);
        let started = Instant::now();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let mut answer = vec![0u8; REQUEST_TIMEOUT.len()];
        client.read_exact(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn each_byte_restarts_the_idle_deadline_but_not_the_headers_one() {
        let limits = HeadLimits {
            headers: None,
            idle_while_headers: Some(Duration::from_secs(5)),
            idle_connection: None,
        };
        let (mut server, mut client) = pair(limits);
        let mut buf = [0u8; 1024];
        let started = Instant::now();
        for _ in 0..3 {
            client.write_all(b"G").await.unwrap();
            assert!(server.read(&mut buf).await.unwrap() > 0);
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        // 12 s after the first byte, still alive: each byte restarted the 5 s silence.
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(13));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_fires_while_a_request_is_served() {
        let (mut server, mut client) = pair(LIMITS);
        let mut buf = [0u8; 1024];
        client.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
        assert!(server.read(&mut buf).await.unwrap() > 0);
        let served = server.activity.serve();
        // A body that trickles in slower than any head deadline.
        let started = Instant::now();
        let read = tokio::time::timeout(Duration::from_secs(600), server.read(&mut buf)).await;
        assert!(read.is_err(), "no deadline while served");
        assert_eq!(started.elapsed(), Duration::from_secs(600));
        drop(served);
        // Between requests: the connection idle timeout, closing quietly.
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(n, 0);
        assert_eq!(started.elapsed(), Duration::from_secs(600 + 3600));
    }

    #[tokio::test]
    async fn a_fragment_in_the_target_is_noticed() {
        let (mut server, mut client) = pair(LIMITS);
        let mut buf = [0u8; 1024];
        client.write_all(b"GET /a#b HT").await.unwrap();
        assert!(server.read(&mut buf).await.unwrap() > 0);
        assert!(server.activity.take_facts().fragment);
        assert!(!server.activity.take_facts().fragment, "taken once");
        let (mut server, mut client) = pair(LIMITS);
        client
            .write_all(b"GET /a?b HTTP/1.1\r\nx-h: #\r\n")
            .await
            .unwrap();
        assert!(server.read(&mut buf).await.unwrap() > 0);
        assert!(
            !server.activity.take_facts().fragment,
            "a # in a header is not in the target"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_are_left_alone() {
        let (mut server, mut client) = pair(LIMITS);
        let mut buf = [0u8; 1024];
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        assert!(server.read(&mut buf).await.unwrap() > 0);
        let read = tokio::time::timeout(Duration::from_secs(7200), server.read(&mut buf)).await;
        assert!(read.is_err(), "no deadline on HTTP/2");
    }
}
