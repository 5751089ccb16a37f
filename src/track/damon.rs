//! The `damon` backend (CONFIG_DAMON_VADDR + CONFIG_DAMON_SYSFS): a kdamond samples the
//! process's address space in adaptively sized regions; at each pass the regions are read
//! back (through a `stat` scheme's tried regions) and mapped onto the resident pages.
//!
//! Mapping: a page counts as accessed in a pass (+1) when the region holding it was seen
//! accessed in its last aggregation interval (`nr_accesses > 0`) or changed its access
//! frequency within the pass (`age`, in aggregation intervals, shorter than the pass less
//! a slack of two intervals and 10 %) — i.e. it was not idle for the whole pass. The
//! length of an aggregation interval is measured, not assumed: a busy or emulated machine
//! stretches them, so it is the time since `begin` divided by the oldest region's age.
//! The first pass after `begin` uses `nr_accesses` alone: regions are still being split
//! out of the initial ones then, and their ages say so rather than when they were used.
//! Region edges are approximate, so pages near a hot/cold boundary may land on the wrong
//! side. DAMON does not report dirtiness. The kdamond is turned off in `finish`, on drop,
//! and when `begin` fails.
//!
//! The kdamond starts from regions cut along the scanned VMAs (at most
//! [`INITIAL_REGIONS`]), not from DAMON's split of the whole address space into ten: that
//! split needs many aggregations to find a hot VMA beside a cold one, which a loaded or
//! emulated machine may not give it before the first pass. Should the kdamond stop while
//! its process still lives, it is started again (at most [`MAX_RESTARTS`] times a scan)
//! and the pass is read from its first second or so of aggregations.

use std::time::{Duration, Instant};

use crate::error::{Error, Kind, Result};
use crate::sys::damon_sysfs::{Attrs, Monitor, Region};
use crate::sys::pidfd::Pidfd;
use crate::track::counts::VmaCounts;
use crate::track::residency::Residency;
use crate::track::Tracker;
use crate::types::ScanBackend;
use crate::types::{PageSize, Pid, Range, Vma};

/// Sampling every 5 ms, aggregating over 100 ms, VMA refresh each second.
const ATTRS: Attrs = Attrs {
    sample_us: 5_000,
    aggr_us: 100_000,
    update_us: 1_000_000,
    min_regions: 10,
    max_regions: 1_000,
};

/// At most this many initial regions (DAMON splits regions only while it has fewer than
/// half of `max_regions`).
pub const INITIAL_REGIONS: usize = 200;

/// Restarts of a kdamond that stopped while its process lives, per scan.
pub const MAX_RESTARTS: u32 = 2;

/// After a restart, the pass is read once the oldest region is this many aggregations old
/// (a second at the nominal interval): a fresh kdamond on a loaded machine samples little
/// in its first aggregations, merges a hot VMA's regions with its cold neighbours' and
/// needs a few more to split them apart again.
pub const RESTART_SETTLE_AGGREGATIONS: u64 = 10;

/// ...but no longer than this after the restart.
pub const RESTART_SETTLE_MAX: Duration = Duration::from_secs(3);

/// DAMON tracker of one process.
#[derive(Debug)]
pub struct DamonTracker {
    pid: Pid,
    monitor: Option<Monitor>,
    res: Residency,
    counts: Vec<VmaCounts>,
    regions: Vec<Region>,
    last: Instant,
    started: Instant,
    passes: u32,
    initial: Vec<Range>,
    restarts: u32,
}

impl DamonTracker {
    /// Check that DAMON can be used (the kdamond itself starts in `begin`).
    pub fn open(target: &Pidfd) -> Result<DamonTracker> {
        let pid = target.pid();
        crate::sys::damon_sysfs::check_available()?;
        Ok(DamonTracker {
            pid,
            monitor: None,
            res: Residency::open(target)?,
            counts: Vec::new(),
            regions: Vec::new(),
            last: Instant::now(),
            started: Instant::now(),
            passes: 0,
            initial: Vec::new(),
            restarts: 0,
        })
    }
}

/// DAMON's starting regions for `vmas` (sorted): each VMA cut into equal page-aligned
/// pieces, about `max` in all; empty (DAMON's default) when there are `max` VMAs or more.
pub fn initial_regions(vmas: &[Vma], max: usize) -> Vec<Range> {
    if vmas.is_empty() || vmas.len() >= max {
        return Vec::new();
    }
    let page = PageSize::Base.bytes();
    let total: u64 = vmas.iter().map(|v| v.range.len()).sum();
    let piece = total.div_ceil(max as u64).div_ceil(page).max(1) * page;
    let mut out = Vec::new();
    for v in vmas {
        let mut a = v.range.start;
        while a < v.range.end {
            let b = a.saturating_add(piece).min(v.range.end);
            out.push(Range::new(a, b));
            a = b;
        }
    }
    out
}

/// How many aggregation intervals the last pass (`elapsed`) spanned, given the time since
/// monitoring started and the oldest region's age (intervals are never shorter than
/// `aggr_us`).
pub fn pass_windows(elapsed: Duration, since_start: Duration, max_age: u64, aggr_us: u64) -> f64 {
    let nominal = aggr_us as f64 / 1e6;
    let measured = if max_age > 0 {
        since_start.as_secs_f64() / max_age as f64
    } else {
        nominal
    };
    elapsed.as_secs_f64() / measured.max(nominal)
}

/// Was a region not idle during a pass that spanned `windows` aggregation intervals?
pub fn accessed(r: &Region, windows: f64) -> bool {
    r.nr_accesses > 0 || (r.age as f64) < windows * 0.9 - 2.0
}

impl DamonTracker {
    /// (Re)start the kdamond from the initial regions, our earlier one turned off first
    /// (a new one needs the kdamond count back at 0); the next pass is read as a first pass.
    fn start_monitor(&mut self) -> Result<()> {
        self.finish();
        self.monitor = Some(Monitor::start(self.pid, ATTRS, &self.initial)?);
        self.last = Instant::now();
        self.started = self.last;
        self.passes = 0;
        Ok(())
    }

    /// The kdamond stopped although its process lives: start it again (at most
    /// [`MAX_RESTARTS`] times a scan) and read its regions once they settled
    /// ([`RESTART_SETTLE_AGGREGATIONS`], at most [`RESTART_SETTLE_MAX`]).
    fn restart(&mut self) -> Result<()> {
        if self.restarts >= MAX_RESTARTS {
            return Err(Error::new(
                Kind::Io,
                format!(
                    "the kdamond monitoring process {} stopped {} times although the \
                     process lives (see the kernel log)",
                    self.pid,
                    self.restarts + 1
                ),
            ));
        }
        self.restarts += 1;
        crate::log_warn!(
            "the kdamond monitoring process {} stopped although the process lives; \
             starting it again",
            self.pid
        );
        self.start_monitor()?;
        let Some(m) = self.monitor.as_mut() else {
            return Ok(());
        };
        // Each read waits for the kdamond's next aggregation.
        loop {
            m.regions(&mut self.regions)?;
            let max_age = self.regions.iter().map(|r| r.age).max().unwrap_or(0);
            if max_age >= RESTART_SETTLE_AGGREGATIONS
                || self.started.elapsed() >= RESTART_SETTLE_MAX
            {
                return Ok(());
            }
        }
    }
}

impl Tracker for DamonTracker {
    fn backend(&self) -> ScanBackend {
        ScanBackend::Damon
    }

    fn begin(&mut self, _target: &Pidfd, vmas: &[Vma], stop: &dyn Fn() -> bool) -> Result<()> {
        self.initial = initial_regions(vmas, INITIAL_REGIONS);
        self.restarts = 0;
        self.start_monitor()?;
        self.counts = self.res.fresh_counts(vmas, stop)?;
        Ok(())
    }

    fn pass(&mut self, target: &Pidfd, stop: &dyn Fn() -> bool) -> Result<()> {
        let Some(m) = self.monitor.as_mut() else {
            return Ok(());
        };
        match m.regions(&mut self.regions) {
            Err(e) if e.kind == Kind::Gone && target.is_alive() => self.restart()?,
            r => r?,
        }
        let now = Instant::now();
        let elapsed = now - self.last;
        self.last = now;
        let max_age = self.regions.iter().map(|r| r.age).max().unwrap_or(0);
        let windows = if self.passes == 0 {
            0.0
        } else {
            pass_windows(elapsed, now - self.started, max_age, ATTRS.aggr_us)
        };
        self.passes += 1;
        let regions = &self.regions;
        self.res
            .walk_all(&mut self.counts, stop, |c, first, entries| {
                let mut k = 0usize;
                for j in 0..entries.len() {
                    let addr = c.addr_of(first + j);
                    while k < regions.len() && regions[k].end <= addr {
                        k += 1;
                    }
                    match regions.get(k) {
                        Some(r) if r.start <= addr && accessed(r, windows) => {
                            c.add(first + j, 1, 1)
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                Ok(())
            })?;
        Ok(())
    }

    fn counts(&self) -> &[VmaCounts] {
        &self.counts
    }

    fn zero_counts(&mut self) {
        self.counts.iter_mut().for_each(VmaCounts::zero);
    }

    fn finish(&mut self) {
        if let Some(mut m) = self.monitor.take() {
            m.stop();
        }
    }
}

impl Drop for DamonTracker {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rule() {
        let r = |nr, age| Region {
            start: 0,
            end: 4096,
            nr_accesses: nr,
            age,
        };
        let s = Duration::from_secs(2);
        // Nominal 100 ms windows: a 2 s pass is 20 of them.
        let w = pass_windows(s, s, 0, 100_000);
        assert!((w - 20.0).abs() < 1e-9);
        assert!(accessed(&r(1, 100), w));
        assert!(!accessed(&r(0, 20), w));
        assert!(!accessed(&r(0, 16), w));
        assert!(accessed(&r(0, 5), w));
        // Stretched windows: the oldest region is 10 intervals old after 4 s, so a 2 s
        // pass is 5 intervals and an age of 5 is idle throughout.
        let w = pass_windows(s, 2 * s, 10, 100_000);
        assert!((w - 5.0).abs() < 1e-9);
        assert!(!accessed(&r(0, 5), w));
        assert!(accessed(&r(0, 1), w));
    }

    #[test]
    fn initial_regions_follow_vmas() {
        let vma = |l: &str| crate::sys::maps::parse_line(l).unwrap();
        let page = PageSize::Base.bytes();
        let vmas = vec![
            vma("100000-500000 rw-p 0 00:00 0"),
            vma("600000-601000 rw-p 0 00:00 0"),
        ];
        let r = initial_regions(&vmas, 4);
        // 4 MiB + 4 KiB over 4 pieces: 1 MiB + 1 page each; the small VMA is its own.
        let piece = (0x401000u64 / 4).div_ceil(page) * page;
        assert_eq!(r[0], Range::new(0x100000, 0x100000 + piece));
        assert_eq!(r.last(), Some(&Range::new(0x600000, 0x601000)));
        assert!(r.windows(2).all(|w| w[0].end <= w[1].start));
        assert!(r.iter().all(|x| x.start % page == 0 && x.end % page == 0));
        assert_eq!(
            r.iter().map(|x| x.len()).sum::<u64>(),
            vmas.iter().map(|v| v.range.len()).sum::<u64>()
        );
        assert!(r.len() <= 4 + vmas.len());
        // As many VMAs as the limit: DAMON's own split.
        assert!(initial_regions(&vmas, 2).is_empty());
        assert!(initial_regions(&[], 4).is_empty());
    }
}
