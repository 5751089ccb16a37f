//! A policy process: the plug-in program as etmemd's child, with a pipe to its standard
//! input, one from its standard output, and its standard error logged line by line. Every
//! read and write has a deadline and every line a length limit, so a plug-in that hangs,
//! floods or dies costs its engine an error, never the daemon a thread or its memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::sys::exec_fd;
use crate::sys::pidfd::Pidfd;
use crate::sys::poll::{self, Want};
use crate::sys::trusted_file::TrustedFile;

/// The longest line a plug-in may write, in bytes (without its newline).
pub const MAX_LINE: usize = 4096;

/// How long a request may wait once the task or project is told to stop: a plug-in in
/// the middle of an answer gets this much more, then it is given up.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// Bytes read from standard output per refill at most, so a plug-in that writes without
/// end is read in bounded steps.
const FILL: usize = 64 << 10;
/// Bytes of its output kept unread at most (written before it read our request).
const PENDING_MAX: usize = 1 << 20;

/// How often a wait looks at its stop flag.
const TICK: Duration = Duration::from_millis(100);

/// Lines of standard error logged at most per [`STDERR_WINDOW`]; more are counted, and
/// the count logged when the window ends.
const STDERR_LINES: u32 = 100;
const STDERR_WINDOW: Duration = Duration::from_secs(10);
/// The longest stderr line logged whole; longer ones are cut.
const STDERR_LINE: usize = 512;

/// A running plug-in program.
pub struct PolicyProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// Bytes read from standard output; those from `taken` on are not yet taken as
    /// lines (a cursor, so that taking a line does not move the rest).
    pending: Vec<u8>,
    taken: usize,
    /// `the plug-in PATH (pid N)`, the subject of every message about it.
    who: String,
    /// The engine's `reply_timeout`, for messages.
    timeout_secs: u32,
    /// The child as a pidfd, to see it exit without reaping it (`None` if it could not
    /// be opened: then an exit is only seen as the end of its output).
    pidfd: Option<Pidfd>,
    /// True once it was reaped: its pid, and so its group id, may name another by then.
    reaped: bool,
}

impl PolicyProcess {
    /// Start the program `file` holds for engine `engine` (named so in its argv[0] and in
    /// the log lines of its standard error); `timeout_secs` is its `reply_timeout`.
    pub fn start(file: &TrustedFile, engine: &str, timeout_secs: u32) -> Result<PolicyProcess> {
        let mut child = exec_fd::spawn(file, &format!("etmem-policy:{engine}"))?;
        let who = format!("the plug-in {} (pid {})", file.resolved(), child.id());
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three streams are piped");
        };
        let mut p = PolicyProcess {
            child,
            stdin: Some(stdin),
            stdout,
            pending: Vec::new(),
            taken: 0,
            who,
            timeout_secs,
            pidfd: None,
            reaped: false,
        };
        let nonblocking = |fd| poll::set_nonblocking(fd).map_err(|e| e.to_string());
        let set = p
            .stdin
            .as_ref()
            .map_or(Ok(()), |s| nonblocking(s.as_fd()))
            .and_then(|()| nonblocking(p.stdout.as_fd()));
        if let Err(e) = set {
            return Err(crate::error::Error::invalid(format!("{}: {e}", p.who)));
        }
        p.pidfd = Pidfd::open(p.child.id() as i32).ok();
        log_stderr(stderr, engine.to_string(), p.child.id());
        Ok(p)
    }

    /// `the plug-in PATH (pid N)`.
    pub fn who(&self) -> &str {
        &self.who
    }

    /// Write `text` whole by `deadline`. While the pipe is full, what the plug-in writes
    /// meanwhile is read and kept, so a plug-in that answers before it has read the whole
    /// request does not deadlock with us.
    pub fn send(&mut self, text: &str, deadline: Instant) -> Result<(), String> {
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            let Some(stdin) = self.stdin.as_mut() else {
                return Err("has closed its standard input".into());
            };
            match stdin.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let fds = [
                        (stdin.as_fd(), Want::Write),
                        (self.stdout.as_fd(), Want::Read),
                    ];
                    let ready = poll::ready(&fds, deadline).map_err(|e| format!("poll: {e}"))?;
                    if !ready.contains(&true) {
                        return Err(self.timed_out("read its input"));
                    }
                    if ready[1] {
                        self.fill()?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Err(self.gone()),
                Err(e) => return Err(format!("cannot be written to: {e}")),
            }
        }
        Ok(())
    }

    /// The next line it writes, without its newline, by `deadline`. Once `stop` says so
    /// the deadline is at most [`STOP_GRACE`] away. Fails when it writes a line longer
    /// than [`MAX_LINE`] or not UTF-8, when it exits, or when the time is up.
    pub fn line(&mut self, deadline: Instant, stop: &dyn Fn() -> bool) -> Result<String, String> {
        let mut deadline = deadline;
        let mut stopping = false;
        loop {
            let unread = &self.pending[self.taken..];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                if i > MAX_LINE {
                    return Err(too_long());
                }
                let line = std::str::from_utf8(&unread[..i])
                    .map(str::to_string)
                    .map_err(|_| "wrote a line that is not UTF-8 text".to_string());
                self.taken += i + 1;
                return line;
            }
            if unread.len() > MAX_LINE {
                return Err(too_long());
            }
            if !stopping && stop() {
                stopping = true;
                deadline = deadline.min(Instant::now() + STOP_GRACE);
            }
            let now = Instant::now();
            if now >= deadline && stopping {
                return Err("did not answer before its task or project stopped".into());
            }
            if now >= deadline {
                return Err(self.timed_out("answer"));
            }
            let wait_until = deadline.min(now + TICK);
            let ready = poll::ready(&[(self.stdout.as_fd(), Want::Read)], wait_until)
                .map_err(|e| format!("poll: {e}"))?;
            if ready[0] {
                self.fill()?;
            }
        }
    }

    /// Read what standard output holds now into `pending`, up to [`FILL`] bytes more;
    /// the end of it means the plug-in is gone. More than [`PENDING_MAX`] bytes unread
    /// (written while we were still writing our request) is a flood.
    fn fill(&mut self) -> Result<(), String> {
        // What was taken is dropped before more is read.
        self.pending.drain(..self.taken);
        self.taken = 0;
        if self.pending.len() >= PENDING_MAX {
            return Err(format!(
                "wrote more than {} KiB before it read its request",
                PENDING_MAX >> 10
            ));
        }
        let mut buf = [0u8; 8192];
        let until = self.pending.len() + FILL;
        while self.pending.len() < until {
            match self.stdout.read(&mut buf) {
                Ok(0) => return Err(self.gone()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot be read from: {e}")),
            }
        }
        Ok(())
    }

    fn timed_out(&self, what: &str) -> String {
        format!(
            "did not {what} within {} s (reply_timeout={})",
            self.timeout_secs, self.timeout_secs
        )
    }

    /// Why its output ended: its exit status when it exits soon (it is ended then).
    fn gone(&mut self) -> String {
        if self.exited_by(Instant::now() + Duration::from_millis(500)) {
            if let Some(st) = self.end() {
                return format!("exited ({st})");
            }
        }
        "closed its standard output".to_string()
    }

    /// True once it has exited (not reaped: its group id stays its own), waiting until
    /// `deadline` at most.
    fn exited_by(&self, deadline: Instant) -> bool {
        match &self.pidfd {
            Some(fd) => poll::ready(&[(fd.as_fd(), Want::Read)], deadline).is_ok_and(|r| r[0]),
            None => false,
        }
    }

    /// Kill its process group, then reap it: the group id is the child's pid, which
    /// cannot name another group before the reap. Its exit status, the first time.
    fn end(&mut self) -> Option<std::process::ExitStatus> {
        if self.reaped {
            return None;
        }
        exec_fd::kill_group(self.child.id());
        self.reaped = true;
        self.child.wait().ok()
    }

    /// End it: close its standard input (its cue, after `bye`, to exit), give it until
    /// `grace` is over to exit, then kill its process group, and reap it.
    pub fn finish(mut self, grace: Duration) {
        self.stdin = None;
        self.exited_by(Instant::now() + grace);
        self.end();
    }
}

impl Drop for PolicyProcess {
    fn drop(&mut self) {
        // Its whole process group (it runs in one of its own), so that what a script
        // started does not outlive it.
        self.end();
    }
}

fn too_long() -> String {
    format!("wrote a line longer than {MAX_LINE} bytes")
}

/// Log the plug-in's standard error, a line at a time, cut to [`STDERR_LINE`] bytes and
/// at most [`STDERR_LINES`] lines per [`STDERR_WINDOW`]. The thread ends when the pipe
/// does (the plug-in and all it started have exited).
fn log_stderr(stderr: ChildStderr, engine: String, pid: u32) {
    let thread_name = format!("etmemd:{engine}:stderr");
    let spawned = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            let (mut window, mut logged, mut dropped) = (Instant::now(), 0u32, 0u64);
            loop {
                line.clear();
                match r.by_ref().take(STDERR_LINE as u64).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if line.last() != Some(&b'\n') {
                    // Cut: skip the rest of the line.
                    let mut sink = Vec::new();
                    let _ = r.by_ref().take(1 << 20).read_until(b'\n', &mut sink);
                }
                if window.elapsed() >= STDERR_WINDOW {
                    if dropped > 0 {
                        crate::log_warn!(
                            "engine {engine}: the plug-in (pid {pid}) wrote {dropped} more lines to its standard error, not logged"
                        );
                    }
                    (window, logged, dropped) = (Instant::now(), 0, 0);
                }
                if logged >= STDERR_LINES {
                    dropped += 1;
                    continue;
                }
                logged += 1;
                let text = String::from_utf8_lossy(&line);
                crate::log_info!(
                    "engine {engine}: plug-in (pid {pid}): {}",
                    text.trim_end().escape_debug()
                );
            }
        });
    if let Err(e) = spawned {
        crate::log_error!(
            "{thread_name}: cannot start the thread that logs the plug-in's standard error: {e}"
        );
    }
}
