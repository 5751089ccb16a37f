//! What the library checks in a caller's arguments before it acts on them: the pid
//! string, and the mappings handed to `etmemd_get_page_refs` (a caller may build them).

use etmem::types::{page_size, Pid, Vma};

/// The pid a decimal string names: digits only, 1 to `i32::MAX` (upstream: `"1-"` and
/// `"--"` are errors).
pub fn pid(text: &[u8]) -> Option<Pid> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text)
        .ok()?
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

/// `vmas` sorted by address, or `None` when one ends before it starts (upstream: -1),
/// is not page aligned, or overlaps another: trackers walk whole pages of disjoint
/// mappings.
pub fn mappings(mut vmas: Vec<Vma>) -> Option<Vec<Vma>> {
    let page = page_size();
    let bad = |v: &Vma| {
        v.range.end < v.range.start || v.range.start % page != 0 || v.range.end % page != 0
    };
    if vmas.iter().any(bad) {
        return None;
    }
    vmas.sort_by_key(|v| v.range.start);
    vmas.windows(2)
        .all(|w| w[0].range.end <= w[1].range.start)
        .then_some(vmas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids() {
        assert_eq!(pid(b"1"), Some(1));
        assert_eq!(pid(b"0012"), Some(12));
        for bad in [
            &b""[..],
            b"0",
            b"1-",
            b"--",
            b"-1",
            b"+1",
            b" 1",
            b"2147483648",
        ] {
            assert_eq!(pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mapping_checks() {
        let v = |a: u64, b: u64| {
            etmem::sys::maps::parse_line(&format!("{a:x}-{b:x} rw-p 0 00:00 0")).unwrap()
        };
        let p = page_size();
        let sorted = mappings(vec![v(4 * p, 5 * p), v(p, 2 * p), v(2 * p, 2 * p)]).unwrap();
        let starts: Vec<u64> = sorted.iter().map(|v| v.range.start).collect();
        assert_eq!(starts, [p, 2 * p, 4 * p]);
        let mut reversed = v(0, p);
        reversed.range = etmem::types::Range::new(0xff, 0);
        assert!(mappings(vec![reversed]).is_none());
        assert!(mappings(vec![v(p + 1, 2 * p)]).is_none());
        assert!(mappings(vec![v(p, 3 * p), v(2 * p, 4 * p)]).is_none());
    }
}
