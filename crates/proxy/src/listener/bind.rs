//! Binding listener sockets: one socket per worker on the same address with `SO_REUSEPORT`,
//! so the kernel spreads connections across workers without a shared accept queue.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Envoy's default backlog.
const BACKLOG: i32 = 1024;

/// Binds `count` (≥ 1) non-blocking sockets to `addr`. With port 0 the first socket picks the
/// port and the others join it, so all workers share one address.
pub fn bind_reuseport(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let first = bind_one(addr)?;
    let actual = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(actual)?);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_worker_the_same_port() {
        let sockets = bind_reuseport("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = sockets[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for s in &sockets {
            assert_eq!(s.local_addr().unwrap().port(), port);
        }
    }
}
