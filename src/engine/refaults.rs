//! Refaults: memory a swapper sent out of DRAM that is back in DRAM a cycle later (the
//! process touched it again, so swapping it cost a fault and bought nothing). Per
//! process, the ranges sent out and the part the kernel kept are remembered until the
//! next cycle, which counts what came back, and, with `refault_hold`, holds those ranges
//! in DRAM for that many cycles.

use std::collections::HashMap;
use std::sync::Mutex;

use super::targets::Held;
use crate::act::coalesce::{coalesce, subtract, total_bytes};
use crate::act::residency::present_ranges;
use crate::error::{lock, Result};
use crate::types::{PageSize, Pid, Range};

/// One process, by task, pid and start time (a reused pid is another process).
type Key = (String, Pid, u64);

/// What one process sent out last and what is held in DRAM.
#[derive(Debug, Default)]
struct Proc {
    /// The ranges sent out in the last cycle, sorted and merged.
    sent: Vec<Range>,
    /// The part of `sent` still present just after the swap-out (the kernel kept it).
    kept: Vec<Range>,
    /// Ranges that came back, with the cycles they are still held for.
    held: Vec<(Range, u32)>,
}

/// Per process of an engine's tasks, what it sent out and what is held.
#[derive(Debug, Default)]
pub struct Refaults {
    procs: Mutex<HashMap<Key, Proc>>,
}

fn key(task: &str, held: &Held) -> Key {
    (task.to_string(), held.pid(), held.identity().start_time)
}

impl Refaults {
    /// Base pages of what `task` sent out of `held`'s process in the last cycle that are
    /// present again now; 0 the first time. With `hold` (cycles), those ranges are held
    /// in DRAM for that many cycles from now ([`Refaults::held`]); older holds count one
    /// cycle down. Call once per cycle and process, before anything is swapped.
    pub fn came_back(&self, task: &str, held: &Held, hold: Option<u32>) -> Result<u64> {
        let k = key(task, held);
        // Taken out of the map for the pagemap read, so the other workers' processes do
        // not wait on this one's I/O.
        let Some(mut p) = lock(&self.procs).remove(&k) else {
            return Ok(0);
        };
        p.held.retain_mut(|(_, left)| {
            *left -= 1;
            *left > 0
        });
        let sent = std::mem::take(&mut p.sent);
        let kept = std::mem::take(&mut p.kept);
        let back = if sent.is_empty() {
            Vec::new()
        } else {
            subtract(&present_ranges(held.pid(), &sent)?, &kept)
        };
        if let Some(n) = hold.filter(|&n| n > 0) {
            p.held.extend(back.iter().map(|&r| (r, n)));
        }
        lock(&self.procs).insert(k, p);
        Ok(total_bytes(&back) / PageSize::Base.bytes())
    }

    /// The ranges of `held`'s process that `task` must keep in DRAM now, sorted and
    /// merged.
    pub fn held(&self, task: &str, held: &Held) -> Vec<Range> {
        let procs = lock(&self.procs);
        let ranges: Vec<Range> = procs
            .get(&key(task, held))
            .map(|p| p.held.iter().map(|h| h.0).collect())
            .unwrap_or_default();
        coalesce(&ranges, PageSize::Base.bytes())
    }

    /// `task` just swapped `ranges` (sorted, merged) of `held`'s process out: remember
    /// them, and the part still present, for the next cycle.
    pub fn sent(&self, task: &str, held: &Held, ranges: Vec<Range>) -> Result<()> {
        let kept = present_ranges(held.pid(), &ranges)?;
        let mut procs = lock(&self.procs);
        let p = procs.entry(key(task, held)).or_default();
        p.sent = ranges;
        p.kept = kept;
        Ok(())
    }

    /// Forget `task`'s processes other than `live` (exited, or no longer its children).
    pub fn keep_only(&self, task: &str, live: &[Held]) {
        let keep: Vec<Key> = live.iter().map(|h| key(task, h)).collect();
        lock(&self.procs).retain(|k, _| k.0 != task || keep.contains(k));
    }
}
