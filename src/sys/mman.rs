//! Anonymous memory regions owned by this process, for the test workload: map, guard,
//! advise, name, and touch pages through safe methods (volatile accesses, so the compiler
//! cannot elide the touches that the trackers are meant to see).

use crate::error::{Error, Result};

/// `PR_SET_VMA` and `PR_SET_VMA_ANON_NAME` (Linux 5.17+, CONFIG_ANON_VMA_NAME).
const PR_SET_VMA: libc::c_int = 0x5356_4d41;
const PR_SET_VMA_ANON_NAME: libc::c_ulong = 0;

/// THP advice for a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thp {
    /// `MADV_HUGEPAGE`: back with 2 MiB pages where possible.
    Huge,
    /// `MADV_NOHUGEPAGE`: base pages only, whatever the system default is.
    NoHuge,
}

/// A private anonymous mapping of `len` bytes starting at a `align`-aligned address, with
/// an inaccessible guard page on both sides so the kernel never merges it with a
/// neighbouring mapping (each region stays its own VMA).
#[derive(Debug)]
pub struct AnonRegion {
    map: *mut u8,
    map_len: usize,
    start: *mut u8,
    len: usize,
}

// SAFETY: the region is plain memory owned by this value; moving it between threads is
// as safe as moving a Vec.
unsafe impl Send for AnonRegion {}

impl AnonRegion {
    /// Map `len` bytes (rounded up to pages) aligned to `align` (a power of two ≥ page).
    pub fn new(len: usize, align: usize, thp: Thp) -> Result<AnonRegion> {
        let page = crate::types::page_size() as usize;
        let align = align.max(page);
        let len = len.div_ceil(page).max(1) * page;
        let map_len = len + 2 * align + 2 * page;
        // SAFETY: a fresh anonymous private mapping at a kernel-chosen address; no
        // existing memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(Error::io("mmap", std::io::Error::last_os_error()));
        }
        let map = map as *mut u8;
        let base = map as usize;
        let start_addr = (base + page + align - 1) & !(align - 1);
        let region = AnonRegion {
            map,
            map_len,
            start: start_addr as *mut u8,
            len,
        };
        // Guards: everything of the mapping before and after [start, start+len).
        let before = start_addr - base;
        let after = base + map_len - (start_addr + len);
        region.protect_none(map, before)?;
        region.protect_none((start_addr + len) as *mut u8, after)?;
        let advice = match thp {
            Thp::Huge => libc::MADV_HUGEPAGE,
            Thp::NoHuge => libc::MADV_NOHUGEPAGE,
        };
        // SAFETY: advice on a range inside our own mapping; it changes no memory contents.
        let r = unsafe { libc::madvise(region.start as *mut libc::c_void, len, advice) };
        if r != 0 {
            return Err(Error::io("madvise", std::io::Error::last_os_error()));
        }
        Ok(region)
    }

    /// Map `len` bytes (rounded up to 2 MiB) of hugetlb memory (`MAP_HUGETLB`, from the
    /// default hugepage pool). No guard pages: a hugetlb mapping never merges with
    /// another.
    pub fn new_hugetlb(len: usize) -> Result<AnonRegion> {
        let huge = 2usize << 20;
        let len = len.div_ceil(huge).max(1) * huge;
        // SAFETY: a fresh private hugetlb mapping at a kernel-chosen address; no existing
        // memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(Error::io(
                "mmap(MAP_HUGETLB) (are hugepages reserved? see /proc/sys/vm/nr_hugepages)",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(AnonRegion {
            map: map as *mut u8,
            map_len: len,
            start: map as *mut u8,
            len,
        })
    }

    /// Set the region's NUMA policy: `Some(node)` binds new pages to that node
    /// (`MPOL_BIND`), `None` returns to the default policy. Pages already there stay.
    pub fn bind_to_node(&self, node: Option<u32>) -> Result<()> {
        const MPOL_DEFAULT: libc::c_int = 0;
        const MPOL_BIND: libc::c_int = 2;
        let mut mask = [0 as libc::c_ulong; 16];
        let bits = libc::c_ulong::BITS as usize;
        let (mode, maxnode) = match node {
            Some(n) if (n as usize) < mask.len() * bits => {
                mask[n as usize / bits] |= 1 << (n as usize % bits);
                (MPOL_BIND, mask.len() * bits + 1)
            }
            Some(n) => return Err(Error::invalid(format!("NUMA node {n} is out of range"))),
            None => (MPOL_DEFAULT, 0),
        };
        let mask_ptr = if node.is_some() {
            mask.as_ptr()
        } else {
            std::ptr::null()
        };
        // SAFETY: mbind on a range inside our own mapping; the mask pointer is NULL or
        // points to `mask`, whose size in bits covers `maxnode - 1`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                self.start as *mut libc::c_void,
                self.len,
                mode,
                mask_ptr,
                maxnode,
                0 as libc::c_uint,
            )
        };
        if r != 0 {
            return Err(Error::io("mbind", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn protect_none(&self, at: *mut u8, len: usize) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: `at..at+len` lies inside this value's own mapping and nothing
        // references that part (it is outside the usable range).
        let r = unsafe { libc::mprotect(at as *mut libc::c_void, len, libc::PROT_NONE) };
        if r != 0 {
            return Err(Error::io("mprotect", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Make the CPU forget its cached translations of the region (a TLB flush through
    /// `mprotect` read-only and back), so the next access of each page walks the page
    /// table and sets its accessed bit again. Accessed-bit trackers clear that bit without
    /// flushing the TLB (x86 accepts this); a hot set that fits in the TLB — always the
    /// case under QEMU's software TLB — would otherwise look idle.
    pub fn refresh_tlb(&self) -> Result<()> {
        for prot in [libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE] {
            // SAFETY: changes protection of our own usable range only; no reference into
            // it is alive across this call and the final protection is read-write again.
            let r = unsafe { libc::mprotect(self.start as *mut libc::c_void, self.len, prot) };
            if r != 0 {
                return Err(Error::io("mprotect", std::io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    /// Lock the region into memory and unlock it again. `mlock(2)` first drains every
    /// CPU's batch of pages waiting to join the LRU lists, so the pages just faulted in
    /// become visible to LRU-based trackers (page_idle ignores pages off the LRU).
    pub fn lock_unlock(&self) -> Result<()> {
        // SAFETY: locking and unlocking our own mapped range changes no memory contents.
        let r = unsafe { libc::mlock(self.start as *const libc::c_void, self.len) };
        if r != 0 {
            return Err(Error::io("mlock", std::io::Error::last_os_error()));
        }
        // SAFETY: as above.
        unsafe { libc::munlock(self.start as *const libc::c_void, self.len) };
        Ok(())
    }

    /// Back the region with a private mapping of a memfd called `name` instead of plain
    /// anonymous memory: the VMA then shows as `/memfd:NAME (deleted)` in maps, a marker
    /// any kernel since 3.17 can carry (unlike `[anon:NAME]`). Written pages of a private
    /// mapping are ordinary anonymous copy-on-write pages, swapped like any other. Call it
    /// before filling the region: the old contents are dropped.
    pub fn back_with_memfd(&self, name: &str) -> Result<()> {
        if name.contains('\0') {
            return Err(Error::invalid(format!(
                "memfd name {name:?} contains a NUL byte"
            )));
        }
        let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| Error::io("memfd_create", e.into()))?;
        nix::unistd::ftruncate(&fd, self.len as libc::off_t)
            .map_err(|e| Error::io("ftruncate", e.into()))?;
        // SAFETY: MAP_FIXED replaces exactly [start, start+len), which this value owns and
        // which nothing borrows while `&self` is not being read; the fd is valid for the
        // call and the mapping keeps its own reference to the file.
        let map = unsafe {
            libc::mmap(
                self.start as *mut libc::c_void,
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(Error::io(
                "mmap of a memfd",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Name the region's VMA `[anon:NAME]` (Linux 5.17+ with CONFIG_ANON_VMA_NAME).
    pub fn set_name(&self, name: &str) -> Result<()> {
        let c = std::ffi::CString::new(name)
            .map_err(|_| Error::invalid(format!("VMA name {name:?} contains a NUL byte")))?;
        // SAFETY: prctl reads the NUL-terminated name during the call; the range is ours.
        let r = unsafe {
            libc::prctl(
                PR_SET_VMA,
                PR_SET_VMA_ANON_NAME,
                self.start as libc::c_ulong,
                self.len as libc::c_ulong,
                c.as_ptr() as libc::c_ulong,
            )
        };
        if r != 0 {
            return Err(Error::io(
                "prctl(PR_SET_VMA_ANON_NAME)",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// First address of the usable range.
    pub fn addr(&self) -> u64 {
        self.start as u64
    }

    /// Length of the usable range in bytes (whole pages, guard pages not included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the usable range holds no bytes (`new` always maps at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn words(&self) -> usize {
        self.len / 8
    }

    /// Write word `i` (volatile).
    fn put(&self, i: usize, v: u64) {
        if i < self.words() {
            // SAFETY: i < len/8, so the aligned u64 lies in the read-write usable range
            // of a mapping that lives as long as self.
            unsafe { std::ptr::write_volatile((self.start as *mut u64).add(i), v) }
        }
    }

    /// Read word `i` (volatile); 0 beyond the end.
    fn get(&self, i: usize) -> u64 {
        if i < self.words() {
            // SAFETY: as in `put`.
            unsafe { std::ptr::read_volatile((self.start as *const u64).add(i)) }
        } else {
            0
        }
    }

    /// The pattern word at index `i` for `seed`: differs per word and per region.
    pub fn pattern(seed: u64, i: usize) -> u64 {
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed
    }

    /// Write the first word of one page every `stride` bytes (faults in just those
    /// pages: a sparse region, as a big reservation that is barely used).
    pub fn touch_every(&self, stride: usize) {
        let step = (stride / 8).max(1);
        for i in (0..self.words()).step_by(step) {
            self.put(i, 1);
        }
    }

    /// Fill every word with the pattern.
    pub fn fill(&self, seed: u64) {
        for i in 0..self.words() {
            self.put(i, Self::pattern(seed, i));
        }
    }

    /// Check every word against the pattern; the index of the first bad word, if any.
    pub fn verify(&self, seed: u64) -> Option<usize> {
        (0..self.words()).find(|&i| self.get(i) != Self::pattern(seed, i))
    }

    /// Read one word of every page (marks each page accessed); returns a checksum.
    pub fn read_pages(&self) -> u64 {
        let step = crate::types::page_size() as usize / 8;
        (0..self.words())
            .step_by(step)
            .fold(0u64, |acc, i| acc.wrapping_add(self.get(i)))
    }

    /// Rewrite the first word of every page with its pattern (marks each page dirty
    /// without changing its contents).
    pub fn write_pages(&self, seed: u64) {
        let step = crate::types::page_size() as usize / 8;
        for i in (0..self.words()).step_by(step) {
            self.put(i, Self::pattern(seed, i));
        }
    }
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once; nothing borrows it past self.
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_verify_and_guards() {
        let r = AnonRegion::new(64 * 1024, 2 << 20, Thp::NoHuge).unwrap();
        assert_eq!(r.addr() % (2 << 20), 0);
        r.fill(42);
        assert_eq!(r.verify(42), None);
        r.write_pages(42);
        let _ = r.read_pages();
        assert_eq!(r.verify(42), None);
        r.put(3, 0);
        assert_eq!(r.verify(42), Some(3));
        let maps = crate::sys::maps::read_maps(std::process::id() as i32).unwrap();
        assert!(maps
            .iter()
            .any(|v| v.range.start == r.addr() && v.range.len() == r.len() as u64));
    }
}
