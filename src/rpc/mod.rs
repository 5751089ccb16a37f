//! The client/daemon protocol, byte-compatible with upstream etmem (spec §1): one request
//! per connection on an abstract unix socket, a text request of six key/value fields, a
//! reply of optional text ended by one status byte.

pub mod client;
pub mod reply;
pub mod request;
pub mod server;

/// Longest socket name (bytes): `sun_path` is 108 bytes, one goes to the leading NUL of an
/// abstract address, and upstream keeps one for its own terminator.
pub const SOCKET_NAME_MAX: usize = 106;

/// Check a socket name as both upstream programs do (1..=106 bytes, no NUL).
pub fn check_socket_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("socket name must not be empty".into());
    }
    if name.len() > SOCKET_NAME_MAX {
        return Err(format!(
            "socket name is {} bytes long; at most {SOCKET_NAME_MAX} are allowed",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err("socket name must not contain a NUL byte".into());
    }
    Ok(())
}

/// The abstract-namespace address for a socket name (no trailing NUL, as upstream).
pub fn socket_addr(name: &str) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
}

/// The process at the other end of a connected unix socket, as the kernel recorded it
/// (`SO_PEERCRED`): for a client, the process that called `listen` on the server's
/// socket; for the server, the process that connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its pid (0 if it lives in a pid namespace that cannot be seen from ours).
    pub pid: i32,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
}

/// Who is at the other end of `sock`.
pub fn peer_of(sock: &impl std::os::fd::AsFd) -> std::io::Result<Peer> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(sock, PeerCredentials)?;
    Ok(Peer {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}
