//! Whether the slide engine may swap a process out this cycle (spec §6.5, with the user
//! guide's meaning): `sysmem_threshold` lets it act only while the system's *available*
//! memory is below that percent of total, and `swap_threshold` only while the process's
//! resident memory is above that many bytes. Without either key there is no gate. Ours:
//! `pressure_limit` pauses swapping while the process's memory pressure is above it.

use crate::sys::meminfo::MemInfo;

/// Why the gate is closed, for `project show` and the log; `None` when it is open.
pub fn closed_reason(
    sysmem_threshold: Option<u32>,
    swap_threshold: Option<u64>,
    mem: &MemInfo,
    rss: u64,
) -> Option<String> {
    if let Some(pct) = sysmem_threshold {
        let avail_pct = mem.available.saturating_mul(100) / mem.total.max(1);
        if avail_pct >= u64::from(pct) {
            return Some(format!(
                "available memory is {avail_pct}% of total, not below sysmem_threshold={pct}%"
            ));
        }
    }
    if let Some(limit) = swap_threshold {
        if rss <= limit {
            return Some(format!(
                "resident memory {} MiB is not above swap_threshold {} MiB",
                rss >> 20,
                limit >> 20
            ));
        }
    }
    None
}

/// `pressure_limit` (ours): why swapping pauses while the pressure read from `source`,
/// some avg10 in percent, is above `limit`; `None` when it is not.
pub fn pressure_reason(limit: f64, avg10: f64, source: &std::path::Path) -> Option<String> {
    (avg10 > limit).then(|| {
        format!(
            "memory pressure {avg10:.2}% (some avg10 of {}) is above pressure_limit={limit}",
            source.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn mem(avail_pct: u64) -> MemInfo {
        MemInfo {
            total: 100 * GIB,
            free: 0,
            available: avail_pct * GIB,
            swap_cached: 0,
        }
    }

    #[test]
    fn pressure_pauses_only_above_the_limit() {
        let f = std::path::Path::new("/proc/pressure/memory");
        assert_eq!(pressure_reason(10.0, 10.0, f), None);
        let why = pressure_reason(10.0, 12.5, f).unwrap();
        assert!(
            why.contains("12.50%") && why.contains("pressure_limit=10"),
            "{why}"
        );
    }

    #[test]
    fn no_keys_no_gate() {
        assert_eq!(closed_reason(None, None, &mem(90), 0), None);
    }

    #[test]
    fn sysmem_threshold_acts_only_below_it() {
        assert!(closed_reason(Some(50), None, &mem(50), GIB)
            .unwrap()
            .contains("50% of total"));
        assert!(closed_reason(Some(50), None, &mem(70), GIB).is_some());
        assert_eq!(closed_reason(Some(50), None, &mem(49), GIB), None);
        // 0 never acts; 100 acts unless all memory is available.
        assert!(closed_reason(Some(0), None, &mem(0), GIB).is_some());
        assert_eq!(closed_reason(Some(100), None, &mem(99), GIB), None);
    }

    #[test]
    fn swap_threshold_acts_only_above_it() {
        assert!(closed_reason(None, Some(10 * GIB), &mem(1), 10 * GIB)
            .unwrap()
            .contains("swap_threshold 10240 MiB"));
        assert_eq!(
            closed_reason(None, Some(10 * GIB), &mem(1), 10 * GIB + 1),
            None
        );
        // Both keys: both must allow.
        assert!(closed_reason(Some(50), Some(GIB), &mem(10), GIB / 2).is_some());
        assert_eq!(closed_reason(Some(50), Some(GIB), &mem(10), 2 * GIB), None);
    }
}
