//! The daemon's socket: a `mio` poll over the listener, the open connections and the
//! signal pipe. Requests are handled one at a time in this thread (they are short), but a
//! peer that is slow or silent never blocks the others: each connection is read without
//! blocking and dropped at its deadline.
//!
//! A peer that may not command the daemon is told so and closed as soon as it is
//! accepted: it never holds one of the [`MAX_CONNS`] slots, so any number of them cannot
//! lock root out, and their refusals are logged at most once a second.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::reply::{Reply, Status};
use super::request::{looks_complete, Request, MAX_REQUEST};
use crate::error::{Error, Kind, Result};

/// How long a peer may take to send its request, and how long it may go without reading
/// any of the answer: a peer that keeps reading a large answer gets all of it, one that
/// stops is dropped.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of authorised peers open at once; more are answered with a failure at
/// once. Refused peers never count: they are closed when accepted.
pub const MAX_CONNS: usize = 64;
/// Connections accepted in one go before the open ones get their turn again, so that a
/// flood of connections cannot keep the loop accepting while requests wait.
const ACCEPT_BUDGET: usize = 256;
/// The shortest time between two log lines about refused peers.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Another thread asks for [`Handler::woken`] (connections count up from 2).
const WAKER: Token = Token(usize::MAX);

/// What the server calls for each well-formed, authorised request.
pub trait Handler {
    /// The reply to `req`; the server sends it and closes the connection.
    fn handle(&mut self, req: &Request) -> Reply;

    /// Before serving: `wake`, callable from any thread, makes the server call
    /// [`Handler::woken`] on its own thread soon after (several wakes may be merged).
    fn attach_waker(&mut self, _wake: Arc<dyn Fn() + Send + Sync>) {}

    /// Someone called the waker given to [`Handler::attach_waker`].
    fn woken(&mut self) {}
}

/// Bind the abstract socket `name`. A name in use is an error of kind `Exists` that
/// names the process holding it, where it accepts a connection to ask.
pub fn bind(name: &str) -> Result<std::os::unix::net::UnixListener> {
    super::check_socket_name(name).map_err(Error::invalid)?;
    let addr =
        super::socket_addr(name).map_err(|e| Error::io(format!("socket name {name:?}"), e))?;
    std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            Error::new(
                Kind::Exists,
                format!("socket name {name:?} is already in use{}", holder_of(name)),
            )
        } else {
            Error::io(format!("cannot listen on socket {name:?}"), e)
        }
    })
}

/// Who holds the socket name we could not bind, as the end of the message saying so.
fn holder_of(name: &str) -> String {
    match super::client::holder(name) {
        Some(p) if p.uid == 0 || p.uid == crate::sys::euid() => format!(
            " by pid {} (uid {}): is another etmemd running on it?",
            p.pid, p.uid
        ),
        Some(p) => format!(
            " by pid {} running as uid {}, which is neither root nor this etmemd's user: \
             another user has taken the name (clients refuse to talk to it); stop that \
             process or choose another name",
            p.pid, p.uid
        ),
        None => " (its holder accepts no connection, so it cannot be named)".to_string(),
    }
}

struct Conn {
    stream: UnixStream,
    deadline: Instant,
    input: Vec<u8>,
    output: Option<(Vec<u8>, usize)>,
}

/// The log of refused peers: a flood of them must not flood syslog, so at most one line
/// every [`REFUSAL_LOG_EVERY`]; the line counts the refusals it stands for.
#[derive(Debug, Default)]
struct RefusalLog {
    /// When the last line was logged.
    last: Option<Instant>,
    /// Refusals since then that were not logged.
    suppressed: u64,
}

impl RefusalLog {
    /// A peer was refused for `why`: the line to log now, if one is due.
    fn refused(&mut self, now: Instant, why: &str) -> Option<String> {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_EVERY)
        {
            self.suppressed += 1;
            return None;
        }
        let line = match std::mem::take(&mut self.suppressed) {
            0 => why.to_string(),
            n => format!("{why} {}", Self::more(n)),
        };
        self.last = Some(now);
        Some(line)
    }

    /// The line counting refusals not logged yet, once a line is due again.
    fn flush(&mut self, now: Instant) -> Option<String> {
        if self.suppressed == 0 || self.due().is_some_and(|t| now < t) {
            return None;
        }
        let n = std::mem::take(&mut self.suppressed);
        self.last = Some(now);
        Some(format!("permission denied {}", Self::more(n)))
    }

    /// When [`RefusalLog::flush`] has a line to log, if it will have one.
    fn due(&self) -> Option<Instant> {
        if self.suppressed == 0 {
            return None;
        }
        self.last.map(|t| t + REFUSAL_LOG_EVERY)
    }

    fn more(n: u64) -> String {
        format!("(and {n} more refused connections since the last of these lines)")
    }
}

/// Why a peer may not command us (its uid is neither 0 nor `allowed_uid`), or None if it
/// may: the text of its reply, and the same with its pid for the log.
fn refusal(stream: &UnixStream, allowed_uid: u32) -> Option<(String, String)> {
    let only = if allowed_uid != 0 {
        format!("only root or uid {allowed_uid} may use this etmemd")
    } else {
        "only root may use this etmemd".to_string()
    };
    match super::peer_of(stream) {
        Ok(p) if p.uid == 0 || p.uid == allowed_uid => None,
        Ok(p) => Some((
            format!("permission denied: uid {} is not allowed: {only}", p.uid),
            format!(
                "permission denied: uid {} (pid {}) is not allowed: {only}",
                p.uid, p.pid
            ),
        )),
        Err(e) => {
            let why =
                format!("permission denied: cannot read the peer's credentials ({e}): {only}");
            Some((why.clone(), why))
        }
    }
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

    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("epoll"))?);
    handler.attach_waker(Arc::new(move || {
        let _ = waker.wake();
    }));
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 2usize;
    let mut events = Events::with_capacity(64);
    let mut refusals = RefusalLog::default();
    // The listener is edge-triggered: once it was readable, accept until it would block,
    // a budget at a time, polling the open connections in between.
    let mut accepting = false;
    loop {
        let now = Instant::now();
        let timeout = if accepting {
            Some(Duration::ZERO)
        } else {
            conns
                .values()
                .map(|c| c.deadline)
                .chain(refusals.due())
                .min()
                .map(|t| t.saturating_duration_since(now))
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("epoll_wait", e));
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => accepting = true,
                WAKER => handler.woken(),
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
        if accepting {
            let mut acceptor = Acceptor {
                poll: &poll,
                conns: &mut conns,
                next: &mut next,
                allowed_uid,
                refusals: &mut refusals,
            };
            accepting = acceptor.accept_some(&listener);
        }
        if let Some(line) = refusals.flush(Instant::now()) {
            crate::log_warn!("{line}");
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
                match &c.output {
                    None => {
                        let why = format!(
                            "incomplete request: nothing complete arrived within {} s",
                            PEER_TIMEOUT.as_secs()
                        );
                        crate::log_warn!("dropping a client: {why}");
                        let _ = c.stream.write(&Reply::fail(Status::Inval, why).encode());
                    }
                    Some((out, pos)) => crate::log_warn!(
                        "dropping a client that stopped reading its answer for {} s \
                         ({pos} of {} bytes sent)",
                        PEER_TIMEOUT.as_secs(),
                        out.len()
                    ),
                }
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}

/// What accepting needs of the server's state.
struct Acceptor<'a> {
    poll: &'a Poll,
    conns: &'a mut HashMap<Token, Conn>,
    next: &'a mut usize,
    allowed_uid: u32,
    refusals: &'a mut RefusalLog,
}

impl Acceptor<'_> {
    /// Accept up to [`ACCEPT_BUDGET`] connections; true if more may be waiting.
    ///
    /// The peer's credentials are checked first: a peer that may not command us gets its
    /// refusal and is closed at once, before it can take a slot.
    fn accept_some(&mut self, listener: &UnixListener) -> bool {
        for _ in 0..ACCEPT_BUDGET {
            let (mut stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::log_error!("accept failed: {e}");
                    return false;
                }
            };
            if let Some((why, logged)) = refusal(&stream, self.allowed_uid) {
                if let Some(line) = self.refusals.refused(Instant::now(), &logged) {
                    crate::log_warn!("{line}");
                }
                // The refusal fits in the socket's buffer: this write does not block. Reading
                // what the peer already sent lets it read the refusal and then a clean end.
                let _ = stream.write(&Reply::fail(Status::Inval, why).encode());
                let _ = stream.read(&mut [0u8; MAX_REQUEST + 1]);
                continue;
            }
            if self.conns.len() >= MAX_CONNS {
                let _ = stream.write(
                    &Reply::fail(Status::InterErr, "too many clients at once; try again").encode(),
                );
                continue;
            }
            let token = Token(*self.next);
            *self.next += 1;
            if self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_ok()
            {
                let deadline = Instant::now() + PEER_TIMEOUT;
                self.conns.insert(
                    token,
                    Conn {
                        stream,
                        deadline,
                        input: Vec::new(),
                        output: None,
                    },
                );
            }
        }
        true
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
        let reply = match Request::decode(&c.input) {
            Err(why) => {
                crate::log_warn!("malformed request: {why}");
                Reply::fail(Status::Inval, format!("malformed request: {why}"))
            }
            Ok(req) => {
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
                Ok(n) => {
                    *pos += n;
                    c.deadline = Instant::now() + PEER_TIMEOUT;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_at_most_once_a_second_with_a_count() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut log = RefusalLog::default();
        assert_eq!(log.refused(t0, "no").as_deref(), Some("no"));
        assert_eq!(log.due(), None);
        // A thousand more within the second: not one line, all counted.
        for i in 0..1000 {
            assert_eq!(log.refused(ms(i), "no"), None);
        }
        assert_eq!(log.due(), Some(ms(1000)));
        assert_eq!(log.flush(ms(999)), None);
        // The next refusal after the second logs its reason and the count.
        assert_eq!(
            log.refused(ms(1000), "no").as_deref(),
            Some("no (and 1000 more refused connections since the last of these lines)")
        );
        assert_eq!(log.refused(ms(1100), "no"), None);
        assert_eq!(log.refused(ms(1200), "no"), None);
        // No refusal after them: the count is logged when the second is over, once.
        assert_eq!(log.flush(ms(1500)), None);
        assert_eq!(
            log.flush(ms(2000)).as_deref(),
            Some(
                "permission denied (and 2 more refused connections since the last of these lines)"
            )
        );
        assert_eq!(log.flush(ms(5000)), None);
        assert_eq!(log.due(), None);
    }
}
