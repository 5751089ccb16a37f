//! The cslide engine (spec §7, user guide "cslide"): NUMA tiering. Every cycle, for all
//! of the engine's tasks together, scan each task's process `loop` times, find the node
//! of every resident page (`move_pages` queries), and per `node_pair` move hot pages from
//! the slow node up to DRAM and cold pages from DRAM down to the slow node, within the
//! pair's quota and DRAM's reserve ([`policy`]). Any process on any kernel with
//! `move_pages(2)` and one of the tracking backends; upstream handled only hugetlb-backed
//! VMs on openEuler kernels.

pub mod pages_table;
pub mod policy;
pub mod roles;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use self::pages_table::{HostNode, NodePages, PairMoves, Snapshot, TaskPages};
use self::policy::{Limits, Page, Pair};
use self::roles::{NodeFacts, Roles};
use super::cold::{self, ScanSpec, Scanned, Watch};
use super::targets::Held;
use super::task_run::TaskRun;
use super::task_status::{CycleStats, Kept, Tiering};
use super::{Command, Engine};
use crate::act::migrate::{self, Migrator, Place};
use crate::config::{CslideConf, CslideTask, PageScan, ProjectConf, ScanConf, TaskConf, TaskParams};
use crate::error::{Error, Kind, Result};
use crate::sys::{node_mem, numa, smaps};
use crate::track::export::has_flags;
use crate::types::{PageSize, ScanBackend, Vma};

/// The cslide engine of one project.
pub struct Cslide {
    conf: CslideConf,
    /// The pairs' roles, decided at project start.
    roles: Mutex<Vec<Roles>>,
    /// The last cycle's figures, for the engine commands.
    snapshot: Mutex<Snapshot>,
    /// Buffers reused from cycle to cycle.
    migrator: Mutex<Migrator>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cslide {
    /// The engine for `conf`.
    pub fn new(conf: CslideConf) -> Cslide {
        Cslide {
            conf,
            roles: Mutex::new(Vec::new()),
            snapshot: Mutex::new(Snapshot::default()),
            migrator: Mutex::new(Migrator::new()),
        }
    }

    fn nodes(&self) -> Vec<u32> {
        let mut n: Vec<u32> = self.conf.node_pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        n.sort_unstable();
        n
    }

    fn limits(&self) -> Limits {
        Limits {
            quota: self.conf.node_mig_quota.saturating_mul(1 << 20),
            reserve: self.conf.node_hot_reserve.saturating_mul(1 << 20),
            hot_threshold: self.conf.hot_threshold,
        }
    }
}

/// What the machine says about `node`, for [`roles::decide`].
fn facts(node: u32, tiers: &[numa::MemoryTier]) -> NodeFacts {
    NodeFacts {
        tier: tiers.iter().find(|t| t.nodes.contains(&node)).map(|t| t.id),
        has_cpus: numa::node_cpus(node).map(|c| !c.is_empty()),
    }
}

impl Engine for Cslide {
    fn wants_children(&self) -> bool {
        false
    }

    fn check_start(&self, project: &ProjectConf) -> Result<()> {
        if !matches!(project.scan, ScanConf::Page(_)) {
            return Err(Error::invalid("the cslide engine needs scan_type=page"));
        }
        let online = numa::online_nodes();
        if let Some(n) = self.nodes().into_iter().find(|n| !online.contains(n)) {
            return Err(Error::invalid(format!(
                "node_pair names NUMA node {n}, but this machine's online nodes are {}",
                online.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            )));
        }
        if !migrate::can_move_others() {
            return Err(Error::new(
                Kind::Permission,
                "moving other processes' pages between NUMA nodes needs CAP_SYS_NICE \
                 (run etmemd as root or give it CAP_SYS_NICE)",
            ));
        }
        let tiers = numa::memory_tiers();
        let roles: Vec<Roles> = self
            .conf
            .node_pairs
            .iter()
            .map(|&p| roles::decide(p, |n| facts(n, &tiers)))
            .collect();
        for (&(a, b), r) in self.conf.node_pairs.iter().zip(&roles) {
            crate::log_info!("project {}: cslide pair {a},{b}: {r}", project.name);
        }
        *lock(&self.snapshot) = Snapshot {
            pairs: roles.iter().map(|&r| (r, PairMoves::default())).collect(),
            ..Snapshot::default()
        };
        *lock(&self.roles) = roles;
        Ok(())
    }

    fn note(&self, project: &ProjectConf, task: &TaskConf) -> Option<String> {
        let mut notes = Vec::new();
        if let TaskParams::Cslide(t) = &task.params {
            if t.ign_host && task.scan_backend != Some(ScanBackend::IdlePages) {
                notes.push(
                    "ign_host=yes has no effect here: it is a flag of openEuler's idle_pages \
                     VM scanning (scan_backend=idle_pages)"
                        .to_string(),
                );
            }
        }
        if let ScanConf::Page(p) = &project.scan {
            let most = 3 * p.loop_count;
            if self.conf.hot_threshold > most {
                notes.push(format!(
                    "hot_threshold={} is above the highest count a cycle can give (3 x loop = \
                     {most}): no page is ever hot",
                    self.conf.hot_threshold
                ));
            }
        }
        (!notes.is_empty()).then(|| notes.join("; "))
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
        let Some(first) = runs.first() else {
            return Vec::new();
        };
        let ScanConf::Page(scan) = &first.project.scan else {
            return runs
                .iter()
                .map(|_| Err(Error::invalid("cslide task outside a page project")))
                .collect();
        };
        let stop = || runs.iter().all(TaskRun::should_stop);
        // Scan every task side by side: each takes `loop` x `interval`.
        let found: Vec<Result<Found>> = std::thread::scope(|s| {
            let handles: Vec<_> = runs
                .iter()
                .map(|run| s.spawn(move || crate::error::catch_panic("the engine", || find(run, scan))))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::new(Kind::Io, "the scan thread panicked")))
                })
                .collect()
        });
        if stop() {
            return runs.iter().map(|_| Ok(())).collect();
        }
        let mut migrator = lock(&self.migrator);
        let mut outcomes: Vec<Result<()>> = Vec::new();
        let mut tasks: Vec<Located> = Vec::new();
        for (run, f) in runs.iter().zip(found) {
            let r = f.and_then(|f| locate(&mut migrator, run, f, &self.nodes()));
            match r {
                Ok(l) => {
                    outcomes.push(Ok(()));
                    tasks.push(l);
                }
                Err(e) => {
                    outcomes.push(Err(e));
                }
            }
        }
        let roles = lock(&self.roles).clone();
        let hugetlb = !tasks.is_empty() && tasks.iter().all(|t| t.hugetlb);
        let sizes: Vec<u64> = tasks
            .iter()
            .flat_map(|t| t.pages.iter().map(|p| p.size.bytes()))
            .collect();
        let host: BTreeMap<u32, (u64, u64)> = self
            .nodes()
            .into_iter()
            .map(|n| (n, node_room(n, hugetlb, &sizes)))
            .collect();
        let limits = self.limits();

        // The policy sees every task's pages in one list.
        let mut pages = Vec::new();
        let mut owner = Vec::new();
        for (ti, t) in tasks.iter().enumerate() {
            for (pi, p) in t.pages.iter().enumerate() {
                pages.push(Page {
                    bytes: p.size.bytes(),
                    count: p.count,
                    node: p.node,
                });
                owner.push((ti, pi));
            }
        }
        let snapshot_time = SystemTime::now();
        let pairs: Vec<Pair> = roles
            .iter()
            .map(|r| Pair {
                dram: r.dram,
                slow: r.slow,
                dram_free: host.get(&r.dram).map_or(0, |h| h.1),
                slow_free: host.get(&r.slow).map_or(0, |h| h.1),
            })
            .collect();
        let plans = policy::plan(&pairs, &pages, &limits);

        // Move: down first (it makes room), then up; per task, so a process that is
        // gone fails only its own task.
        let mut moves = vec![PairMoves::default(); roles.len()];
        let mut moved: Vec<(u64, u64, u64)> = vec![(0, 0, 0); tasks.len()];
        let mut failed: Vec<Option<Error>> = (0..tasks.len()).map(|_| None).collect();
        let mut kept: Vec<Vec<Kept>> = vec![Vec::new(); tasks.len()];
        for (pi, (plan, r)) in plans.iter().zip(&roles).enumerate() {
            for (list, to, up) in [(&plan.to_slow, r.slow, false), (&plan.to_dram, r.dram, true)] {
                for (ti, t) in tasks.iter().enumerate() {
                    if failed[ti].is_some() || stop() {
                        continue;
                    }
                    let mine: Vec<(u64, PageSize)> = list
                        .iter()
                        .filter(|&&i| owner[i].0 == ti)
                        .map(|&i| {
                            let p = &t.pages[owner[i].1];
                            (p.addr, p.size)
                        })
                        .collect();
                    if mine.is_empty() {
                        continue;
                    }
                    let planned: u64 = mine.iter().map(|p| p.1.bytes()).sum();
                    let moved_now = t
                        .held
                        .check()
                        .and_then(|target| migrator.move_to(target, &mine, to, &stop));
                    match moved_now {
                        Ok(rep) => {
                            let m = &mut moves[pi];
                            if up {
                                m.up_planned += planned;
                                m.up_moved += rep.moved.bytes;
                                moved[ti].0 += rep.moved.bytes;
                            } else {
                                m.down_planned += planned;
                                m.down_moved += rep.moved.bytes;
                                moved[ti].1 += rep.moved.bytes;
                            }
                            moved[ti].2 += planned.saturating_sub(rep.moved.bytes);
                            for (why, t) in rep.failures() {
                                kept[ti].push(Kept {
                                    reason: format!("not moved to node {to}: {why}"),
                                    bytes: t.bytes,
                                    ranges: t.pages,
                                });
                            }
                            if rep.moved.bytes > 0 {
                                crate::log_info!(
                                    "project {} task {}: moved {} kB to node {to} ({})",
                                    t.run_project,
                                    t.name,
                                    rep.moved.bytes / 1024,
                                    if up { "promoted" } else { "demoted" }
                                );
                            }
                        }
                        Err(e) => failed[ti] = Some(e),
                    }
                }
            }
        }

        // Figures: the snapshot for the show commands, each task's status.
        let is_dram = |n: u32| roles.iter().any(|r| r.dram == n);
        let mut host_pages: BTreeMap<u32, NodePages> = BTreeMap::new();
        let mut table = Vec::new();
        let mut it = tasks.into_iter().zip(moved).zip(failed).zip(kept);
        let mut results = Vec::new();
        for outcome in outcomes {
            let Ok(()) = outcome else {
                results.push(outcome);
                continue;
            };
            let Some((((t, (up, down, not)), fail), kept)) = it.next() else {
                results.push(Ok(()));
                continue;
            };
            let mut per_node: BTreeMap<u32, NodePages> = BTreeMap::new();
            let mut tiering = Tiering {
                moved_up: up,
                moved_down: down,
                not_moved: not,
                ..Tiering::default()
            };
            for p in &t.pages {
                let e = per_node.entry(p.node).or_insert(NodePages {
                    node: p.node,
                    ..NodePages::default()
                });
                let b = p.size.bytes();
                let hot = limits.is_hot(p.count);
                if hot {
                    e.hot += b;
                } else {
                    e.cold += b;
                }
                match (hot, is_dram(p.node)) {
                    (true, true) => tiering.hot_in_dram += b,
                    (true, false) => tiering.hot_on_slow += b,
                    (false, true) => tiering.cold_in_dram += b,
                    (false, false) => tiering.cold_on_slow += b,
                }
            }
            for (n, p) in &per_node {
                let h = host_pages.entry(*n).or_insert(NodePages {
                    node: *n,
                    ..NodePages::default()
                });
                h.hot += p.hot;
                h.cold += p.cold;
            }
            table.push(TaskPages {
                name: t.name.clone(),
                pid: t.held.pid(),
                nodes: per_node.into_values().collect(),
            });
            {
                let mut st = t.status.lock().unwrap_or_else(|p| p.into_inner());
                st.backend = Some(format!("{}+move_pages", t.backend.name()));
                st.end_cycle(CycleStats {
                    pages_scanned: t.base_pages,
                    cold_pages: 0,
                    workers: 1,
                    kept,
                    tiering: Some(tiering),
                    ..CycleStats::default()
                });
            }
            results.push(match fail {
                Some(e) => Err(e),
                None => Ok(()),
            });
        }
        *lock(&self.snapshot) = Snapshot {
            time: snapshot_time,
            host: host
                .iter()
                .map(|(&n, &(total, free))| HostNode {
                    pages: host_pages.get(&n).copied().unwrap_or(NodePages {
                        node: n,
                        ..NodePages::default()
                    }),
                    total,
                    free,
                })
                .collect(),
            tasks: table,
            pairs: roles.iter().copied().zip(moves).collect(),
            hugetlb,
        };
        results
    }

    fn command(&self, cmd: &Command) -> Result<String> {
        let snap = lock(&self.snapshot);
        match cmd.word {
            "showhostpages" => Ok(if cmd.json {
                snap.host_json()
            } else {
                snap.host_text()
            }),
            "showtaskpages" => {
                let task = cmd.task.ok_or_else(|| {
                    Error::usage("showtaskpages needs the task to show (-t TASK)")
                })?;
                let text = if cmd.json {
                    snap.task_json(task)
                } else {
                    snap.task_text(task)
                };
                text.ok_or_else(|| {
                    Error::new(
                        Kind::State,
                        format!(
                            "task {task} has no pages to show yet: its last cycle did not scan it \
                             (see etmem project show -v)"
                        ),
                    )
                })
            }
            w => Err(Error::usage(format!(
                "engine {} has no command {w:?} (cslide has showtaskpages and showhostpages)",
                cmd.engine
            ))),
        }
    }
}

/// A node's memory as the policy counts it: (total, free) bytes, from the hugetlb pools
/// of the page sizes in use when the tasks' memory is hugetlb, else from its meminfo.
fn node_room(node: u32, hugetlb: bool, sizes: &[u64]) -> (u64, u64) {
    if hugetlb {
        let pools = node_mem::hugepage_pools(node).unwrap_or_default();
        let used: Vec<_> = pools
            .iter()
            .filter(|p| sizes.contains(&p.page_bytes) || (sizes.is_empty() && p.page_bytes == PageSize::Pmd.bytes()))
            .collect();
        return (
            used.iter().map(|p| p.total * p.page_bytes).sum(),
            used.iter().map(|p| p.free * p.page_bytes).sum(),
        );
    }
    match node_mem::node_meminfo(node) {
        Ok(m) => (m.total, m.free),
        Err(e) => {
            crate::log_warn!("cslide: {e}");
            (0, 0)
        }
    }
}

/// One task's scan.
struct Found {
    held: Held,
    scanned: Scanned,
    hugetlb: bool,
}

/// One page of a task, scanned and located.
struct TaskPage {
    addr: u64,
    size: PageSize,
    count: u16,
    node: u32,
}

/// One task's pages on the engine's nodes.
struct Located {
    name: String,
    run_project: String,
    status: std::sync::Arc<Mutex<super::task_status::TaskStatus>>,
    held: Held,
    backend: ScanBackend,
    base_pages: u64,
    hugetlb: bool,
    pages: Vec<TaskPage>,
}

/// Resolve the task's process, pick its VMAs and scan them.
fn find(run: &TaskRun, scan: &PageScan) -> Result<Found> {
    let TaskParams::Cslide(params) = &run.task.params else {
        return Err(Error::invalid("cslide engine with a task of another engine"));
    };
    let held = run.resolve(false)?.swap_remove(0);
    let target = held.check()?;
    let vmas = chosen_vmas(target.pid(), params)?;
    let hugetlb = !vmas.is_empty() && vmas.iter().all(|v| v.1);
    let vmas: Vec<Vma> = vmas.into_iter().map(|v| v.0).collect();
    // Accessed-bit trackers cannot see hugetlb pages (they are not on the LRU lists and
    // read as always accessed): with hugetlb memory and no backend chosen, DAMON first.
    let backend = match run.task.scan_backend {
        None if hugetlb => Some(ScanBackend::Damon).filter(|_| crate::track::open(Some(ScanBackend::Damon), target).is_ok()),
        b => b,
    };
    let spec = ScanSpec {
        backend,
        loops: scan.loop_count,
        interval: Duration::from_secs(scan.interval.into()),
        watch: Watch::All,
    };
    let scanned = cold::scan_vmas(target, &spec, &vmas, &|| run.should_stop())?;
    Ok(Found {
        held,
        scanned,
        hugetlb,
    })
}

/// The VMAs of `pid` the task tiers, each with whether it is hugetlb: those having all of
/// `vm_flags`, anonymous ones only with `anon_only`, never the kernel's special mappings.
fn chosen_vmas(pid: crate::types::Pid, params: &CslideTask) -> Result<Vec<(Vma, bool)>> {
    let flags: Vec<&str> = params.vm_flags.iter().map(String::as_str).collect();
    Ok(smaps::read_smaps(pid)?
        .into_iter()
        .filter(|s| has_flags(s, &flags))
        .filter(|s| !params.anon_only || s.vma.is_etmem_anon())
        .filter(|s| !s.vma.is_special())
        .map(|s| {
            let huge = s.has_flag("ht");
            (s.vma, huge)
        })
        .collect())
}

/// Find the node of every page of a scan; keep those on the engine's nodes.
fn locate(migrator: &mut Migrator, run: &TaskRun, f: Found, nodes: &[u32]) -> Result<Located> {
    let target = f.held.check()?;
    let mut pages: Vec<TaskPage> = Vec::new();
    for r in f.scanned.runs() {
        let step = r.size.bytes();
        let mut a = r.range.start;
        while a < r.range.end {
            pages.push(TaskPage {
                addr: a,
                size: r.size,
                count: r.count,
                node: 0,
            });
            a += step;
        }
    }
    let addrs: Vec<u64> = pages.iter().map(|p| p.addr).collect();
    let mut places = Vec::with_capacity(addrs.len());
    migrator.locate(target, &addrs, &mut places)?;
    let mut keep = Vec::with_capacity(pages.len());
    for (mut p, place) in pages.into_iter().zip(places) {
        if let Place::Node(n) = place {
            if nodes.contains(&n) {
                p.node = n;
                keep.push(p);
            }
        }
    }
    let base_pages = f.scanned.base_pages();
    Ok(Located {
        name: run.task.name.clone(),
        run_project: run.project.name.clone(),
        status: run.status.clone(),
        held: f.held,
        backend: f.scanned.backend,
        base_pages,
        hugetlb: f.hugetlb,
        pages: keep,
    })
}
