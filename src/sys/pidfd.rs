//! Pidfds: a process held by a file descriptor, so a recycled pid is never mistaken for
//! the process we meant (Linux 5.3+).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Kind, Result};
use crate::types::Pid;

/// An open pidfd together with the pid it was opened for.
#[derive(Debug)]
pub struct Pidfd {
    pid: Pid,
    fd: OwnedFd,
}

impl Pidfd {
    /// Open a pidfd for `pid`. Fails with `NotFound` if there is no such process and with
    /// `Unsupported` on kernels older than 5.3.
    pub fn open(pid: Pid) -> Result<Pidfd> {
        if pid <= 0 {
            return Err(Error::new(
                Kind::NotFound,
                format!("no process with pid {pid}"),
            ));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no pointers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ESRCH) {
                return Err(Error::new(
                    Kind::NotFound,
                    format!("no process with pid {pid}"),
                ));
            }
            return Err(Error::io(format!("pidfd_open({pid})"), err));
        }
        // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Ok(Pidfd { pid, fd })
    }

    /// The pid the pidfd was opened for.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// True while the process has not exited. Anything read under `/proc/PID` before this
    /// returns true belonged to this process, not to a later one with a recycled pid.
    pub fn is_alive(&self) -> bool {
        // SAFETY: signal 0 only checks deliverability; the other pointer argument is NULL.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            return true;
        }
        // EPERM means it exists but we may not signal it.
        std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    /// An error of kind `Gone` if the process has exited.
    pub fn check_alive(&self) -> Result<()> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(Error::new(
                Kind::Gone,
                format!("process {} exited", self.pid),
            ))
        }
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive() {
        let p = Pidfd::open(std::process::id() as Pid).unwrap();
        assert!(p.is_alive());
    }

    #[test]
    fn exited_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = Pidfd::open(child.id() as Pid).unwrap();
        child.wait().unwrap();
        assert!(!p.is_alive());
        assert_eq!(p.check_alive().unwrap_err().kind, Kind::Gone);
    }

    #[test]
    fn bad_pid_is_not_found() {
        assert_eq!(Pidfd::open(-1).unwrap_err().kind, Kind::NotFound);
        assert_eq!(Pidfd::open(0x3fff_fff0).unwrap_err().kind, Kind::NotFound);
    }
}
