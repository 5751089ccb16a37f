//! The `idle_pages` backend: openEuler's etmem_scan module. Each read of
//! `/proc/PID/idle_pages` at a virtual address walks the page tables from there, tests and
//! clears the accessed bits, and describes the pages as a byte stream
//! (`idle_pages_stream`). Accessed pages get +1, dirty ones +3 (spec §6.2).
//!
//! Differences from etmemd, on purpose: a VMA is read until its end (etmemd reads once
//! and may leave the tail unscanned, spec §13.15); `begin` does one discarded pass so the
//! first counted pass sees only accesses made after `begin` (etmemd's first pass
//! over-reports); a malformed stream is an error, not trusted.

use crate::error::{Error, Kind, Result};
use crate::sys::idle_pages_io::{
    IdlePagesFile, IDLE_SCAN_ADD_FLAGS, MIN_READ, VMA_SCAN_ADD_FLAGS, VMA_SCAN_FLAG,
};
use crate::sys::pidfd::Pidfd;
use crate::track::counts::{counts_for, find_mut, scannable, VmaCounts};
use crate::track::idle_pages_stream::{parse, Record};
use crate::track::Tracker;
use crate::types::ScanBackend;
use crate::types::{PageSize, Range, Vma};

/// The largest read: 64 KiB of stream covers 2 GiB of address space at 8 pages a byte.
const MAX_READ: usize = 64 * 1024;

/// idle_pages tracker of one process.
#[derive(Debug)]
pub struct IdlePagesTracker {
    file: IdlePagesFile,
    counts: Vec<VmaCounts>,
    buf: Vec<u8>,
}

impl IdlePagesTracker {
    /// Open `/proc/PID/idle_pages`. `flags`: `SCAN_AS_HUGE`/`SCAN_IGN_HOST` go through
    /// `IDLE_SCAN_ADD_FLAGS`, `VMA_SCAN_FLAG` through `VMA_SCAN_ADD_FLAGS` (as the slide
    /// engine does for `swap_flag=yes`).
    pub fn open(target: &Pidfd, flags: u32) -> Result<IdlePagesTracker> {
        let pid = target.pid();
        let file = IdlePagesFile::open(pid)?;
        let scan = flags & !VMA_SCAN_FLAG;
        if scan != 0 {
            file.ioctl(IDLE_SCAN_ADD_FLAGS, scan)?;
        }
        if flags & VMA_SCAN_FLAG != 0 {
            file.ioctl(VMA_SCAN_ADD_FLAGS, VMA_SCAN_FLAG)?;
        }
        Ok(IdlePagesTracker {
            file,
            counts: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Open with every flag sent through `IDLE_SCAN_ADD_FLAGS`, as the exported
    /// `etmemd_get_page_refs` does (spec §10).
    pub fn open_plugin(target: &Pidfd, flags: u32) -> Result<IdlePagesTracker> {
        let pid = target.pid();
        let file = IdlePagesFile::open(pid)?;
        if flags != 0 {
            file.ioctl(IDLE_SCAN_ADD_FLAGS, flags)?;
        }
        Ok(IdlePagesTracker {
            file,
            counts: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Walk every VMA once, applying the records to the counts; `stop` is polled
    /// before each read.
    fn sweep(&mut self, stop: &dyn Fn() -> bool) -> Result<()> {
        let file = &mut self.file;
        sweep(&mut self.counts, &mut self.buf, |at, buf| {
            if stop() {
                return Err(Error::new(Kind::Gone, "scan interrupted"));
            }
            file.read_at(at, buf)
        })
    }
}

/// One pass over every scannable VMA of `counts` through `read(address, buffer)` (the
/// positioned read of `idle_pages`), reusing `buf`. A VMA is read until its end: when
/// the kernel fills the buffer before the end of the range, the next read starts where
/// its records stopped; a range already walked by a read that covered a following VMA
/// is not read again.
pub fn sweep(
    counts: &mut [VmaCounts],
    buf: &mut Vec<u8>,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<usize>,
) -> Result<()> {
    let page = PageSize::Base.bytes();
    let ranges: Vec<Range> = counts
        .iter()
        .filter(|c| scannable(c))
        .map(|c| c.vma().range)
        .collect();
    let mut walked = 0u64;
    for r in ranges {
        let mut start = r.start.max(walked);
        while start < r.end {
            let pages = (r.end - start).div_ceil(page);
            let n = (pages.div_ceil(8) as usize).clamp(MIN_READ, MAX_READ);
            buf.resize(n, 0);
            let got = read(start, buf)?.min(n);
            let window = Range::new(start, start.saturating_add(n as u64 * 8 * page));
            let next = parse(&buf[..got], window, |rec| {
                apply(counts, rec);
                Ok(())
            })?;
            if got < n {
                // The kernel walked the whole window.
                walked = next.max(window.end);
            } else if next > start {
                walked = next;
            } else {
                return Err(Error::invalid(format!(
                    "idle_pages stream: a full read at {start:#x} made no progress"
                )));
            }
            start = walked;
        }
    }
    Ok(())
}

/// Add one record to the counters of the VMA holding its first page (pages of VMAs we
/// do not track are ignored: the kernel walks every VMA in the read's range).
pub fn apply(counts: &mut [VmaCounts], rec: Record) {
    let Some(c) = find_mut(counts, rec.addr) else {
        return;
    };
    let w = rec.state.weight();
    if rec.size == PageSize::Base {
        let Some(i) = c.index_of(rec.addr) else {
            return;
        };
        c.set_present(i, rec.nr as usize);
        c.add(i, rec.nr as usize, w);
        return;
    }
    for k in 0..rec.nr {
        c.record(rec.addr + k * rec.size.bytes(), rec.size, w);
    }
}

impl Tracker for IdlePagesTracker {
    fn backend(&self) -> ScanBackend {
        ScanBackend::IdlePages
    }

    fn begin(&mut self, _target: &Pidfd, vmas: &[Vma], stop: &dyn Fn() -> bool) -> Result<()> {
        self.counts = counts_for(vmas);
        self.sweep(stop)?;
        self.counts.iter_mut().for_each(VmaCounts::reset);
        Ok(())
    }

    fn pass(&mut self, _target: &Pidfd, stop: &dyn Fn() -> bool) -> Result<()> {
        self.sweep(stop)
    }

    fn counts(&self) -> &[VmaCounts] {
        &self.counts
    }

    fn zero_counts(&mut self) {
        self.counts.iter_mut().for_each(VmaCounts::zero);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::idle_pages_stream::{PageState, SET_ADDR};

    /// A fake etmem_scan: pages `[lo, hi)` present, page k accessed when `k % 3 == 0`,
    /// idle otherwise, one record per page (the most fragmented output), a hole record
    /// for the gap below `lo`, stopping when the buffer is full.
    fn fake_read(lo: u64, hi: u64, at: u64, buf: &mut [u8]) -> Result<usize> {
        let page = PageSize::Base.bytes();
        let end = at + buf.len() as u64 * 8 * page;
        let mut n = 0;
        let mut put = |b: u8, n: &mut usize| {
            if *n < buf.len() {
                buf[*n] = b;
                *n += 1;
                true
            } else {
                false
            }
        };
        for b in std::iter::once(SET_ADDR).chain(at.to_be_bytes()) {
            put(b, &mut n);
        }
        let mut a = at;
        while a < end.min(hi) {
            let byte = if a < lo {
                0x81 // one-page hole
            } else if ((a - lo) / page) % 3 == 0 {
                0x01
            } else {
                0x51
            };
            if !put(byte, &mut n) {
                break;
            }
            a += page;
        }
        Ok(n)
    }

    #[test]
    fn sweep_reads_every_page_through_full_buffers() {
        let page = PageSize::Base.bytes();
        let v = |s: u64, e: u64| {
            crate::sys::maps::parse_line(&format!("{s:x}-{e:x} rw-p 0 00:00 0")).unwrap()
        };
        let lo = 0x10_0000u64;
        // Two VMAs: a small one whose minimum read covers part of the next, then a
        // long one that needs many full reads.
        let mut counts = counts_for(&[v(lo, lo + 4 * page), v(lo + 8 * page, lo + 700 * page)]);
        let hi = lo + 700 * page;
        let mut buf = Vec::new();
        let mut reads = 0;
        sweep(&mut counts, &mut buf, |at, b| {
            reads += 1;
            fake_read(lo, hi, at, b)
        })
        .unwrap();
        assert!(
            reads > 5,
            "fragmented output needs several reads, got {reads}"
        );
        for c in &counts {
            for i in 0..c.len() {
                let k = (c.addr_of(i) - lo) / page;
                let want = if (4..8).contains(&k) {
                    None
                } else {
                    Some((k % 3 == 0) as u16)
                };
                assert_eq!(c.count_at(c.addr_of(i)), want, "page {k}");
            }
        }
        // A stream that never advances is an error, not a loop.
        let e = sweep(&mut counts, &mut buf, |at, b| {
            b.fill(0);
            b[0] = SET_ADDR;
            b[1..9].copy_from_slice(&at.to_be_bytes());
            b[9..].fill(0x00); // zero-page records: no progress
            Ok(b.len())
        })
        .unwrap_err();
        assert!(e.msg.contains("no progress"), "{}", e.msg);
    }

    #[test]
    fn stream_to_counts() {
        if PageSize::Base.bytes() != 4096 {
            return;
        }
        let m = 2u64 << 20;
        let v = |s: u64, e: u64| {
            crate::sys::maps::parse_line(&format!("{s:x}-{e:x} rw-p 0 00:00 0")).unwrap()
        };
        let mut counts = counts_for(&[v(m, 3 * m), v(4 * m, 5 * m)]);
        let mut s = vec![SET_ADDR];
        s.extend(m.to_be_bytes());
        s.extend([0x03, 0x32, 0x5F]); // 3 accessed, 2 dirty, 15 idle
        s.push(SET_ADDR);
        s.extend((2 * m).to_be_bytes());
        s.push(0x11); // one accessed THP
        s.push(SET_ADDR);
        s.extend((3 * m + 4096).to_be_bytes());
        s.push(0x0F); // in the gap between the VMAs: ignored
        let w = Range::new(m, 6 * m);
        parse(&s, w, |r| {
            apply(&mut counts, r);
            Ok(())
        })
        .unwrap();
        let c = &counts[0];
        assert_eq!(c.count_at(m), Some(1));
        assert_eq!(c.count_at(m + 3 * 4096), Some(3));
        assert_eq!(c.count_at(m + 5 * 4096), Some(0));
        assert_eq!(c.count_at(m + 20 * 4096), None);
        let pages: Vec<_> = c.pages().collect();
        assert_eq!(pages.len(), 20 + 1);
        assert_eq!(pages[20].size, PageSize::Pmd);
        assert_eq!(counts[1].resident_bytes(), 0);
        assert_eq!(PageState::Dirty.weight(), 3);
    }
}
