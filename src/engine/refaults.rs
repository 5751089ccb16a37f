//! Refaults: memory a swapper sent out of DRAM that is back in DRAM a cycle later (the
//! process touched it again, so swapping it cost a fault and bought nothing). Per
//! process, the ranges sent out and how much of them was still resident right after the
//! swap-out are kept until the next cycle, which counts what came back.

use std::collections::HashMap;
use std::sync::Mutex;

use super::targets::Held;
use crate::act::residency::resident_bytes;
use crate::error::{lock, Result};
use crate::types::{PageSize, Pid, Range};

/// One process, by task, pid and start time (a reused pid is another process).
type Key = (String, Pid, u64);

/// What was sent out of one process in its last cycle.
#[derive(Debug)]
struct Sent {
    ranges: Vec<Range>,
    /// Bytes of `ranges` still resident just after the swap-out (the kernel kept some).
    resident_after: u64,
}

/// The ranges each process of an engine's tasks had sent out in its last cycle.
#[derive(Debug, Default)]
pub struct Refaults {
    sent: Mutex<HashMap<Key, Sent>>,
}

fn key(task: &str, held: &Held) -> Key {
    (task.to_string(), held.pid(), held.identity().start_time)
}

impl Refaults {
    /// Base pages of what `task` sent out of `held`'s process in the last cycle that are
    /// resident again now; 0 the first time. Forgets that cycle's ranges.
    pub fn came_back(&self, task: &str, held: &Held) -> Result<u64> {
        let Some(s) = lock(&self.sent).remove(&key(task, held)) else {
            return Ok(0);
        };
        let now = resident_bytes(held.pid(), &s.ranges)?;
        Ok(now.saturating_sub(s.resident_after) / PageSize::Base.bytes())
    }

    /// `task` just swapped `ranges` (sorted, merged) of `held`'s process out: remember
    /// them, with how much of them is still resident, for the next cycle.
    pub fn sent(&self, task: &str, held: &Held, ranges: Vec<Range>) -> Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let resident_after = resident_bytes(held.pid(), &ranges)?;
        lock(&self.sent).insert(
            key(task, held),
            Sent {
                ranges,
                resident_after,
            },
        );
        Ok(())
    }

    /// Forget `task`'s processes other than `live` (exited, or no longer its children).
    pub fn keep_only(&self, task: &str, live: &[Held]) {
        let keep: Vec<Key> = live.iter().map(|h| key(task, h)).collect();
        lock(&self.sent).retain(|k, _| k.0 != task || keep.contains(k));
    }
}
