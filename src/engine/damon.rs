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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::targets;
use super::task_run::TaskRun;
use super::task_status::{CycleStats, DamonFigures};
use super::Engine;
use crate::config::damon_tuning::goal_prefix;
use crate::config::{DamonConf, DamonOps, ProjectConf, RegionScan, ScanConf, TaskConf};
use crate::error::{lock, Error, Kind, Result};
use crate::sys::damon_sysfs::{self, Attrs, Monitor, Scheme, SchemeStats, Setup, Target};
use crate::sys::{cgroup, iomem, numa};
use crate::types::Pid;

/// The first kernel whose DAMON vaddr operations apply `migrate_hot`/`migrate_cold`.
const VADDR_MIGRATE: (u32, u32) = (6, 17);

/// The damon engine of one project.
pub struct Damon {
    conf: DamonConf,
    /// The address space monitored, decided at project start.
    mode: Mutex<Option<Mode>>,
    /// Whether this kernel's DAMON has `target` filters, learned at project start:
    /// then each target's regions are counted (see [`Setup::count_targets`]).
    count_targets: AtomicBool,
    running: Mutex<Running>,
}

/// What the kdamond monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each task's process's virtual address space, one target each.
    Vaddr,
    /// Physical memory, the scheme limited to the tasks' memory cgroups.
    Paddr,
}

impl Mode {
    fn ops(self) -> &'static str {
        match self {
            Mode::Vaddr => "vaddr",
            Mode::Paddr => "paddr",
        }
    }
}

/// The project's kdamond, while it runs, and what it was set up for: the processes
/// (vaddr) or their memory cgroups (paddr).
#[derive(Default)]
struct Running {
    monitor: Option<Monitor>,
    watched: Vec<String>,
    /// The scheme's `sz_applied` at the last cycle: the kernel counts from the kdamond's
    /// start, the metrics count what each cycle moved.
    applied: u64,
}

impl Damon {
    /// The engine for `conf`.
    pub fn new(conf: DamonConf) -> Damon {
        Damon {
            conf,
            mode: Mutex::new(None),
            count_targets: AtomicBool::new(false),
            running: Mutex::new(Running::default()),
        }
    }

    fn scheme<'a>(&'a self, memcgs: &'a [String]) -> Scheme<'a> {
        let c = &self.conf;
        Scheme {
            action: c.action.name(),
            size: (c.min_size, c.max_size),
            accesses: (c.min_acc.into(), c.max_acc.into()),
            age: (c.min_age.into(), c.max_age.into()),
            target_nid: c.target_nid,
            memcgs,
            tuning: Some(&c.tuning),
        }
    }

    /// The mode `operations=` asks for, where this kernel (offering `ops`) can run the
    /// engine's action that way.
    fn decide(&self, offered_ops: &damon_sysfs::Offers) -> Result<Mode> {
        let offers = |o: &str| offered_ops.offers(o);
        let ops = &offered_ops.operations;
        let v = crate::sys::kernel_version();
        // Until 6.17 only physical-address monitoring migrates: vaddr accepted the
        // action and did nothing (seen on 6.12: every region tried, none applied).
        let new_enough = matches!(v, Some(v) if v >= VADDR_MIGRATE);
        let vaddr_migrates = !self.conf.action.migrates() || new_enough;
        // Page filters (anon, young, memcg) are applied per folio by the physical-address
        // operations; vaddr's madvise-based actions ignore them (seen on 6.12: pageout
        // took anonymous pages under filter_anon=exclude); its migrations apply them
        // from 6.17.
        let filters = &self.conf.tuning.filters;
        let vaddr_filters = filters.is_empty() || (self.conf.action.migrates() && new_enough);
        let vaddr_can = vaddr_migrates && vaddr_filters;
        let offered = ops.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
        let no_vaddr = || {
            Error::new(
                Kind::Unsupported,
                format!(
                    "operations=vaddr: this kernel's DAMON offers {offered:?}, not vaddr \
                     (CONFIG_DAMON_VADDR)"
                ),
            )
        };
        let no_vaddr_migration = || {
            Error::new(
                Kind::Unsupported,
                format!(
                    "action={} with virtual-address monitoring needs Linux {}.{}+ (DAMON \
                     vaddr migration); this kernel is {} (operations=paddr migrates here)",
                    self.conf.action.name(),
                    VADDR_MIGRATE.0,
                    VADDR_MIGRATE.1,
                    v.map_or("unknown".to_string(), |(a, b)| format!("{a}.{b}"))
                ),
            )
        };
        let no_vaddr_filters = || {
            Error::new(
                Kind::Unsupported,
                format!(
                    "filter_{}: DAMON applies page filters only when it monitors physical \
                     memory (operations=paddr; for migrations also vaddr from Linux {}.{}), \
                     not with operations=vaddr and action={}",
                    filters.first().map_or("anon", |f| f.kind),
                    VADDR_MIGRATE.0,
                    VADDR_MIGRATE.1,
                    self.conf.action.name()
                ),
            )
        };
        let no_vaddr_for = || {
            if vaddr_migrates {
                no_vaddr_filters()
            } else {
                no_vaddr_migration()
            }
        };
        let no_paddr = || {
            Error::new(
                Kind::Unsupported,
                format!(
                    "operations=paddr: this kernel's DAMON offers {offered:?}, not paddr \
                     (CONFIG_DAMON_PADDR)"
                ),
            )
        };
        match self.conf.operations {
            DamonOps::Vaddr if !offers("vaddr") => Err(no_vaddr()),
            DamonOps::Vaddr if !vaddr_can => Err(no_vaddr_for()),
            DamonOps::Vaddr => Ok(Mode::Vaddr),
            DamonOps::Paddr if !offers("paddr") => Err(no_paddr()),
            DamonOps::Paddr => Ok(Mode::Paddr),
            DamonOps::Auto if offers("vaddr") && vaddr_can => Ok(Mode::Vaddr),
            DamonOps::Auto if offers("paddr") => Ok(Mode::Paddr),
            DamonOps::Auto if offers("vaddr") => Err(no_vaddr_for()),
            DamonOps::Auto => Err(Error::new(
                Kind::Unsupported,
                format!("this kernel's DAMON offers {offered:?}: neither vaddr nor paddr"),
            )),
        }
    }
    /// Every tuning key given must be one this kernel's DAMON can honour: the error names
    /// the key and the kernel feature it needs.
    fn check_tuning(&self, offers: &damon_sysfs::Offers) -> Result<()> {
        let t = &self.conf.tuning;
        let need = |given: bool, part: &str, key: &str, feature: &str| -> Result<()> {
            if given && !offers.has(part) {
                return Err(Error::new(
                    Kind::Unsupported,
                    format!("{key}: this kernel's DAMON has no {feature}"),
                ));
            }
            Ok(())
        };
        let quotas = t.quota_ms.is_some() || t.quota_bytes.is_some() || t.quota_reset_ms.is_some();
        need(
            quotas,
            "quotas",
            "quota_ms/quota_bytes/quota_reset_interval_ms",
            "scheme quotas (Linux 5.16+)",
        )?;
        for (i, g) in t.quota_goals.iter().enumerate() {
            let p = goal_prefix(i + 1);
            need(
                true,
                "quota_goals",
                &format!("{p}_metric"),
                "quota goals (Linux 6.8+)",
            )?;
            if offers.refused_goal_metrics.iter().any(|m| m == g.metric) {
                return Err(Error::new(
                    Kind::Unsupported,
                    format!(
                        "{p}_metric={}: this kernel's DAMON has no such goal metric \
                         (some_mem_psi_us: Linux 6.9+; node_mem_used_bp, node_mem_free_bp: 6.16+)",
                        g.metric
                    ),
                ));
            }
            need(
                g.nid.is_some(),
                "quota_goal_nid",
                &format!("{p}_nid"),
                "per-node quota goals (Linux 6.16+)",
            )?;
        }
        need(
            t.wmarks.is_some(),
            "watermarks",
            "wmarks_metric",
            "scheme watermarks (Linux 5.16+)",
        )?;
        need(
            !t.filters.is_empty(),
            "filters",
            "filter_anon/filter_young/filter_memcg",
            "scheme filters (Linux 6.3+)",
        )?;
        need(
            t.filters.iter().any(|f| f.kind == "young"),
            "filter_young",
            "filter_young",
            "young-page filters (Linux 6.10+)",
        )?;
        need(
            t.intervals_goal.is_some(),
            "intervals_goal",
            "intervals_goal_access_bp",
            "automatic interval tuning (Linux 6.15+)",
        )?;
        need(
            self.conf.target_nid.is_some(),
            "target_nid",
            "target_nid",
            "migration target nodes (Linux 6.11+)",
        )?;
        Ok(())
    }
}

/// The memory cgroup of `pid`, refused when it is the root cgroup (which holds all
/// memory: a scheme limited to it is not limited at all).
fn own_memcg(pid: Pid) -> Result<String> {
    let path = cgroup::memcg_of(pid)?;
    if path == "/" {
        return Err(Error::invalid(format!(
            "process {pid} is in the root memory cgroup: physical-address monitoring \
             (operations=paddr) limits the scheme to each task's memory cgroup, and the \
             root one holds all memory; move the process into a cgroup of its own (for \
             example systemd-run --scope, or write its pid to a new cgroup's cgroup.procs), \
             or use operations=vaddr where the kernel has it"
        )));
    }
    Ok(path)
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
        let t = &self.conf.tuning;
        let metrics: Vec<&str> = t.quota_goals.iter().map(|g| g.metric).collect();
        let offers = damon_sysfs::probe(&metrics)?;
        let mode = self.decide(&offers)?;
        self.check_tuning(&offers)?;
        if let Some(n) = self.conf.target_nid {
            if !numa::online_nodes().contains(&n) {
                return Err(Error::invalid(format!(
                    "target_nid={n} is not an online NUMA node of this machine"
                )));
            }
        }
        if mode == Mode::Paddr {
            iomem::system_ram()?;
        }
        *lock(&self.mode) = Some(mode);
        self.count_targets
            .store(offers.has("filter_target"), Ordering::Relaxed);
        Ok(())
    }

    fn start_tasks(&self, project: &ProjectConf, tasks: &[&TaskConf]) -> Result<()> {
        let ScanConf::Region(scan) = &project.scan else {
            return Ok(());
        };
        let mode = lock(&self.mode).unwrap_or(Mode::Vaddr);
        // The processes found now; one that is missing is its task's error in the cycles,
        // as later. A process in the root cgroup (paddr) fails the start.
        let mut watch = Watch::default();
        for t in tasks {
            if let Ok(held) = targets::resolve(&t.target, false) {
                watch
                    .add(mode, held[0].pid())
                    .map_err(|e| e.context(format!("task {}", t.name)))?;
            }
        }
        if watch.pids.is_empty() {
            return Ok(());
        }
        self.set_up(&project.name, mode, scan, watch, &mut lock(&self.running))
    }

    fn note(&self, _project: &ProjectConf, _task: &TaskConf) -> Option<String> {
        let mode = match *lock(&self.mode) {
            Some(Mode::Vaddr) => "vaddr: each task's process's virtual address space",
            Some(Mode::Paddr) => {
                "paddr: physical memory, the scheme limited to the tasks' memory cgroups"
            }
            None => return None,
        };
        Some(format!(
            "one kdamond for the whole project, {mode}; the scheme's figures are the \
             project's, shown under each task"
        ))
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        super::run_alone(self, run)
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
        let mode = lock(&self.mode).unwrap_or(Mode::Vaddr);
        let mut watch = Watch::default();
        // Each task's DAMON target: its own in vaddr mode, the one physical-memory
        // target in paddr mode.
        let mut target_of = Vec::with_capacity(runs.len());
        let mut results: Vec<Result<()>> = runs
            .iter()
            .map(|run| {
                target_of.push(match mode {
                    Mode::Vaddr => watch.pids.len(),
                    Mode::Paddr => 0,
                });
                run.resolve(false)
                    .and_then(|held| watch.add(mode, held[0].pid()))
            })
            .collect();
        let backend = match mode {
            Mode::Vaddr => "damon(vaddr)".to_string(),
            Mode::Paddr => format!("damon(paddr, memcg {})", watch.memcgs().join(" ")),
        };
        let mut st = lock(&self.running);
        // A stop raised meanwhile (project stop, engine deleted) wins over this cycle:
        // `stopped` takes the same lock after raising it.
        if watch.pids.is_empty() || runs.iter().all(TaskRun::should_stop) {
            // Nothing to monitor: no kdamond of ours runs meanwhile.
            *st = Running::default();
            return results;
        }
        let same = st.watched == watch.key(mode) && st.monitor.as_ref().is_some_and(Monitor::is_on);
        let figures = match st.monitor.as_mut() {
            Some(m) if same => m.scheme_stats().and_then(|s| Ok((s, m.target_regions()?))),
            _ => self
                .set_up(&runs[0].project.name, mode, scan, watch, &mut st)
                .map(|()| (SchemeStats::default(), Vec::new())),
        };
        let kdamond_pid = st.monitor.as_ref().and_then(Monitor::kdamond_pid);
        // A migrate action's bytes applied since the last cycle went to target_nid.
        // DAMON counts them per scheme, not per process: they go on the engine's first
        // task, so a project's total is right (man page, metrics).
        let mut moved_to = match (&figures, self.conf.target_nid) {
            (Ok((s, _)), Some(node)) if self.conf.action.migrates() => {
                let moved = s.sz_applied.saturating_sub(st.applied);
                st.applied = s.sz_applied;
                (moved > 0).then_some(vec![(node, moved)])
            }
            _ => None,
        };
        drop(st);
        for ((run, r), target) in runs.iter().zip(results.iter_mut()).zip(target_of) {
            if r.is_err() {
                continue;
            }
            match &figures {
                Ok((s, regions)) => {
                    let regions = regions.get(target);
                    let mut status = run.status();
                    status.backend = Some(backend.clone());
                    status.end_cycle(CycleStats {
                        damon: Some(DamonFigures {
                            kdamond_pid,
                            action: self.conf.action.name(),
                            tried_regions: s.nr_tried,
                            tried_bytes: s.sz_tried,
                            applied_regions: s.nr_applied,
                            applied_bytes: s.sz_applied,
                            quota_exceeds: s.qt_exceeds,
                            effective_quota: s.effective_quota,
                            target_regions: regions.map(|t| t.count),
                            target_bytes: regions.map(|t| t.bytes),
                        }),
                        moved_to: moved_to.take().unwrap_or_default(),
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

impl Damon {
    /// Set the kdamond up for what `watch` holds (processes for vaddr, their memory
    /// cgroups for paddr), turn it on and keep it in `running`. Ours is off first:
    /// DAMON's sysfs cannot add a kdamond while one exists.
    fn set_up(
        &self,
        project: &str,
        mode: Mode,
        scan: &RegionScan,
        watch: Watch,
        running: &mut Running,
    ) -> Result<()> {
        *running = Running::default();
        let ram;
        let targets: Vec<Target> = match mode {
            Mode::Vaddr => watch
                .pids
                .iter()
                .map(|&p| Target {
                    pid: Some(p),
                    regions: &[],
                })
                .collect(),
            Mode::Paddr => {
                ram = iomem::system_ram()?;
                vec![Target {
                    pid: None,
                    regions: &ram,
                }]
            }
        };
        let memcgs = watch.memcgs();
        let monitor = Monitor::start_with(&Setup {
            ops: mode.ops(),
            attrs: attrs(scan),
            targets: &targets,
            scheme: self.scheme(&memcgs),
            count_targets: self.count_targets.load(Ordering::Relaxed),
        })?;
        let watched = watch.key(mode);
        crate::log_info!(
            "project {project}: kdamond on ({}) for {watched:?}, action {}",
            mode.ops(),
            self.conf.action.name()
        );
        *running = Running {
            monitor: Some(monitor),
            watched,
            applied: 0,
        };
        Ok(())
    }
}

/// What the kdamond is to watch: the tasks' processes and, in paddr mode, their memory
/// cgroups.
#[derive(Default)]
struct Watch {
    pids: Vec<Pid>,
    memcgs: Vec<String>,
}

impl Watch {
    /// Take the process `pid` of a task; in paddr mode also its memory cgroup, which
    /// must not be the root one.
    fn add(&mut self, mode: Mode, pid: Pid) -> Result<()> {
        if mode == Mode::Paddr {
            self.memcgs.push(own_memcg(pid)?);
        }
        self.pids.push(pid);
        Ok(())
    }

    /// The memory cgroups, sorted, each once.
    fn memcgs(&self) -> Vec<String> {
        let mut m = self.memcgs.clone();
        crate::sort::unstable(&mut m);
        m.dedup();
        m
    }

    /// What tells whether a running kdamond watches the same: the processes (vaddr)
    /// or their memory cgroups (paddr).
    fn key(&self, mode: Mode) -> Vec<String> {
        match mode {
            Mode::Vaddr => self.pids.iter().map(Pid::to_string).collect(),
            Mode::Paddr => self.memcgs(),
        }
    }
}
