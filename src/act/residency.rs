//! How much of some ranges of a process is in DRAM right now, from `/proc/PID/pagemap`
//! (bit 63 = present): the check that a swap-out really emptied them.

use std::fs::File;

use crate::act::coalesce::coalesce;
use crate::error::Result;
use crate::sys::pagemap::{is_present, read_full};
use crate::sys::process::proc_error;
use crate::types::{Pid, Range};

/// Pagemap entries read per `pread` (64 KiB: 32 MiB of address space).
const CHUNK_ENTRIES: usize = 8192;

/// Bytes of `ranges` of `pid` whose pages are present in RAM (base pages counted; a
/// present huge page counts in full). Overlaps are counted once.
pub fn resident_bytes(pid: Pid, ranges: &[Range]) -> Result<u64> {
    Ok(present_ranges(pid, ranges)?.iter().map(Range::len).sum())
}

/// The parts of `ranges` of `pid` whose pages are present in RAM, page aligned, sorted
/// and merged (overlaps once).
pub fn present_ranges(pid: Pid, ranges: &[Range]) -> Result<Vec<Range>> {
    let page = crate::types::page_size();
    let path = format!("/proc/{pid}/pagemap");
    let file = File::open(&path).map_err(|e| proc_error(pid, &path, e))?;
    let mut buf = vec![0u8; CHUNK_ENTRIES * 8];
    let mut out: Vec<Range> = Vec::new();
    for r in coalesce(ranges, page) {
        let (mut vpn, end) = (r.start / page, r.end / page);
        while vpn < end {
            let want = (end - vpn).min(CHUNK_ENTRIES as u64) as usize * 8;
            // A short read means the range runs past the end of the user address space.
            let got = read_full(&file, &mut buf[..want], vpn * 8)
                .map_err(|e| proc_error(pid, &path, e))?;
            if got < 8 {
                break; // past the end of the user address space
            }
            for (i, e) in buf[..got].chunks_exact(8).enumerate() {
                let mut a = [0u8; 8];
                a.copy_from_slice(e);
                if !is_present(u64::from_ne_bytes(a)) {
                    continue;
                }
                let at = (vpn + i as u64) * page;
                match out.last_mut() {
                    Some(last) if last.end == at => last.end += page,
                    _ => out.push(Range::new(at, at + page)),
                }
            }
            vpn += (got / 8) as u64;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_touched_memory_is_resident_and_unmapped_space_is_not() {
        let page = crate::types::page_size() as usize;
        let v = vec![1u8; 64 * page];
        let start = (v.as_ptr() as u64).next_multiple_of(page as u64);
        let r = Range::new(start, start + 32 * page as u64);
        let me = std::process::id() as Pid;
        assert_eq!(resident_bytes(me, &[r]).unwrap(), 32 * page as u64);
        assert_eq!(resident_bytes(me, &[r, r]).unwrap(), 32 * page as u64);
        assert_eq!(present_ranges(me, &[r]).unwrap(), [r]);
        assert_eq!(
            resident_bytes(me, &[Range::new(0, 16 * page as u64)]).unwrap(),
            0
        );
        assert_eq!(
            resident_bytes(me, &[Range::new(u64::MAX - 5, u64::MAX)]).unwrap(),
            0
        );
        drop(v);
    }
}
