//! The client side of one request: connect, send, read until the terminator, within one
//! deadline for the whole request and a bound on the answer's size.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::time::TimeVal;

use super::reply::split_terminated;
use super::request::{Request, MAX_REQUEST};
use crate::error::{Error, Kind, Result};

/// The time a whole request may take: connecting, sending, and receiving the answer to
/// its last byte (upstream's 10 s, which it applied to each receive alone, so a daemon
/// that trickled bytes could hold it forever).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer accepted (bytes before the terminator); a longer one is an error.
pub const MAX_REPLY: usize = 256 << 20;

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

/// Send raw request bytes (tests use this to speak exactly as other clients do); the
/// whole request, answer included, must be done within `timeout`.
pub fn call_raw(socket: &str, msg: &[u8], timeout: Duration) -> Result<Answer> {
    if msg.len() > MAX_REQUEST {
        return Err(failed(format!(
            "request is {} bytes, longer than {MAX_REQUEST}",
            msg.len()
        )));
    }
    let deadline = Instant::now() + timeout;
    let mut stream = connect(socket, timeout)?;
    // A daemon that refuses us answers and closes at once, maybe before our request
    // arrived: then the send fails with EPIPE, but the refusal is there to be read.
    let send_failed =
        |e: &std::io::Error| failed(format!("send to etmemd on socket {socket:?} failed: {e}"));
    let mut send_error = None;
    let left = remaining(deadline, timeout, 0)?;
    stream
        .set_write_timeout(Some(left))
        .map_err(|e| send_failed(&e))?;
    if let Err(e) = stream.write_all(msg) {
        match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                send_error = Some(send_failed(&e))
            }
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                return Err(failed(format!(
                    "etmemd on socket {socket:?} did not take the request within {} s",
                    timeout.as_secs_f64()
                )))
            }
            _ => return Err(send_failed(&e)),
        }
    }
    read_answer(&mut stream, deadline, timeout, MAX_REPLY, send_error)
}

/// Read the answer up to its terminator, by `deadline` (`timeout` is how long that was,
/// for messages) and at most `max` bytes. Each read's bytes are searched once, so the
/// time is linear in the answer's size. With `send_error`, the request was not sent in
/// full: an answer is still taken if one comes (a refusal), else that error is returned.
fn read_answer(
    stream: &mut UnixStream,
    deadline: Instant,
    timeout: Duration,
    max: usize,
    send_error: Option<Error>,
) -> Result<Answer> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let left = remaining(deadline, timeout, buf.len())?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| failed(format!("receiving from etmemd failed: {e}")))?;
        let read = stream.read(&mut chunk);
        if let Some(e) = &send_error {
            if !matches!(read, Ok(n) if n > 0) {
                return Err(e.clone());
            }
        }
        let new = match read {
            Ok(0) => return Err(failed("etmemd closed the connection without an answer")),
            Ok(n) => &chunk[..n],
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(late(timeout, buf.len()))
            }
            Err(e) => return Err(failed(format!("receiving from etmemd failed: {e}"))),
        };
        let (text, end) = match split_terminated(new) {
            Some((text, ok)) => (text, Some(ok)),
            None => (new, None),
        };
        if buf.len() + text.len() > max {
            return Err(failed(format!(
                "etmemd's answer is larger than {} MiB; giving up",
                max >> 20
            )));
        }
        buf.extend_from_slice(text);
        if let Some(ok) = end {
            let text = String::from_utf8(buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            return Ok(Answer { text, ok });
        }
    }
}

/// The time left before `deadline`, or the error saying the request took too long.
fn remaining(deadline: Instant, timeout: Duration, received: usize) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(late(timeout, received));
    }
    Ok(left)
}

/// The request did not finish within `timeout`, `received` bytes of its answer having come.
fn late(timeout: Duration, received: usize) -> Error {
    let secs = timeout.as_secs_f64();
    failed(if received == 0 {
        format!("etmemd did not answer within {secs} s (it may still be working on the request)")
    } else {
        format!(
            "etmemd's answer did not end within {secs} s ({received} bytes came, but not \
             the end of the answer); giving up"
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_answer` on one end of a socket pair whose other end `feed` writes to.
    fn answer_to(feed: impl FnOnce(UnixStream) + Send + 'static, max: usize) -> Result<Answer> {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || feed(theirs));
        let timeout = Duration::from_secs(2);
        let r = read_answer(&mut ours, Instant::now() + timeout, timeout, max, None);
        drop(ours);
        t.join().unwrap();
        r
    }

    #[test]
    fn an_answer_in_pieces_ends_at_its_first_terminator() {
        let a = answer_to(
            |mut s| {
                for piece in [&b"one "[..], b"two", b" three\xfe", b"after"] {
                    let _ = s.write_all(piece);
                    std::thread::sleep(Duration::from_millis(5));
                }
            },
            100,
        )
        .unwrap();
        assert_eq!(a.text, "one two three");
        assert!(!a.ok);
    }

    #[test]
    fn an_answer_larger_than_the_bound_is_an_error() {
        let e = answer_to(|mut s| drop(s.write_all(&[b'a'; 3 << 20])), 2 << 20).unwrap_err();
        assert!(e.msg.contains("larger than 2 MiB"), "{e}");
        // Exactly the bound, then the terminator: accepted.
        let a = answer_to(
            |mut s| {
                let _ = s.write_all(&[b'a'; 1 << 20]);
                let _ = s.write_all(b"\xff");
            },
            1 << 20,
        )
        .unwrap();
        assert_eq!(a.text.len(), 1 << 20);
    }

    #[test]
    fn the_deadline_covers_the_whole_answer() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            while theirs.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let timeout = Duration::from_millis(300);
        let t0 = Instant::now();
        let e = read_answer(&mut ours, t0 + timeout, timeout, 1 << 20, None).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(e.msg.contains("did not end within 0.3 s"), "{e}");
        drop(ours);
        t.join().unwrap();
    }
}
