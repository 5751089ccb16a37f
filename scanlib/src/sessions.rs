//! What the library keeps between calls: whether `etmemd_scan_init` started it, and the
//! tracking of each process being scanned, so that each `etmemd_get_page_refs` adds one
//! pass to the last one's (spec §10; `etmem::track::export` has the semantics).

use std::sync::Mutex;

use etmem::error::lock;
use etmem::track::export::{get_page_refs, PageRef, PageRefs};
use etmem::types::{Pid, Vma};

/// At most this many processes are tracked at once; the least recently scanned is
/// forgotten first (one that exited is forgotten at the next call).
const MAX_TRACKED: usize = 64;

struct State {
    started: bool,
    /// Least recently scanned first.
    tracked: Vec<(Pid, PageRefs)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    started: false,
    tracked: Vec::new(),
});

/// `etmemd_scan_init`: false when already started.
pub fn init() -> bool {
    let mut st = lock(&STATE);
    !std::mem::replace(&mut st.started, true)
}

/// `etmemd_scan_exit`: stop, and forget every process's tracking.
pub fn exit() {
    let gone = {
        let mut st = lock(&STATE);
        st.started = false;
        std::mem::take(&mut st.tracked)
    };
    drop(gone);
}

/// True between `init` and `exit`.
pub fn started() -> bool {
    lock(&STATE).started
}

/// One pass over `vmas` of `pid` (tracking started over when `fresh`), whose pages and
/// weights are handed to `merge`; `None` when not started or the scan failed. The lock
/// is not held during the scan, so callers on other threads are not held up by it.
pub fn pass<R>(
    pid: Pid,
    vmas: &[Vma],
    fresh: bool,
    flags: u32,
    merge: impl FnOnce(&mut dyn Iterator<Item = PageRef>) -> R,
) -> Option<R> {
    let mut refs = {
        let mut st = lock(&STATE);
        if !st.started {
            return None;
        }
        st.tracked.retain(|(_, r)| r.alive());
        let old = st.tracked.iter().position(|(p, _)| *p == pid);
        match old.map(|i| st.tracked.remove(i).1) {
            Some(r) if !fresh => r,
            _ => PageRefs::new(None),
        }
    };
    get_page_refs(vmas, pid, &mut refs, flags).ok()?;
    let out = merge(&mut refs.iter());
    let mut st = lock(&STATE);
    if st.started {
        st.tracked.push((pid, refs));
        if st.tracked.len() > MAX_TRACKED {
            st.tracked.remove(0);
        }
    }
    Some(out)
}
