//! The daemon's socket: a `mio` poll over the listener, the open connections and the
//! signal pipe. Requests are handled one at a time in this thread (they are short), but a
//! peer that is slow or silent never blocks the others: each connection is read without
//! blocking and dropped at its deadline.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::reply::{Reply, Status};
use super::request::{looks_complete, Request, MAX_REQUEST};
use crate::error::{Error, Kind, Result};

/// How long a peer may take to send its request and read the answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once; more are answered with a failure at once.
const MAX_CONNS: usize = 64;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// What the server calls for each well-formed, authorised request.
pub trait Handler {
    /// The reply to `req`; the server sends it and closes the connection.
    fn handle(&mut self, req: &Request) -> Reply;
}

/// Bind the abstract socket `name`. A name in use is an error of kind `Exists`.
pub fn bind(name: &str) -> Result<std::os::unix::net::UnixListener> {
    super::check_socket_name(name).map_err(Error::invalid)?;
    let addr =
        super::socket_addr(name).map_err(|e| Error::io(format!("socket name {name:?}"), e))?;
    std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            Error::new(
                Kind::Exists,
                format!(
                    "socket name {name:?} is already in use (is another etmemd running on it?)"
                ),
            )
        } else {
            Error::io(format!("cannot listen on socket {name:?}"), e)
        }
    })
}

struct Conn {
    stream: UnixStream,
    deadline: Instant,
    input: Vec<u8>,
    output: Option<(Vec<u8>, usize)>,
    /// Set when the peer may not command us: the reason, sent instead of handling.
    denied: Option<String>,
}

/// Serve requests until SIGINT or SIGTERM. Peers whose uid is neither 0 nor `allowed_uid`
/// get a failure reply and change nothing.
pub fn serve(
    listener: std::os::unix::net::UnixListener,
    allowed_uid: u32,
    handler: &mut dyn Handler,
) -> Result<i32> {
    fn io_err(what: &'static str) -> impl Fn(io::Error) -> Error {
        move |e| Error::io(what, e)
    }
    listener.set_nonblocking(true).map_err(io_err("socket"))?;
    let mut listener = UnixListener::from_std(listener);
    let mut poll = Poll::new().map_err(io_err("epoll"))?;
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(io_err("signal handler"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(io_err("epoll"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(io_err("epoll"))?;

    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 2usize;
    let mut events = Events::with_capacity(64);
    loop {
        let now = Instant::now();
        let timeout = conns
            .values()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min();
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("epoll_wait", e));
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => accept_all(&listener, &poll, &mut conns, &mut next, allowed_uid),
                SIGNALS => {
                    if let Some(sig) = signals.pending().next() {
                        crate::log_info!("caught signal {sig}, shutting down");
                        return Ok(sig);
                    }
                }
                token => {
                    let done = match conns.get_mut(&token) {
                        Some(c) => step(c, handler),
                        None => false,
                    };
                    if done {
                        if let Some(mut c) = conns.remove(&token) {
                            let _ = poll.registry().deregister(&mut c.stream);
                        }
                    }
                }
            }
        }
        // Drop peers past their deadline; tell those that never finished their request why.
        let now = Instant::now();
        let expired: Vec<Token> = conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            if let Some(mut c) = conns.remove(&t) {
                if c.output.is_none() {
                    let why = format!(
                        "incomplete request: nothing complete arrived within {} s",
                        PEER_TIMEOUT.as_secs()
                    );
                    crate::log_warn!("dropping a client: {why}");
                    let _ = c.stream.write(&Reply::fail(Status::Inval, why).encode());
                }
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}

fn accept_all(
    listener: &UnixListener,
    poll: &Poll,
    conns: &mut HashMap<Token, Conn>,
    next: &mut usize,
    allowed_uid: u32,
) {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::log_error!("accept failed: {e}");
                return;
            }
        };
        if conns.len() >= MAX_CONNS {
            let _ = stream.write(
                &Reply::fail(Status::InterErr, "too many clients at once; try again").encode(),
            );
            continue;
        }
        let denied = match getsockopt(&stream.as_fd(), PeerCredentials) {
            Ok(cred) if cred.uid() == 0 || cred.uid() == allowed_uid => None,
            Ok(cred) => Some(format!(
                "permission denied: uid {} may not command this etmemd (only root{})",
                cred.uid(),
                if allowed_uid != 0 {
                    format!(" or uid {allowed_uid}")
                } else {
                    String::new()
                }
            )),
            Err(e) => Some(format!(
                "permission denied: cannot read the peer's credentials: {e}"
            )),
        };
        if let Some(why) = &denied {
            crate::log_warn!("{why}");
        }
        let token = Token(*next);
        *next += 1;
        if poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_ok()
        {
            let deadline = Instant::now() + PEER_TIMEOUT;
            conns.insert(
                token,
                Conn {
                    stream,
                    deadline,
                    input: Vec::new(),
                    output: None,
                    denied,
                },
            );
        }
    }
}

/// Advance one connection; true when it is finished and can be closed.
fn step(c: &mut Conn, handler: &mut dyn Handler) -> bool {
    if c.output.is_none() {
        let mut eof = false;
        let mut buf = [0u8; 1024];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    if c.input.len() > MAX_REQUEST {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        let complete = eof || c.input.len() > MAX_REQUEST || looks_complete(&c.input);
        if !complete {
            return false;
        }
        if eof && c.input.is_empty() {
            return true;
        }
        let reply = match (&c.denied, Request::decode(&c.input)) {
            (Some(why), _) => Reply::Fail(Status::Inval, why.clone()),
            (None, Err(why)) => {
                crate::log_warn!("malformed request: {why}");
                Reply::fail(Status::Inval, format!("malformed request: {why}"))
            }
            (None, Ok(req)) => {
                crate::log_debug!("request: {req}");
                handler.handle(&req)
            }
        };
        c.output = Some((reply.encode(), 0));
        c.deadline = Instant::now() + PEER_TIMEOUT;
    }
    if let Some((out, pos)) = &mut c.output {
        while *pos < out.len() {
            match c.stream.write(&out[*pos..]) {
                Ok(n) => *pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        return true;
    }
    false
}
