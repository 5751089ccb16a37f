//! fork(2), for `etmemd -m` (systemd `Type=forking`).

use crate::error::{Error, Result};

/// Which side of a fork we are on.
pub enum Forked {
    /// The calling process, which goes on as the parent.
    Parent {
        /// The new process's pid.
        child: i32,
    },
    /// The new process.
    Child,
}

/// Fork this process. Refuses when more than one thread runs: after a fork only the
/// calling thread exists, and locks held by others would stay locked forever.
pub fn fork() -> Result<Forked> {
    let threads = crate::sys::process::status_field(std::process::id() as i32, "Threads")?;
    if threads != "1" {
        return Err(Error::invalid(format!(
            "cannot fork: {threads} threads are running"
        )));
    }
    // SAFETY: the process is single-threaded (checked above), so the child inherits no
    // lock held by another thread and may go on running ordinary Rust code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent {
            child: child.as_raw(),
        }),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(Error::io("fork", e.into())),
    }
}
