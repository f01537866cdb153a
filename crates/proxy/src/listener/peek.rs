//! Peeking at a connection's first bytes without consuming them and without spinning, for
//! the listener filters (TLS and HTTP inspectors) that must decide before a filter chain
//! reads the stream.
//!
//! Tokio's `peek` leaves the socket marked readable while bytes sit in the buffer, so
//! peeking again returns at once with the same bytes: a loop that waits for more that way
//! spins (measured: 1,000 connections stalled mid-ClientHello cost half a core). So a look
//! that finds nothing new clears the readiness it was woken by, and the next wait ends only
//! when new bytes arrive.
//!
//! The look runs inside `try_io`, which clears only the readiness the look saw: bytes that
//! arrive between the look and the clearing raise a readiness of their own, which stays.
//! Clearing outside it (as this file once did) could swallow the edge of bytes that had
//! just arrived; the inspector then saw them on its next look and returned, but the
//! connection's reader waited for an edge that never came, and a client whose request came
//! in two pieces got no answer (seen under load in CI, as an empty response).

use std::io;
use std::mem::MaybeUninit;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Waits until the peer has sent more than the `seen` bytes already looked at (or closed the
/// connection), then peeks again into `buf`. Never returns the same `seen` bytes twice: `Ok(0)`
/// when the peer closed before sending more. Leaves the socket readable when it returns
/// bytes, so whoever reads the connection next is not left waiting.
pub async fn peek_more(stream: &TcpStream, buf: &mut [u8], seen: usize) -> io::Result<usize> {
    loop {
        let ready = stream.ready(Interest::READABLE).await?;
        let look = stream.try_io(Interest::READABLE, || match peek_now(stream, buf)? {
            Some(n) if n > seen || n == 0 => Ok(n),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        });
        match look {
            Ok(n) => return Ok(n),
            // The peer closed (a closed state stays ready for good) and sent nothing new:
            // what is there is all that will come.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && ready.is_read_closed() => {
                return Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// A non-blocking peek straight at the socket, whatever tokio's readiness says: `None` when
/// nothing is there yet, `Some(0)` when the peer closed.
fn peek_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let socket = socket2::SockRef::from(stream);
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and `peek` only writes into it.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    match socket.peek(uninit) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}
