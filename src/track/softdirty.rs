//! The `softdirty` backend: `clear_refs` 4 clears every soft-dirty bit of the process, and
//! pagemap bit 55 says which pages were written since. It sees writes only (reads leave
//! no trace), so each written page gets the dirty weight +3 per pass and a page that is
//! only read stays at 0. Needs CONFIG_MEM_SOFT_DIRTY.

use std::sync::OnceLock;

use crate::error::{Error, Kind, Result};
use crate::sys::clear_refs::{ClearRefs, ClearRefsFile};
use crate::sys::mman::{AnonRegion, Thp};
use crate::sys::pagemap::{self, Pagemap};
use crate::sys::pidfd::Pidfd;
use crate::track::counts::VmaCounts;
use crate::track::residency::Residency;
use crate::track::Tracker;
use crate::types::ScanBackend;
use crate::types::{Pid, Vma};

/// The weight of a written page (spec §6.2).
const DIRTY: u16 = 3;

/// Soft-dirty tracker of one process.
#[derive(Debug)]
pub struct SoftDirtyTracker {
    clear: ClearRefsFile,
    res: Residency,
    counts: Vec<VmaCounts>,
}

/// Does this kernel keep soft-dirty bits? A freshly written page of our own is soft-dirty
/// exactly when it does (without CONFIG_MEM_SOFT_DIRTY bit 55 is always 0).
pub fn supported() -> bool {
    static YES: OnceLock<bool> = OnceLock::new();
    *YES.get_or_init(|| {
        let probe = || -> Result<bool> {
            let r = AnonRegion::new(crate::types::page_size() as usize, 0, Thp::NoHuge)?;
            r.fill(1);
            let mut pm = Pagemap::open(std::process::id() as Pid)?;
            let mut e = [0u64];
            pm.read(r.addr(), &mut e)?;
            Ok(pagemap::is_present(e[0]) && e[0] & pagemap::SOFT_DIRTY != 0)
        };
        probe().unwrap_or(false)
    })
}

impl SoftDirtyTracker {
    /// Start tracking `target` by soft-dirty bits: `Unsupported` without
    /// CONFIG_MEM_SOFT_DIRTY.
    pub fn open(target: &Pidfd) -> Result<SoftDirtyTracker> {
        let pid = target.pid();
        if !supported() {
            return Err(Error::new(
                Kind::Unsupported,
                "pagemap has no soft-dirty bits: the softdirty backend needs a kernel built \
                 with CONFIG_MEM_SOFT_DIRTY",
            ));
        }
        Ok(SoftDirtyTracker {
            clear: ClearRefsFile::open(pid)?,
            res: Residency::open(target)?,
            counts: Vec::new(),
        })
    }
}

impl Tracker for SoftDirtyTracker {
    fn backend(&self) -> ScanBackend {
        ScanBackend::SoftDirty
    }

    fn begin(&mut self, _target: &Pidfd, vmas: &[Vma], stop: &dyn Fn() -> bool) -> Result<()> {
        self.counts = self.res.fresh_counts(vmas, stop)?;
        self.clear.clear(ClearRefs::SoftDirty)
    }

    fn pass(&mut self, _target: &Pidfd, stop: &dyn Fn() -> bool) -> Result<()> {
        self.res
            .walk_all(&mut self.counts, stop, |c, first, entries| {
                for (j, &e) in entries.iter().enumerate() {
                    if pagemap::is_present(e) && e & pagemap::SOFT_DIRTY != 0 {
                        c.add(first + j, 1, DIRTY);
                    }
                }
                Ok(())
            })?;
        self.clear.clear(ClearRefs::SoftDirty)
    }

    fn counts(&self) -> &[VmaCounts] {
        &self.counts
    }

    fn zero_counts(&mut self) {
        self.counts.iter_mut().for_each(VmaCounts::zero);
    }
}
