//! Per-page access counters of one VMA: a `u16` per base page (512 KiB per GiB) plus one
//! size-class byte per 2 MiB unit, so huge pages are counted and reported as one page.

use crate::types::{PageSize, Range, Vma};

/// The counter value of a page that is not resident (never reported, or gone).
pub const ABSENT: u16 = u16::MAX;
/// The largest count a page can hold (counts saturate there).
pub const MAX_COUNT: u16 = u16::MAX - 1;

/// The access counts of one VMA's pages.
#[derive(Debug, Clone)]
pub struct VmaCounts {
    vma: Vma,
    counts: Vec<u16>,
    /// Size class per PMD-sized unit, units numbered from `vma.start` rounded down.
    units: Vec<PageSize>,
}

/// One resident page (a huge page is one item) and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCount {
    /// The page's first address.
    pub addr: u64,
    /// Its size class: a huge page counts as one page.
    pub size: PageSize,
    /// Its access count: +1 per pass it was accessed in, +3 if written (spec §6.2).
    pub count: u16,
}

/// Adjacent resident pages of one size class with equal counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The addresses the run spans (whole pages of its size class).
    pub range: Range,
    /// The size class of every page in the run.
    pub size: PageSize,
    /// The access count every page in the run has.
    pub count: u16,
}

/// The runs as ranges of whole pages of their size class, the form swappers take
/// (the actuators' `swap_out_sized`).
pub fn sized(runs: &[Run]) -> Vec<(Range, PageSize)> {
    runs.iter().map(|r| (r.range, r.size)).collect()
}

fn base() -> u64 {
    PageSize::Base.bytes()
}

fn pages_per(size: PageSize) -> usize {
    (size.bytes() / base()) as usize
}

impl VmaCounts {
    /// Counters for `vma`, every page absent.
    pub fn new(vma: Vma) -> VmaCounts {
        let pmd = PageSize::Pmd.bytes();
        let n = (vma.range.len() / base()) as usize;
        let first = vma.range.start / pmd;
        let units = (vma.range.end.div_ceil(pmd)).saturating_sub(first) as usize;
        VmaCounts {
            vma,
            counts: vec![ABSENT; n],
            units: vec![PageSize::Base; units],
        }
    }

    /// The VMA these counts are for.
    pub fn vma(&self) -> &Vma {
        &self.vma
    }

    /// Number of base pages the VMA spans.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when the VMA spans no base page.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Address of base page `i`.
    pub fn addr_of(&self, i: usize) -> u64 {
        self.vma.range.start + i as u64 * base()
    }

    /// Base page index of `addr`, if inside the VMA.
    pub fn index_of(&self, addr: u64) -> Option<usize> {
        self.vma
            .range
            .contains(addr)
            .then(|| ((addr - self.vma.range.start) / base()) as usize)
    }

    /// The raw counter of base page `i` (`ABSENT` if not resident or out of range).
    pub fn raw(&self, i: usize) -> u16 {
        self.counts.get(i).copied().unwrap_or(ABSENT)
    }

    /// The count of the page holding `addr`, if resident.
    pub fn count_at(&self, addr: u64) -> Option<u16> {
        let c = self.raw(self.index_of(addr)?);
        (c != ABSENT).then_some(c)
    }

    fn unit_of(&self, i: usize) -> usize {
        let pmd = PageSize::Pmd.bytes();
        (self.addr_of(i) / pmd - self.vma.range.start / pmd) as usize
    }

    /// The size class of the page holding base page `i`.
    pub fn size_at(&self, i: usize) -> PageSize {
        self.units
            .get(self.unit_of(i))
            .copied()
            .unwrap_or(PageSize::Base)
    }

    /// Forget every count and size class (all pages absent).
    pub fn reset(&mut self) {
        self.counts.fill(ABSENT);
        self.units.fill(PageSize::Base);
    }

    /// Mark base pages `[i, i+n)` resident (count 0 if they were absent).
    pub fn set_present(&mut self, i: usize, n: usize) {
        let end = (i + n).min(self.counts.len());
        for c in &mut self.counts[i.min(end)..end] {
            if *c == ABSENT {
                *c = 0;
            }
        }
    }

    /// Mark base pages `[i, i+n)` not resident.
    pub fn set_absent(&mut self, i: usize, n: usize) {
        let end = (i + n).min(self.counts.len());
        self.counts[i.min(end)..end].fill(ABSENT);
    }

    /// Add `weight` to resident base pages `[i, i+n)` (saturating at `MAX_COUNT`).
    pub fn add(&mut self, i: usize, n: usize, weight: u16) {
        let end = (i + n).min(self.counts.len());
        for c in &mut self.counts[i.min(end)..end] {
            if *c != ABSENT {
                *c = c.saturating_add(weight).min(MAX_COUNT);
            }
        }
    }

    /// Record the size class of the page at `addr`: a PMD or PUD page marks the units it
    /// covers, when it lies wholly inside the VMA; a base page clears its unit's mark.
    pub fn set_size(&mut self, addr: u64, size: PageSize) {
        let pmd = PageSize::Pmd.bytes();
        let span = Range::new(addr, addr.saturating_add(size.bytes()));
        if size != PageSize::Base && (addr % size.bytes() != 0 || !self.vma.range.covers(&span)) {
            return;
        }
        let first = (addr / pmd).saturating_sub(self.vma.range.start / pmd) as usize;
        let n = (size.bytes() / pmd).max(1) as usize;
        let end = (first + n).min(self.units.len());
        self.units[first.min(end)..end].fill(size);
    }

    /// Record one page (any size class) seen resident at `addr` with `weight` added to
    /// its count; the parts outside the VMA are ignored.
    pub fn record(&mut self, addr: u64, size: PageSize, weight: u16) {
        let span = Range::new(addr, addr.saturating_add(size.bytes()));
        let lo = span.start.max(self.vma.range.start);
        let hi = span.end.min(self.vma.range.end);
        if lo >= hi {
            return;
        }
        let i = ((lo - self.vma.range.start) / base()) as usize;
        let n = ((hi - lo).div_ceil(base())) as usize;
        self.set_present(i, n);
        self.add(i, n, weight);
        self.set_size(addr, size);
    }

    /// Every resident page with its count, ascending; a huge page is one item.
    pub fn pages(&self) -> impl Iterator<Item = PageCount> + '_ {
        let mut i = 0usize;
        std::iter::from_fn(move || {
            while i < self.counts.len() {
                let addr = self.addr_of(i);
                let class = self.size_at(i);
                let step = pages_per(class);
                let size = if class != PageSize::Base
                    && addr % class.bytes() == 0
                    && i + step <= self.counts.len()
                {
                    class
                } else {
                    PageSize::Base
                };
                let count = self.counts[i];
                i += pages_per(size);
                if count != ABSENT {
                    return Some(PageCount { addr, size, count });
                }
            }
            None
        })
    }

    /// Resident pages coalesced into runs of equal size class and count, ascending.
    pub fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        let mut pages = self.pages().peekable();
        std::iter::from_fn(move || {
            let p = pages.next()?;
            let mut run = Run {
                range: Range::new(p.addr, p.addr + p.size.bytes()),
                size: p.size,
                count: p.count,
            };
            while let Some(q) = pages.peek() {
                if q.addr != run.range.end || q.size != run.size || q.count != run.count {
                    break;
                }
                run.range.end += q.size.bytes();
                pages.next();
            }
            Some(run)
        })
    }

    /// Bytes of resident memory whose count satisfies `pred`.
    pub fn bytes_where(&self, pred: impl Fn(u16) -> bool) -> u64 {
        self.runs()
            .filter(|r| pred(r.count))
            .map(|r| r.range.len())
            .sum()
    }

    /// Bytes resident.
    pub fn resident_bytes(&self) -> u64 {
        self.bytes_where(|_| true)
    }

    /// Memory taken by these counters, in bytes (for the benchmark's RSS accounting).
    pub fn footprint(&self) -> usize {
        self.counts.capacity() * 2 + self.units.capacity()
    }
}

/// Fresh counters for each of `vmas`, in order.
pub fn counts_for(vmas: &[Vma]) -> Vec<VmaCounts> {
    vmas.iter().cloned().map(VmaCounts::new).collect()
}

/// True for the counters a backend should read: not a kernel-special mapping
/// (`[vsyscall]` lies outside the process's address space as procfs sees it).
pub fn scannable(c: &VmaCounts) -> bool {
    !c.vma.is_special()
}

/// The counters covering `addr` in a list sorted by start address.
pub fn find_mut(list: &mut [VmaCounts], addr: u64) -> Option<&mut VmaCounts> {
    let i = list.partition_point(|c| c.vma.range.end <= addr);
    list.get_mut(i).filter(|c| c.vma.range.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64) -> Vma {
        crate::sys::maps::parse_line(&format!("{start:x}-{end:x} rw-p 0 00:00 0")).unwrap()
    }

    #[test]
    fn base_pages_coalesce() {
        if base() != 4096 {
            return;
        }
        let mut c = VmaCounts::new(vma(0x10000, 0x20000));
        assert_eq!(c.len(), 16);
        assert_eq!(c.pages().count(), 0);
        c.set_present(0, 4);
        c.add(2, 4, 1); // pages 4,5 are absent: unchanged
        c.record(0x18000, PageSize::Base, 3);
        let runs: Vec<Run> = c.runs().collect();
        assert_eq!(
            runs,
            vec![
                Run {
                    range: Range::new(0x10000, 0x12000),
                    size: PageSize::Base,
                    count: 0
                },
                Run {
                    range: Range::new(0x12000, 0x14000),
                    size: PageSize::Base,
                    count: 1
                },
                Run {
                    range: Range::new(0x18000, 0x19000),
                    size: PageSize::Base,
                    count: 3
                },
            ]
        );
        assert_eq!(c.count_at(0x18fff), Some(3));
        assert_eq!(c.count_at(0x19000), None);
        assert_eq!(c.resident_bytes(), 5 * 4096);
        assert_eq!(c.bytes_where(|n| n == 0), 2 * 4096);
        c.add(0, 16, u16::MAX);
        assert_eq!(c.count_at(0x10000), Some(MAX_COUNT));
        c.set_absent(0, 100);
        assert_eq!(c.resident_bytes(), 0);
    }

    #[test]
    fn huge_pages_are_one_unit() {
        if base() != 4096 {
            return;
        }
        let m = 2 << 20;
        let mut c = VmaCounts::new(vma(m - 0x1000, 3 * m));
        c.record(m, PageSize::Pmd, 1);
        c.record(m - 0x1000, PageSize::Base, 0);
        c.record(2 * m + 0x1000, PageSize::Pmd, 1); // misaligned: base pages only
        let pages: Vec<PageCount> = c.pages().collect();
        assert_eq!(
            pages[0],
            PageCount {
                addr: m - 0x1000,
                size: PageSize::Base,
                count: 0
            }
        );
        assert_eq!(
            pages[1],
            PageCount {
                addr: m,
                size: PageSize::Pmd,
                count: 1
            }
        );
        assert_eq!(
            pages[2],
            PageCount {
                addr: 2 * m + 0x1000,
                size: PageSize::Base,
                count: 1
            }
        );
        assert_eq!(pages.len(), 2 + 511);
        assert_eq!(c.size_at(c.len() - 1), PageSize::Base);
        let mut list = vec![c, VmaCounts::new(vma(4 * m, 5 * m))];
        assert!(find_mut(&mut list, 4 * m).is_some());
        assert!(find_mut(&mut list, 3 * m).is_none());
        assert!(find_mut(&mut list, m).is_some());
    }
}
