//! The psi engine (spec §8.4): proactive reclaim from memory cgroups, steered by their
//! memory pressure. Each cycle, for every cgroup a task's `cg_dir` matches: while its
//! pressure is below the task's `pressure`, ask `memory.reclaim` for a share (the
//! cgroup's adapted rate) of what it holds above its floor; the rate rises after steady
//! reclaims and falls under pressure ([`feedback`]). Works on cgroup v2, and on v1 where
//! the kernel has openEuler's files. One cgroup's failure is its own, not its task's.

pub mod feedback;

use crate::config::{ProjectConf, PsiTask, ScanConf, TaskConf, TaskParams};
use crate::engine::task_run::TaskRun;
use crate::engine::task_status::PsiCgroup;
use crate::engine::Engine;
use crate::error::{Error, Kind, Result};
use crate::sys::cgroup::{self, Layout, Memcg};
use crate::sys::{glob, meminfo};
use feedback::Event;

/// The system-wide PSI file: without it the kernel keeps no pressure figures.
const SYSTEM_PSI: &str = "/proc/pressure/memory";

/// The psi engine; its state lives in each task's status.
#[derive(Debug, Default)]
pub struct Psi;

fn params(task: &TaskConf) -> Result<&PsiTask> {
    match &task.params {
        TaskParams::Psi(p) => Ok(p),
        _ => Err(Error::invalid(format!(
            "task {} is not a psi task",
            task.name
        ))),
    }
}

fn kernel_psi() -> Result<()> {
    if std::path::Path::new(SYSTEM_PSI).is_file() {
        return Ok(());
    }
    Err(Error::new(
        Kind::Unsupported,
        format!(
            "{SYSTEM_PSI} is missing: this kernel keeps no memory pressure figures \
             (it needs CONFIG_PSI=y, and psi=1 on the kernel command line when \
             CONFIG_PSI_DEFAULT_DISABLED=y)"
        ),
    ))
}

/// What the kernel must offer for `layout`, for messages.
fn needs(layout: &Layout) -> &'static str {
    match layout {
        Layout::V2 { .. } => {
            "cgroup v2 with the memory controller enabled for the cgroup (memory.reclaim needs Linux 5.19+, memory.pressure needs CONFIG_PSI)"
        }
        Layout::V1 { .. } => {
            "openEuler's cgroup v1 files memory.min, memory.low, memory.reclaim and memory.pressure (psi=1 psi_v1=1, CONFIG_PSI_CGROUP_V1); mainline kernels have these only on cgroup v2"
        }
    }
}

/// The cgroups `task` matches now, relative to the layout's root.
fn matches(layout: &Layout, task: &PsiTask) -> Result<Vec<String>> {
    let found = glob::dirs(layout.root(), &task.cg_dir)
        .map_err(|e| Error::io(format!("cg_dir={}", task.cg_dir), e))?;
    if found.is_empty() {
        return Err(Error::new(
            Kind::NotFound,
            format!(
                "cg_dir={} matches no cgroup under {} ({})",
                task.cg_dir,
                layout.root().display(),
                layout.name()
            ),
        ));
    }
    Ok(found)
}

impl Engine for Psi {
    fn wants_children(&self) -> bool {
        false
    }

    fn check_start(&self, project: &ProjectConf) -> Result<()> {
        if !matches!(project.scan, ScanConf::Psi(_)) {
            return Err(Error::invalid("the psi engine needs scan_type=psi"));
        }
        kernel_psi()?;
        cgroup::layout().map(|_| ())
    }

    /// Every cgroup the task matches now must have every file the engine uses; a
    /// pattern that matches nothing yet is fine (containers come and go; each cycle
    /// says so).
    fn check_task_start(&self, _project: &ProjectConf, task: &TaskConf) -> Result<()> {
        let p = params(task)?;
        let layout = cgroup::layout()?;
        let Ok(found) = matches(&layout, p) else {
            return Ok(());
        };
        for rel in found {
            let missing = layout.memcg(&rel).missing_files();
            if let Some(first) = missing.first() {
                let names: Vec<String> = missing
                    .iter()
                    .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                return Err(Error::new(
                    Kind::Unsupported,
                    format!(
                        "task {}: cgroup {rel} ({} at {}): {} is missing (missing: {}); the psi engine needs {}",
                        task.name,
                        layout.name(),
                        layout.root().display(),
                        first.display(),
                        names.join(", "),
                        needs(&layout)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn note(&self, _project: &ProjectConf, task: &TaskConf) -> Option<String> {
        let p = params(task).ok()?;
        let layout = cgroup::layout().ok()?;
        Some(format!(
            "reclaims from the cgroups cg_dir={} matches under {} ({}) through memory.reclaim",
            p.cg_dir,
            layout.root().display(),
            layout.name()
        ))
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        let p = params(&run.task)?;
        let layout = cgroup::layout()?;
        let found = matches(&layout, p);
        // A failed match forgets every cgroup's state, as upstream does.
        let before = std::mem::take(&mut run.status().psi);
        let found = found?;
        // Swap anonymous memory can go to: none without swap, whatever the cgroup says.
        let swap_free = meminfo::swap_space().map_or(0, |s| s.free);
        let mut after = Vec::with_capacity(found.len());
        for rel in found {
            if run.should_stop() {
                break;
            }
            let memcg = layout.memcg(&rel);
            let mut cg = match memcg.inode() {
                Ok(inode) => before
                    .iter()
                    .find(|c| c.path == rel && c.inode == inode)
                    .cloned()
                    .unwrap_or_else(|| PsiCgroup {
                        path: rel.clone(),
                        inode,
                        rate: p.reclaim_rate.get(),
                        ..PsiCgroup::default()
                    }),
                // Gone between the listing and now: next cycle will not list it.
                Err(_) => continue,
            };
            cg.asked = 0;
            cg.reclaimed = 0;
            cg.error = None;
            if let Err(e) = step(&memcg, p, swap_free, &mut cg) {
                crate::log_warn!(
                    "project {} task {} cgroup {rel}: {e}",
                    run.project.name,
                    run.task.name
                );
                cg.action = "error";
                cg.error = Some(e.to_string());
            }
            after.push(cg);
        }
        let failed: Vec<String> = after
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| format!("cgroup {}: {e}", c.path)))
            .collect();
        let all_failed = !after.is_empty() && failed.len() == after.len();
        run.status().psi = after;
        match failed.first() {
            Some(first) if all_failed => Err(Error::new(
                Kind::Io,
                format!("every cgroup failed; the first: {first}"),
            )),
            _ => Ok(()),
        }
    }
}

/// One cycle for one cgroup (spec §8.4.5 steps 2–8, as intended).
fn step(memcg: &Memcg, p: &PsiTask, swap_free: u64, cg: &mut PsiCgroup) -> Result<()> {
    let (min, max) = (p.reclaim_rate_min.get(), p.reclaim_rate_max.get());
    let pressure = memcg.pressure()?;
    cg.pressure = Some(feedback::pressure_of(pressure));
    if !feedback::allowed(pressure, p) {
        (cg.rate, cg.gather) = feedback::adapt(cg.rate, cg.gather, Event::Refused, min, max);
        cg.action = "pressure high";
        cg.current = memcg.current()?;
        return Ok(());
    }
    let usage = memcg.usage()?;
    cg.floor = feedback::floor(&usage, usage.swap_headroom.min(swap_free), p);
    let current = memcg.current()?;
    cg.current = current;
    let bytes = feedback::amount(current, cg.floor, cg.rate, p.reclaim_max_bytes);
    if bytes == 0 {
        cg.action = if current <= cg.floor {
            "at floor"
        } else {
            "less than a page above the floor to ask"
        };
        return Ok(());
    }
    cg.asked = bytes;
    memcg.reclaim(bytes)?;
    let now = memcg.current().unwrap_or(current);
    cg.current = now;
    cg.reclaimed = current.saturating_sub(now);
    cg.reclaimed_total = cg.reclaimed_total.saturating_add(cg.reclaimed);
    (cg.rate, cg.gather) = feedback::adapt(cg.rate, cg.gather, Event::Reclaimed, min, max);
    cg.action = "reclaimed";
    Ok(())
}
