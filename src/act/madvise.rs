//! Swap-out on stock kernels: `process_madvise(pidfd, ranges, MADV_PAGEOUT)` (Linux 5.10+)
//! asks the kernel to reclaim the given ranges of the target now, which sends private
//! anonymous pages to swap.
//!
//! The kernel takes at most `UIO_MAXIOV` ranges and `MAX_RW_COUNT` (~2 GiB) bytes per call,
//! walks the ranges in order and stops at the first one that fails: it then returns the
//! bytes done before it, or that range's error when it was the first. So we chunk, and
//! after a short count call again from the first range not done, which either makes
//! progress or names its own error; a range the kernel refuses (unmapped, locked, PFN or
//! hugetlb mapping) is skipped with the reason instead of aborting the rest.
//!
//! One error is not per range: EFAULT (an address outside user space, such as
//! `[vsyscall]`) fails the whole call before any range is done. Then the chunk is halved
//! until the culprit is alone and can be skipped, and grows back after each success, so
//! a bad range costs a few calls, not one per range before it.
//!
//! A refused VMA (EINVAL: locked, PFN map, hugetlb) also stops the kernel inside a range
//! that was merged across several VMAs, leaving the VMAs after it undone. Such a range is
//! cut at the VMA boundaries (one read of `/proc/PID/maps`) and the pieces retried, so
//! only the refused VMA's part is skipped.

use std::io;

use crate::act::coalesce::{coalesce, total_bytes};
use crate::act::{SwapBackend, SwapReport, Swapper};
use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::sys::process_madvise::{self, MAX_IOVECS};
use crate::types::{Pid, Range};

/// Bytes per call at most: far below the kernel's `MAX_RW_COUNT` (past which it silently
/// truncates) and small enough that a project stop is noticed within a fraction of a
/// second even while paging out to a slow device.
pub const MAX_CALL_BYTES: u64 = 256 << 20;

/// How often in a row EINTR/EAGAIN is retried at one place before that range is skipped.
const MAX_RETRIES: u32 = 8;

/// The `process_madvise` swapper. Holds only a reused iovec buffer: the target is the
/// pidfd handed to each call, so a recycled pid is never advised.
#[derive(Debug)]
pub struct ProcessMadvise {
    chunk: Vec<Range>,
}

impl ProcessMadvise {
    /// Check that this kernel pages out `target`'s memory through `process_madvise` and
    /// that we are allowed to (a call with no ranges), and make the swapper.
    pub fn open(target: &Pidfd) -> Result<ProcessMadvise> {
        process_madvise::probe(target, libc::MADV_PAGEOUT).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => unsupported(),
            _ => fatal(target.pid(), &e).unwrap_or_else(|| {
                Error::io(
                    format!("process_madvise probe of process {}", target.pid()),
                    e,
                )
            }),
        })?;
        Ok(ProcessMadvise {
            chunk: Vec::with_capacity(MAX_IOVECS),
        })
    }
}

impl Swapper for ProcessMadvise {
    fn backend(&self) -> SwapBackend {
        SwapBackend::ProcessMadvise
    }

    fn swap_out(
        &mut self,
        target: &Pidfd,
        ranges: &[Range],
        stop: &dyn Fn() -> bool,
    ) -> Result<SwapReport> {
        pageout_with(
            coalesce(ranges, crate::types::page_size()),
            target.pid(),
            &mut self.chunk,
            stop,
            &mut Live(target),
        )
    }
}

/// What the page-out loop needs from the kernel; tests play the kernel with it.
pub trait PageoutKernel {
    /// `process_madvise(MADV_PAGEOUT)` of `ranges` (at most [`MAX_IOVECS`]).
    fn pageout(&mut self, ranges: &[Range]) -> io::Result<u64>;
    /// `range` cut at the target's VMA boundaries, in order; `range` alone when unknown.
    fn vma_pieces(&mut self, range: Range) -> Vec<Range>;
}

/// The real kernel, for the process behind a pidfd.
struct Live<'a>(&'a Pidfd);

impl PageoutKernel for Live<'_> {
    fn pageout(&mut self, ranges: &[Range]) -> io::Result<u64> {
        process_madvise::process_madvise(self.0, ranges, libc::MADV_PAGEOUT)
    }

    fn vma_pieces(&mut self, range: Range) -> Vec<Range> {
        match crate::sys::maps::read_maps(self.0.pid()) {
            // Alive after the read: the maps were this process's, not a recycled pid's.
            Ok(vmas) if self.0.is_alive() => cut(
                range,
                vmas.iter().flat_map(|v| [v.range.start, v.range.end]),
            ),
            _ => vec![range],
        }
    }
}

/// `range` cut at every point of `points` strictly inside it, in order.
pub fn cut(range: Range, points: impl Iterator<Item = u64>) -> Vec<Range> {
    let mut inside: Vec<u64> = points
        .filter(|&p| range.start < p && p < range.end)
        .collect();
    crate::sort::unstable(&mut inside);
    inside.dedup();
    let mut pieces = Vec::with_capacity(inside.len() + 1);
    let mut start = range.start;
    for p in inside.into_iter().chain(std::iter::once(range.end)) {
        pieces.push(Range::new(start, p));
        start = p;
    }
    pieces
}

/// Page out `ranges` (sorted, disjoint, page aligned) through `kernel`: chunks of at most [`MAX_IOVECS`] ranges and
/// [`MAX_CALL_BYTES`] bytes, continuing after a short count, skipping refused ranges,
/// retrying EINTR/EAGAIN, checking `stop` before every call. `chunk` is a reused buffer.
pub fn pageout_with(
    mut ranges: Vec<Range>,
    pid: Pid,
    chunk: &mut Vec<Range>,
    stop: &dyn Fn() -> bool,
    kernel: &mut dyn PageoutKernel,
) -> Result<SwapReport> {
    let mut report = SwapReport {
        requested_bytes: total_bytes(&ranges),
        ..SwapReport::default()
    };
    let mut at = Cursor::default();
    let mut retries = 0;
    let mut max_iov = MAX_IOVECS;
    while !at.done(&ranges) {
        if stop() {
            report.stopped = true;
            break;
        }
        at.fill(&ranges, chunk, max_iov);
        let asked = total_bytes(chunk);
        report.calls += 1;
        match kernel.pageout(chunk) {
            Ok(n) if n > 0 => {
                let n = n.min(asked);
                report.advised_bytes += n;
                at.advance(&ranges, n);
                retries = 0;
                max_iov = (max_iov * 2).min(MAX_IOVECS);
            }
            Ok(_) => skip(
                &mut report,
                &mut at,
                &ranges,
                chunk,
                "the kernel advised nothing",
            ),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) if retries < MAX_RETRIES => retries += 1,
                Some(libc::EINTR) | Some(libc::EAGAIN) => {
                    retries = 0;
                    let why = format!("kernel busy after {MAX_RETRIES} tries: {e}");
                    skip(&mut report, &mut at, &ranges, chunk, &why);
                }
                Some(libc::EFAULT) if chunk.len() > 1 => max_iov = chunk.len() / 2,
                Some(libc::EFAULT) => {
                    max_iov = MAX_IOVECS;
                    let why = "not a user-space address (EFAULT)";
                    skip(&mut report, &mut at, &ranges, chunk, why);
                }
                Some(libc::ENOMEM) => {
                    let why = format!("not mapped (wholly or in part) in process {pid}");
                    skip(&mut report, &mut at, &ranges, chunk, &why);
                }
                Some(libc::EINVAL) if at.split(&mut ranges, chunk, kernel) => {}
                Some(libc::EINVAL) => {
                    let why = "the kernel will not page out this range \
                               (locked, PFN-mapped or hugetlb mapping)";
                    skip(&mut report, &mut at, &ranges, chunk, why);
                }
                _ => {
                    return Err(fatal(pid, &e).unwrap_or_else(|| {
                        Error::io(format!("process_madvise(MADV_PAGEOUT) on process {pid}"), e)
                    }))
                }
            },
        }
    }
    Ok(report)
}

/// Skip the first range of the chunk just refused, recording why.
fn skip(report: &mut SwapReport, at: &mut Cursor, ranges: &[Range], chunk: &[Range], why: &str) {
    if let Some(first) = chunk.first() {
        report.skipped.push((*first, why.to_string()));
        at.advance(ranges, first.len());
    }
}

/// The errors that end the whole swap-out, whatever range they came from.
fn fatal(pid: Pid, e: &io::Error) -> Option<Error> {
    Some(match e.raw_os_error()? {
        libc::ESRCH => Error::new(Kind::Gone, format!("process {pid} exited")),
        libc::EPERM | libc::EACCES => Error::new(
            Kind::Permission,
            format!(
                "process_madvise on process {pid}: {e}: process_madvise needs CAP_SYS_NICE \
                 over the target (root)"
            ),
        ),
        libc::ENOSYS => unsupported(),
        _ => return None,
    })
}

fn unsupported() -> Error {
    Error::new(
        Kind::Unsupported,
        "process_madvise(MADV_PAGEOUT) is not available: needs Linux 5.10+ with \
         CONFIG_ADVISE_SYSCALLS / MADV_PAGEOUT",
    )
}

/// Where we are in the list: range `i`, `off` bytes into it.
#[derive(Debug, Default)]
struct Cursor {
    i: usize,
    off: u64,
}

impl Cursor {
    fn done(&self, ranges: &[Range]) -> bool {
        self.i >= ranges.len()
    }

    /// The next call's ranges: the not-yet-done bytes from here, in order, up to the
    /// iovec and byte limits (the last range may be cut at the byte limit).
    fn fill(&self, ranges: &[Range], chunk: &mut Vec<Range>, max_iov: usize) {
        chunk.clear();
        let mut budget = MAX_CALL_BYTES;
        let mut off = self.off;
        for r in ranges.iter().skip(self.i) {
            if chunk.len() >= max_iov.clamp(1, MAX_IOVECS) || budget == 0 {
                break;
            }
            let start = r.start.saturating_add(off);
            let len = r.end.saturating_sub(start).min(budget);
            chunk.push(Range::new(start, start + len));
            budget -= len;
            off = 0;
        }
    }

    /// After the chunk's first range was refused: if it spans several VMAs, put its
    /// pieces in its place in `ranges` (the cursor at the first) and return true.
    fn split(
        &mut self,
        ranges: &mut Vec<Range>,
        chunk: &[Range],
        kernel: &mut dyn PageoutKernel,
    ) -> bool {
        let (Some(&first), Some(&whole)) = (chunk.first(), ranges.get(self.i)) else {
            return false;
        };
        let pieces = kernel.vma_pieces(first);
        let tiles = pieces.first().map(|p| p.start) == Some(first.start)
            && pieces.last().map(|p| p.end) == Some(first.end)
            && pieces.windows(2).all(|w| w[0].end == w[1].start)
            && pieces.iter().all(|p| !p.is_empty());
        if pieces.len() < 2 || !tiles {
            return false;
        }
        let before = Range::new(whole.start, first.start);
        let after = Range::new(first.end, whole.end);
        let new = [before]
            .into_iter()
            .chain(pieces)
            .chain([after])
            .filter(|r| !r.is_empty());
        ranges.splice(self.i..=self.i, new);
        if !before.is_empty() {
            self.i += 1;
        }
        self.off = 0;
        true
    }

    /// Move past `n` bytes; the chunk was a prefix of the remaining bytes, so counting
    /// through the ranges themselves lands where the kernel stopped.
    fn advance(&mut self, ranges: &[Range], mut n: u64) {
        while n > 0 {
            let Some(r) = ranges.get(self.i) else { return };
            let left = r.len().saturating_sub(self.off);
            if n < left {
                self.off += n;
                return;
            }
            n -= left;
            self.i += 1;
            self.off = 0;
        }
        // Land on the next range with something left (skips empty ranges too).
        while ranges.get(self.i).is_some_and(|r| self.off >= r.len()) {
            self.i += 1;
            self.off = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    /// A fake kernel: `call` answers page-out calls; VMAs begin and end at `cuts`.
    struct Fake<F> {
        call: F,
        cuts: Vec<u64>,
    }

    impl<F: FnMut(&[Range]) -> io::Result<u64>> PageoutKernel for Fake<F> {
        fn pageout(&mut self, ranges: &[Range]) -> io::Result<u64> {
            (self.call)(ranges)
        }
        fn vma_pieces(&mut self, range: Range) -> Vec<Range> {
            cut(range, self.cuts.iter().copied())
        }
    }

    fn run_with(
        ranges: &[Range],
        cuts: Vec<u64>,
        call: impl FnMut(&[Range]) -> io::Result<u64>,
    ) -> Result<SwapReport> {
        let mut k = Fake { call, cuts };
        pageout_with(ranges.to_vec(), 42, &mut Vec::new(), &|| false, &mut k)
    }

    fn run(ranges: &[Range], call: impl FnMut(&[Range]) -> io::Result<u64>) -> Result<SwapReport> {
        run_with(ranges, Vec::new(), call)
    }

    fn errno(n: i32) -> io::Error {
        io::Error::from_raw_os_error(n)
    }

    #[test]
    fn five_thousand_ranges_take_five_calls() {
        let ranges: Vec<Range> = (0..5000u64)
            .map(|i| Range::new(i * 2 * P, i * 2 * P + P))
            .collect();
        let mut seen = Vec::new();
        let r = run(&ranges, |iov| {
            seen.push(iov.len());
            Ok(total_bytes(iov))
        })
        .unwrap();
        assert_eq!(seen, vec![1024, 1024, 1024, 1024, 904]);
        assert_eq!(r.calls, 5);
        assert_eq!(r.requested_bytes, 5000 * P);
        assert_eq!(r.advised_bytes, 5000 * P);
        assert!(r.skipped.is_empty() && !r.stopped);
    }

    #[test]
    fn a_huge_range_is_cut_at_the_byte_budget() {
        let ranges = [Range::new(1 << 30, (1 << 30) + 3 * MAX_CALL_BYTES + P)];
        let mut seen = Vec::new();
        let r = run(&ranges, |iov| {
            seen.extend_from_slice(iov);
            Ok(total_bytes(iov))
        })
        .unwrap();
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|x| x.len() <= MAX_CALL_BYTES));
        assert_eq!(seen[0].start, 1 << 30);
        assert!(seen.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(r.advised_bytes, ranges[0].len());
    }

    /// A fake kernel: advises in order and fails at ranges listed in `bad` (with their
    /// errno), returning the bytes done before the failure as the real one does.
    fn kernel(bad: Vec<(Range, i32)>) -> impl FnMut(&[Range]) -> io::Result<u64> {
        move |iov: &[Range]| {
            let mut done = 0;
            for r in iov {
                if let Some((_, e)) = bad.iter().find(|(b, _)| b.covers(r) || r.covers(b)) {
                    return if done > 0 { Ok(done) } else { Err(errno(*e)) };
                }
                done += r.len();
            }
            Ok(done)
        }
    }

    #[test]
    fn a_short_count_continues_and_refused_ranges_are_skipped() {
        let ranges: Vec<Range> = (0..10u64)
            .map(|i| Range::new(i * 2 * P, i * 2 * P + P))
            .collect();
        let k = kernel(vec![(ranges[3], libc::ENOMEM), (ranges[7], libc::EINVAL)]);
        let r = run(&ranges, k).unwrap();
        assert_eq!(r.advised_bytes, 8 * P);
        assert_eq!(r.skipped.len(), 2);
        assert_eq!(r.skipped[0].0, ranges[3]);
        assert!(r.skipped[0].1.contains("not mapped"), "{}", r.skipped[0].1);
        assert_eq!(r.skipped[1].0, ranges[7]);
        assert!(r.skipped[1].1.contains("locked"), "{}", r.skipped[1].1);
        // 0-2 (short), 3 fails, 4-6 (short), 7 fails, 8-9.
        assert_eq!(r.calls, 5);
    }

    #[test]
    fn a_count_inside_a_range_resumes_inside_it() {
        let ranges = [Range::new(0, 4 * P), Range::new(8 * P, 9 * P)];
        let mut calls: Vec<Vec<Range>> = Vec::new();
        let r = run(&ranges, |iov| {
            calls.push(iov.to_vec());
            Ok(if calls.len() == 1 {
                P
            } else {
                total_bytes(iov)
            })
        })
        .unwrap();
        assert_eq!(
            calls[1],
            vec![Range::new(P, 4 * P), Range::new(8 * P, 9 * P)]
        );
        assert_eq!(r.advised_bytes, 5 * P);
    }

    #[test]
    fn interrupted_calls_are_retried_then_skipped() {
        let ranges = [Range::new(0, P), Range::new(2 * P, 3 * P)];
        let mut n = 0;
        let r = run(&ranges, |iov| {
            n += 1;
            match n {
                1 | 2 => Err(errno(libc::EINTR)),
                _ if iov[0].start == 0 => Err(errno(libc::EAGAIN)),
                _ => Ok(total_bytes(iov)),
            }
        })
        .unwrap();
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].1.contains("busy"));
        assert_eq!(r.advised_bytes, P);
        // MAX_RETRIES retried failures, one that gives up, one that succeeds.
        assert_eq!(r.calls, u64::from(MAX_RETRIES) + 2);
    }

    #[test]
    fn a_non_user_address_is_found_by_halving_and_skipped() {
        let mut ranges: Vec<Range> = (0..2000u64)
            .map(|i| Range::new(i * 2 * P, i * 2 * P + P))
            .collect();
        let bad = Range::new(0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_1000);
        ranges.insert(700, bad);
        let mut calls = 0;
        let r = run(&ranges, |iov| {
            calls += 1;
            if iov.contains(&bad) {
                Err(errno(libc::EFAULT))
            } else {
                Ok(total_bytes(iov))
            }
        })
        .unwrap();
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].0, bad);
        assert!(r.skipped[0].1.contains("EFAULT"));
        assert_eq!(r.advised_bytes, 2000 * P);
        assert!(calls <= 30, "{calls} calls");
    }

    #[test]
    fn a_refused_vma_inside_a_merged_range_is_cut_out_and_the_rest_done() {
        // One merged range over three VMAs; the middle one is locked.
        let ranges = [Range::new(0, 8 * P), Range::new(10 * P, 11 * P)];
        let locked = Range::new(3 * P, 5 * P);
        let overlaps = |r: &Range| r.start < locked.end && locked.start < r.end;
        let mut calls: Vec<Vec<Range>> = Vec::new();
        let r = run_with(&ranges, vec![3 * P, 5 * P, 8 * P], |iov| {
            calls.push(iov.to_vec());
            let mut done = 0;
            for r in iov {
                if overlaps(r) {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(errno(libc::EINVAL))
                    };
                }
                done += r.len();
            }
            Ok(done)
        })
        .unwrap();
        assert_eq!(r.skipped.len(), 1, "{r:?}");
        assert_eq!(r.skipped[0].0, locked);
        assert!(r.skipped[0].1.contains("locked"));
        assert_eq!(r.advised_bytes, 7 * P);
        assert_eq!(r.requested_bytes, 9 * P);
        // whole (refused), [0,3P) + [3P,5P) -> short, [3P,5P) refused, the rest.
        assert_eq!(r.calls, 4, "{calls:?}");
    }

    #[test]
    fn cut_splits_at_inner_points_only() {
        let r = Range::new(10, 20);
        assert_eq!(cut(r, [5, 25, 10, 20].into_iter()), vec![r]);
        assert_eq!(
            cut(r, [15, 12, 15].into_iter()),
            vec![Range::new(10, 12), Range::new(12, 15), Range::new(15, 20)]
        );
    }

    #[test]
    fn fatal_errors_end_the_swap_out_with_their_kind() {
        let ranges = [Range::new(0, P)];
        for (e, kind, text) in [
            (libc::ESRCH, Kind::Gone, "process 42 exited"),
            (libc::EPERM, Kind::Permission, "CAP_SYS_NICE"),
            (libc::ENOSYS, Kind::Unsupported, "5.10"),
            (libc::EBADF, Kind::Io, "process 42"),
        ] {
            let err = run(&ranges, |_| Err(errno(e))).unwrap_err();
            assert_eq!(err.kind, kind);
            assert!(err.msg.contains(text), "{}", err.msg);
        }
    }

    #[test]
    fn stop_is_checked_before_each_call() {
        let ranges: Vec<Range> = (0..3000u64)
            .map(|i| Range::new(i * 2 * P, i * 2 * P + P))
            .collect();
        let calls = std::cell::Cell::new(0);
        let mut k = Fake {
            call: |iov: &[Range]| {
                calls.set(calls.get() + 1);
                Ok(total_bytes(iov))
            },
            cuts: Vec::new(),
        };
        let r = pageout_with(ranges, 1, &mut Vec::new(), &|| calls.get() == 2, &mut k).unwrap();
        assert!(r.stopped);
        assert_eq!(r.calls, 2);
        assert_eq!(r.advised_bytes, 2048 * P);
    }
}
