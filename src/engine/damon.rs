//! The damon engine (spec §8.1, §8.1b, user guide "damon"): the kernel does the per-page
//! work. One kdamond per project monitors the virtual address space of every task's
//! process (DAMON's sysfs interface; upstream's debugfs one is gone since Linux 6.14) and
//! applies one scheme: the engine's access pattern (size, accesses, age) and action. Every
//! sysfs write is checked, so a start the kernel refuses is a failed start, not a silent
//! success as upstream's; and a kdamond etmemd did not set up is never touched.
//!
//! Each cycle (one aggregation interval) re-resolves the tasks' processes: when they are
//! not the ones monitored (a task added or deleted, a process restarted) the kdamond is
//! set up again for the new set; otherwise the scheme's statistics are read into every
//! task's status.

use std::sync::Mutex;

use super::task_run::TaskRun;
use super::task_status::{CycleStats, DamonFigures};
use super::Engine;
use crate::config::{DamonConf, ProjectConf, RegionScan, ScanConf, TaskConf};
use crate::error::{Error, Kind, Result};
use crate::sys::damon_sysfs::{self, Attrs, Monitor, Scheme, SchemeStats, Setup};
use crate::sys::numa;
use crate::types::{Pid, Range};

/// The first kernel whose DAMON vaddr operations apply `migrate_hot`/`migrate_cold`.
const VADDR_MIGRATE: (u32, u32) = (6, 17);

/// The damon engine of one project.
pub struct Damon {
    conf: DamonConf,
    running: Mutex<Running>,
}

/// The project's kdamond, while it runs, and the processes it monitors.
#[derive(Default)]
struct Running {
    monitor: Option<Monitor>,
    pids: Vec<Pid>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Damon {
    /// The engine for `conf`.
    pub fn new(conf: DamonConf) -> Damon {
        Damon {
            conf,
            running: Mutex::new(Running::default()),
        }
    }

    fn scheme(&self) -> Scheme<'static> {
        let c = &self.conf;
        Scheme {
            action: c.action.name(),
            size: (c.min_size, c.max_size),
            accesses: (c.min_acc.into(), c.max_acc.into()),
            age: (c.min_age.into(), c.max_age.into()),
            target_nid: c.target_nid,
        }
    }
}

fn attrs(r: &RegionScan) -> Attrs {
    Attrs {
        sample_us: r.sample_interval,
        aggr_us: r.aggr_interval,
        update_us: r.update_interval,
        min_regions: r.min_nr_regions,
        max_regions: r.max_nr_regions,
    }
}

/// Why DAMON cannot be used now: kdamonds someone else set up.
fn foreign_refusal(foreign: &[damon_sysfs::Foreign]) -> Error {
    let list: Vec<String> = foreign
        .iter()
        .map(|k| match k.pid {
            Some(pid) => format!("kdamond {} ({}, pid {pid})", k.index, k.state),
            None => format!("kdamond {} ({})", k.index, k.state),
        })
        .collect();
    Error::new(
        Kind::Exists,
        format!(
            "DAMON is in use by someone else: {} under {}/kdamonds, not set up by etmemd; \
             DAMON's sysfs cannot add a kdamond while one exists, and etmemd never \
             reconfigures another user's (stop that user's DAMON session first)",
            list.join(", "),
            damon_sysfs::ADMIN
        ),
    )
}

impl Engine for Damon {
    fn wants_children(&self) -> bool {
        false
    }

    fn check_start(&self, project: &ProjectConf) -> Result<()> {
        if !matches!(project.scan, ScanConf::Region(_)) {
            return Err(Error::invalid("the damon engine needs scan_type=region"));
        }
        // Another user's kdamond first: it blocks DAMON whatever this kernel offers.
        let foreign = damon_sysfs::existing_kdamonds()?;
        if !foreign.is_empty() {
            return Err(foreign_refusal(&foreign));
        }
        let ops = damon_sysfs::offered_operations()?;
        if !ops.split_ascii_whitespace().any(|o| o == "vaddr") {
            return Err(Error::new(
                Kind::Unsupported,
                format!(
                    "this kernel's DAMON offers only {:?}, not vaddr: the damon engine \
                     needs CONFIG_DAMON_VADDR (monitoring physical memory scoped to a \
                     task's memory cgroup is not built yet)",
                    ops.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
                ),
            ));
        }
        if self.conf.action.migrates() {
            // Until 6.17 only physical-address monitoring could migrate; vaddr accepted
            // the action and did nothing (seen on 6.12: every region tried, none applied).
            let v = crate::sys::kernel_version();
            if !matches!(v, Some(v) if v >= VADDR_MIGRATE) {
                return Err(Error::new(
                    Kind::Unsupported,
                    format!(
                        "action={} with virtual-address monitoring needs Linux {}.{}+                          (DAMON vaddr migration); this kernel is {}",
                        self.conf.action.name(),
                        VADDR_MIGRATE.0,
                        VADDR_MIGRATE.1,
                        v.map_or("unknown".to_string(), |(a, b)| format!("{a}.{b}"))
                    ),
                ));
            }
        }
        if let Some(n) = self.conf.target_nid {
            if !numa::online_nodes().contains(&n) {
                return Err(Error::invalid(format!(
                    "target_nid={n} is not an online NUMA node of this machine"
                )));
            }
        }
        Ok(())
    }

    fn note(&self, _project: &ProjectConf, _task: &TaskConf) -> Option<String> {
        Some(
            "one kdamond for the whole project (vaddr); the scheme's figures are the \
             project's, shown under each task"
                .into(),
        )
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        self.run_joint_cycle(std::slice::from_ref(run))
            .pop()
            .unwrap_or(Ok(()))
    }

    fn joint(&self) -> bool {
        true
    }

    fn run_joint_cycle(&self, runs: &[TaskRun]) -> Vec<Result<()>> {
        let Some(ScanConf::Region(scan)) = runs.first().map(|r| &r.project.scan) else {
            return runs
                .iter()
                .map(|_| Err(Error::invalid("damon task outside a region project")))
                .collect();
        };
        let mut results: Vec<Result<()>> = Vec::with_capacity(runs.len());
        let mut pids = Vec::new();
        for run in runs {
            match run.resolve(false) {
                Ok(held) => {
                    pids.push(held[0].pid());
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let mut st = lock(&self.running);
        // A stop raised meanwhile (project stop, engine deleted) wins over this cycle:
        // `stopped` takes the same lock after raising it.
        if pids.is_empty() || runs.iter().all(TaskRun::should_stop) {
            // Nothing to monitor: no kdamond of ours runs meanwhile.
            *st = Running::default();
            return results;
        }
        let same = st.pids == pids && st.monitor.as_ref().is_some_and(Monitor::is_on);
        let figures = if same {
            st.monitor
                .as_mut()
                .map_or_else(|| Ok(SchemeStats::default()), Monitor::scheme_stats)
        } else {
            // Off first: DAMON's sysfs cannot add a kdamond while ours exists.
            *st = Running::default();
            let targets: Vec<(Pid, &[Range])> = pids.iter().map(|&p| (p, &[][..])).collect();
            let setup = Setup {
                attrs: attrs(scan),
                targets: &targets,
                scheme: self.scheme(),
            };
            Monitor::start_with(&setup).map(|m| {
                crate::log_info!(
                    "project {}: kdamond on for pids {:?} (action {})",
                    runs[0].project.name,
                    pids,
                    self.conf.action.name()
                );
                *st = Running {
                    monitor: Some(m),
                    pids: pids.clone(),
                };
                SchemeStats::default()
            })
        };
        let kdamond_pid = st.monitor.as_ref().and_then(Monitor::kdamond_pid);
        drop(st);
        for (run, r) in runs.iter().zip(results.iter_mut()) {
            if r.is_err() {
                continue;
            }
            match &figures {
                Ok(s) => {
                    let mut status = run.status();
                    status.backend = Some("damon(vaddr)".into());
                    status.end_cycle(CycleStats {
                        damon: Some(DamonFigures {
                            kdamond_pid,
                            action: self.conf.action.name(),
                            tried_regions: s.nr_tried,
                            tried_bytes: s.sz_tried,
                            applied_regions: s.nr_applied,
                            applied_bytes: s.sz_applied,
                            quota_exceeds: s.qt_exceeds,
                        }),
                        ..CycleStats::default()
                    });
                }
                Err(e) => *r = Err(e.clone()),
            }
        }
        results
    }

    fn stopped(&self) {
        let mut st = lock(&self.running);
        if st.monitor.is_some() {
            crate::log_info!("damon: kdamond off");
        }
        *st = Running::default();
    }
}
