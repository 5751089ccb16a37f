//! `process_madvise(2)` (Linux 5.10+): give memory advice, such as `MADV_PAGEOUT`, about
//! ranges of another process's address space, addressed through its pidfd.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use crate::sys::pidfd::Pidfd;
use crate::types::Range;

/// The most iovecs one call takes (`UIO_MAXIOV`); more fail with EINVAL.
pub const MAX_IOVECS: usize = libc::UIO_MAXIOV as usize;

/// Advise the kernel about `ranges` of the process behind `pidfd`. Returns the bytes
/// advised: the kernel goes through the ranges in order and stops at the first one that
/// fails, returning the bytes of the ranges before it, or that range's error when it
/// was the first. At most [`MAX_IOVECS`] ranges per call.
pub fn process_madvise(pidfd: &Pidfd, ranges: &[Range], advice: i32) -> io::Result<u64> {
    if ranges.len() > MAX_IOVECS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let empty = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut iov = [empty; MAX_IOVECS];
    for (slot, r) in iov.iter_mut().zip(ranges) {
        let base = usize::try_from(r.start).map_err(|_| einval())?;
        let len = usize::try_from(r.len()).map_err(|_| einval())?;
        // The address belongs to the other process; it is never dereferenced here.
        slot.iov_base = base as *mut libc::c_void;
        slot.iov_len = len;
    }
    call(pidfd, iov.as_ptr(), ranges.len(), advice)
}

/// Whether this kernel takes `advice` through `process_madvise` for this process: a call
/// with no ranges returns 0 when it does, ENOSYS without the syscall, EINVAL when the
/// advice is not accepted for another process, EPERM without CAP_SYS_NICE over it,
/// ESRCH when it has exited.
pub fn probe(pidfd: &Pidfd, advice: i32) -> io::Result<()> {
    call(pidfd, std::ptr::null(), 0, advice).map(|_| ())
}

fn call(pidfd: &Pidfd, iov: *const libc::iovec, n: usize, advice: i32) -> io::Result<u64> {
    // SAFETY: `iov` points to `n` initialised iovecs that live for the whole call (or is
    // NULL with n == 0); the kernel only reads them, and the addresses inside them are
    // interpreted in the target's address space, never touched in ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            pidfd.as_fd().as_raw_fd(),
            iov,
            n,
            advice,
            0u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_ranges_are_refused_before_the_kernel() {
        let me = Pidfd::open(std::process::id() as i32).unwrap();
        let ranges = vec![Range::new(0, 4096); MAX_IOVECS + 1];
        let e = process_madvise(&me, &ranges, libc::MADV_PAGEOUT).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn probing_ourselves_does_not_crash() {
        let me = Pidfd::open(std::process::id() as i32).unwrap();
        // Any answer is fine (old kernels say ENOSYS); the call must only be safe.
        let _ = probe(&me, libc::MADV_PAGEOUT);
    }
}
