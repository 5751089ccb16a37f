//! Hot, warm and cold bytes of a VMA's counts: hot = count ≥ threshold, cold = count 0,
//! warm = in between (what `etmem-scan` prints per VMA).

use crate::track::counts::VmaCounts;

/// Byte totals of one VMA's resident pages by access class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes resident in RAM.
    pub resident: u64,
    /// Bytes with a count at or above the threshold.
    pub hot: u64,
    /// Bytes accessed, but less often than the threshold.
    pub warm: u64,
    /// Bytes not accessed in any pass.
    pub cold: u64,
}

impl Summary {
    /// Classify `c`'s resident pages with `threshold` (a threshold of 0 makes every page
    /// hot, as upstream's `T=0`).
    pub fn of(c: &VmaCounts, threshold: u16) -> Summary {
        let mut s = Summary::default();
        for r in c.runs() {
            let len = r.range.len();
            s.resident += len;
            if r.count >= threshold {
                s.hot += len;
            } else if r.count == 0 {
                s.cold += len;
            } else {
                s.warm += len;
            }
        }
        s
    }

    /// Component-wise sum (for totals).
    pub fn add(&mut self, o: &Summary) {
        self.resident += o.resident;
        self.hot += o.hot;
        self.warm += o.warm;
        self.cold += o.cold;
    }
}
