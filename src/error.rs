//! One error type for the whole crate: a kind that callers branch on (exit codes, reply
//! codes) and a message for people that carries its context (file, key, pid, value).

use std::fmt;
use std::io;

/// What went wrong, coarsely: enough to pick an exit status or an upstream reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input from the user: a command-line word, a config value, a request field.
    Invalid,
    /// The thing named does not exist (file, process, project...).
    NotFound,
    /// The process we were working on exited (or its pid was recycled) meanwhile.
    Gone,
    /// The kernel refused (EPERM/EACCES) or the peer may not do this.
    Permission,
    /// This kernel lacks the interface; the message says which option or module.
    Unsupported,
    /// An object already exists.
    Exists,
    /// Anything else from the operating system.
    Io,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub msg: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::new(Kind::Invalid, msg)
    }

    /// An OS error with what we were doing when it happened; ENOENT/ESRCH map to
    /// `NotFound`, EPERM/EACCES to `Permission`.
    pub fn io(context: impl fmt::Display, err: io::Error) -> Error {
        let kind = match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Kind::NotFound,
            Some(libc::EPERM) | Some(libc::EACCES) => Kind::Permission,
            Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Kind::Unsupported,
            _ => Kind::Io,
        };
        Error::new(kind, format!("{context}: {err}"))
    }

    /// Prefix the message with more context, keeping the kind.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            msg: format!("{context}: {}", self.msg),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_meaning() {
        let e = Error::io("open /proc/1/x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.kind, Kind::NotFound);
        assert_eq!(
            e.to_string(),
            format!(
                "open /proc/1/x: {}",
                io::Error::from_raw_os_error(libc::ENOENT)
            )
        );
        let e = Error::io("x", io::Error::from_raw_os_error(libc::EACCES)).context("scan");
        assert_eq!(e.kind, Kind::Permission);
        assert!(e.msg.starts_with("scan: x: "));
    }
}
