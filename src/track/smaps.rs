//! The `smaps` backend, the last resort that works on every kernel: `clear_refs` 1 clears
//! the referenced state of every page, and each VMA's `Referenced:` in smaps tells how much
//! of it was touched since. It is VMA-grained: the kernel does not say which pages, so
//! every resident page of a VMA with any referenced memory gets +1 for the pass, and
//! every page of a VMA with none stays at 0. (Erring towards hot: a swapper never takes
//! a touched VMA's pages for cold.)

use crate::error::Result;
use crate::sys::clear_refs::{ClearRefs, ClearRefsFile};
use crate::sys::pidfd::Pidfd;
use crate::sys::smaps::read_smaps;
use crate::track::counts::VmaCounts;
use crate::track::residency::Residency;
use crate::track::Tracker;
use crate::types::ScanBackend;
use crate::types::{Pid, Vma};

/// smaps-based tracker of one process.
#[derive(Debug)]
pub struct SmapsTracker {
    pid: Pid,
    clear: ClearRefsFile,
    res: Residency,
    counts: Vec<VmaCounts>,
}

impl SmapsTracker {
    /// Start tracking `target` through its `clear_refs` and smaps (any kernel).
    pub fn open(target: &Pidfd) -> Result<SmapsTracker> {
        let pid = target.pid();
        Ok(SmapsTracker {
            pid,
            clear: ClearRefsFile::open(pid)?,
            res: Residency::open(target)?,
            counts: Vec::new(),
        })
    }
}

impl Tracker for SmapsTracker {
    fn backend(&self) -> ScanBackend {
        ScanBackend::Smaps
    }

    fn begin(&mut self, _target: &Pidfd, vmas: &[Vma], stop: &dyn Fn() -> bool) -> Result<()> {
        self.counts = self.res.fresh_counts(vmas, stop)?;
        self.clear.clear(ClearRefs::Referenced)
    }

    fn pass(&mut self, _target: &Pidfd, stop: &dyn Fn() -> bool) -> Result<()> {
        let smaps = read_smaps(self.pid)?;
        self.clear.clear(ClearRefs::Referenced)?;
        self.res
            .walk_all(&mut self.counts, stop, |c, first, entries| {
                let start = c.vma().range.start;
                let i = smaps.partition_point(|s| s.vma.range.start < start);
                let referenced = smaps
                    .get(i)
                    .filter(|s| s.vma.range.start == start)
                    .map_or(0, |s| s.referenced);
                if referenced > 0 {
                    c.add(first, entries.len(), 1);
                }
                Ok(())
            })?;
        Ok(())
    }

    fn counts(&self) -> &[VmaCounts] {
        &self.counts
    }

    fn zero_counts(&mut self) {
        self.counts.iter_mut().for_each(VmaCounts::zero);
    }
}
