//! What a task has done so far, as `project show` reports it. Written by the scheduler
//! thread, read by the request handler; a mutex guards it.

use std::time::SystemTime;

use crate::types::Pid;

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
}

impl TaskStatus {
    /// Forget everything from an earlier run (on project start).
    pub fn reset(&mut self) {
        *self = TaskStatus::default();
    }

    /// Record a finished cycle's figures: they become the last cycle's, and what left
    /// DRAM (the growth of VmSwap, not the bytes the kernel took: with swap full it takes
    /// all and moves nothing) is added to the total.
    pub fn end_cycle(&mut self, stats: CycleStats) {
        self.swapped_total = self.swapped_total.saturating_add(stats.vmswap_growth);
        self.last = stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
