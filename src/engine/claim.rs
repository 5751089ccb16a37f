//! "Concurrent scanning of the same process is prohibited" (user guide): a process-wide
//! set of the pids being worked on. Two tasks (in any projects) that target one process
//! take turns: the one that finds it claimed skips it this cycle.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use crate::types::Pid;

fn claimed() -> &'static Mutex<HashSet<Pid>> {
    static SET: OnceLock<Mutex<HashSet<Pid>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A pid held for scanning; released on drop.
#[derive(Debug)]
pub struct Claim(Pid);

/// Claim `pid`, or `None` if another task is working on it now.
pub fn claim(pid: Pid) -> Option<Claim> {
    let inserted = crate::error::lock(claimed()).insert(pid);
    // Build the claim only after the lock is released: a claim dropped while the lock is
    // held (as `then_some(Claim(..))` would do on failure) would deadlock in `drop`.
    inserted.then(|| Claim(pid))
}

impl Drop for Claim {
    fn drop(&mut self) {
        crate::error::lock(claimed()).remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time() {
        let pid = -4242; // no real process; keeps clear of other tests
        let c = claim(pid).unwrap();
        assert!(claim(pid).is_none());
        drop(c);
        assert!(claim(pid).is_some());
    }
}
