//! The upstreams behind the proxy, each on 127.0.0.1:0: a TCP server that answers only after
//! the client's half-close, a raw WebSocket-style server, a real gRPC server (bowline's ADS
//! server) and a `bowline echo` process. In-process servers stop when their guard drops
//! (their task and every connection task are aborted); the echo process is stopped by PID.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bowline_testkit::Proc;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds_server::{Generator, Previous, Resources, ServerOptions, XdsServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Bound on anything an upstream is expected to report.
const REPORT: Duration = Duration::from_secs(10);
/// Largest request head the raw servers and clients accept.
const MAX_HEAD: usize = 16 * 1024;

/// Aborts its task on drop.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts on a fresh 127.0.0.1:0 listener and runs `serve` per connection; connection tasks
/// live in a [`JoinSet`] owned by the accept task, so aborting it aborts them all.
async fn spawn_server<F, Fut>(serve: F) -> Result<(SocketAddr, Task)>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(serve(stream));
            // Reap finished connections so the set does not grow with the test.
            while connections.try_join_next().is_some() {}
        }
    });
    Ok((addr, Task(task)))
}

/// A TCP server that reads each connection to EOF, reports what it got, then answers
/// `reversed:` and the bytes in reverse order and closes. It can only answer if the client's
/// half-close (FIN) reached it, and the client can only read the answer if its own
/// half-closed connection still carries data the other way.
pub struct Reverser {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Vec<u8>>,
    _task: Task,
}

impl Reverser {
    pub async fn start() -> Result<Self> {
        let (tx, received) = mpsc::unbounded_channel();
        let (addr, task) = spawn_server(move |mut stream| {
            let tx = tx.clone();
            async move {
                let mut got = Vec::new();
                if stream.read_to_end(&mut got).await.is_err() {
                    return;
                }
                let _ = tx.send(got.clone());
                got.reverse();
                let mut answer = b"reversed:".to_vec();
                answer.extend_from_slice(&got);
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            }
        })
        .await?;
        Ok(Self {
            addr,
            received,
            _task: task,
        })
    }

    /// What the next connection carried up to its EOF (bounded wait).
    pub async fn next_received(&mut self) -> Result<Vec<u8>> {
        match tokio::time::timeout(REPORT, self.received.recv()).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => bail!("reverser stopped"),
            Err(_) => bail!("no upstream connection reached EOF within {REPORT:?}"),
        }
    }
}

/// An HTTP/1.0 server: answers each connection's one request with `HTTP/1.0 200` and a
/// two-byte body `ok`, then closes (as HTTP/1.0 servers without keep-alive do).
pub struct Http10 {
    pub addr: SocketAddr,
    _task: Task,
}

impl Http10 {
    pub async fn start() -> Result<Self> {
        let (addr, task) = spawn_server(|mut stream| async move {
            if read_head(&mut stream).await.is_err() {
                return;
            }
            let _ = stream
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
            let _ = stream.shutdown().await;
        })
        .await?;
        Ok(Self { addr, _task: task })
    }
}

/// A raw HTTP/1.1 server that accepts any upgrade: it reads the request head, reports it,
/// answers `101 Switching Protocols` (`Upgrade: websocket`), then echoes every byte until
/// what it received ends with `bye`, and closes.
pub struct UpgradeEcho {
    pub addr: SocketAddr,
    heads: mpsc::UnboundedReceiver<String>,
    _task: Task,
}

pub const SWITCHING: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

impl UpgradeEcho {
    pub async fn start() -> Result<Self> {
        let (tx, heads) = mpsc::unbounded_channel();
        let (addr, task) = spawn_server(move |mut stream| {
            let tx = tx.clone();
            async move {
                let Ok((head, early)) = read_head(&mut stream).await else {
                    return;
                };
                let _ = tx.send(head);
                if stream.write_all(SWITCHING).await.is_err() {
                    return;
                }
                let mut seen = early;
                let mut echoed = 0;
                let mut buf = [0u8; 4096];
                loop {
                    if seen.len() > echoed {
                        if stream.write_all(&seen[echoed..]).await.is_err() {
                            return;
                        }
                        echoed = seen.len();
                    }
                    if seen.ends_with(b"bye") {
                        break;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.shutdown().await;
            }
        })
        .await?;
        Ok(Self {
            addr,
            heads,
            _task: task,
        })
    }

    /// The head of the next upgrade request that reached the server (bounded wait).
    pub async fn next_head(&mut self) -> Result<String> {
        match tokio::time::timeout(REPORT, self.heads.recv()).await {
            Ok(Some(head)) => Ok(head),
            Ok(None) => bail!("upgrade server stopped"),
            Err(_) => bail!("no upgrade request reached the server within {REPORT:?}"),
        }
    }
}

/// Reads an HTTP/1.1 head (up to and including the blank line) and returns it as text, with
/// whatever bytes followed it in the same reads.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(at + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            bail!("no end of head in {MAX_HEAD} bytes");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!(
                "connection closed before the end of the head; got {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serves every node one cluster and one listener, both named after the node id:
/// `cluster-for-<id>`, `listener-for-<id>`.
struct NamedAfterNode;

impl Generator for NamedAfterNode {
    type Snapshot = u64;

    fn generation(snapshot: &u64) -> u64 {
        *snapshot
    }

    fn generate(&self, _: &Arc<u64>, node: &Node, _: Option<&Previous<'_>>) -> Resources {
        let cluster = Cluster {
            name: format!("cluster-for-{}", node.id),
            ..Default::default()
        };
        let listener = Listener {
            name: format!("listener-for-{}", node.id),
            ..Default::default()
        };
        let mut resources = Resources::new();
        for (name, any) in [
            (cluster.name.clone(), pack(&cluster)),
            (listener.name.clone(), pack(&listener)),
        ] {
            insert(&mut resources, name, any);
        }
        resources
    }
}

fn insert(resources: &mut Resources, name: String, any: Any) {
    let type_url = any.type_url.clone();
    resources.insert(&type_url, &name, any);
}

/// bowline's ADS server (a real tonic gRPC server: bidirectional streams, statuses in
/// trailers) with one fixed snapshot.
pub struct AdsServer {
    pub addr: SocketAddr,
    _snapshots: watch::Sender<Arc<u64>>,
    _task: Task,
}

impl AdsServer {
    pub async fn start() -> Result<Self> {
        let (snapshots, rx) = watch::channel(Arc::new(1));
        let server = XdsServer::new(NamedAfterNode, rx, ServerOptions::default());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = server.serve(listener, std::future::pending()).await {
                eprintln!("[ads] server failed: {e}");
            }
        });
        Ok(Self {
            addr,
            _snapshots: snapshots,
            _task: Task(task),
        })
    }
}

/// `bowline echo --service s --version v1`: HTTP/1.1 and h2c, answers JSON describing the
/// request.
pub struct Echo {
    pub addr: SocketAddr,
    _proc: Proc,
}

impl Echo {
    pub async fn start(startup: Duration) -> Result<Self> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bowline"));
        cmd.args(["echo", "--listen", "127.0.0.1:0"])
            .args(["--service", "s", "--version", "v1"]);
        let proc = Proc::spawn("echo", cmd)?;
        let line = proc.wait_for_line("listening on ", startup).await?;
        let addr = line
            .rsplit("listening on ")
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .with_context(|| format!("echo address in {line:?}"))?;
        Ok(Self { addr, _proc: proc })
    }
}
