//! The daemon's log: syslog (ident `etmemd`) at the level chosen with `-l`, and stderr
//! too while running in the foreground. Outside the daemon nothing is logged to syslog.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Log levels as `etmemd -l` numbers them: 0 debug, 1 info, 2 warning, 3 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
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

    fn priority(self) -> libc::c_int {
        match self {
            Level::Debug => libc::LOG_DEBUG,
            Level::Info => libc::LOG_INFO,
            Level::Warn => libc::LOG_WARNING,
            Level::Error => libc::LOG_ERR,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Error as u8);
static SYSLOG: AtomicBool = AtomicBool::new(false);
static STDERR: AtomicBool = AtomicBool::new(true);

/// Set up logging for the daemon: messages at `level` or above go to syslog, and to
/// stderr when `stderr` is true (the daemon runs in the foreground).
pub fn init_daemon(level: Level, stderr: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    STDERR.store(stderr, Ordering::Relaxed);
    crate::sys::syslog::open();
    SYSLOG.store(true, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// Emit one message (use the `log_*!` macros).
pub fn emit(level: Level, msg: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let text = msg.to_string();
    if SYSLOG.load(Ordering::Relaxed) {
        crate::sys::syslog::send(level.priority(), &text);
    }
    if STDERR.load(Ordering::Relaxed) {
        eprintln!("etmemd: {}: {text}", level.word());
    }
}

#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Error, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Warn, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Debug, format_args!($($t)*)) } }
