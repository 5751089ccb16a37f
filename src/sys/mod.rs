//! The operating system, seen through safe functions: procfs parsing, process lookup,
//! pidfds, sockets, syslog. Every `unsafe` block of the crate lives under this module.

// The one module allowed the `unsafe_code` the crate root denies.
#![allow(unsafe_code)]

pub mod cgroup;
pub mod clear_refs;
pub mod damon_sysfs;
#[cfg(feature = "dlopen")]
pub mod dlopen;
pub mod exec_fd;
pub mod file_stamp;
pub mod fork;
pub mod glob;
pub mod idle_pages_io;
pub mod iomem;
pub mod kdamond_record;
pub mod kpageflags;
pub mod local_time;
pub mod maps;
pub mod meminfo;
pub mod mman;
pub mod move_pages;
pub mod node_mem;
pub mod numa;
pub mod page_idle;
pub mod pagemap;
pub mod parent_death;
pub mod pidfd;
#[cfg(feature = "dlopen")]
pub mod plugin;
pub mod poll;
pub mod process;
pub mod process_madvise;
pub mod replace_file;
pub mod smaps;
pub mod swap_pages_ioctl;
pub mod syslog;
pub mod trusted_file;

/// Number of online processors (`get_nprocs()` in upstream), at least 1.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        1
    }
}

/// The running kernel's version (major, minor), from `/proc/sys/kernel/osrelease`, for
/// features the kernel offers without a file to probe.
pub fn kernel_version() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_version(&text)
}

/// `6.12.117-foo` → `(6, 12)`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.12.117\n"), Some((6, 12)));
        assert_eq!(parse_version("6.18-rc1+"), Some((6, 18)));
        assert_eq!(parse_version("x"), None);
        assert!(kernel_version().is_some());
    }
}
