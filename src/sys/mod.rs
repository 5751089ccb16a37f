//! The operating system, seen through safe functions: procfs parsing, process lookup,
//! pidfds, sockets, syslog. Every `unsafe` block of the crate lives under this module.

// The one module allowed the `unsafe_code` the crate root denies.
#![allow(unsafe_code)]

pub mod cgroup;
pub mod clear_refs;
pub mod damon_sysfs;
pub mod fork;
pub mod glob;
pub mod idle_pages_io;
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
pub mod process;
pub mod process_madvise;
pub mod smaps;
pub mod swap_pages_ioctl;
pub mod syslog;

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

/// The effective uid of this process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
