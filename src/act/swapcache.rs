//! Swapcache watermarks (spec §6.8): after swapping, etmem may ask openEuler's etmem_swap
//! module to shrink the swapcache, which otherwise keeps swapped pages in DRAM too. Both
//! settings are system-wide and go through ioctls on a freshly opened
//! `/proc/PID/swap_pages`, as upstream does.

use crate::act::swap_pages::open_file;
use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::sys::swap_pages_ioctl;
use std::os::fd::AsFd;

/// The ioctl argument: low percent in bits 0-7, high percent in bits 8-15, masked exactly
/// like upstream's `(low & 0xff) | ((high << 8) & 0xff00)`.
pub fn wmark_arg(low: u32, high: u32) -> u32 {
    (low & 0xff) | ((high << 8) & 0xff00)
}

/// Set the swapcache low and high watermarks (percent of total RAM).
pub fn set_swapcache_wmark(target: &Pidfd, low: u32, high: u32) -> Result<()> {
    let file = open_file(target)?;
    swap_pages_ioctl::set_swapcache_wmark(file.as_fd(), wmark_arg(low, high)).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::EINVAL) => Error::new(
                Kind::Invalid,
                format!(
                    "the kernel refused swapcache watermarks low {low} high {high}: each must \
                     be at most 100 and low at most high"
                ),
            ),
            _ => Error::io("SET_SWAPCACHE_WMARK on swap_pages", e),
        }
    })
}

/// Wake the kernel thread that reclaims swapcache down to the low watermark.
pub fn reclaim_swapcache(target: &Pidfd) -> Result<()> {
    let file = open_file(target)?;
    swap_pages_ioctl::reclaim_swapcache_on(file.as_fd())
        .map_err(|e| Error::io("RECLAIM_SWAPCACHE_ON on swap_pages", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_upstream() {
        assert_eq!(wmark_arg(10, 30), 10 | (30 << 8));
        assert_eq!(wmark_arg(0x1ff, 0x1ff), 0xffff);
        assert_eq!(wmark_arg(u32::MAX, u32::MAX), 0xffff);
    }

    #[test]
    fn without_the_module_the_message_names_it() {
        if std::path::Path::new(&crate::act::swap_pages::path(std::process::id() as i32)).exists() {
            return; // an openEuler kernel with etmem_swap: nothing to check here
        }
        let me = Pidfd::open(std::process::id() as i32).unwrap();
        let e = reclaim_swapcache(&me).unwrap_err();
        assert_eq!(e.kind, Kind::Unsupported);
        assert!(e.msg.contains("etmem_swap"), "{}", e.msg);
    }
}
