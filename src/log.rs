//! The daemon's log: syslog (ident `etmemd`) at the level chosen with `-l`, and stderr
//! too while running in the foreground. Outside the daemon nothing is logged to syslog.
//!
//! This module sits at the bottom of the layers, so every layer (`sys` too) can log. It
//! does not call syslog itself: the daemon hands it a [`Sink`] (`sys::syslog::send`) at
//! start-up.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

/// Log levels as `etmemd -l` numbers them: 0 debug, 1 info, 2 warning, 3 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for tracing a problem: each request received, each range the kernel would
    /// not swap out.
    Debug = 0,
    /// Changes of state: objects added and deleted, projects started and stopped.
    Info = 1,
    /// A failure the daemon carries on after: a task's cycle failed, a client was dropped,
    /// a config file warning.
    Warn = 2,
    /// The daemon cannot do part of its job: the server does not start, a thread cannot
    /// be created or panicked. The default level.
    Error = 3,
}

impl Level {
    /// The level `etmemd -l N` names (0 to 3); `None` for any other number.
    pub fn from_number(n: i64) -> Option<Level> {
        Some(match n {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            3 => Level::Error,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }

    /// The syslog(3) priority of this level.
    pub fn priority(self) -> libc::c_int {
        match self {
            Level::Debug => libc::LOG_DEBUG,
            Level::Info => libc::LOG_INFO,
            Level::Warn => libc::LOG_WARNING,
            Level::Error => libc::LOG_ERR,
        }
    }
}

/// Where the daemon's messages go besides stderr: a function taking a syslog priority
/// and the text (the daemon passes `sys::syslog::send`).
pub type Sink = fn(libc::c_int, &str);

static LEVEL: AtomicU8 = AtomicU8::new(Level::Error as u8);
static SINK: OnceLock<Sink> = OnceLock::new();
static STDERR: AtomicBool = AtomicBool::new(true);

/// Set up logging for the daemon: messages at `level` or above go to `sink` (syslog),
/// and to stderr when `stderr` is true (the daemon runs in the foreground).
pub fn init_daemon(level: Level, stderr: bool, sink: Sink) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    STDERR.store(stderr, Ordering::Relaxed);
    let _ = SINK.set(sink);
}

/// Whether a message at `level` is logged: at or above the level given to
/// [`init_daemon`] (error before it is called).
pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// Emit one message (use the `log_*!` macros).
pub fn emit(level: Level, msg: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let text = msg.to_string();
    if let Some(sink) = SINK.get() {
        sink(level.priority(), &text);
    }
    if STDERR.load(Ordering::Relaxed) {
        // Not eprintln!: that panics when stderr is a closed pipe, and a log line must
        // never be what takes a task or the daemon down.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "etmemd: {}: {text}", level.word());
    }
}

/// Log at [`Level::Error`](crate::log::Level::Error), with `format!` arguments.
#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Error, format_args!($($t)*)) } }
/// Log at [`Level::Warn`](crate::log::Level::Warn), with `format!` arguments.
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Warn, format_args!($($t)*)) } }
/// Log at [`Level::Info`](crate::log::Level::Info), with `format!` arguments.
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Info, format_args!($($t)*)) } }
/// Log at [`Level::Debug`](crate::log::Level::Debug), with `format!` arguments.
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Debug, format_args!($($t)*)) } }
