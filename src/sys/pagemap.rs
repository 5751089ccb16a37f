//! `/proc/PID/pagemap`: one 64-bit entry per virtual page saying whether it is present,
//! swapped, soft-dirty, and (for root) which physical frame holds it. Read in large
//! positioned chunks into a caller's reused buffer: never one syscall per page.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Kind, Result};
use crate::sys::process::proc_error;
use crate::types::Pid;

/// Bit 63: the page is present in RAM.
pub const PRESENT: u64 = 1 << 63;
/// Bit 62: the page is in swap.
pub const SWAPPED: u64 = 1 << 62;
/// Bit 55: the page was written since the last `clear_refs` 4 (CONFIG_MEM_SOFT_DIRTY).
pub const SOFT_DIRTY: u64 = 1 << 55;
/// Bits 0-54: the page frame number (zero unless the reader has CAP_SYS_ADMIN).
pub const PFN_MASK: u64 = (1 << 55) - 1;

/// How many entries one read fetches at most (512 KiB of entries, 256 MiB of address space).
pub const CHUNK_ENTRIES: usize = 64 * 1024;

/// True when the entry says the page is resident.
pub fn is_present(entry: u64) -> bool {
    entry & PRESENT != 0
}

/// The frame number of a present page (0 when hidden from unprivileged readers).
pub fn pfn(entry: u64) -> u64 {
    if is_present(entry) {
        entry & PFN_MASK
    } else {
        0
    }
}

/// An open pagemap of one process.
#[derive(Debug)]
pub struct Pagemap {
    pid: Pid,
    file: File,
}

impl Pagemap {
    /// Open `/proc/PID/pagemap`. The file stays bound to the process's address space.
    pub fn open(pid: Pid) -> Result<Pagemap> {
        let path = format!("/proc/{pid}/pagemap");
        let file = File::open(&path).map_err(|e| proc_error(pid, &path, e))?;
        Ok(Pagemap { pid, file })
    }

    /// Fill `out` with the entries of the pages starting at virtual address `start`
    /// (page aligned), `out.len()` of them, in one read per `CHUNK_ENTRIES`. A read that
    /// returns short (the address space is gone) is an error of kind `Gone`.
    pub fn read(&mut self, start: u64, out: &mut [u64]) -> Result<()> {
        let page = crate::types::page_size();
        for (k, chunk) in out.chunks_mut(CHUNK_ENTRIES).enumerate() {
            let vaddr = start.saturating_add((k * CHUNK_ENTRIES) as u64 * page);
            let offset = (vaddr / page).saturating_mul(8);
            let bytes = as_bytes_mut(chunk);
            let got = read_full(&self.file, bytes, offset)
                .map_err(|e| proc_error(self.pid, &format!("/proc/{}/pagemap", self.pid), e))?;
            if got < bytes.len() {
                return Err(Error::new(
                    Kind::Gone,
                    format!("process {} exited during the scan", self.pid),
                ));
            }
        }
        Ok(())
    }
}

/// The entries as the bytes the kernel writes them in (native-endian u64s), so they are
/// read in place without a second buffer.
fn as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(words);
    // SAFETY: u64 has no padding or invalid bit patterns, u8 has alignment 1, and the
    // byte slice covers exactly the same memory for the same (exclusive) lifetime.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
pub fn read_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stack_is_present() {
        let x = [7u8; 64];
        let addr = x.as_ptr() as u64 & !(crate::types::page_size() - 1);
        let mut pm = Pagemap::open(std::process::id() as Pid).unwrap();
        let mut e = [0u64; 1];
        pm.read(addr, &mut e).unwrap();
        assert!(is_present(e[0]));
        assert_eq!(e[0] & SWAPPED, 0);
    }
}
