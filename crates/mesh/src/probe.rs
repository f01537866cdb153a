//! Readiness probes from the host: a bounded HTTP GET (proxy admin `/ready`, the control
//! plane's `/debug/syncz`) and a free loopback port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// `GET path`, every step bounded by `timeout`; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, b"", timeout)
}

/// One HTTP/1.1 request with `Connection: close` (Envoy's admin refuses HTTP/1.0 with
/// 426), every step bounded by `timeout`; returns (status, body). Bodies up to 64 MiB.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.take(64 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer from {addr}{path}")))?;
    Ok((status, body.to_string()))
}

/// Hands out distinct free loopback ports: each stays bound until the allocator is dropped,
/// so two calls never return the same port (a port released at once could be handed out
/// again by the next `bind(0)`). Drop it just before the processes bind them.
#[derive(Default)]
pub struct FreePorts {
    held: Vec<TcpListener>,
}

impl FreePorts {
    pub fn take(&mut self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 succeeds");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        self.held.push(listener);
        port
    }
}
