//! The ioctls of openEuler's `/proc/PID/swap_pages` (module `etmem_swap`, spec §9.2) that
//! steer the kernel's swapcache reclaim. Both settings are system-wide.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `_IOW(0x77, 1, unsigned int)`: wake the thread that shrinks swapcache to the low mark.
pub const RECLAIM_SWAPCACHE_ON: u32 = 0x4004_7701;
/// `_IOW(0x77, 2, unsigned int)`: set the low (bits 0-7) and high (bits 8-15) marks.
pub const SET_SWAPCACHE_WMARK: u32 = 0x4004_7702;

/// Set the swapcache watermarks; `arg` is already packed (see `act::swapcache`).
pub fn set_swapcache_wmark(fd: BorrowedFd<'_>, arg: u32) -> io::Result<()> {
    ioctl_u32(fd, SET_SWAPCACHE_WMARK, arg)
}

/// Start swapcache reclaim down to the low watermark (the argument is ignored; 0 as upstream).
pub fn reclaim_swapcache_on(fd: BorrowedFd<'_>) -> io::Result<()> {
    ioctl_u32(fd, RECLAIM_SWAPCACHE_ON, 0)
}

fn ioctl_u32(fd: BorrowedFd<'_>, request: u32, arg: u32) -> io::Result<()> {
    // SAFETY: both requests are `_IOW(.., unsigned int)`: the kernel reads one u32 through
    // the pointer, which points to a live local for the whole call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &arg as *const u32) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
