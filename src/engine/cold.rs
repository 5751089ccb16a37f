//! The cold pipeline, written once: scan a process's VMAs with a tracker, classify its
//! page runs by their access counts, and swap the cold ones out. The slide engine runs
//! it every cycle; `etmem-swap --cold` and `etmem-scan` run it once. Its parts are
//! separate so that an engine can stop after the scan and do something else with the
//! classes (cslide migrates hot and cold runs between nodes; a plug-in engine gets the
//! runs themselves).

use std::time::Duration;

use crate::act::coalesce::{coalesce, total_bytes};
use crate::act::{self, swappable, SwapReport};
use crate::error::{Error, Kind, Result};
use crate::sys::idle_pages_io::VMA_SCAN_FLAG;
use crate::sys::maps::read_maps;
use crate::sys::pidfd::Pidfd;
use crate::track::{self, counts::sized, Run, VmaCounts};
use crate::types::{PageSize, Range, ScanBackend, SwapBackend, Vma};

/// Which VMAs of the process a scan watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Every mapping (`etmem-scan --all`).
    All,
    /// etmem's anonymous VMAs (spec §9.3) minus kernel-special mappings: what
    /// `etmem-scan` shows by default.
    Anon,
    /// The VMAs etmem swaps ([`swappable::swappable_vmas`]); with `only_marked`
    /// (`swap_flag=yes`) only those the process marked.
    Swappable {
        /// Only the VMAs the process marked for swapping (`swap_flag=yes`).
        only_marked: bool,
    },
}

/// How to scan: the backend, how many passes and how far apart, over which VMAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSpec {
    /// `None`: the best backend this kernel has.
    pub backend: Option<ScanBackend>,
    /// Passes (`loop`).
    pub loops: u32,
    /// The pause before each pass (`interval`).
    pub interval: Duration,
    /// The VMAs to watch.
    pub watch: Watch,
}

/// What one scan of one process found.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The backend that scanned.
    pub backend: ScanBackend,
    /// Per-VMA counts, one entry per watched VMA in address order.
    pub counts: Vec<VmaCounts>,
}

impl Scanned {
    /// Every resident run (adjacent pages of one size with equal counts), by address.
    pub fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        self.counts.iter().flat_map(|c| c.runs())
    }

    /// Resident base pages scanned.
    pub fn base_pages(&self) -> u64 {
        self.runs().map(|r| r.range.len()).sum::<u64>() / PageSize::Base.bytes()
    }

    /// The cold runs by slide's rule: count below `t`.
    pub fn cold(&self, t: u16) -> Vec<Run> {
        self.runs().filter(|r| r.count < t).collect()
    }

    /// The hot runs: count `t` or more.
    pub fn hot(&self, t: u16) -> Vec<Run> {
        self.runs().filter(|r| r.count >= t).collect()
    }
}

/// Scan the process `target` holds as `spec` says: open the tracker, pick the VMAs, run
/// `loops` passes `interval` apart (polling `stop` in the pauses), and release the
/// tracker's kernel state whatever happens. A process that exits meanwhile fails with
/// kind `Gone`; a `stop` fails with kind `Gone` too, saying the scan was interrupted.
pub fn scan(target: &Pidfd, spec: &ScanSpec, stop: &dyn Fn() -> bool) -> Result<Scanned> {
    scan_observed(target, spec, stop, &mut |_| {})
}

/// [`scan`], handing the counts to `after_pass` after each pass.
pub fn scan_observed(
    target: &Pidfd,
    spec: &ScanSpec,
    stop: &dyn Fn() -> bool,
    after_pass: &mut dyn FnMut(&[VmaCounts]),
) -> Result<Scanned> {
    let only_marked = matches!(spec.watch, Watch::Swappable { only_marked: true });
    // swap_flag: openEuler's kernel scans only the VMAs marked with MADV_SWAPFLAG when
    // asked (VMA_SCAN_FLAG); with other backends we keep only the marked VMAs ourselves.
    let flags = if only_marked { VMA_SCAN_FLAG } else { 0 };
    let tracker = track::open_with_flags(spec.backend, target, flags)?;
    let by_name = only_marked && tracker.backend() != ScanBackend::IdlePages;
    let maps = read_maps(target.pid()).map_err(|e| exited_if_missing(target, e))?;
    let vmas = watched(&maps, spec.watch, by_name);
    scan_with(tracker, target, spec, &vmas, stop, after_pass)
}

/// Scan the VMAs `vmas` of the process `target` holds (an engine that picks its VMAs
/// itself, e.g. by smaps flags); `spec.watch` is not used.
pub fn scan_vmas(
    target: &Pidfd,
    spec: &ScanSpec,
    vmas: &[Vma],
    stop: &dyn Fn() -> bool,
) -> Result<Scanned> {
    let tracker = track::open_with_flags(spec.backend, target, 0)?;
    scan_with(tracker, target, spec, vmas, stop, &mut |_| {})
}

fn scan_with(
    mut tracker: Box<dyn track::Tracker>,
    target: &Pidfd,
    spec: &ScanSpec,
    vmas: &[Vma],
    stop: &dyn Fn() -> bool,
    after_pass: &mut dyn FnMut(&[VmaCounts]),
) -> Result<Scanned> {
    let (loops, interval) = (spec.loops, spec.interval);
    let res = track::scan::scan_observed(
        &mut *tracker,
        target,
        vmas,
        loops,
        interval,
        stop,
        after_pass,
    );
    tracker.finish();
    res?;
    Ok(Scanned {
        backend: tracker.backend(),
        counts: tracker.counts().to_vec(),
    })
}

/// The VMAs of `maps` that `watch` takes; `by_name` applies `swap_flag` by VMA name.
fn watched(maps: &[Vma], watch: Watch, by_name: bool) -> Vec<Vma> {
    match watch {
        Watch::All => maps.to_vec(),
        Watch::Anon => maps
            .iter()
            .filter(|v| v.is_etmem_anon() && !v.is_special())
            .cloned()
            .collect(),
        Watch::Swappable { .. } => swappable::swappable_vmas(maps, by_name),
    }
}

/// A missing `/proc/PID/maps` after the pidfd was opened means the process exited.
fn exited_if_missing(target: &Pidfd, e: Error) -> Error {
    if e.kind == Kind::NotFound {
        Error::new(
            Kind::Gone,
            format!("process {} exited during the scan", target.pid()),
        )
    } else {
        e
    }
}

/// What a swap-out did, with what really left DRAM.
#[derive(Debug, Clone)]
pub struct Swapped {
    /// The backend that swapped.
    pub backend: SwapBackend,
    /// What the kernel was asked and took.
    pub report: SwapReport,
    /// The process's VmSwap after minus before, when both could be read: what really
    /// left DRAM (other activity of the process counts too).
    pub vmswap_delta: Option<i128>,
}

impl Swapped {
    /// How much VmSwap grew (0 when it shrank or could not be read).
    pub fn vmswap_growth(&self) -> u64 {
        self.vmswap_delta
            .map_or(0, |d| u64::try_from(d.max(0)).unwrap_or(u64::MAX))
    }
}

/// Swap `pages` (ranges of whole pages of their size class) of the process `target`
/// holds out of DRAM with the `choice` backend (`None`: detect), polling `stop` between
/// kernel calls.
pub fn swap_out(
    target: &Pidfd,
    choice: Option<SwapBackend>,
    pages: &[(Range, PageSize)],
    stop: &dyn Fn() -> bool,
) -> Result<Swapped> {
    let mut swapper = act::open(choice, target)?;
    let before = act::swapped_bytes(target.pid()).ok();
    let report = swapper.swap_out_sized(target, pages, stop)?;
    let after = act::swapped_bytes(target.pid()).ok();
    Ok(Swapped {
        backend: swapper.backend(),
        report,
        vmswap_delta: before
            .zip(after)
            .map(|(b, a)| i128::from(a) - i128::from(b)),
    })
}

/// Memory to take out of DRAM, in the two forms it is needed in: merged ranges, for
/// people and totals, and the same memory as ranges of whole pages of their size class,
/// for the swapper (swap_pages takes a cold huge page as one head address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted, merged, page-aligned.
    pub ranges: Vec<Range>,
    /// What [`swap_out`] is given.
    pub pages: Vec<(Range, PageSize)>,
}

impl Plan {
    /// The plan for cold `runs` as a scan found them (huge pages stay huge).
    pub fn of_runs(runs: &[Run]) -> Plan {
        let plain: Vec<Range> = runs.iter().map(|r| r.range).collect();
        Plan {
            ranges: coalesce(&plain, crate::types::page_size()),
            pages: sized(runs),
        }
    }

    /// The plan for ranges asked for from outside, as base pages.
    pub fn of_ranges(ranges: &[Range]) -> Plan {
        let ranges = coalesce(ranges, crate::types::page_size());
        let pages = ranges.iter().map(|&r| (r, PageSize::Base)).collect();
        Plan { ranges, pages }
    }

    /// Bytes in the plan.
    pub fn bytes(&self) -> u64 {
        total_bytes(&self.ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_merge_ranges_and_keep_page_sizes() {
        let b = PageSize::Base.bytes();
        let m = PageSize::Pmd.bytes();
        let runs = [
            Run {
                range: Range::new(m, 2 * m),
                size: PageSize::Pmd,
                count: 0,
            },
            Run {
                range: Range::new(2 * m, 2 * m + b),
                size: PageSize::Base,
                count: 1,
            },
        ];
        let p = Plan::of_runs(&runs);
        assert_eq!(p.ranges, vec![Range::new(m, 2 * m + b)]);
        assert_eq!(
            p.pages,
            vec![
                (runs[0].range, PageSize::Pmd),
                (runs[1].range, PageSize::Base)
            ]
        );
        assert_eq!(p.bytes(), m + b);
        let p = Plan::of_ranges(&[Range::new(3 * b, 4 * b), Range::new(b, 3 * b)]);
        assert_eq!(p.ranges, vec![Range::new(b, 4 * b)]);
        assert_eq!(p.pages, vec![(Range::new(b, 4 * b), PageSize::Base)]);
    }
}
