//! One error type for the whole crate: a kind that callers branch on (exit codes, reply
//! codes), a message for people, and the context a caller may need without reading the
//! message back apart: the file a failed call was about, and the daemon object or config
//! group the error concerns.

use std::fmt;
use std::io;

/// What went wrong, coarsely: enough to pick an exit status or an upstream reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input on a command line (an option, a range, standard input): exit status 2.
    Usage,
    /// Bad input from a config file or a request field.
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
    /// A project is already in the state a request asks for (started, or stopped).
    State,
    /// Anything else from the operating system, or a failure of our own.
    Io,
}

/// The daemon object, or the config group, an error is about; with [`Kind`] it picks
/// upstream's reply code (`project is not exist`, `engine has been existed`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A project (`[project]`, `-n NAME`): `project has been existed`, `project is not exist`.
    Project,
    /// An engine of a project (`[engine]`): `engine has been existed`, `engine is not exist`.
    Engine,
    /// A task of an engine (`[task]`): `task has been existed`, `task is not exist`.
    Task,
}

/// An error: its kind, its message, and what it is about ([`Info`], behind a box so that
/// every `Result` stays one word wide: results are moved up the call chain at every `?`,
/// and copying a four-field error there was a tenth of the binary's code).
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Info>);

/// What an [`Error`] holds; its fields are read through the error (`e.kind`, `e.msg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// What went wrong, for callers that branch on it.
    pub kind: Kind,
    /// The message for people: what was done, on what, and why it failed.
    pub msg: String,
    /// The file a failed call was about (`/proc/42/pagemap`), when there is one.
    pub path: Option<String>,
    /// The project, engine or task (or config group) the error is about.
    pub object: Option<Object>,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::ops::Deref for Error {
    type Target = Info;
    fn deref(&self) -> &Info {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut Info {
        &mut self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Info> for Error {
    fn from(info: Info) -> Error {
        Error(Box::new(info))
    }
}

impl Error {
    /// An error of `kind` with a message and no further context.
    pub fn new(kind: Kind, msg: impl Into<String>) -> Error {
        Error::from(Info {
            kind,
            msg: msg.into(),
            path: None,
            object: None,
        })
    }

    /// What the error holds, by value.
    pub fn into_info(self) -> Info {
        *self.0
    }

    /// Bad config or request input ([`Kind::Invalid`]).
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::new(Kind::Invalid, msg)
    }

    /// Bad command-line input ([`Kind::Usage`]).
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::new(Kind::Usage, msg)
    }

    /// An OS error with what we were doing when it happened; ENOENT/ESRCH map to
    /// `NotFound`, EPERM/EACCES to `Permission`, ENOSYS/EOPNOTSUPP to `Unsupported`.
    pub fn io(context: impl fmt::Display, err: io::Error) -> Error {
        let kind = match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Kind::NotFound,
            Some(libc::EPERM) | Some(libc::EACCES) => Kind::Permission,
            Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Kind::Unsupported,
            _ => Kind::Io,
        };
        Error::new(kind, format!("{context}: {err}"))
    }

    /// An OS error reading or writing the file at `path` (message `PATH: reason`), with
    /// the path kept so that a caller can say what was denied.
    pub fn file(path: impl fmt::Display, err: io::Error) -> Error {
        let path = path.to_string();
        let mut e = Error::io(&path, err);
        e.path = Some(path);
        e
    }

    /// The same error, said to be about `object`.
    pub fn about(mut self, object: Object) -> Error {
        self.object = Some(object);
        self
    }

    /// Prefix the message with more context, keeping the kind, path and object.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.msg = format!("{context}: {}", self.msg);
        self
    }
}

/// The guard of `m`, also when a panic poisoned it: panics are caught and reported as
/// one unit of work's error ([`catch_panic`]), and what the crate keeps behind a mutex
/// stays consistent across one, so a poisoned lock must block nothing.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `f`, turning a panic inside it into an error of kind `Io` saying "WHO panicked:
/// MESSAGE", so that a bug fails one unit of work (a task's cycle, one request) instead of
/// the whole daemon. Whatever `f` shared must stay usable after a panic: the crate's
/// mutexes are taken with [`lock`], so poisoning blocks nothing.
pub fn catch_panic<T>(who: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(Error::new(
            Kind::Io,
            format!("{who} panicked: {}", panic_message(&*payload)),
        ))
    })
}

/// The message a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
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
    fn a_panic_becomes_an_error() {
        let r: Result<()> = catch_panic("the engine", || panic!("boom {}", 7));
        let e = r.unwrap_err();
        assert_eq!(
            (e.kind, e.msg.as_str()),
            (Kind::Io, "the engine panicked: boom 7")
        );
        let r: Result<()> = catch_panic("x", || std::panic::panic_any(3u8));
        assert_eq!(
            r.unwrap_err().msg,
            "x panicked: (a panic without a message)"
        );
        assert_eq!(catch_panic("x", || Ok(5)), Ok(5));
    }

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

    #[test]
    fn context_is_carried_not_parsed() {
        let e = Error::file(
            "/proc/7/pagemap",
            io::Error::from_raw_os_error(libc::EACCES),
        )
        .context("scanning")
        .about(Object::Task);
        assert_eq!(e.kind, Kind::Permission);
        assert_eq!(e.path.as_deref(), Some("/proc/7/pagemap"));
        assert_eq!(e.object, Some(Object::Task));
        assert!(e.msg.starts_with("scanning: /proc/7/pagemap: "));
    }
}
