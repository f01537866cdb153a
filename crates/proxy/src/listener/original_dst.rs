//! `SO_ORIGINAL_DST`: where a connection redirected by iptables `REDIRECT` was really going.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// `SO_ORIGINAL_DST` (IPv4) and `IP6T_SO_ORIGINAL_DST` (IPv6) share the option number 80.
const SO_ORIGINAL_DST: libc::c_int = 80;

/// The pre-NAT destination of an accepted socket. Without a NAT rule the kernel answers
/// `ENOENT`; callers then fall back to the local address.
pub fn original_dst(socket: &impl AsRawFd, local: SocketAddr) -> io::Result<SocketAddr> {
    let fd = socket.as_raw_fd();
    // SAFETY: getsockopt writes at most `len` bytes into storage, which is large enough for
    // any socket address, and we read only the family the kernel reports.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let (level, option) = if local.is_ipv6() {
            (libc::SOL_IPV6, SO_ORIGINAL_DST)
        } else {
            (libc::SOL_IP, SO_ORIGINAL_DST)
        };
        let rc = libc::getsockopt(
            fd,
            level,
            option,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        );
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                let sin = &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Ok(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
            }
            libc::AF_INET6 => {
                let sin6 =
                    &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Ok(SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), 0, 0).into())
            }
            family => Err(io::Error::other(format!(
                "SO_ORIGINAL_DST returned address family {family}"
            ))),
        }
    }
}

/// The destination to route on: the original one when asked for and known, else the local.
pub fn destination(socket: &impl AsRawFd, local: SocketAddr, use_original_dst: bool) -> SocketAddr {
    if use_original_dst {
        original_dst(socket, local).unwrap_or(local)
    } else {
        local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_nat_rule_the_local_address_is_used() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert!(original_dst(&server, addr).is_err());
        assert_eq!(destination(&server, addr, true), addr);
        drop(client);
    }
}
