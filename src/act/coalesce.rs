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
    crate::sort::unstable(&mut out);
    let mut merged: Vec<Range> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// The parts of `ranges` outside every range of `minus`; both sorted and disjoint (as
/// [`coalesce`] makes them), and so is the result.
pub fn subtract(ranges: &[Range], minus: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut j = 0;
    for r in ranges {
        let mut at = r.start;
        while j < minus.len() && minus[j].end <= at {
            j += 1;
        }
        let mut k = j;
        while at < r.end {
            match minus.get(k) {
                Some(m) if m.start < r.end => {
                    if m.start > at {
                        out.push(Range::new(at, m.start));
                    }
                    at = at.max(m.end);
                    k += 1;
                }
                _ => {
                    out.push(Range::new(at, r.end));
                    at = r.end;
                }
            }
        }
    }
    out
}

/// Total bytes of disjoint ranges.
pub fn total_bytes(ranges: &[Range]) -> u64 {
    ranges.iter().map(Range::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracting_cuts_holes_and_drops_covered_ranges() {
        let r = |a, b| Range::new(a, b);
        let got = subtract(
            &[r(0, 100), r(200, 300), r(400, 500)],
            &[r(10, 20), r(90, 210), r(400, 500), r(600, 700)],
        );
        assert_eq!(got, [r(0, 10), r(20, 90), r(210, 300)]);
        assert_eq!(subtract(&[r(0, 100)], &[]), [r(0, 100)]);
        assert!(subtract(&[], &[r(0, 1)]).is_empty());
    }

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
