//! Talking to etmemd over its socket byte for byte, as the upstream C client does.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::Duration;

/// A connection to the daemon listening on abstract socket `socket`.
pub fn connect(socket: &str) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(socket.as_bytes()).unwrap();
    let s = UnixStream::connect_addr(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Send one request exactly as the C client does (one write, no newline, no NUL) and
/// read up to and including the terminator byte.
pub fn raw(socket: &str, msg: &str) -> Vec<u8> {
    let mut s = connect(socket);
    s.write_all(msg.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "daemon closed without a terminator after {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        if matches!(out.last(), Some(0xff) | Some(0xfe)) {
            return out;
        }
    }
}
