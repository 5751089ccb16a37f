//! The scan API for plug-ins (spec §10, upstream's `libetmemd_scan.so`) in safe Rust:
//! list a process's VMAs with upstream's filters, and take page access counts one pass
//! per call. The C ABI over it is the `etmemd-scan` crate (`scanlib/`).
//!
//! Differences from upstream: results are compact counters iterated as [`PageRef`]s
//! rather than a linked list (the C library merges them into one); the best backend
//! this kernel offers is used (upstream: idle_pages only), in the order of
//! [`LIBRARY_BACKENDS`]; and the first `get_page_refs` call starts tracking (clears the
//! kernel's access state, every resident page weighs 0) instead of reporting every access
//! since the last clearing, so each later call weighs exactly one pass of the accesses
//! made since the call before.

use crate::error::{Error, Result};
use crate::sys::idle_pages_io::ALL_SCAN_FLAGS;
use crate::sys::maps::read_maps;
use crate::sys::pidfd::Pidfd;
use crate::sys::smaps::{read_smaps, SmapsVma};
use crate::track::backend::{open_among, open_one};
use crate::track::idle_pages::IdlePagesTracker;
use crate::track::scan::{check_target, gone_or};
use crate::track::Tracker;
use crate::types::ScanBackend;
use crate::types::{PageSize, Pid, Vma};

/// The backends the library tries, best first: every one but DAMON, whose kdamond is a
/// machine-wide resource that outlives the caller (a plug-in that never frees its list
/// would leave it running) and is the damon engine's to hold.
pub const LIBRARY_BACKENDS: &[ScanBackend] = &[
    ScanBackend::IdlePages,
    ScanBackend::PageIdle,
    ScanBackend::SoftDirty,
    ScanBackend::Smaps,
];

/// `etmemd_get_vmas`: the VMAs of `pid` having every one of `vmflags` (two-letter smaps
/// `VmFlags`, e.g. `ht`), and only etmem-anonymous ones if `anon_only`.
pub fn get_vmas(pid: Pid, vmflags: &[&str], anon_only: bool) -> Result<Vec<Vma>> {
    if let Some(bad) = vmflags
        .iter()
        .find(|f| f.len() != 2 || f.contains(char::is_whitespace))
    {
        return Err(Error::invalid(format!(
            "VMA flag {bad:?} is not two letters (as smaps VmFlags prints them)"
        )));
    }
    let vmas = if vmflags.is_empty() {
        read_maps(pid)?
    } else {
        read_smaps(pid)?
            .into_iter()
            .filter(|s| has_flags(s, vmflags))
            .map(|s| s.vma)
            .collect()
    };
    Ok(vmas
        .into_iter()
        .filter(|v| !anon_only || v.is_etmem_anon())
        .collect())
}

/// Whether the smaps VMA `s` has every one of `vmflags` (cslide's `vm_flags`).
pub fn has_flags(s: &SmapsVma, vmflags: &[&str]) -> bool {
    vmflags.iter().all(|f| s.has_flag(f))
}

/// One page and the weight one pass gave it (upstream's `struct page_refs` node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRef {
    /// The page's first address.
    pub addr: u64,
    /// What the pass added: +1 accessed, +3 written (spec §6.2), 0 idle.
    pub count: u32,
    /// The page's size class (upstream's `page_type`).
    pub size: PageSize,
}

/// The tracking of one process across [`get_page_refs`] calls.
pub struct PageRefs {
    backend: Option<ScanBackend>,
    state: Option<(Pidfd, Box<dyn Tracker>)>,
}

impl PageRefs {
    /// No tracking yet; it will be taken with `backend` (`None`: the first of
    /// [`LIBRARY_BACKENDS`] that works).
    pub fn new(backend: Option<ScanBackend>) -> PageRefs {
        PageRefs {
            backend,
            state: None,
        }
    }

    /// Every resident page with the weight the last call gave it, ascending by address
    /// (per VMA, in the order the VMAs were given).
    pub fn iter(&self) -> impl Iterator<Item = PageRef> + '_ {
        self.state.iter().flat_map(|(_, t)| {
            t.counts().iter().flat_map(|c| {
                c.pages().map(|p| PageRef {
                    addr: p.addr,
                    count: u32::from(p.count),
                    size: p.size,
                })
            })
        })
    }

    /// The backend in use, once tracking has started.
    pub fn backend(&self) -> Option<ScanBackend> {
        self.state.as_ref().map(|(_, t)| t.backend())
    }

    /// True when tracking runs for `pid` over exactly the ranges of `vmas`, so the next
    /// call adds a pass rather than starting over.
    fn tracks(&self, pid: Pid, vmas: &[Vma]) -> bool {
        self.state.as_ref().is_some_and(|(fd, t)| {
            fd.pid() == pid
                && t.counts().len() == vmas.len()
                && t.counts()
                    .iter()
                    .zip(vmas)
                    .all(|(c, v)| c.vma().range == v.range)
        })
    }

    /// True while the tracked process lives (false before tracking started).
    pub fn alive(&self) -> bool {
        self.state.as_ref().is_some_and(|(fd, _)| fd.is_alive())
    }
}

impl Drop for PageRefs {
    fn drop(&mut self) {
        if let Some((_, t)) = self.state.as_mut() {
            t.finish();
        }
    }
}

/// `etmemd_get_page_refs`: one pass over `vmas` of `pid`; afterwards `refs` yields what
/// the pass weighed. `flags` (`SCAN_AS_HUGE`, `SCAN_IGN_HOST`, `VMA_SCAN_FLAG`) are all
/// sent to the idle_pages module with `IDLE_SCAN_ADD_FLAGS` when that backend is used, as
/// upstream does. A call for the pid and VMAs of the call before adds a pass; any other
/// starts tracking them (every resident page weighs 0).
pub fn get_page_refs(vmas: &[Vma], pid: Pid, refs: &mut PageRefs, flags: u32) -> Result<()> {
    if refs.tracks(pid, vmas) {
        if let Some((fd, t)) = refs.state.as_mut() {
            check_target(fd)?;
            t.zero_counts();
            return t.pass(fd, &|| false).map_err(|e| gone_or(fd, e));
        }
    }
    let fd = Pidfd::open(pid)?;
    let open = |b: ScanBackend, fd: &Pidfd| -> Result<Box<dyn Tracker>> {
        match b {
            ScanBackend::IdlePages => Ok(Box::new(IdlePagesTracker::open_plugin(
                fd,
                flags & ALL_SCAN_FLAGS,
            )?)),
            b => open_one(b, fd, 0),
        }
    };
    let mut t = match refs.backend {
        Some(b) => open_among(&[b], &fd, open)?,
        None => open_among(LIBRARY_BACKENDS, &fd, open)?,
    };
    if let Some((_, mut old)) = refs.state.take() {
        old.finish();
    }
    t.begin(&fd, vmas, &|| false).map_err(|e| gone_or(&fd, e))?;
    refs.state = Some((fd, t));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vma_filters() {
        let me = std::process::id() as Pid;
        assert!(get_vmas(me, &["x"], false).is_err());
        assert!(get_vmas(me, &["r d"], false).is_err());
        let all = get_vmas(me, &[], false).unwrap();
        let anon = get_vmas(me, &[], true).unwrap();
        let rd = get_vmas(me, &["rd"], false).unwrap();
        assert!(anon.len() < all.len() && anon.iter().all(Vma::is_etmem_anon));
        assert!(!rd.is_empty() && rd.len() <= all.len());
        assert!(get_vmas(0x3fff_fff0, &[], false).is_err());
    }

    #[test]
    fn refs_weigh_one_pass_per_call_with_smaps() {
        let me = std::process::id() as Pid;
        let vmas = get_vmas(me, &[], true).unwrap();
        let mut refs = PageRefs::new(Some(ScanBackend::Smaps));
        get_page_refs(&vmas, me, &mut refs, 0).unwrap();
        assert_eq!(refs.backend(), Some(ScanBackend::Smaps));
        assert!(refs.iter().all(|r| r.count == 0));
        get_page_refs(&vmas, me, &mut refs, 0).unwrap();
        // Our own stack was certainly referenced in between; each call weighs one pass.
        assert!(refs.iter().any(|r| r.count == 1));
        assert!(refs.iter().all(|r| r.count <= 1));
        get_page_refs(&vmas, me, &mut refs, 0).unwrap();
        assert!(refs.iter().all(|r| r.count <= 1));
        // Other VMAs start over.
        get_page_refs(&vmas[1..], me, &mut refs, 0).unwrap();
        assert!(refs.iter().all(|r| r.count == 0));
    }
}
