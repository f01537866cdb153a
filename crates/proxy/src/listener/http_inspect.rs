//! Envoy's HTTP inspector: reads (without consuming) the first bytes of a plaintext
//! connection and names its application protocol for filter-chain matching — `h2c` for the
//! HTTP/2 connection preface, `http/1.0` or `http/1.1` for a request line, nothing otherwise.

use std::time::Duration;
use tokio::net::TcpStream;

use super::peek::peek_more;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A request line longer than this is not HTTP as far as detection goes.
const MAX_INSPECT: usize = 8 * 1024;
/// Envoy's listener-filter timeout; a silent client is not HTTP.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What the bytes seen so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    Protocol(&'static str),
    NeedMore,
    NotHttp,
}

/// Decides from the first bytes of a connection.
pub fn detect(bytes: &[u8]) -> Detection {
    let n = bytes.len().min(H2_PREFACE.len());
    if bytes[..n] == H2_PREFACE[..n] {
        return if bytes.len() >= H2_PREFACE.len() {
            Detection::Protocol("h2c")
        } else {
            Detection::NeedMore
        };
    }
    let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
        return if bytes.len() >= MAX_INSPECT || bytes.iter().any(|b| !b.is_ascii() || *b == 0) {
            Detection::NotHttp
        } else {
            Detection::NeedMore
        };
    };
    let line = &bytes[..end];
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Detection::NotHttp;
    };
    let token = !method.is_empty() && method.iter().all(|b| b.is_ascii_uppercase() || *b == b'-');
    if !token || target.is_empty() {
        return Detection::NotHttp;
    }
    match version {
        b"HTTP/1.1" => Detection::Protocol("http/1.1"),
        b"HTTP/1.0" => Detection::Protocol("http/1.0"),
        _ => Detection::NotHttp,
    }
}

/// Peeks until [`detect`] decides (bounded in bytes and time).
pub async fn inspect(stream: &TcpStream) -> Option<&'static str> {
    let work = async {
        let mut buf = vec![0u8; MAX_INSPECT];
        let mut n = stream.peek(&mut buf).await.ok()?;
        loop {
            if n == 0 {
                return None;
            }
            match detect(&buf[..n]) {
                Detection::Protocol(p) => return Some(p),
                Detection::NotHttp => return None,
                Detection::NeedMore => n = peek_more(stream, &mut buf, n).await.ok()?,
            }
        }
    };
    tokio::time::timeout(INSPECT_TIMEOUT, work)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_protocol_from_the_first_bytes() {
        let cases: [(&[u8], Detection); 10] = [
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                Detection::Protocol("http/1.1"),
            ),
            (b"POST /x?y=1 HTTP/1.0\r\n", Detection::Protocol("http/1.0")),
            (b"M-SEARCH * HTTP/1.1\r\n", Detection::Protocol("http/1.1")),
            (H2_PREFACE, Detection::Protocol("h2c")),
            (b"PRI * HTTP/2", Detection::NeedMore),
            (b"GET / HTT", Detection::NeedMore),
            (b"\x16\x03\x01\x02\x00", Detection::NotHttp),
            (b"hello world\r\n", Detection::NotHttp),
            (b"get / HTTP/1.1\r\n", Detection::NotHttp),
            (b"GET / HTTP/3\r\n", Detection::NotHttp),
        ];
        for (bytes, want) in cases {
            assert_eq!(detect(bytes), want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
