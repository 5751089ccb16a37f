//! Actuators: take pages out of DRAM (swap them out, or migrate them to another node:
//! [`migrate`]).
//!
//! Swap-out has two kernel backends behind one [`Swapper`] trait: openEuler's
//! `/proc/PID/swap_pages` (module `etmem_swap`) and stock Linux's
//! `process_madvise(MADV_PAGEOUT)`. [`open`] picks one per process, or takes the
//! configured choice. [`swappable`] says which memory may be swapped at all.

pub mod coalesce;
pub mod madvise;
pub mod migrate;
pub mod residency;
pub mod swap_pages;
pub mod swapcache;
pub mod swappable;

pub use residency::resident_bytes;

use crate::error::Result;
use crate::sys::pidfd::Pidfd;
use crate::types::{PageSize, Pid, Range, SwapBackend};

/// What one swap-out did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwapReport {
    /// Bytes asked for, after widening to whole pages and merging overlaps.
    pub requested_bytes: u64,
    /// Bytes the kernel took: advised (process_madvise), or whose addresses it accepted
    /// (swap_pages, which does not say which pages it really reclaimed). What really left
    /// DRAM is [`swapped_bytes`] before and after, or [`resident_bytes`].
    pub advised_bytes: u64,
    /// Ranges the kernel refused (not mapped, locked...), with the reason; the rest went on.
    pub skipped: Vec<(Range, String)>,
    /// Syscalls made (writes or process_madvise calls).
    pub calls: u64,
    /// True when `stop()` cut the swap-out short.
    pub stopped: bool,
}

/// Swaps pages of one process out of DRAM.
pub trait Swapper: Send {
    /// Which swap-out backend this is (for status and scan output).
    fn backend(&self) -> SwapBackend;

    /// Swap out `ranges` of `target` (any order; widened to whole base pages and merged),
    /// checking `stop` between kernel calls so a project stop is prompt. Fails with kind
    /// `Gone` when the process exits, `Permission` or `Unsupported` when the kernel
    /// refuses the whole thing; single refused ranges go to `skipped` instead.
    fn swap_out(
        &mut self,
        target: &Pidfd,
        ranges: &[Range],
        stop: &dyn Fn() -> bool,
    ) -> Result<SwapReport>;

    /// Swap out `ranges`, each made of whole pages of the size class given (a run of
    /// cold THPs as 2 MiB pages). The swap_pages backend writes one address per page, a
    /// huge page once by its head address as upstream does; the default drops the size
    /// class and calls [`Swapper::swap_out`].
    fn swap_out_sized(
        &mut self,
        target: &Pidfd,
        ranges: &[(Range, PageSize)],
        stop: &dyn Fn() -> bool,
    ) -> Result<SwapReport> {
        let plain: Vec<Range> = ranges.iter().map(|&(r, _)| r).collect();
        self.swap_out(target, &plain, stop)
    }
}

/// The range of the page of class `size` that holds `addr`.
pub fn page_range(addr: u64, size: PageSize) -> Range {
    let bytes = size.bytes();
    let start = addr & !(bytes - 1);
    Range::new(start, start.saturating_add(bytes))
}

/// The swapper for the process `target` holds: the chosen backend, or with `None`
/// swap_pages when this kernel has `/proc/PID/swap_pages`, else process_madvise. Opening
/// checks that the backend works here (the module is loaded, the syscall exists and we
/// may use it), so a misconfiguration fails at task start with a message saying what is
/// missing. Taking the pidfd, not a pid, means a swapper is only ever made for the
/// process that was resolved.
pub fn open(choice: Option<SwapBackend>, target: &Pidfd) -> Result<Box<dyn Swapper>> {
    match choice.unwrap_or_else(|| detect(target.pid())) {
        SwapBackend::SwapPages => Ok(Box::new(swap_pages::SwapPages::open(target)?)),
        SwapBackend::ProcessMadvise => Ok(Box::new(madvise::ProcessMadvise::open(target)?)),
    }
}

/// The backend auto-detection picks for `pid`.
pub fn detect(pid: Pid) -> SwapBackend {
    if std::path::Path::new(&swap_pages::path(pid)).exists() {
        SwapBackend::SwapPages
    } else {
        SwapBackend::ProcessMadvise
    }
}

/// Bytes of `pid`'s memory now in swap (`VmSwap`): what really left DRAM, whatever the
/// backend reported.
pub fn swapped_bytes(pid: Pid) -> Result<u64> {
    crate::sys::process::status_bytes(pid, "VmSwap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_are_aligned_to_their_class() {
        let b = PageSize::Base.bytes();
        let m = PageSize::Pmd.bytes();
        assert_eq!(
            page_range(3 * b + 5, PageSize::Base),
            Range::new(3 * b, 4 * b)
        );
        assert_eq!(page_range(m + b, PageSize::Pmd), Range::new(m, 2 * m));
    }
}
