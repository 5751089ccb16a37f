//! The `page_idle` backend (CONFIG_IDLE_PAGE_TRACKING, root): pagemap gives each
//! resident page's frame, the idle bitmap is set for those frames, and a frame whose bit
//! is found cleared at the next pass was accessed (+1). It cannot tell reads from writes.
//! A transparent huge page is one unit: the kernel only answers for its head frame, so
//! all 512 base pages take the head's answer. Hugetlb pages are not on the LRU and the
//! kernel ignores them: they always read as accessed. So do base pages not yet on an LRU
//! list (just faulted in and still in a per-CPU batch): a few pages at most, and erring
//! towards hot.

use crate::error::{Error, Kind, Result};
use crate::sys::page_idle::{words_of, PageIdle};
use crate::sys::pidfd::Pidfd;
use crate::track::counts::{counts_for, VmaCounts};
use crate::track::residency::{frame_of, Residency};
use crate::track::Tracker;
use crate::types::ScanBackend;
use crate::types::Vma;

/// page_idle tracker of one process.
#[derive(Debug)]
pub struct PageIdleTracker {
    bitmap: PageIdle,
    res: Residency,
    counts: Vec<VmaCounts>,
    frames: Vec<u64>,
    words: Vec<(u64, u64)>,
    marks: Vec<(u64, u64)>,
}

impl PageIdleTracker {
    /// Start tracking `target` with the idle page bitmap: `Permission` unless root,
    /// `Unsupported` without CONFIG_IDLE_PAGE_TRACKING.
    pub fn open(target: &Pidfd) -> Result<PageIdleTracker> {
        let bitmap = PageIdle::open()?;
        if crate::sys::euid() != 0 {
            return Err(Error::new(
                Kind::Permission,
                "the page_idle backend needs root: pagemap shows frame numbers only with \
                 CAP_SYS_ADMIN",
            ));
        }
        Ok(PageIdleTracker {
            bitmap,
            res: Residency::open(target)?,
            counts: Vec::new(),
            frames: Vec::new(),
            words: Vec::new(),
            marks: Vec::new(),
        })
    }

    /// One walk over every VMA: with `count`, add +1 to pages whose frame is no longer
    /// idle; always (re)mark every resident frame idle for the next pass.
    fn sweep(&mut self, count: bool, stop: &dyn Fn() -> bool) -> Result<()> {
        let Self {
            bitmap,
            res,
            counts,
            frames,
            words,
            marks,
        } = self;
        res.walk_all(counts, stop, |c, first, entries| {
            frames.clear();
            frames.extend((0..entries.len()).map(|j| frame_of(c, first, entries, j)));
            words_of(frames.iter().copied(), marks);
            if count {
                words.clone_from(marks);
                bitmap.read_idle(words)?;
                for (j, &f) in frames.iter().enumerate() {
                    if f != 0 && !is_set(words, f) {
                        c.add(first + j, 1, 1);
                    }
                }
            }
            bitmap.mark_idle(marks)
        })
    }
}

/// Is frame `f`'s bit set in sorted (word, mask) pairs?
fn is_set(words: &[(u64, u64)], f: u64) -> bool {
    words
        .binary_search_by_key(&(f / 64), |w| w.0)
        .map(|i| words[i].1 & (1 << (f % 64)) != 0)
        .unwrap_or(false)
}

impl Tracker for PageIdleTracker {
    fn backend(&self) -> ScanBackend {
        ScanBackend::PageIdle
    }

    fn begin(&mut self, _target: &Pidfd, vmas: &[Vma], stop: &dyn Fn() -> bool) -> Result<()> {
        self.counts = counts_for(vmas);
        self.sweep(false, stop)
    }

    fn pass(&mut self, _target: &Pidfd, stop: &dyn Fn() -> bool) -> Result<()> {
        self.sweep(true, stop)
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

    #[test]
    fn bit_lookup() {
        let w = vec![(0, 0b10), (3, 1 << 63)];
        assert!(is_set(&w, 1) && !is_set(&w, 0) && is_set(&w, 255) && !is_set(&w, 64));
    }
}
