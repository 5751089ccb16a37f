//! The slide engine (spec §6, user guide "slide"): every cycle, for the task's process and
//! its children, scan `loop` times `interval` apart, count each page's accesses, and swap
//! out the pages whose count is below `T`. Gates (`sysmem_threshold`, `swap_threshold`),
//! `swap_flag`, `dram_percent` and the swapcache watermarks as the guide describes them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::cold::{self, ScanSpec, Watch};
use super::refaults::Refaults;
use super::targets::Held;
use super::task_run::TaskRun;
use super::task_status::CycleStats;
use super::{claim, swap_gate, Engine};
use crate::act;
use crate::act::coalesce::{coalesce, subtract};
use crate::config::{PageScan, ProjectConf, ScanConf, SlideTask, TaskConf, TaskParams};
use crate::error::{catch_panic, Error, Kind, Result};
use crate::sys::{cgroup, meminfo, pidfd::Pidfd, process};
use crate::track::Run;
use crate::types::{PageSize, Pid, Range, SwapBackend};

/// Whether this kernel has openEuler's etmem_swap module (for the swapcache watermarks).
fn has_swap_pages() -> bool {
    act::detect(std::process::id() as Pid) == SwapBackend::SwapPages
}

/// The slide engine: swaps out the pages whose access count over a cycle's `loop`
/// scans is below `T`.
#[derive(Default)]
pub struct Slide {
    /// The watermarks are system-wide: push them to the kernel once per engine.
    wmark_pushed: AtomicBool,
    /// What each process sent out last cycle, to count what came back.
    refaults: Refaults,
}

impl Engine for Slide {
    fn wants_children(&self) -> bool {
        true
    }

    fn check_start(&self, project: &ProjectConf) -> Result<()> {
        if !matches!(project.scan, ScanConf::Page(_)) {
            return Err(Error::invalid("the slide engine needs scan_type=page"));
        }
        if project.swapcache_wmark.is_some() && !has_swap_pages() {
            crate::log_warn!(
                "project {}: swapcache_high_wmark/swapcache_low_wmark are not supported on this kernel \
                 (they need openEuler's etmem_swap module); ignoring them",
                project.name
            );
        }
        Ok(())
    }

    fn note(&self, project: &ProjectConf, _task: &TaskConf) -> Option<String> {
        (project.swapcache_wmark.is_some() && !has_swap_pages()).then(|| {
            "swapcache watermarks are not supported on this kernel (no etmem_swap module)".into()
        })
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        let (ScanConf::Page(scan), TaskParams::Slide(params)) =
            (&run.project.scan, &run.task.params)
        else {
            return Err(Error::invalid("slide task outside a page project"));
        };
        // Held from here on: a pid that changes hands before a worker gets to it is
        // never mistaken for the process listed.
        let held = run.resolve(true)?;
        let main = held[0].pid();

        // A pool of at most max_threads workers takes the processes in turn.
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(Pid, Result<PidResult>)>> = Mutex::new(Vec::new());
        let workers = (run.task.max_threads as usize).clamp(1, held.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(one) = held.get(i) else { break };
                    if run.should_stop() {
                        break;
                    }
                    // A bug met on one process fails that process, not its siblings.
                    let r = catch_panic("the engine", || self.one_process(run, scan, params, one));
                    crate::error::lock(&results).push((one.pid(), r));
                });
            }
        });

        let mut stats = CycleStats {
            workers: workers as u64,
            ..CycleStats::default()
        };
        let mut backends = None;
        let mut errors = Vec::new();
        for (pid, r) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            match r {
                Ok(PidResult::Skipped(why)) => stats.skipped.push(format!("pid {pid}: {why}")),
                Ok(PidResult::Done(d)) => {
                    stats.pages_scanned += d.pages_scanned;
                    stats.cold_pages += d.cold_pages;
                    stats.requested_bytes += d.requested_bytes;
                    stats.swapped_bytes += d.swapped_bytes;
                    stats.vmswap_growth += d.vmswap_growth;
                    stats.refaults += d.refaults;
                    stats.keep(&d.skipped);
                    backends = Some(d.backends);
                }
                // A child that exited between lookup and scan is not the task's failure.
                Err(e) if e.kind == Kind::Gone && pid != main => {
                    stats.skipped.push(format!("pid {pid}: {e}"))
                }
                Err(e) => errors.push(format!("pid {pid}: {e}")),
            }
        }
        self.refaults.keep_only(&run.task.name, &held);
        let mut st = run.status();
        st.end_cycle(stats);
        if backends.is_some() {
            st.backend = backends;
        }
        drop(st);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::new(Kind::Io, errors.join("; ")))
        }
    }
}

/// What one process's share of a cycle came to.
enum PidResult {
    Skipped(String),
    Done(PidDone),
}

struct PidDone {
    pages_scanned: u64,
    cold_pages: u64,
    requested_bytes: u64,
    swapped_bytes: u64,
    vmswap_growth: u64,
    /// Pages sent out last cycle that were resident again.
    refaults: u64,
    backends: String,
    /// The ranges the kernel kept, and why.
    skipped: Vec<(Range, String)>,
}

impl Slide {
    fn one_process(
        &self,
        run: &TaskRun,
        scan: &PageScan,
        params: &SlideTask,
        held: &Held,
    ) -> Result<PidResult> {
        let pid = held.pid();
        let Some(_claim) = claim::claim(pid) else {
            return Ok(PidResult::Skipped("another task is scanning it".into()));
        };
        let target = held.check()?;
        // Before anything else this cycle might fault in: what last cycle's swap-out
        // sent away that the process has touched since.
        let refaults = self
            .refaults
            .came_back(&run.task.name, held, params.refault_hold)?;
        let st = process::stat(pid)?;
        if st.is_zombie() {
            return Err(Error::new(
                Kind::Gone,
                format!("process {pid} exited (zombie)"),
            ));
        }
        if st.is_kernel_thread() {
            return Ok(PidResult::Skipped(
                "a kernel thread has no user memory".into(),
            ));
        }
        // Read only what a configured threshold needs: without one, a failed read must
        // not fail the process.
        let mem = match run.project.sysmem_threshold {
            Some(_) => meminfo::read()?,
            None => meminfo::MemInfo::default(),
        };
        let rss = match params.swap_threshold {
            Some(_) => process::status_bytes(pid, "VmRSS")?,
            None => 0,
        };
        if let Some(why) = swap_gate::closed_reason(
            run.project.sysmem_threshold,
            params.swap_threshold,
            &mem,
            rss,
        ) {
            return Ok(PidResult::Skipped(why));
        }
        if let Some(limit) = params.pressure_limit {
            let (p, file) = cgroup::pressure_of(pid)?;
            if let Some(why) = swap_gate::pressure_reason(limit.get(), p.avg10, &file) {
                return Ok(PidResult::Skipped(why));
            }
        }

        let spec = ScanSpec {
            backend: run.task.scan_backend,
            loops: scan.loops,
            interval: Duration::from_secs(scan.interval.into()),
            watch: Watch::Swappable {
                only_marked: run.task.swap_flag,
            },
        };
        let stop = || run.should_stop();
        let scanned = cold::scan(target, &spec, &stop);
        if run.should_stop() {
            return Ok(PidResult::Skipped("stopped".into()));
        }
        let scanned = scanned?;

        let mut cold_runs = scanned.cold(params.t as u16);
        if let Some(pct) = params.dram_percent {
            cold_runs = keep_in_dram(cold_runs, pid, pct)?;
        }
        cold_runs = without(cold_runs, &self.refaults.held(&run.task.name, held));
        if let Some(floor) = params.resident_floor {
            let rss = process::status_bytes(pid, "VmRSS")?;
            cold_runs = take_coldest(&mut cold_runs, rss.saturating_sub(floor), false);
        }
        let cold_bytes: u64 = cold_runs.iter().map(|r| r.range.len()).sum();
        let plan = cold::Plan::of_runs(&cold_runs);
        // The scan took `loop` x `interval`: check again before swapping anything out.
        let target = held.check()?;
        let swapped = cold::swap_out(target, run.task.swap_backend, &plan.pages, &stop)?;
        for (r, why) in swapped.report.skipped.iter().take(3) {
            crate::log_debug!("pid {pid}: kernel kept {r}: {why}");
        }
        if swapped.backend == SwapBackend::SwapPages {
            self.reclaim_swapcache(run, target)?;
        }
        self.refaults.sent(&run.task.name, held, plan.ranges)?;
        Ok(PidResult::Done(PidDone {
            pages_scanned: scanned.base_pages(),
            cold_pages: cold_bytes / PageSize::Base.bytes(),
            requested_bytes: swapped.report.requested_bytes,
            swapped_bytes: swapped.report.advised_bytes,
            vmswap_growth: swapped.vmswap_growth(),
            refaults,
            backends: format!("{}+{}", scanned.backend.name(), swapped.backend.name()),
            skipped: swapped.report.skipped,
        }))
    }

    /// After swapping with the etmem_swap module: when swapcache exceeds the high
    /// watermark, push the watermarks (once) and wake the kernel's reclaim (spec §6.8).
    fn reclaim_swapcache(&self, run: &TaskRun, target: &Pidfd) -> Result<()> {
        let Some(w) = &run.project.swapcache_wmark else {
            return Ok(());
        };
        let mem = meminfo::read()?;
        if mem.swap_cached == 0
            || mem.swap_cached.saturating_mul(100) < mem.total.saturating_mul(w.high.into())
        {
            return Ok(());
        }
        if !self.wmark_pushed.swap(true, Ordering::Relaxed) {
            act::swapcache::set_swapcache_wmark(target, w.low, w.high)?;
        }
        act::swapcache::reclaim_swapcache(target)
    }
}

/// `dram_percent` (spec §6.4): keep at most that share of the process's memory (resident
/// plus swapped) in DRAM; swap only as much as needed for that, coldest pages first.
fn keep_in_dram(mut cold: Vec<Run>, pid: Pid, pct: u32) -> Result<Vec<Run>> {
    let rss = process::status_bytes(pid, "VmRSS")?;
    let swap = process::status_bytes(pid, "VmSwap").unwrap_or(0);
    let keep = (rss + swap) / 100 * u64::from(pct);
    Ok(take_coldest(&mut cold, rss.saturating_sub(keep), true))
}

/// The coldest runs whose sizes add up to `budget` bytes (whole runs, cut at a page
/// boundary where the budget ends: after it when `round_up`, before it otherwise),
/// ascending by address.
fn take_coldest(cold: &mut [Run], mut budget: u64, round_up: bool) -> Vec<Run> {
    crate::sort::unstable_by_key(cold, |r| (r.count, r.range.start));
    let mut out = Vec::new();
    for r in cold.iter() {
        if budget == 0 {
            break;
        }
        let page = r.size.bytes();
        let pages = if round_up {
            budget.div_ceil(page)
        } else {
            budget / page
        };
        let take = r.range.len().min(pages * page);
        if take == 0 {
            continue;
        }
        out.push(Run {
            range: Range::new(r.range.start, r.range.start + take),
            ..*r
        });
        budget = budget.saturating_sub(take);
    }
    crate::sort::unstable_by_key(&mut out, |r| r.range.start);
    out
}

/// `cold` without the ranges in `held` (sorted, merged), each widened to whole pages of
/// the run it cuts (a huge page is held whole).
fn without(cold: Vec<Run>, held: &[Range]) -> Vec<Run> {
    if held.is_empty() {
        return cold;
    }
    cold.into_iter()
        .flat_map(|r| {
            let page = r.size.bytes();
            let mask = page - 1;
            let widened: Vec<Range> = held
                .iter()
                .filter(|h| h.end > r.range.start && h.start < r.range.end)
                .map(|h| Range::new(h.start & !mask, h.end.saturating_add(mask) & !mask))
                .collect();
            subtract(&[r.range], &coalesce(&widened, page))
                .into_iter()
                .map(move |range| Run { range, ..r })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, pages: u64, count: u16) -> Run {
        Run {
            range: Range::new(start, start + pages * 4096),
            size: PageSize::Base,
            count,
        }
    }

    #[test]
    fn dram_percent_takes_the_coldest_first() {
        let mut cold = vec![run(0x10000, 4, 1), run(0x20000, 4, 0), run(0x30000, 4, 2)];
        // 24 KiB over the keep budget: all 4 pages of count 0, then 2 of count 1.
        let got = take_coldest(&mut cold, 6 * 4096, true);
        assert_eq!(got, vec![run(0x10000, 2, 1), run(0x20000, 4, 0)]);
        // Nothing over budget: nothing to swap.
        assert!(take_coldest(&mut cold, 0, true).is_empty());
        // A floor rounds down: never a page past the budget.
        let got = take_coldest(&mut cold, 4096 + 100, false);
        assert_eq!(got, vec![run(0x20000, 1, 0)]);
    }

    #[test]
    fn held_ranges_are_cut_out_of_the_cold_runs() {
        let cold = vec![run(0x10000, 8, 0), run(0x40000, 2, 0)];
        let held = [Range::new(0x11000, 0x12800), Range::new(0x40000, 0x42000)];
        assert_eq!(
            without(cold, &held),
            vec![run(0x10000, 1, 0), run(0x13000, 5, 0)]
        );
        let huge = Run {
            range: Range::new(0x200000, 0x600000),
            size: PageSize::Pmd,
            count: 0,
        };
        let got = without(vec![huge], &[Range::new(0x201000, 0x202000)]);
        assert_eq!(got[0].range, Range::new(0x400000, 0x600000));
    }
}
