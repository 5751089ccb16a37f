//! The backends by name, what each one sees, and choosing one: the first that works on
//! this kernel in the order, or the one asked for.

use crate::error::{Error, Kind, Result};
use crate::track::Tracker;
use crate::types::Pid;

/// The kernel interfaces a tracker can be built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// openEuler's `/proc/PID/idle_pages` (etmem_scan module): per-page accessed bits.
    IdlePages,
    /// `/sys/kernel/mm/page_idle/bitmap` + pagemap: per-page accessed bits.
    PageIdle,
    /// DAMON virtual address monitoring: per-region access frequency.
    Damon,
    /// Soft-dirty bits: per-page writes only.
    SoftDirty,
    /// smaps `Referenced` after clear_refs: per-VMA only.
    Smaps,
}

impl Backend {
    /// Every backend, in auto-detection order.
    pub const ALL: [Backend; 5] = [
        Backend::IdlePages,
        Backend::PageIdle,
        Backend::Damon,
        Backend::SoftDirty,
        Backend::Smaps,
    ];

    /// The name used in config files (`scan_backend=`) and on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Backend::IdlePages => "idle_pages",
            Backend::PageIdle => "page_idle",
            Backend::Damon => "damon",
            Backend::SoftDirty => "softdirty",
            Backend::Smaps => "smaps",
        }
    }

    /// Parse a backend name; `auto` is `Ok(None)`. The error lists the accepted names.
    pub fn from_name(name: &str) -> Result<Option<Backend>> {
        if name == "auto" {
            return Ok(None);
        }
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .map(Some)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown scan backend {name:?}: use auto, idle_pages, page_idle, damon, \
                     softdirty or smaps"
                ))
            })
    }

    /// What the backend can observe, for output and documentation.
    pub fn sees(self) -> &'static str {
        match self {
            Backend::IdlePages => "per-page reads and writes (accessed bits)",
            Backend::PageIdle => "per-page reads and writes (accessed bits), not dirtiness",
            Backend::Damon => "per-region access frequency (sampled), mapped to pages",
            Backend::SoftDirty => "per-page writes only: reads are invisible to it",
            Backend::Smaps => {
                "per-VMA references only: every resident page of a VMA gets the VMA's answer"
            }
        }
    }
}

/// Open a tracker for `pid`: the backend asked for, or the first available in the order
/// idle_pages, page_idle, damon, softdirty, smaps. When a chosen backend is unavailable
/// the error names the kernel option or module it needs.
pub fn open(choice: Option<Backend>, pid: Pid) -> Result<Box<dyn Tracker>> {
    open_with_flags(choice, pid, 0)
}

/// [`open`] with openEuler scan flags for the idle_pages backend (`SCAN_AS_HUGE`,
/// `SCAN_IGN_HOST`, `VMA_SCAN_FLAG`: spec §9.1); other backends have no such flags and
/// ignore them, so callers filter VMAs themselves there.
pub fn open_with_flags(choice: Option<Backend>, pid: Pid, flags: u32) -> Result<Box<dyn Tracker>> {
    if let Some(b) = choice {
        return open_one(b, pid, flags);
    }
    // Any failure moves on to the next backend (page_idle needs root, DAMON may be busy);
    // the last one, smaps, works wherever the process is readable, so its own error (no
    // such process, permission) is the one that matters when it fails too.
    let mut why = Vec::new();
    for b in Backend::ALL {
        match open_one(b, pid, flags) {
            Ok(t) => return Ok(t),
            Err(e) if b == Backend::Smaps && e.kind != Kind::Unsupported => return Err(e),
            Err(e) => why.push(format!("{}: {}", b.name(), e.msg)),
        }
    }
    Err(Error::new(
        Kind::Unsupported,
        format!("no scan backend works here: {}", why.join("; ")),
    ))
}

fn open_one(b: Backend, pid: Pid, flags: u32) -> Result<Box<dyn Tracker>> {
    use crate::track::*;
    Ok(match b {
        Backend::IdlePages => Box::new(idle_pages::IdlePagesTracker::open(pid, flags)?),
        Backend::PageIdle => Box::new(page_idle::PageIdleTracker::open(pid)?),
        Backend::Damon => Box::new(damon::DamonTracker::open(pid)?),
        Backend::SoftDirty => Box::new(softdirty::SoftDirtyTracker::open(pid)?),
        Backend::Smaps => Box::new(smaps::SmapsTracker::open(pid)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()).unwrap(), Some(b));
        }
        assert_eq!(Backend::from_name("auto").unwrap(), None);
        assert!(Backend::from_name("x").unwrap_err().msg.contains("smaps"));
    }
}
