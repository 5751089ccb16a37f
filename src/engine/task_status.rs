//! What a task has done so far, as `project show` reports it. Written by the scheduler
//! thread, read by the request handler; a mutex guards it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::types::{Pid, Range};

/// Per-task state and statistics.
#[derive(Debug, Clone, Default)]
pub struct TaskStatus {
    /// The processes worked on in the last cycle: the main one first, then its children.
    pub pids: Vec<Pid>,
    /// Cycles completed since the project was started.
    pub cycles: u64,
    /// When the last cycle finished.
    pub last_cycle: Option<SystemTime>,
    /// Why the last cycle failed, if it did (cleared by the next good cycle).
    pub last_error: Option<String>,
    /// A standing remark about what this task can and cannot do here.
    pub note: Option<String>,
    /// The tracking and moving backends in use, e.g. `page_idle+process_madvise`.
    pub backend: Option<String>,
    /// What the last cycle measured and did.
    pub last: CycleStats,
    /// Bytes that left DRAM for this task since the project started: the sum of each
    /// cycle's [`CycleStats::vmswap_growth`].
    pub swapped_total: u64,
    /// Everything else summed since the project started (the metrics' counters).
    pub totals: Totals,
    /// How long the last cycle took.
    pub last_duration: Duration,
    /// psi: each cgroup the task's `cg_dir` matched in the last cycle, with its adapted
    /// rate and what was reclaimed from it; carried from cycle to cycle.
    pub psi: Vec<PsiCgroup>,
    /// `type=pid`: the start time of the process first found since the project started.
    /// A pid names one process: a later process that reuses the pid is refused, not
    /// followed (`type=name` follows a restarted process instead).
    pub first_start_time: Option<u64>,
}

/// A task's figures summed over its cycles since the project started: what the
/// Prometheus counters report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Resident base pages scanned.
    pub pages_scanned: u64,
    /// Cold pages found.
    pub cold_pages: u64,
    /// Bytes asked of the kernel to swap out.
    pub requested_bytes: u64,
    /// Bytes the kernel accepted to swap out.
    pub swapped_bytes: u64,
    /// Bytes moved, by destination NUMA node.
    pub moved_to: BTreeMap<u32, u64>,
    /// Pages swapped out by etmem and found resident again a cycle later.
    pub refaults: u64,
    /// Cycles that failed.
    pub errors: u64,
    /// Time spent in cycles.
    pub cycle_time: Duration,
}

/// One cycle's figures, summed over the task's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleStats {
    /// Resident base pages scanned.
    pub pages_scanned: u64,
    /// Resident base pages found cold.
    pub cold_pages: u64,
    /// Bytes asked to leave DRAM.
    pub requested_bytes: u64,
    /// Bytes the kernel took (advised or accepted).
    pub swapped_bytes: u64,
    /// How much the processes' VmSwap grew over the swap-out: what really left DRAM.
    pub vmswap_growth: u64,
    /// Worker threads the cycle used (at most `max_threads`, at most one per process).
    pub workers: u64,
    /// Processes skipped, and why (gates closed, another task scanning them).
    pub skipped: Vec<String>,
    /// What the kernel kept in DRAM of what it was asked, by reason: all reasons while
    /// the cycle runs ([`CycleStats::keep`]), the [`KEPT_REASONS`] with the most bytes once
    /// it ended ([`TaskStatus::end_cycle`]).
    pub kept: Vec<Kept>,
    /// NUMA tiering engines (cslide): where the task's hot and cold memory was and what
    /// moved.
    pub tiering: Option<Tiering>,
    /// The damon engine: the project's kdamond and its scheme's figures.
    pub damon: Option<DamonFigures>,
    /// Bytes moved this cycle, by destination NUMA node.
    pub moved_to: Vec<(u32, u64)>,
    /// Pages etmem swapped out in an earlier cycle that were found resident again.
    pub refaults: u64,
}

/// The damon engine's kdamond and what its scheme did, as the kernel counts it since the
/// kdamond started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DamonFigures {
    /// The kdamond's thread, while it runs.
    pub kdamond_pid: Option<u64>,
    /// The scheme's action.
    pub action: &'static str,
    /// Regions the scheme was tried on.
    pub tried_regions: u64,
    /// Bytes of those regions.
    pub tried_bytes: u64,
    /// Regions the action was applied to.
    pub applied_regions: u64,
    /// Bytes the action was applied to.
    pub applied_bytes: u64,
    /// Times the scheme's quota was exceeded.
    pub quota_exceeds: u64,
    /// The quota the kernel applies now, bytes, where it says.
    pub effective_quota: Option<u64>,
    /// How many regions DAMON splits this task's target into (its process's address
    /// space, or physical memory in paddr mode), where the kernel can tell (`target`
    /// filters, Linux 6.6+) and a cycle has read them.
    pub target_regions: Option<u64>,
    /// The bytes of those regions.
    pub target_bytes: Option<u64>,
}

/// One tiering cycle of one task, in bytes: where its memory was when scanned and what
/// moved between the nodes of its engine's pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tiering {
    /// Hot memory on DRAM nodes.
    pub hot_in_dram: u64,
    /// Hot memory on slow nodes: what promotion is for.
    pub hot_on_slow: u64,
    /// Cold memory on DRAM nodes: what demotion is for.
    pub cold_in_dram: u64,
    /// Cold memory on slow nodes.
    pub cold_on_slow: u64,
    /// Bytes moved to DRAM nodes.
    pub moved_up: u64,
    /// Bytes moved to slow nodes.
    pub moved_down: u64,
    /// Bytes the policy chose to move that did not move.
    pub not_moved: u64,
}

/// One memory cgroup of a psi task: its feedback state and what it gave back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PsiCgroup {
    /// Its path relative to the memory cgroup root, as `cg_dir` matched it.
    pub path: String,
    /// The inode of its directory: a cgroup made again under the same name starts anew.
    pub inode: u64,
    /// The share of the memory above the floor asked back per cycle, adapted.
    pub rate: f64,
    /// Reclaims (positive) or refusals (negative) in a row, toward the next rate step.
    pub gather: i32,
    /// The pressure read last, max(some avg10, some avg60), percent; `None` if unread.
    pub pressure: Option<f64>,
    /// What the last cycle did: `reclaimed`, `pressure high`, `at floor`, `error`.
    pub action: &'static str,
    /// The floor computed last, bytes.
    pub floor: u64,
    /// The cgroup's charged memory after the last cycle, bytes.
    pub current: u64,
    /// Bytes asked of `memory.reclaim` in the last cycle.
    pub asked: u64,
    /// How much the charged memory fell over the last cycle's reclaim, bytes.
    pub reclaimed: u64,
    /// The sum of `reclaimed` since the project started.
    pub reclaimed_total: u64,
    /// Why the last cycle failed for this cgroup, if it did.
    pub error: Option<String>,
}

/// How many reasons for kept memory a finished cycle reports.
pub const KEPT_REASONS: usize = 3;

/// Memory the kernel kept in DRAM although it was asked to swap it out, for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// Why, as the swapper said it (`the kernel will not page out this range (locked,
    /// PFN-mapped or hugetlb mapping)`).
    pub reason: String,
    /// Bytes of the ranges kept for that reason.
    pub bytes: u64,
    /// How many ranges.
    pub ranges: u64,
}

impl CycleStats {
    /// Count `bytes` moved to `node`.
    pub fn moved(&mut self, node: u32, bytes: u64) {
        match self.moved_to.iter_mut().find(|(n, _)| *n == node) {
            Some((_, b)) => *b = b.saturating_add(bytes),
            None => self.moved_to.push((node, bytes)),
        }
    }

    /// Bytes moved this cycle, to any node.
    pub fn moved_bytes(&self) -> u64 {
        self.moved_to.iter().map(|&(_, b)| b).sum()
    }

    /// Count the ranges the kernel `skipped` in one swap-out (its
    /// [`SwapReport::skipped`](crate::act::SwapReport::skipped)) by reason.
    pub fn keep(&mut self, skipped: &[(Range, String)]) {
        for (r, why) in skipped {
            match self.kept.iter_mut().find(|k| k.reason == *why) {
                Some(k) => {
                    k.bytes = k.bytes.saturating_add(r.len());
                    k.ranges += 1;
                }
                None => self.kept.push(Kept {
                    reason: why.clone(),
                    bytes: r.len(),
                    ranges: 1,
                }),
            }
        }
    }
}

impl TaskStatus {
    /// Forget everything from an earlier run (on project start).
    pub fn reset(&mut self) {
        *self = TaskStatus::default();
    }

    /// Record a finished cycle's figures: they become the last cycle's, and what left
    /// DRAM (the growth of VmSwap, not the bytes the kernel took: with swap full it takes
    /// all and moves nothing) is added to the total.
    /// The reasons for kept memory are cut to the [`KEPT_REASONS`] with the most bytes.
    pub fn end_cycle(&mut self, mut stats: CycleStats) {
        self.swapped_total = self.swapped_total.saturating_add(stats.vmswap_growth);
        let t = &mut self.totals;
        t.pages_scanned = t.pages_scanned.saturating_add(stats.pages_scanned);
        t.cold_pages = t.cold_pages.saturating_add(stats.cold_pages);
        t.requested_bytes = t.requested_bytes.saturating_add(stats.requested_bytes);
        t.swapped_bytes = t.swapped_bytes.saturating_add(stats.swapped_bytes);
        t.refaults = t.refaults.saturating_add(stats.refaults);
        for &(node, bytes) in &stats.moved_to {
            let n = t.moved_to.entry(node).or_default();
            *n = n.saturating_add(bytes);
        }
        crate::sort::unstable_by(&mut stats.kept, |a, b| {
            (b.bytes, b.ranges)
                .cmp(&(a.bytes, a.ranges))
                .then_with(|| a.reason.cmp(&b.reason))
        });
        stats.kept.truncate(KEPT_REASONS);
        self.last = stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_memory_is_counted_by_reason_and_the_top_three_by_bytes_stay() {
        let p = crate::types::PageSize::Base.bytes();
        let r = |pages: u64| Range::new(p, p + pages * p);
        let mut stats = CycleStats::default();
        // Two processes' swap-outs: locked twice, hugetlb once, two rarer reasons.
        stats.keep(&[
            (r(4), "locked".into()),
            (r(1), "not mapped".into()),
            (r(8), "hugetlb".into()),
        ]);
        stats.keep(&[(r(6), "locked".into()), (r(2), "busy".into())]);
        assert_eq!(stats.kept.len(), 4);
        let mut st = TaskStatus::default();
        st.end_cycle(stats);
        let kept = |reason: &str, pages: u64, ranges: u64| Kept {
            reason: reason.into(),
            bytes: pages * p,
            ranges,
        };
        assert_eq!(
            st.last.kept,
            vec![
                kept("locked", 10, 2),
                kept("hugetlb", 8, 1),
                kept("busy", 2, 1)
            ]
        );
    }

    #[test]
    fn the_total_counts_what_left_dram_not_what_the_kernel_took() {
        let mut st = TaskStatus::default();
        // Swap full: the kernel took 8 MiB and VmSwap did not grow.
        st.end_cycle(CycleStats {
            requested_bytes: 8 << 20,
            swapped_bytes: 8 << 20,
            vmswap_growth: 0,
            ..CycleStats::default()
        });
        assert_eq!(st.swapped_total, 0);
        assert_eq!(st.last.swapped_bytes, 8 << 20);
        st.end_cycle(CycleStats {
            requested_bytes: 8 << 20,
            swapped_bytes: 8 << 20,
            vmswap_growth: 4 << 20,
            ..CycleStats::default()
        });
        assert_eq!(st.swapped_total, 4 << 20);
        assert_eq!(
            (st.last.swapped_bytes, st.last.vmswap_growth),
            (8 << 20, 4 << 20)
        );
    }
}
