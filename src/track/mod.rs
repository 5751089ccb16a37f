//! Access tracking: how often a live process touches each of its pages, measured by one
//! of several kernel backends behind one interface.
//!
//! A caller opens a [`Tracker`] ([`open`]), calls [`Tracker::begin`] with the VMAs to
//! watch, then [`Tracker::pass`] once per scan with pauses in between (the caller sleeps,
//! so it can be interrupted), and reads per-page counts from [`Tracker::counts`]: each pass
//! adds +1 to a page that was accessed and +3 to one that was written where the backend
//! can tell (spec §6.2). [`scan()`] does the whole loop.

pub mod backend;
pub mod counts;
pub mod damon;
pub mod export;
pub mod idle_pages;
pub mod idle_pages_stream;
pub mod page_idle;
pub mod residency;
pub mod scan;
pub mod smaps;
pub mod softdirty;
pub mod summary;

pub use backend::{open, open_with_flags};
pub use counts::{PageCount, Run, VmaCounts};
pub use scan::scan;
pub use summary::Summary;

use crate::error::Result;
use crate::sys::pidfd::Pidfd;
use crate::types::{ScanBackend, Vma};

/// One access-tracking backend, driven pass by pass by its caller.
pub trait Tracker: Send {
    /// Which backend this is.
    fn backend(&self) -> ScanBackend;

    /// Start watching `vmas` (sorted by address, as maps lists them) of `target`: reset
    /// the counts and clear the kernel's access state, so the first pass sees only
    /// accesses made after `begin`.
    /// `stop` is polled inside long walks (a sparse mapping of terabytes is walked for
    /// seconds); when it says so the call ends with an error of kind `Gone`.
    fn begin(&mut self, target: &Pidfd, vmas: &[Vma], stop: &dyn Fn() -> bool) -> Result<()>;

    /// Add the accesses made since the previous pass (or `begin`) to the counts.
    /// `stop` as for [`Tracker::begin`].
    fn pass(&mut self, target: &Pidfd, stop: &dyn Fn() -> bool) -> Result<()>;

    /// The counts, one entry per VMA given to `begin`, in the same order.
    fn counts(&self) -> &[VmaCounts];

    /// Set every resident page's count to 0, keeping which pages are resident, so the
    /// next pass's counts are that pass's alone (the scan library's one pass per call).
    fn zero_counts(&mut self);

    /// Release kernel state (turn DAMON off). Also done on drop; idempotent. Most
    /// backends hold only open files and need nothing here.
    fn finish(&mut self) {}
}
