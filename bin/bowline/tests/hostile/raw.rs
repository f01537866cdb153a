//! A raw HTTP/1.1 client for requests no well-behaved client library would send: the bytes
//! go out exactly as written, and the answer is read as it comes (or its absence noted).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back for one raw request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code, or `None` when the proxy closed or held the connection without one.
    pub status: Option<u16>,
    pub location: Option<String>,
    pub body: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{status} {:?}", self.body.trim_end())?,
            None => write!(f, "no answer")?,
        }
        if let Some(location) = &self.location {
            write!(f, " -> {location}")?;
        }
        Ok(())
    }
}

/// Sends `bytes` on a new connection and reads until the proxy closes it or `wait` passes
/// (a proxy that holds a bad request open answers nothing: that is an answer too).
pub async fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Answer {
    read_answer(addr, bytes, wait, complete).await
}

/// Like [`exchange`], but reads until the proxy closes the connection (bounded by `wait`):
/// for pipelined requests, so the proxy has handled every one of them before the client
/// goes (closing after the first answer races the second request's forwarding). The
/// answer is the first response.
pub async fn exchange_until_closed(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Answer {
    read_answer(addr, bytes, wait, |_| false).await
}

/// Sends `bytes`, then reads until the proxy closes, `enough` holds of what arrived, or
/// `wait` passes; the answer is the first response read.
async fn read_answer(
    addr: SocketAddr,
    bytes: &[u8],
    wait: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> Answer {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(bytes).await?;
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Ok::<_, std::io::Error>(()),
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
            if enough(&received) {
                return Ok(());
            }
        }
    })
    .await;
    parse(&received)
}

/// A GET of `target` with `Host: svc`, closing after the answer.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Whether `bytes` hold a whole response with a `content-length` body.
fn complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head.lines().find_map(|line| {
        line.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    length.is_some_and(|len| bytes.len() >= end + 4 + len)
}

fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    let location = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    Answer {
        status,
        location,
        body: body.to_owned(),
    }
}
