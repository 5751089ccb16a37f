//! The scan API for plug-ins (spec §10, upstream's `libetmemd_scan.so`) in safe Rust:
//! list a process's VMAs with upstream's filters, and accumulate page access counts one
//! pass per call. The C ABI over it comes with the thirdparty engine.
//!
//! Differences from upstream: no init/exit calls (there is no global state); results are
//! compact counters iterated as [`PageRef`]s rather than a linked list; any backend may be
//! used (upstream: idle_pages only); and the first `get_page_refs` call starts tracking
//! (clears the kernel's access state) instead of reporting every access since the last
//! clearing, so each later call adds exactly one pass of `sleep`-apart accesses.

use crate::error::{Error, Result};
use crate::sys::idle_pages_io::ALL_SCAN_FLAGS;
use crate::sys::maps::read_maps;
use crate::sys::pidfd::Pidfd;
use crate::sys::smaps::{read_smaps, SmapsVma};
use crate::track::idle_pages::IdlePagesTracker;
use crate::track::scan::{check_target, gone_or};
use crate::track::{open, Tracker};
use crate::types::ScanBackend;
use crate::types::{PageSize, Pid, Vma};

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

/// One page and its accumulated count (upstream's `struct page_refs` node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRef {
    /// The page's first address.
    pub addr: u64,
    /// Accesses summed over the passes so far (+1 accessed, +3 written).
    pub count: u32,
    /// The page's size class (upstream's `page_type`).
    pub size: PageSize,
}

/// Accumulated counts of one process, filled by [`get_page_refs`].
pub struct PageRefs {
    backend: Option<ScanBackend>,
    state: Option<(Pidfd, Box<dyn Tracker>)>,
}

impl PageRefs {
    /// Empty counts that will be taken with `backend` (`None`: auto-detect).
    pub fn new(backend: Option<ScanBackend>) -> PageRefs {
        PageRefs {
            backend,
            state: None,
        }
    }

    /// Every resident page seen so far, ascending by address (per VMA).
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
}

impl Drop for PageRefs {
    fn drop(&mut self) {
        if let Some((_, t)) = self.state.as_mut() {
            t.finish();
        }
    }
}

/// `etmemd_get_page_refs`: one pass over `vmas` of `pid`, merged into `refs`. `flags`
/// (`SCAN_AS_HUGE`, `SCAN_IGN_HOST`, `VMA_SCAN_FLAG`) are sent to the idle_pages module
/// with `IDLE_SCAN_ADD_FLAGS` when that backend is used. The first call on `refs` (or a
/// call for another pid) starts tracking `vmas`; later calls add a pass.
pub fn get_page_refs(vmas: &[Vma], pid: Pid, refs: &mut PageRefs, flags: u32) -> Result<()> {
    if let Some((fd, t)) = refs.state.as_mut() {
        if fd.pid() == pid {
            check_target(fd)?;
            return t.pass(fd, &|| false).map_err(|e| gone_or(fd, e));
        }
    }
    let fd = Pidfd::open(pid)?;
    let mut t: Box<dyn Tracker> = match refs.backend {
        Some(ScanBackend::IdlePages) => {
            Box::new(IdlePagesTracker::open_plugin(&fd, flags & ALL_SCAN_FLAGS)?)
        }
        other => open(other, &fd)?,
    };
    t.begin(&fd, vmas, &|| false).map_err(|e| gone_or(&fd, e))?;
    if let Some((_, mut old)) = refs.state.replace((fd, t)) {
        old.finish();
    }
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
    fn refs_accumulate_with_smaps() {
        let me = std::process::id() as Pid;
        let vmas = get_vmas(me, &[], true).unwrap();
        let mut refs = PageRefs::new(Some(ScanBackend::Smaps));
        get_page_refs(&vmas, me, &mut refs, 0).unwrap();
        assert_eq!(refs.backend(), Some(ScanBackend::Smaps));
        assert!(refs.iter().all(|r| r.count == 0));
        get_page_refs(&vmas, me, &mut refs, 0).unwrap();
        // Our own stack was certainly referenced in between.
        assert!(refs.iter().any(|r| r.count == 1));
    }
}
