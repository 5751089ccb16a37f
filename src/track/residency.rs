//! Which pages of a VMA are resident, from `/proc/PID/pagemap`, and which 2 MiB units are
//! huge pages (contiguous, aligned frames whose head `/proc/kpageflags` calls THP or
//! hugetlb; root only). Shared by every backend that is not `idle_pages`, which learns
//! residency from its own stream.

use crate::error::{Error, Kind, Result};
use crate::sys::kpageflags::KpageFlags;
use crate::sys::pagemap::{self, Pagemap, CHUNK_ENTRIES};
use crate::sys::pidfd::Pidfd;
use crate::track::counts::VmaCounts;
use crate::types::PageSize;

/// Pagemap reader with its reused buffer.
#[derive(Debug)]
pub struct Residency {
    pagemap: Pagemap,
    kflags: Option<KpageFlags>,
    entries: Vec<u64>,
}

impl Residency {
    /// Open the target's pagemap (and kpageflags when readable, i.e. as root).
    pub fn open(target: &Pidfd) -> Result<Residency> {
        let pid = target.pid();
        Ok(Residency {
            pagemap: Pagemap::open(pid)?,
            kflags: KpageFlags::open().ok(),
            entries: Vec::new(),
        })
    }

    /// Fresh counters for `vmas` with their resident pages known (count 0).
    pub fn fresh_counts(
        &mut self,
        vmas: &[crate::types::Vma],
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<VmaCounts>> {
        let mut counts = crate::track::counts::counts_for(vmas);
        self.walk_all(&mut counts, stop, |_, _, _| Ok(()))?;
        Ok(counts)
    }

    /// `walk` every scannable VMA of `counts` with the same `f`, polling `stop`.
    pub fn walk_all(
        &mut self,
        counts: &mut [VmaCounts],
        stop: &dyn Fn() -> bool,
        mut f: impl FnMut(&mut VmaCounts, usize, &[u64]) -> Result<()>,
    ) -> Result<()> {
        for c in counts
            .iter_mut()
            .filter(|c| crate::track::counts::scannable(c))
        {
            self.walk(c, stop, &mut f)?;
        }
        Ok(())
    }

    /// Walk `c`'s pages in chunks of at most `CHUNK_ENTRIES`, aligned so that no 2 MiB unit
    /// straddles two chunks: update residency and huge-page marks, then call
    /// `f(counts, first_index, entries)` for the chunk. `stop` is polled between chunks,
    /// so a walk over terabytes of sparse mapping ends promptly (kind `Gone`).
    pub fn walk(
        &mut self,
        c: &mut VmaCounts,
        stop: &dyn Fn() -> bool,
        mut f: impl FnMut(&mut VmaCounts, usize, &[u64]) -> Result<()>,
    ) -> Result<()> {
        let base = PageSize::Base.bytes();
        let chunk_bytes = CHUNK_ENTRIES as u64 * base;
        let mut i = 0usize;
        while i < c.len() {
            if stop() {
                return Err(Error::new(Kind::Gone, "scan interrupted"));
            }
            let addr = c.addr_of(i);
            let chunk_end = (addr / chunk_bytes + 1) * chunk_bytes;
            let n = (((chunk_end - addr) / base) as usize).min(c.len() - i);
            self.entries.resize(n, 0);
            self.pagemap.read(addr, &mut self.entries)?;
            self.update(c, i, n)?;
            f(c, i, &self.entries[..n])?;
            i += n;
        }
        Ok(())
    }

    fn update(&self, c: &mut VmaCounts, first: usize, n: usize) -> Result<()> {
        let e = &self.entries[..n];
        let mut j = 0;
        while j < n {
            let k = e[j..]
                .iter()
                .position(|&x| pagemap::is_present(x) != pagemap::is_present(e[j]));
            let len = k.unwrap_or(n - j);
            if pagemap::is_present(e[j]) {
                c.set_present(first + j, len);
            } else {
                c.set_absent(first + j, len);
            }
            j += len;
        }
        let pmd = PageSize::Pmd.bytes();
        let per = (pmd / PageSize::Base.bytes()) as usize;
        let mut j = 0;
        while j < n {
            let addr = c.addr_of(first + j);
            if addr % pmd != 0 || j + per > n {
                j += 1;
                continue;
            }
            let huge = self.is_huge(&e[j..j + per])?;
            c.set_size(addr, if huge { PageSize::Pmd } else { PageSize::Base });
            j += per;
        }
        Ok(())
    }

    /// 512 entries of one aligned 2 MiB unit: one huge page?
    fn is_huge(&self, unit: &[u64]) -> Result<bool> {
        let head = pagemap::pfn(unit[0]);
        if head == 0 || head % unit.len() as u64 != 0 {
            return Ok(false);
        }
        let contiguous = unit
            .iter()
            .enumerate()
            .all(|(k, &x)| pagemap::pfn(x) == head + k as u64);
        match (&self.kflags, contiguous) {
            (Some(kf), true) => kf.is_huge_head(head),
            _ => Ok(false),
        }
    }
}

/// The frame of the page that stands for base page `i` of a chunk: a huge page's head
/// for every page of a huge unit, else its own frame (0 = absent or hidden).
pub fn frame_of(c: &VmaCounts, first: usize, entries: &[u64], j: usize) -> u64 {
    if c.size_at(first + j) == PageSize::Base {
        return pagemap::pfn(entries[j]);
    }
    let offset = c.addr_of(first + j) % PageSize::Pmd.bytes() / PageSize::Base.bytes();
    let Some(head_j) = j.checked_sub(offset as usize) else {
        return 0;
    };
    entries.get(head_j).map_or(0, |&x| pagemap::pfn(x))
}
