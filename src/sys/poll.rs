//! Waiting on a few descriptors at once with a deadline (`poll(2)`), and non-blocking
//! mode: how etmemd talks to a plug-in process over pipes without ever waiting on it
//! longer than it allows.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

/// What to wait for on one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Data to read, or the end of it.
    Read,
    /// Room to write, or a closed reader.
    Write,
}

/// Which of `fds` are ready, waiting until `deadline` at most (all false then). A closed
/// peer or an error counts as ready, so the read or write that follows reports it.
pub fn ready(fds: &[(BorrowedFd<'_>, Want)], deadline: Instant) -> std::io::Result<Vec<bool>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, want)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: match want {
                Want::Read => libc::POLLIN,
                Want::Write => libc::POLLOUT,
            },
            revents: 0,
        })
        .collect();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so a wait never ends just before the deadline and spins.
        let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `polled` is a valid array of pollfd of the length given.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
        if n >= 0 {
            return Ok(polled.iter().map(|p| p.revents != 0).collect());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Put `fd` in non-blocking mode: a read or write that cannot go on at once fails with
/// `WouldBlock` instead of waiting.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL take and return integers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The time from now to `deadline`, zero once it has passed.
pub fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn pipes_are_ready_when_they_can_move_data() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let (r, w) = (std::fs::File::from(r), std::fs::File::from(w));
        let soon = || Instant::now() + Duration::from_millis(20);
        let both = |r: &std::fs::File, w: &std::fs::File| {
            ready(&[(r.as_fd(), Want::Read), (w.as_fd(), Want::Write)], soon()).unwrap()
        };
        assert_eq!(both(&r, &w), [false, true]);
        (&w).write_all(b"x").unwrap();
        assert_eq!(both(&r, &w), [true, true]);
        set_nonblocking(w.as_fd()).unwrap();
        // Fill the pipe: then it is not writable.
        while (&w).write(&[0; 4096]).is_ok() {}
        assert_eq!(ready(&[(w.as_fd(), Want::Write)], soon()).unwrap(), [false]);
        drop(r);
        // A closed reader: ready, and the write says why.
        assert_eq!(ready(&[(w.as_fd(), Want::Write)], soon()).unwrap(), [true]);
        assert!(left(Instant::now()).is_zero());
    }
}
