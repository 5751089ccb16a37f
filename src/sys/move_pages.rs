//! `move_pages(2)`: where the pages of another process are (which NUMA node), and moving
//! them to another node. A raw syscall (glibc has no wrapper; libnuma's is not a crate).

use std::io;

use crate::types::Pid;

/// `MPOL_MF_MOVE`: move only the pages mapped by this process alone.
pub const MPOL_MF_MOVE: i32 = 1 << 1;

/// `MPOL_MF_MOVE_ALL`: also move pages other processes map too (needs CAP_SYS_NICE);
/// what etmem uses, since a tiering daemon moves shared anonymous memory as well.
pub const MPOL_MF_MOVE_ALL: i32 = 1 << 2;

/// Ask which node each page of `addrs` in process `pid` is on: `status[i]` becomes the
/// node of `addrs[i]`, or a negative errno (`-ENOENT` not present, `-EFAULT` not mapped
/// or the zero page). `status` must be as long as `addrs` (EINVAL otherwise).
pub fn query(pid: Pid, addrs: &[u64], status: &mut [i32]) -> io::Result<()> {
    if status.len() != addrs.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    call(pid, addrs, None, status, 0).map(|_| ())
}

/// Move each page `addrs[i]` of process `pid` to node `nodes[i]`. Every `status[i]` the
/// kernel reached becomes the page's node afterwards or a negative errno (`-EBUSY`,
/// `-ENOMEM`, `-EACCES`...); entries it did not reach keep what the caller put there.
/// Returns the number of pages not migrated (0 when all that could move did): since
/// Linux 4.17 a positive return means the kernel stopped on pages it failed to migrate,
/// whose status it did not write. Whole-call errors (EPERM, ESRCH, ENODEV, EACCES for a
/// node outside the cpuset, ENOMEM) are the `Err`. All three slices must be as long.
pub fn move_to(
    pid: Pid,
    addrs: &[u64],
    nodes: &[i32],
    status: &mut [i32],
    flags: i32,
) -> io::Result<usize> {
    if status.len() != addrs.len() || nodes.len() != addrs.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    call(pid, addrs, Some(nodes), status, flags)
}

fn call(
    pid: Pid,
    addrs: &[u64],
    nodes: Option<&[i32]>,
    status: &mut [i32],
    flags: i32,
) -> io::Result<usize> {
    if addrs.is_empty() {
        return Ok(0);
    }
    // The kernel reads `void *pages[]`: on 64-bit Linux a pointer is a u64, so `addrs`
    // is that array as it is; a 32-bit build would need a copy, which etmem never is.
    const _: () = assert!(std::mem::size_of::<*const libc::c_void>() == 8);
    let nodes_ptr = nodes.map_or(std::ptr::null(), <[i32]>::as_ptr);
    // SAFETY: `addrs`, `nodes` (or NULL) and `status` are live slices of `addrs.len()`
    // elements for the whole call, checked by both callers; the kernel reads the first
    // two and writes only into `status`. The addresses are the target's, never
    // dereferenced in this process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            pid as libc::c_long,
            addrs.len() as libc::c_ulong,
            addrs.as_ptr(),
            nodes_ptr,
            status.as_mut_ptr(),
            flags as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pages_are_found() {
        let page = crate::types::page_size() as usize;
        let mut buf = vec![1u8; 2 * page];
        let start = (buf.as_mut_ptr() as u64 + page as u64 - 1) & !(page as u64 - 1);
        let mut status = [i32::MIN; 2];
        query(0, &[start, 8], &mut status).unwrap();
        assert!(status[0] >= 0, "{status:?}");
        assert_eq!(status[1], -libc::EFAULT);
        assert!(buf[0] == 1);
    }

    #[test]
    fn mismatched_lengths_are_refused_before_the_kernel() {
        let e = query(0, &[0, 1], &mut [0]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let e = move_to(0, &[0], &[0, 0], &mut [0], MPOL_MF_MOVE).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert!(query(0, &[], &mut []).is_ok());
    }
}
