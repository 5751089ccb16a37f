//! Choosing a tracking backend: the first that works on this kernel in the order of
//! [`ScanBackend::ALL`], or the one asked for.

use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::track::Tracker;
use crate::types::ScanBackend;

/// Open a tracker for the process `target` holds: the backend asked for, or the first
/// available in the order idle_pages, page_idle, damon, softdirty, smaps. When a chosen
/// backend is unavailable the error names the kernel option or module it needs. Taking
/// the pidfd, not a pid, means a tracker is only ever made for the process that was
/// resolved: the process is checked alive after the backend opened its files.
pub fn open(choice: Option<ScanBackend>, target: &Pidfd) -> Result<Box<dyn Tracker>> {
    open_with_flags(choice, target, 0)
}

/// [`open`] with openEuler scan flags for the idle_pages backend (`SCAN_AS_HUGE`,
/// `SCAN_IGN_HOST`, `VMA_SCAN_FLAG`: spec §9.1); other backends have no such flags and
/// ignore them, so callers filter VMAs themselves there.
pub fn open_with_flags(
    choice: Option<ScanBackend>,
    target: &Pidfd,
    flags: u32,
) -> Result<Box<dyn Tracker>> {
    match choice {
        Some(b) => open_one(b, target, flags),
        None => open_among(ScanBackend::ALL, target, |b, t| open_one(b, t, flags)),
    }
}

/// The first of `candidates` (in order) that `open` opens for `target`. Any failure moves
/// on to the next (page_idle needs root, DAMON may be busy); the last one's own error
/// (no such process, permission) is the one that matters when it fails too, unless it is
/// only unsupported here. Every tracker returned was checked to be for the live process.
pub fn open_among(
    candidates: &[ScanBackend],
    target: &Pidfd,
    open: impl Fn(ScanBackend, &Pidfd) -> Result<Box<dyn Tracker>>,
) -> Result<Box<dyn Tracker>> {
    let mut why = Vec::new();
    for (i, &b) in candidates.iter().enumerate() {
        match open(b, target).and_then(|t| target.check_alive().map(|()| t)) {
            Ok(t) => return Ok(t),
            Err(e) if i + 1 == candidates.len() && e.kind != Kind::Unsupported => return Err(e),
            Err(e) => why.push(format!("{}: {}", b.name(), e.msg)),
        }
    }
    Err(Error::new(
        Kind::Unsupported,
        format!("no scan backend works here: {}", why.join("; ")),
    ))
}

/// Open backend `b` for `target`, with idle_pages scan flags as [`open_with_flags`] takes.
pub fn open_one(b: ScanBackend, target: &Pidfd, flags: u32) -> Result<Box<dyn Tracker>> {
    use crate::track::*;
    let t: Box<dyn Tracker> = match b {
        ScanBackend::IdlePages => Box::new(idle_pages::IdlePagesTracker::open(target, flags)?),
        ScanBackend::PageIdle => Box::new(page_idle::PageIdleTracker::open(target)?),
        ScanBackend::Damon => Box::new(damon::DamonTracker::open(target)?),
        ScanBackend::SoftDirty => Box::new(softdirty::SoftDirtyTracker::open(target)?),
        ScanBackend::Smaps => Box::new(smaps::SmapsTracker::open(target)?),
    };
    // Alive after the open: every /proc file the backend holds is this process's, not a
    // later one's that reuses the pid.
    target.check_alive()?;
    Ok(t)
}
