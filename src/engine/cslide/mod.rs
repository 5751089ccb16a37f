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
use self::policy::{Extent, Limits, Pair, Take};
use self::roles::{NodeFacts, Roles};
use super::cold::{self, ScanSpec, Scanned, Watch};
use super::targets::Held;
use super::task_run::TaskRun;
use super::task_status::{CycleStats, Kept, Tiering};
use super::{Command, Engine};
use crate::act::migrate::{self, Migrator, Place};
use crate::config::{
    CslideConf, CslideTask, PageScan, ProjectConf, ScanConf, TaskConf, TaskParams,
};
use crate::error::{catch_panic, lock, Error, Kind, Result};
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
        let mut n: Vec<u32> = self
            .conf
            .node_pairs
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .collect();
        crate::sort::unstable(&mut n);
        n
    }

    /// Plan every pair's moves over all tasks' pages and carry them out: down first (it
    /// makes room), then up; per task, so a process that is gone fails only its own task.
    fn migrate(
        &self,
        migrator: &mut Migrator,
        tasks: &mut [TaskCycle],
        roles: &[Roles],
        host: &BTreeMap<u32, (u64, u64)>,
        limits: &Limits,
    ) -> Vec<PairMoves> {
        // The policy sees every task's extents in one list; `owner` maps them back.
        let mut extents = Vec::new();
        let mut owner = Vec::new();
        for (ti, t) in tasks.iter().enumerate() {
            for (ei, e) in t.extents.iter().enumerate() {
                extents.push(Extent {
                    page_bytes: e.size.bytes(),
                    pages: e.pages,
                    count: e.count,
                    node: e.node,
                });
                owner.push((ti, ei));
            }
        }
        let free = |n: u32| host.get(&n).map_or(0, |h| h.1);
        let pairs: Vec<Pair> = roles
            .iter()
            .map(|r| Pair {
                dram: r.dram,
                slow: r.slow,
                dram_free: free(r.dram),
                slow_free: free(r.slow),
            })
            .collect();
        let plans = policy::plan(&pairs, &extents, limits);
        let mut moves = vec![PairMoves::default(); roles.len()];
        for ((plan, r), m) in plans.iter().zip(roles).zip(&mut moves) {
            for (list, to, up) in [
                (&plan.to_slow, r.slow, false),
                (&plan.to_dram, r.dram, true),
            ] {
                for (ti, t) in tasks.iter_mut().enumerate() {
                    let mine: Vec<(u64, PageSize)> = list
                        .iter()
                        .filter(|take| owner[take.extent].0 == ti)
                        .flat_map(|take| t.extents[owner[take.extent].1].pages(take))
                        .collect();
                    let planned: u64 = mine.iter().map(|p| p.1.bytes()).sum();
                    let moved = t.move_to(migrator, &mine, to, up);
                    let (p, d) = if up {
                        (&mut m.up_planned, &mut m.up_moved)
                    } else {
                        (&mut m.down_planned, &mut m.down_moved)
                    };
                    *p += planned;
                    *d += moved;
                }
            }
        }
        moves
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
                online
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
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
        // The roles, once a start decided them.
        let mut notes: Vec<String> = self
            .conf
            .node_pairs
            .iter()
            .zip(lock(&self.roles).iter())
            .map(|(&(a, b), r)| format!("pair {a},{b}: {r}"))
            .collect();
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
            let most = 3 * p.loops;
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
        super::run_alone(self, run)
    }

    fn joint(&self) -> bool {
        true
    }

    fn run_joint_cycle(&self, runs: &[TaskRun]) -> Vec<Result<()>> {
        let Some(ScanConf::Page(scan)) = runs.first().map(|r| &r.project.scan) else {
            return runs
                .iter()
                .map(|_| Err(Error::invalid("cslide task outside a page project")))
                .collect();
        };
        let nodes = self.nodes();
        // Scan every task side by side: each takes `loop` x `interval`.
        let found: Vec<Result<Found>> = std::thread::scope(|s| {
            let handles: Vec<_> = runs
                .iter()
                .map(|run| s.spawn(move || catch_panic("the engine", || find(run, scan))))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::new(Kind::Io, "the scan thread panicked")))
                })
                .collect()
        });
        let mut migrator = lock(&self.migrator);
        let mut results: Vec<Result<()>> = Vec::with_capacity(runs.len());
        let mut tasks: Vec<TaskCycle> = Vec::new();
        for (run, f) in runs.iter().zip(found) {
            match f.and_then(|f| locate(&mut migrator, run, f, &nodes)) {
                Ok(t) => {
                    results.push(Ok(()));
                    tasks.push(t);
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if runs.iter().all(TaskRun::should_stop) {
            return results;
        }
        let roles = lock(&self.roles).clone();
        let hugetlb = !tasks.is_empty() && tasks.iter().all(|t| t.hugetlb);
        let sizes: Vec<u64> = tasks
            .iter()
            .flat_map(|t| t.extents.iter().map(|e| e.size.bytes()))
            .collect::<std::collections::BTreeSet<u64>>()
            .into_iter()
            .collect();
        let host: BTreeMap<u32, (u64, u64)> = nodes
            .iter()
            .map(|&n| (n, node_room(n, hugetlb, &sizes)))
            .collect();
        let time = SystemTime::now();
        let limits = self.limits();
        let moves = self.migrate(&mut migrator, &mut tasks, &roles, &host, &limits);

        // Figures: each task's status, and the snapshot for the show commands.
        let mut host_pages: BTreeMap<u32, NodePages> = BTreeMap::new();
        let mut table = Vec::new();
        let mut done = tasks.into_iter();
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            let Some(t) = done.next() else { break };
            let per_node = t.per_node(&limits);
            for p in &per_node {
                let h = host_pages.entry(p.node).or_insert(NodePages {
                    node: p.node,
                    ..NodePages::default()
                });
                h.hot += p.hot;
                h.cold += p.cold;
            }
            let (name, pid) = (t.run.task.name.clone(), t.held.pid());
            *r = t.finish(&per_node, &roles);
            table.push(TaskPages {
                name,
                pid,
                nodes: per_node,
            });
        }
        *lock(&self.snapshot) = Snapshot {
            time,
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
                // Upstream answers "invalid parameters" when the engine has nothing to
                // show for the task.
                text.ok_or_else(|| {
                    Error::new(
                        Kind::Usage,
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
            .filter(|p| {
                sizes.contains(&p.page_bytes)
                    || (sizes.is_empty() && p.page_bytes == PageSize::Pmd.bytes())
            })
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

/// Adjacent pages of a task with one size and count, on one node.
struct TaskExtent {
    addr: u64,
    size: PageSize,
    pages: u64,
    count: u16,
    node: u32,
}

impl TaskExtent {
    fn bytes(&self) -> u64 {
        self.size.bytes().saturating_mul(self.pages)
    }

    /// The pages `take` names: the extent's first ones.
    fn pages(&self, take: &Take) -> impl Iterator<Item = (u64, PageSize)> + '_ {
        let step = self.size.bytes();
        (0..take.pages.min(self.pages)).map(move |k| (self.addr + k * step, self.size))
    }
}

/// One task's share of a cycle: its pages on the engine's nodes, and what moving them
/// did.
struct TaskCycle<'a> {
    run: &'a TaskRun,
    held: Held,
    backend: ScanBackend,
    base_pages: u64,
    hugetlb: bool,
    extents: Vec<TaskExtent>,
    moved_up: u64,
    moved_down: u64,
    /// Bytes moved, by destination node.
    moved_to: BTreeMap<u32, u64>,
    not_moved: u64,
    kept: Vec<Kept>,
    failed: Option<Error>,
}

impl TaskCycle<'_> {
    /// Move `pages` of this task to `node`; the bytes that got there. A failure ends the
    /// task's moves for this cycle and becomes its error.
    fn move_to(
        &mut self,
        migrator: &mut Migrator,
        pages: &[(u64, PageSize)],
        node: u32,
        up: bool,
    ) -> u64 {
        if pages.is_empty() || self.failed.is_some() || self.run.should_stop() {
            return 0;
        }
        let planned: u64 = pages.iter().map(|p| p.1.bytes()).sum();
        let stop = || self.run.should_stop();
        let report = self
            .held
            .check()
            .and_then(|target| migrator.move_to(target, pages, node, &stop));
        let rep = match report {
            Ok(r) => r,
            Err(e) => {
                self.failed = Some(e);
                return 0;
            }
        };
        let moved = rep.moved.bytes;
        if moved > 0 {
            *self.moved_to.entry(node).or_default() += moved;
        }
        if up {
            self.moved_up += moved;
        } else {
            self.moved_down += moved;
        }
        self.not_moved += planned.saturating_sub(moved);
        for (why, t) in rep.failures() {
            self.kept.push(Kept {
                reason: format!("not moved to node {node}: {why}"),
                bytes: t.bytes,
                ranges: t.pages,
            });
        }
        if moved > 0 {
            crate::log_info!(
                "project {} task {}: {} {} kB to node {node}",
                self.run.project.name,
                self.run.task.name,
                if up { "promoted" } else { "demoted" },
                moved / 1024
            );
        }
        moved
    }

    /// The task's hot and cold bytes per node, as scanned (before this cycle's moves).
    fn per_node(&self, limits: &Limits) -> Vec<NodePages> {
        let mut per: BTreeMap<u32, NodePages> = BTreeMap::new();
        for x in &self.extents {
            let e = per.entry(x.node).or_insert(NodePages {
                node: x.node,
                ..NodePages::default()
            });
            if limits.is_hot(x.count) {
                e.hot += x.bytes();
            } else {
                e.cold += x.bytes();
            }
        }
        per.into_values().collect()
    }

    /// Record the cycle in the task's status, from its hot and cold bytes per node
    /// ([`TaskCycle::per_node`]); the task's outcome.
    fn finish(self, per_node: &[NodePages], roles: &[Roles]) -> Result<()> {
        let mut tiering = Tiering {
            moved_up: self.moved_up,
            moved_down: self.moved_down,
            not_moved: self.not_moved,
            ..Tiering::default()
        };
        for p in per_node {
            if roles.iter().any(|r| r.dram == p.node) {
                tiering.hot_in_dram += p.hot;
                tiering.cold_in_dram += p.cold;
            } else {
                tiering.hot_on_slow += p.hot;
                tiering.cold_on_slow += p.cold;
            }
        }
        let cold_bytes: u64 = per_node.iter().map(|p| p.cold).sum();
        let mut st = self.run.status();
        st.backend = Some(format!("{}+move_pages", self.backend.name()));
        st.end_cycle(CycleStats {
            pages_scanned: self.base_pages,
            cold_pages: cold_bytes / PageSize::Base.bytes(),
            workers: 1,
            kept: self.kept,
            tiering: Some(tiering),
            moved_to: self.moved_to.into_iter().collect(),
            ..CycleStats::default()
        });
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Resolve the task's process, pick its VMAs and scan them.
fn find(run: &TaskRun, scan: &PageScan) -> Result<Found> {
    let TaskParams::Cslide(params) = &run.task.params else {
        return Err(Error::invalid(
            "cslide engine with a task of another engine",
        ));
    };
    let held = run.resolve(false)?.swap_remove(0);
    let target = held.check()?;
    let vmas = chosen_vmas(target.pid(), params)?;
    let hugetlb = !vmas.is_empty() && vmas.iter().all(|v| v.1);
    let vmas: Vec<Vma> = vmas.into_iter().map(|v| v.0).collect();
    let spec = |backend| ScanSpec {
        backend,
        loops: scan.loops,
        interval: Duration::from_secs(scan.interval.into()),
        watch: Watch::All,
    };
    let stop = || run.should_stop();
    let scanned = match run.task.scan_backend {
        // Accessed-bit trackers cannot see hugetlb pages (they are not on the LRU lists
        // and read as always accessed): with hugetlb memory and no backend chosen,
        // DAMON, and only where it cannot run the usual order.
        None if hugetlb => {
            match cold::scan_vmas(target, &spec(Some(ScanBackend::Damon)), &vmas, &stop) {
                Err(e) if e.kind != Kind::Gone => {
                    cold::scan_vmas(target, &spec(None), &vmas, &stop)
                }
                r => r,
            }
        }
        b => cold::scan_vmas(target, &spec(b), &vmas, &stop),
    }?;
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

/// Pages gathered before they are located: one actuator batch.
const LOCATE_BATCH: usize = migrate::BATCH;

/// Find the node of every page of a scan, in batches across its runs; keep those on the
/// engine's nodes, merged into extents.
fn locate<'a>(
    migrator: &mut Migrator,
    run: &'a TaskRun,
    f: Found,
    nodes: &[u32],
) -> Result<TaskCycle<'a>> {
    let target = f.held.check()?;
    let mut extents: Vec<TaskExtent> = Vec::new();
    let mut batch: Vec<(u64, PageSize, u16)> = Vec::with_capacity(LOCATE_BATCH);
    let mut addrs: Vec<u64> = Vec::with_capacity(LOCATE_BATCH);
    let mut places = Vec::with_capacity(LOCATE_BATCH);
    let mut flush = |batch: &mut Vec<(u64, PageSize, u16)>| -> Result<()> {
        addrs.clear();
        addrs.extend(batch.iter().map(|b| b.0));
        migrator.locate(target, &addrs, &mut places)?;
        for (&(addr, size, count), place) in batch.iter().zip(&places) {
            let Place::Node(node) = *place else { continue };
            if !nodes.contains(&node) {
                continue;
            }
            match extents.last_mut() {
                Some(e)
                    if (e.node, e.size, e.count) == (node, size, count)
                        && e.addr + e.bytes() == addr =>
                {
                    e.pages += 1
                }
                _ => extents.push(TaskExtent {
                    addr,
                    size,
                    pages: 1,
                    count,
                    node,
                }),
            }
        }
        batch.clear();
        Ok(())
    };
    for r in f.scanned.runs() {
        let step = r.size.bytes();
        let mut a = r.range.start;
        while a < r.range.end {
            batch.push((a, r.size, r.count));
            if batch.len() == LOCATE_BATCH {
                flush(&mut batch)?;
            }
            a += step;
        }
    }
    flush(&mut batch)?;
    Ok(TaskCycle {
        run,
        backend: f.scanned.backend,
        base_pages: f.scanned.base_pages(),
        held: f.held,
        hugetlb: f.hugetlb,
        extents,
        moved_up: 0,
        moved_down: 0,
        moved_to: BTreeMap::new(),
        not_moved: 0,
        kept: Vec::new(),
        failed: None,
    })
}
