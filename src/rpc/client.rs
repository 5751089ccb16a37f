//! The client side of one request: connect, send, read until the terminator.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::time::TimeVal;

use super::reply::split_terminated;
use super::request::{Request, MAX_REQUEST};
use crate::error::{Error, Kind, Result};

/// Upstream's client timeout for connect, send and every receive.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon's answer: its text and whether it reported success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Everything before the terminator, as UTF-8 (invalid bytes replaced); may be empty.
    pub text: String,
    /// True when the terminator was `0xff` (success), false for `0xfe` (failure).
    pub ok: bool,
}

/// Send one request to the daemon on `socket` and wait for its answer.
pub fn call(socket: &str, req: &Request) -> Result<Answer> {
    call_raw(socket, req.encode().as_bytes(), TIMEOUT)
}

/// Send raw request bytes (tests use this to speak exactly as other clients do).
pub fn call_raw(socket: &str, msg: &[u8], timeout: Duration) -> Result<Answer> {
    if msg.len() > MAX_REQUEST {
        return Err(failed(format!(
            "request is {} bytes, longer than {MAX_REQUEST}",
            msg.len()
        )));
    }
    let mut stream = connect(socket, timeout)?;
    // A daemon that refuses us answers and closes at once, maybe before our request
    // arrived: then the send fails with EPIPE, but the refusal is there to be read.
    let send_failed =
        |e: &std::io::Error| failed(format!("send to etmemd on socket {socket:?} failed: {e}"));
    let mut sent = Ok(());
    if let Err(e) = stream.write_all(msg) {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                sent = Err(send_failed(&e))
            }
            _ => return Err(send_failed(&e)),
        }
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((text, ok)) = split_terminated(&buf) {
            return Ok(Answer {
                text: String::from_utf8_lossy(text).into_owned(),
                ok,
            });
        }
        let read = stream.read(&mut chunk);
        if let Err(e) = &sent {
            if !matches!(read, Ok(n) if n > 0) {
                return Err(e.clone());
            }
        }
        match read {
            Ok(0) => return Err(failed("etmemd closed the connection without an answer")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(failed(format!(
                    "etmemd did not answer within {} s (it may still be working on the request)",
                    timeout.as_secs()
                )))
            }
            Err(e) => return Err(failed(format!("receiving from etmemd failed: {e}"))),
        }
    }
}

/// Connect to the abstract socket `name` with send/receive (and so connect) timeouts set,
/// and make sure an etmemd we may trust holds it: its uid must be 0 or ours. While no
/// etmemd listens, any user may bind the name and answer "success"; such a holder is an
/// error of kind `Permission` that names it, and nothing is sent to it.
pub fn connect(name: &str, timeout: Duration) -> Result<UnixStream> {
    let stream = connect_unchecked(name, timeout)?;
    let me = crate::sys::euid();
    match super::peer_of(&stream) {
        Ok(p) if p.uid == 0 || p.uid == me => Ok(stream),
        Ok(p) => Err(Error::new(
            Kind::Permission,
            format!(
                "socket {name:?} is held by pid {} running as uid {}, not by root{}: that is \
                 not an etmemd to trust, so nothing was sent to it",
                p.pid,
                p.uid,
                if me != 0 {
                    format!(" or by you (uid {me})")
                } else {
                    String::new()
                }
            ),
        )),
        Err(e) => Err(failed(format!(
            "cannot tell who holds socket {name:?} ({e}), so nothing was sent to it"
        ))),
    }
}

/// Who accepts connections on the abstract socket `name`, if anyone does within a second.
pub fn holder(name: &str) -> Option<super::Peer> {
    let stream = connect_unchecked(name, Duration::from_secs(1)).ok()?;
    super::peer_of(&stream).ok()
}

/// Connect without asking who listens.
fn connect_unchecked(name: &str, timeout: Duration) -> Result<UnixStream> {
    super::check_socket_name(name).map_err(failed)?;
    let fail = |what: &str, e: nix::Error| failed(format!("{what}: {e}"));
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| fail("cannot create a socket", e))?;
    let tv = TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros() as _);
    socket::setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(|e| fail("setsockopt", e))?;
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(|e| fail("setsockopt", e))?;
    let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(|e| fail("bad socket name", e))?;
    match socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(nix::Error::ECONNREFUSED) | Err(nix::Error::ENOENT) => Err(Error::new(
            Kind::NotFound,
            format!("no etmemd is listening on socket {name:?}"),
        )),
        Err(e) => Err(fail(
            &format!("cannot connect to etmemd on socket {name:?}"),
            e,
        )),
    }
}

/// A request that could not be sent or answered (kind `Io`); "no daemon on that socket"
/// is kind `NotFound` instead, so the client can tell the two apart by kind.
fn failed(msg: impl Into<String>) -> Error {
    Error::new(Kind::Io, msg)
}
