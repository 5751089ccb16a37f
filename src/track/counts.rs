//! Per-page access counters of one VMA, kept only where pages are resident: a `u16` per
//! base page in chunks of [`CHUNK`] pages, allocated when a page of the chunk is first
//! seen resident and freed when none is (about 540 KiB per GiB resident), plus a size
//! class per 2 MiB unit, kept only in the 1 GiB blocks that hold a huge page, so huge
//! pages are counted and reported as one page. A mapping's virtual size costs one word
//! per 128 MiB: a 4 TiB reservation with a few pages touched takes 256 KiB and a few
//! chunks, where one `u16` per page took 2 GiB.

use crate::types::{PageSize, Range, Vma};

/// The counter value of a page that is not resident (never reported, or gone).
pub const ABSENT: u16 = u16::MAX;
/// The largest count a page can hold (counts saturate there).
pub const MAX_COUNT: u16 = u16::MAX - 1;
/// Base pages per chunk of counters (256 KiB of memory with 4 KiB pages).
pub const CHUNK: usize = 64;
/// Chunks per group: a group (one word in the top table) covers 128 MiB.
const GROUP: usize = 512;
/// 2 MiB units per block of size classes (1 GiB).
const UNITS: usize = 512;

/// One chunk: the counters of [`CHUNK`] consecutive base pages.
type Chunk = Box<[u16; CHUNK]>;
/// The chunks of one group, each made when first needed.
type Group = Box<[Option<Chunk>; GROUP]>;

/// The access counts of one VMA's pages.
#[derive(Debug, Clone)]
pub struct VmaCounts {
    vma: Vma,
    /// Base pages the VMA spans.
    len: usize,
    /// Groups by index (base page index / (CHUNK * GROUP)); a chunk exists only while
    /// one of its pages is resident, a group only while one of its chunks exists.
    groups: Vec<Option<Group>>,
    /// Size class per PMD-sized unit (units numbered from `vma.start` rounded down), in
    /// blocks of [`UNITS`] made only where a huge page was seen; absent means base pages.
    units: Vec<Option<Box<[PageSize; UNITS]>>>,
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
        let len = (vma.range.len() / base()) as usize;
        let units = (vma.range.end.div_ceil(pmd)).saturating_sub(vma.range.start / pmd) as usize;
        VmaCounts {
            vma,
            len,
            groups: (0..len.div_ceil(CHUNK * GROUP)).map(|_| None).collect(),
            units: (0..units.div_ceil(UNITS)).map(|_| None).collect(),
        }
    }

    /// The chunk holding base page `i`, if it exists.
    fn chunk(&self, i: usize) -> Option<&Chunk> {
        let g = self.groups.get(i / (CHUNK * GROUP))?.as_ref()?;
        g[i / CHUNK % GROUP].as_ref()
    }

    /// The VMA these counts are for.
    pub fn vma(&self) -> &Vma {
        &self.vma
    }

    /// Number of base pages the VMA spans.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the VMA spans no base page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
        self.chunk(i).map_or(ABSENT, |c| c[i % CHUNK])
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
        let u = self.unit_of(i);
        match self.units.get(u / UNITS) {
            Some(Some(block)) => block[u % UNITS],
            _ => PageSize::Base,
        }
    }

    /// Forget every count and size class (all pages absent).
    pub fn reset(&mut self) {
        self.groups.iter_mut().for_each(|g| *g = None);
        self.units.iter_mut().for_each(|b| *b = None);
    }

    /// Apply `f` to the counters of base pages `[i, i+n)` (clipped to the VMA), chunk by
    /// chunk. With `create`, missing chunks are made (all absent) first, else only the
    /// existing ones are visited; with `free`, chunks (and groups) left all absent are
    /// dropped, so memory follows what is resident.
    fn each_counter(
        &mut self,
        i: usize,
        n: usize,
        create: bool,
        free: bool,
        mut f: impl FnMut(&mut u16),
    ) {
        let end = i.saturating_add(n).min(self.len);
        let mut at = i.min(end);
        while at < end {
            let (gi, ci) = (at / (CHUNK * GROUP), at / CHUNK % GROUP);
            let chunk_end = ((at / CHUNK + 1) * CHUNK).min(end);
            let slot = &mut self.groups[gi];
            if slot.is_none() {
                if !create {
                    at = ((gi + 1) * CHUNK * GROUP).min(end);
                    continue;
                }
                *slot = Some(Box::new(std::array::from_fn(|_| None)));
            }
            let group = slot.as_mut().expect("made above");
            if group[ci].is_none() && create {
                group[ci] = Some(Box::new([ABSENT; CHUNK]));
            }
            if let Some(chunk) = group[ci].as_mut() {
                for c in &mut chunk[at % CHUNK..at % CHUNK + (chunk_end - at)] {
                    f(c);
                }
                if free && chunk.iter().all(|&c| c == ABSENT) {
                    group[ci] = None;
                    if group.iter().all(Option::is_none) {
                        *slot = None;
                    }
                }
            }
            at = chunk_end;
        }
    }

    /// Mark base pages `[i, i+n)` resident (count 0 if they were absent).
    pub fn set_present(&mut self, i: usize, n: usize) {
        self.each_counter(i, n, true, false, |c| {
            if *c == ABSENT {
                *c = 0;
            }
        });
    }

    /// Set the count of every resident page to 0 (absent pages stay absent).
    pub fn zero(&mut self) {
        self.each_counter(0, self.len, false, false, |c| {
            if *c != ABSENT {
                *c = 0;
            }
        });
    }

    /// Mark base pages `[i, i+n)` not resident.
    pub fn set_absent(&mut self, i: usize, n: usize) {
        self.each_counter(i, n, false, true, |c| *c = ABSENT);
    }

    /// Add `weight` to resident base pages `[i, i+n)` (saturating at `MAX_COUNT`).
    pub fn add(&mut self, i: usize, n: usize, weight: u16) {
        self.each_counter(i, n, false, false, |c| {
            if *c != ABSENT {
                *c = c.saturating_add(weight).min(MAX_COUNT);
            }
        });
    }

    /// Record the size class of the page at `addr`: a PMD or PUD page marks the units it
    /// covers, when it lies wholly inside the VMA; a base page clears its unit's mark.
    pub fn set_size(&mut self, addr: u64, size: PageSize) {
        let pmd = PageSize::Pmd.bytes();
        let span = Range::new(addr, addr.saturating_add(size.bytes()));
        if size != PageSize::Base && (addr % size.bytes() != 0 || !self.vma.range.covers(&span)) {
            return;
        }
        if !self.vma.range.contains(addr) {
            return;
        }
        let first = (addr / pmd).saturating_sub(self.vma.range.start / pmd) as usize;
        let n = (size.bytes() / pmd).max(1) as usize;
        for u in first..first + n {
            let Some(slot) = self.units.get_mut(u / UNITS) else {
                break;
            };
            match slot {
                Some(block) => block[u % UNITS] = size,
                None if size == PageSize::Base => {}
                None => {
                    let mut block = Box::new([PageSize::Base; UNITS]);
                    block[u % UNITS] = size;
                    *slot = Some(block);
                }
            }
        }
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

    /// Every resident base page index with its raw counter, ascending.
    fn resident(&self) -> impl Iterator<Item = (usize, u16)> + '_ {
        let groups = self.groups.iter().enumerate();
        groups
            .filter_map(|(gi, g)| g.as_ref().map(|g| (gi, g)))
            .flat_map(|(gi, g)| {
                g.iter()
                    .enumerate()
                    .filter_map(move |(ci, c)| c.as_ref().map(|c| (gi * GROUP + ci, c)))
            })
            .flat_map(|(ci, chunk)| {
                chunk
                    .iter()
                    .enumerate()
                    .map(move |(j, &c)| (ci * CHUNK + j, c))
                    .filter(|&(_, c)| c != ABSENT)
            })
    }

    /// Every resident page with its count, ascending; a huge page is one item, counted
    /// by its head page (a huge page whose head is not resident is not reported).
    pub fn pages(&self) -> impl Iterator<Item = PageCount> + '_ {
        let mut next = 0usize;
        self.resident().filter_map(move |(i, count)| {
            if i < next {
                return None;
            }
            let addr = self.addr_of(i);
            let class = self.size_at(i);
            if class != PageSize::Base {
                let head = addr & !(class.bytes() - 1);
                let step = pages_per(class);
                if head >= self.vma.range.start {
                    let h = ((head - self.vma.range.start) / base()) as usize;
                    if h + step <= self.len {
                        next = h + step;
                        return (h == i).then_some(PageCount {
                            addr,
                            size: class,
                            count,
                        });
                    }
                }
            }
            next = i + 1;
            Some(PageCount {
                addr,
                size: PageSize::Base,
                count,
            })
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

    /// Memory taken by these counters, in bytes (for the benchmark's RSS accounting):
    /// the chunks and size marks, with a few words of map overhead each.
    pub fn footprint(&self) -> usize {
        let word = std::mem::size_of::<usize>();
        let groups = self.groups.iter().flatten();
        let chunks: usize = groups.clone().map(|g| g.iter().flatten().count()).sum();
        let blocks = self.units.iter().flatten().count();
        (self.groups.len() + self.units.len()) * word
            + groups.count() * GROUP * word
            + chunks * CHUNK * 2
            + blocks * UNITS
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
    fn zero_keeps_residency() {
        let mut c = VmaCounts::new(vma(0x10000, 0x20000));
        c.set_present(0, 4);
        c.add(0, 2, 3);
        c.zero();
        assert_eq!(c.pages().count(), 4);
        assert!(c.pages().all(|p| p.count == 0));
        assert_eq!(c.raw(5), ABSENT);
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

#[cfg(test)]
mod sparse_tests {
    use super::*;

    fn vma(start: u64, end: u64) -> Vma {
        crate::sys::maps::parse_line(&format!("{start:x}-{end:x} rw-p 0 00:00 0")).unwrap()
    }

    /// Memory follows what is resident, not the mapping's size: a 4 TiB reservation with
    /// a few pages touched took 2 GiB of counters (a `u16` per page) and got the daemon
    /// killed; now it takes the top tables and a few chunks.
    #[test]
    fn a_huge_sparse_mapping_costs_little() {
        let start = 0x7f00_0000_0000u64;
        let mut c = VmaCounts::new(vma(start, start + (4u64 << 40)));
        assert_eq!(c.len() as u64, (4u64 << 40) / base());
        let empty = c.footprint();
        assert!(
            empty < 512 << 10,
            "{empty} bytes for an untouched 4 TiB mapping"
        );
        for k in [0u64, 1 << 30, 3 << 40] {
            c.record(start + k, PageSize::Base, 1);
        }
        let used = c.footprint();
        assert!(used < empty + (64 << 10), "{used} bytes after 3 pages");
        assert_eq!(c.pages().count(), 3);
        assert_eq!(c.count_at(start + (1 << 30)), Some(1));
        // Pages that leave free their chunks again.
        c.set_absent(0, c.len());
        assert_eq!(c.footprint(), empty);
        assert_eq!(c.pages().count(), 0);
    }

    /// The sparse counters behave exactly like one counter per page: random operations
    /// on both agree on every page, count and size class.
    #[test]
    fn sparse_counters_match_dense_ones() {
        let m = PageSize::Pmd.bytes();
        let start = 7 * m - 5 * base(); // not PMD-aligned: units straddle the edges
        let v = vma(start, start + 9 * m);
        let mut c = VmaCounts::new(v.clone());
        let n = c.len();
        let mut dense = vec![ABSENT; n];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |k: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % k as u64) as usize
        };
        for _ in 0..4000 {
            let i = rnd(n);
            let len = 1 + rnd(700);
            let end = (i + len).min(n);
            match rnd(4) {
                0 => {
                    c.set_present(i, len);
                    dense[i..end]
                        .iter_mut()
                        .filter(|d| **d == ABSENT)
                        .for_each(|d| *d = 0);
                }
                1 => {
                    c.set_absent(i, len);
                    dense[i..end].fill(ABSENT);
                }
                2 => {
                    let w = rnd(4) as u16;
                    c.add(i, len, w);
                    dense[i..end]
                        .iter_mut()
                        .filter(|d| **d != ABSENT)
                        .for_each(|d| *d = d.saturating_add(w).min(MAX_COUNT));
                }
                _ => {
                    let addr = c.addr_of(i) & !(m - 1);
                    let size = if rnd(2) == 0 {
                        PageSize::Pmd
                    } else {
                        PageSize::Base
                    };
                    c.set_size(addr, size);
                }
            }
        }
        for (i, &d) in dense.iter().enumerate() {
            assert_eq!(c.raw(i), d, "page {i}");
        }
        // pages() reports a huge page by its head and skips the rest of it.
        let mut want = Vec::new();
        let mut i = 0;
        while i < n {
            let addr = c.addr_of(i);
            let class = c.size_at(i);
            let step = pages_per(class);
            let size = if class != PageSize::Base && addr % class.bytes() == 0 && i + step <= n {
                class
            } else {
                PageSize::Base
            };
            if dense[i] != ABSENT {
                want.push(PageCount {
                    addr,
                    size,
                    count: dense[i],
                });
            }
            i += pages_per(size);
        }
        assert_eq!(c.pages().collect::<Vec<_>>(), want);
    }
}
