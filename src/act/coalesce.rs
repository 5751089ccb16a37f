//! Turning a caller's list of ranges into the fewest page-aligned, sorted, disjoint ranges:
//! the kernel advises whole pages only, and one iovec per run of adjacent cold pages keeps
//! the number of syscalls low.

use crate::types::Range;

/// Sort `ranges`, widen each to whole pages of `page` bytes (a power of two), drop empty
/// ones and merge those that touch or overlap.
pub fn coalesce(ranges: &[Range], page: u64) -> Vec<Range> {
    let mask = page.max(1) - 1;
    let mut out: Vec<Range> = ranges
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| Range::new(r.start & !mask, r.end.saturating_add(mask) & !mask))
        .filter(|r| !r.is_empty())
        .collect();
    out.sort_unstable();
    let mut merged: Vec<Range> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Total bytes of disjoint ranges.
pub fn total_bytes(ranges: &[Range]) -> u64 {
    ranges.iter().map(Range::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_adjacent_and_overlapping_and_aligns() {
        let r = [
            Range::new(0x5000, 0x6000),
            Range::new(0x1000, 0x2000),
            Range::new(0x2000, 0x3000),
            Range::new(0x2800, 0x3800),
            Range::new(0x9000, 0x9000),
            Range::new(0x8001, 0x8002),
        ];
        assert_eq!(
            coalesce(&r, 0x1000),
            vec![
                Range::new(0x1000, 0x4000),
                Range::new(0x5000, 0x6000),
                Range::new(0x8000, 0x9000),
            ]
        );
        assert_eq!(total_bytes(&coalesce(&r, 0x1000)), 0x5000);
    }

    #[test]
    fn survives_the_top_of_the_address_space() {
        let r = [Range::new(u64::MAX - 10, u64::MAX), Range::new(5, 3)];
        // The last partial page cannot be widened to a whole one: nothing to advise.
        assert!(coalesce(&r, 0x1000).is_empty());
        assert!(coalesce(&[], 0x1000).is_empty());
    }
}
