//! Which memory etmem may swap out: the VMAs it takes (upstream's anonymous ones, minus
//! kernel-special mappings, optionally only those the process marked), and the checks a
//! range asked for from outside must pass before anything moves. The slide engine, the
//! cold pipeline and `etmem-swap` all choose through here.

use crate::act::coalesce::coalesce;
use crate::error::{Error, Result};
use crate::sys::maps::read_maps;
use crate::sys::pidfd::Pidfd;
use crate::types::{Pid, Range, Vma};

/// The mark a process on a stock kernel puts on memory it allows etmem to swap when the
/// task has `swap_flag=yes` (our stand-in for openEuler's `madvise(MADV_SWAPFLAG)`): an
/// anonymous VMA named with `prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, .., "etmem_swap")`
/// (Linux 5.17+ with CONFIG_ANON_VMA_NAME), or, on any kernel, a private mapping of a
/// memfd created as `memfd_create("etmem_swap")`.
pub const SWAP_FLAG_VMA_NAME: &str = "etmem_swap";

/// True if the process marked this VMA with [`SWAP_FLAG_VMA_NAME`].
pub fn swap_flagged(v: &Vma) -> bool {
    let memfd = format!("/memfd:{SWAP_FLAG_VMA_NAME}");
    v.path == format!("[anon:{SWAP_FLAG_VMA_NAME}]")
        || v.path == memfd
        || v.path.strip_prefix(&memfd) == Some(" (deleted)")
}

/// The VMAs etmem swaps: upstream's anonymous ones (private, not executable, not file
/// backed unless writable), readable, minus kernel-special mappings; with `only_marked`
/// just those the process marked with [`SWAP_FLAG_VMA_NAME`].
pub fn swappable_vmas(vmas: &[Vma], only_marked: bool) -> Vec<Vma> {
    vmas.iter()
        .filter(|v| v.is_etmem_anon() && !v.is_special() && v.read)
        .filter(|v| !only_marked || swap_flagged(v))
        .cloned()
        .collect()
}

/// A range asked for from outside (a command line, standard input, a plug-in), with
/// where it came from for messages: `--range 1000-2000`, `stdin line 3: range 1000-2000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The range as given (it may be reversed or unaligned; [`check_ranges`] says so).
    pub range: Range,
    /// Where it came from, the start of every message about it.
    pub origin: String,
}

/// Checks asked ranges against the maps of one process: START < END, both aligned to the
/// page size, wholly mapped, and only in VMAs etmem swaps. The error (kind `Usage`)
/// names the range, where it came from, and what is wrong with it.
pub struct RangeCheck<'a> {
    vmas: &'a [Vma],
    swappable: Vec<Vma>,
    page: u64,
    pid: Pid,
}

impl<'a> RangeCheck<'a> {
    /// A check against `vmas` (all of process `pid`'s, sorted) with base pages of `page`
    /// bytes.
    pub fn new(vmas: &'a [Vma], page: u64, pid: Pid) -> RangeCheck<'a> {
        RangeCheck {
            vmas,
            swappable: swappable_vmas(vmas, false),
            page,
            pid,
        }
    }

    /// Check one asked range.
    pub fn check(&self, a: &Asked) -> Result<()> {
        let (r, page) = (a.range, self.page);
        let fail = |why: String| Err(Error::usage(format!("{}: {why}", a.origin)));
        if r.start > r.end {
            return fail("the start is above the end".into());
        }
        if r.is_empty() {
            return fail("the range is empty".into());
        }
        for (name, addr) in [("start", r.start), ("end", r.end)] {
            if addr % page != 0 {
                return fail(format!(
                    "the {name} {addr:#x} is not aligned to the page size ({page} bytes)"
                ));
            }
        }
        if let Some(gap) = first_gap(r, self.vmas) {
            return fail(format!(
                "{:#x}-{:#x} is not mapped in process {}",
                gap.start, gap.end, self.pid
            ));
        }
        if let Some(gap) = first_gap(r, &self.swappable) {
            let v = self.vmas.iter().find(|v| v.range.contains(gap.start));
            let (end, kind) = v.map_or((gap.end, String::new()), |v| {
                let kind = format!("{} {}", v.perms(), v.path);
                (gap.end.min(v.range.end), format!(" ({})", kind.trim_end()))
            });
            return fail(format!(
                "{:#x}-{end:#x} is in a mapping etmem does not swap{kind}: only \
                 private, readable, non-executable memory that is anonymous or a writable \
                 private file mapping goes to swap",
                gap.start
            ));
        }
        Ok(())
    }
}

/// Check every asked range against `vmas` (see [`RangeCheck`]); nothing is half-checked,
/// so a caller that gets `Ok` may act on all of them.
pub fn check_ranges(asked: &[Asked], vmas: &[Vma], page: u64, pid: Pid) -> Result<()> {
    let check = RangeCheck::new(vmas, page, pid);
    asked.iter().try_for_each(|a| check.check(a))
}

/// The asked ranges of the process `target` holds, checked against its maps as they
/// come (an input is never held whole) and merged: all of them, or the first error and
/// none. Ranges are merged as they pile up, so memory follows the merged result. The
/// maps are read once the first range has arrived, so a scan piped in is checked
/// against maps at least as new as its own output.
pub fn checked(
    target: &Pidfd,
    asked: impl IntoIterator<Item = Result<Asked>>,
) -> Result<Vec<Range>> {
    let mut asked = asked.into_iter().peekable();
    if asked.peek().is_none() {
        return Ok(Vec::new());
    }
    let vmas = read_maps(target.pid())?;
    let page = crate::types::page_size();
    let check = RangeCheck::new(&vmas, page, target.pid());
    let mut ranges: Vec<Range> = Vec::new();
    let mut merged_len = 0;
    for a in asked {
        let a = a?;
        check.check(&a)?;
        ranges.push(a.range);
        if ranges.len() >= 2 * merged_len + 4096 {
            ranges = coalesce(&ranges, page);
            merged_len = ranges.len();
        }
    }
    Ok(coalesce(&ranges, page))
}

/// The first part of `r` that `vmas` (sorted, disjoint) do not cover: `None` when they
/// cover all of it.
pub fn first_gap(r: Range, vmas: &[Vma]) -> Option<Range> {
    let mut at = r.start;
    let mut i = vmas.partition_point(|v| v.range.end <= at);
    while at < r.end {
        match vmas.get(i) {
            Some(v) if v.range.start <= at => {
                at = v.range.end;
                i += 1;
            }
            Some(v) => return Some(Range::new(at, v.range.start.min(r.end))),
            None => return Some(Range::new(at, r.end)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::sys::maps::parse_line;

    fn vma(line: &str) -> Vma {
        parse_line(line).unwrap()
    }

    #[test]
    fn swappable_vmas_follow_upstream_and_swap_flag() {
        let v = vec![
            vma("1000-2000 rw-p 0 00:00 0 [heap]"),
            vma("2000-3000 r-xp 0 fd:01 7 /bin/x"),
            vma("3000-4000 rw-s 0 00:05 9 /dev/shm/y"),
            vma("4000-5000 rw-p 0 00:00 0 [anon:etmem_swap]"),
            vma("5000-6000 r--p 0 00:00 0 [vvar]"),
            vma("6000-7000 rw-p 0 fd:01 8 /lib/libc.so"),
            vma("7000-8000 rw-p 0 00:01 9 /memfd:etmem_swap (deleted)"),
            vma("8000-9000 rw-p 0 00:01 9 /memfd:etmem_swapx (deleted)"),
        ];
        let all: Vec<u64> = swappable_vmas(&v, false)
            .iter()
            .map(|v| v.range.start)
            .collect();
        assert_eq!(all, vec![0x1000, 0x4000, 0x6000, 0x7000, 0x8000]);
        let flagged: Vec<u64> = swappable_vmas(&v, true)
            .iter()
            .map(|v| v.range.start)
            .collect();
        assert_eq!(flagged, vec![0x4000, 0x7000]);
    }

    fn vmas() -> Vec<Vma> {
        [
            "10000-20000 rw-p 0 00:00 0 [heap]",
            "20000-30000 rw-p 0 00:00 0",
            "40000-50000 r-xp 0 fd:01 7 /bin/x",
            "50000-60000 rw-p 0 00:00 0",
        ]
        .iter()
        .map(|l| vma(l))
        .collect()
    }

    fn check(start: u64, end: u64) -> Result<(), String> {
        let a = Asked {
            range: Range::new(start, end),
            origin: format!("stdin line 3: range {}", Range::new(start, end)),
        };
        check_ranges(&[a], &vmas(), 0x1000, 42).map_err(|e| {
            assert_eq!(e.kind, Kind::Usage);
            e.into_info().msg
        })
    }

    #[test]
    fn ranges_are_checked_and_the_error_says_why() {
        check(0x10000, 0x30000).unwrap();
        check(0x51000, 0x52000).unwrap();
        let cases = [
            (
                (0x20000, 0x10000),
                "stdin line 3: range 20000-10000: the start is above",
            ),
            ((0x10000, 0x10000), "the range is empty"),
            (
                (0x10010, 0x20000),
                "the start 0x10010 is not aligned to the page size (4096",
            ),
            ((0x10000, 0x10fff), "the end 0x10fff is not aligned"),
            (
                (0x20000, 0x41000),
                "0x30000-0x40000 is not mapped in process 42",
            ),
            ((0x0, 0x1000), "0x0-0x1000 is not mapped"),
            ((0x5f000, 0x61000), "0x60000-0x61000 is not mapped"),
            (
                (0x41000, 0x58000),
                "0x41000-0x50000 is in a mapping etmem does not swap (r-xp /bin/x)",
            ),
        ];
        for ((s, e), needle) in cases {
            let err = check(s, e).unwrap_err();
            assert!(err.contains(needle), "{s:x}-{e:x}: {err}");
        }
    }

    #[test]
    fn gaps_are_found_at_either_end_and_inside() {
        let v = vmas();
        assert_eq!(first_gap(Range::new(0x10000, 0x30000), &v), None);
        assert_eq!(
            first_gap(Range::new(0x8000, 0x12000), &v),
            Some(Range::new(0x8000, 0x10000))
        );
        assert_eq!(
            first_gap(Range::new(0x2f000, 0x70000), &v),
            Some(Range::new(0x30000, 0x40000))
        );
        assert_eq!(
            first_gap(Range::new(0x70000, 0x71000), &v),
            Some(Range::new(0x70000, 0x71000))
        );
    }
}
