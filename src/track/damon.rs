//! The `damon` backend (CONFIG_DAMON_VADDR + CONFIG_DAMON_SYSFS): a kdamond samples the
//! process's address space in adaptively sized regions; at each pass the regions are read
//! back (through a `stat` scheme's tried regions) and mapped onto the resident pages.
//!
//! Mapping: a page counts as accessed in a pass (+1) when the region holding it was seen
//! accessed in its last aggregation interval (`nr_accesses > 0`) or changed its access
//! frequency within the pass (`age` shorter than the time since the previous pass, less a
//! slack of a few aggregation intervals) — i.e. it was not idle for the whole pass.
//! Region edges are approximate, so pages near a hot/cold boundary may land on the wrong
//! side. DAMON does not report dirtiness. The kdamond is turned off in `finish`, on drop,
//! and when `begin` fails.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::sys::damon_sysfs::{Attrs, Monitor, Region};
use crate::sys::pidfd::Pidfd;
use crate::track::counts::{counts_for, scannable, VmaCounts};
use crate::track::residency::Residency;
use crate::track::{Backend, Tracker};
use crate::types::{Pid, Vma};

/// Sampling every 5 ms, aggregating over 100 ms, VMA refresh each second.
const ATTRS: Attrs = Attrs {
    sample_us: 5_000,
    aggr_us: 100_000,
    update_us: 1_000_000,
    min_regions: 10,
    max_regions: 1_000,
};

/// DAMON tracker of one process.
#[derive(Debug)]
pub struct DamonTracker {
    pid: Pid,
    monitor: Option<Monitor>,
    res: Residency,
    counts: Vec<VmaCounts>,
    regions: Vec<Region>,
    last: Instant,
}

impl DamonTracker {
    /// Check that DAMON can be used (the kdamond itself starts in `begin`).
    pub fn open(pid: Pid) -> Result<DamonTracker> {
        crate::sys::damon_sysfs::check_available()?;
        Ok(DamonTracker {
            pid,
            monitor: None,
            res: Residency::open(pid)?,
            counts: Vec::new(),
            regions: Vec::new(),
            last: Instant::now(),
        })
    }
}

/// Was a region not idle during the last `elapsed`?
pub fn accessed(r: &Region, elapsed: Duration, aggr_us: u64) -> bool {
    let elapsed_us = elapsed.as_micros() as u64;
    let slack = 3 * aggr_us + elapsed_us / 10;
    r.nr_accesses > 0 || r.age.saturating_mul(aggr_us).saturating_add(slack) < elapsed_us
}

impl Tracker for DamonTracker {
    fn backend(&self) -> Backend {
        Backend::Damon
    }

    fn begin(&mut self, _target: &Pidfd, vmas: &[Vma]) -> Result<()> {
        self.finish();
        self.counts = counts_for(vmas);
        self.monitor = Some(Monitor::start(self.pid, ATTRS)?);
        self.last = Instant::now();
        for c in self.counts.iter_mut().filter(|c| scannable(c)) {
            self.res.walk(c, |_, _, _| Ok(()))?;
        }
        Ok(())
    }

    fn pass(&mut self, _target: &Pidfd) -> Result<()> {
        let Some(m) = self.monitor.as_mut() else {
            return Ok(());
        };
        m.regions(&mut self.regions)?;
        let now = Instant::now();
        let elapsed = now - self.last;
        self.last = now;
        let regions = &self.regions;
        for c in self.counts.iter_mut().filter(|c| scannable(c)) {
            self.res.walk(c, |c, first, entries| {
                let mut k = 0usize;
                for j in 0..entries.len() {
                    let addr = c.addr_of(first + j);
                    while k < regions.len() && regions[k].end <= addr {
                        k += 1;
                    }
                    match regions.get(k) {
                        Some(r) if r.start <= addr && accessed(r, elapsed, ATTRS.aggr_us) => {
                            c.add(first + j, 1, 1)
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn counts(&self) -> &[VmaCounts] {
        &self.counts
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
        assert!(accessed(&r(1, 100), s, 100_000));
        assert!(!accessed(&r(0, 20), s, 100_000));
        assert!(!accessed(&r(0, 15), s, 100_000));
        assert!(accessed(&r(0, 5), s, 100_000));
    }
}
