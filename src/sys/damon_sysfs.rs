//! DAMON through sysfs (`/sys/kernel/mm/damon/admin`, Linux 5.18+): one kdamond of ours
//! that monitors processes' virtual address spaces with one scheme. The tracker uses a
//! `stat` scheme whose "tried regions" list every monitored region with its access
//! frequency; the damon engine a scheme with the user's access pattern and action. Every
//! write is checked. The monitor is turned off and the kdamond count restored on `stop`
//! and in `Drop`, so it never outlives us; kdamonds set up by others are never touched.

use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result};
use crate::types::damon_tuning::DamonTuning;
use crate::types::{Pid, Range};

/// The DAMON sysfs root.
pub const ADMIN: &str = "/sys/kernel/mm/damon/admin";

/// Monitoring intervals and region limits.
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    /// Sampling interval (µs): how often DAMON checks one page of each region.
    pub sample_us: u64,
    /// Aggregation interval (µs): the window over which samples are counted into
    /// `nr_accesses`.
    pub aggr_us: u64,
    /// Regions update interval (µs): how often DAMON re-reads the address space layout.
    pub update_us: u64,
    /// The fewest regions DAMON splits the address space into.
    pub min_regions: u64,
    /// The most regions DAMON splits the address space into.
    pub max_regions: u64,
}

/// One monitored region, as the `stat` scheme reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First address of the region.
    pub start: u64,
    /// First address past the region.
    pub end: u64,
    /// Samples (out of aggr_us/sample_us) in which the region was seen accessed during
    /// the last aggregation interval.
    pub nr_accesses: u64,
    /// Aggregation intervals since the access frequency last changed noticeably.
    pub age: u64,
}

/// One DAMOS scheme: what to do with regions of a given size, access frequency and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme<'a> {
    /// The action's sysfs word (`pageout`, `stat`, `migrate_cold`...).
    pub action: &'a str,
    /// Region size range, bytes.
    pub size: (u64, u64),
    /// `nr_accesses` range (samples with an access per aggregation interval).
    pub accesses: (u64, u64),
    /// Age range, aggregation intervals.
    pub age: (u64, u64),
    /// The node migrate actions move pages to.
    pub target_nid: Option<u32>,
    /// Memory cgroups (paths from the memory hierarchy's root) the scheme is limited to
    /// by `memcg` filters; empty: no filter.
    pub memcgs: &'a [String],
    /// Quotas, goal, watermarks, the user's filters, interval tuning; `None`: DAMON's
    /// defaults.
    pub tuning: Option<&'a DamonTuning>,
}

impl Scheme<'_> {
    /// A `stat` scheme matching every region: its tried regions are all regions.
    pub const STAT_ALL: Scheme<'static> = Scheme {
        action: "stat",
        size: (0, u64::MAX),
        accesses: (0, u32::MAX as u64),
        age: (0, u32::MAX as u64),
        target_nid: None,
        memcgs: &[],
        tuning: None,
    };
}

/// One monitoring target.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The process, for `vaddr`; `None` for `paddr`.
    pub pid: Option<Pid>,
    /// Initial regions (empty: DAMON's own split of a process's address space).
    pub regions: &'a [Range],
}

/// What a kdamond monitors and does.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// DAMON's operations set: `vaddr` or `paddr`.
    pub ops: &'a str,
    /// Intervals and region limits.
    pub attrs: Attrs,
    /// What is monitored.
    pub targets: &'a [Target<'a>],
    /// The scheme.
    pub scheme: Scheme<'a>,
    /// Also count each target's regions: one more `stat` scheme per target, limited to
    /// it by a `target` filter (Linux 6.6+), whose tried regions are that target's
    /// regions ([`Monitor::target_regions`]).
    pub count_targets: bool,
}

/// A scheme's statistics, as the kernel counts them since the kdamond started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemeStats {
    /// Regions the scheme was tried on.
    pub nr_tried: u64,
    /// Bytes of those regions.
    pub sz_tried: u64,
    /// Regions the action was applied to.
    pub nr_applied: u64,
    /// Bytes the action was applied to.
    pub sz_applied: u64,
    /// Times the quota was exceeded.
    pub qt_exceeds: u64,
    /// The quota in bytes the kernel applies now (size quota, time quota and goal
    /// combined), where the kernel reports it and a quota is set.
    pub effective_quota: Option<u64>,
}

/// A kdamond someone else set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// Its index under `kdamonds/`.
    pub index: u64,
    /// `on` or `off`.
    pub state: String,
    /// Its thread's pid while on.
    pub pid: Option<u64>,
}

/// The kdamonds that exist now (etmemd sets up one only when there is none, so any
/// that exist when it is about to are someone else's).
pub fn existing_kdamonds() -> Result<Vec<Foreign>> {
    let kdamonds = Path::new(ADMIN).join("kdamonds");
    if !kdamonds.is_dir() {
        return Err(needs(&format!("{ADMIN} does not exist")));
    }
    let n = read_u64(&kdamonds.join("nr_kdamonds"))?;
    Ok((0..n)
        .map(|i| {
            let k = kdamonds.join(i.to_string());
            let state = std::fs::read_to_string(k.join("state")).unwrap_or_default();
            Foreign {
                index: i,
                state: state.trim().to_string(),
                pid: read_u64(&k.join("pid")).ok().filter(|&p| p > 0),
            }
        })
        .collect())
}

/// What this kernel's DAMON sysfs offers, learned from a context and scheme made for
/// the reading and removed again (only they have the files that tell).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offers {
    /// The operations sets (`avail_operations`), e.g. `vaddr fvaddr paddr`.
    pub operations: String,
    /// The parts of a scheme and context that exist, by name: `quotas`, `quota_goals`,
    /// `quota_goal_nid`, `watermarks`, `filters`, `filter_allow`, `filter_young`,
    /// `intervals_goal`, `target_nid`, `effective_quota`, `filter_target`.
    pub parts: Vec<&'static str>,
    /// The goal metrics asked about that the kernel refused.
    pub refused_goal_metrics: Vec<String>,
}

impl Offers {
    /// Whether `part` exists.
    pub fn has(&self, part: &str) -> bool {
        self.parts.contains(&part)
    }

    /// Whether the operations set `ops` is offered.
    pub fn offers(&self, ops: &str) -> bool {
        lists_ops(&self.operations, ops)
    }
}

/// Probe what DAMON offers; each of `goal_metrics` is tried as a quota goal's metric.
/// Needs that no kdamond exists (it makes kdamond 0 for the reading and removes it).
pub fn probe(goal_metrics: &[&str]) -> Result<Offers> {
    let kdamonds = Path::new(ADMIN).join("kdamonds");
    if read_u64(&kdamonds.join("nr_kdamonds"))? != 0 {
        return Err(Error::invalid(format!(
            "{}: DAMON is in use, it cannot be probed",
            kdamonds.display()
        )));
    }
    write(&kdamonds.join("nr_kdamonds"), "1")?;
    let found = probe_context(&kdamonds.join("0/contexts"), goal_metrics);
    let undone = write(&kdamonds.join("nr_kdamonds"), "0");
    let found = found?;
    undone?;
    Ok(found)
}

fn probe_context(contexts: &Path, goal_metrics: &[&str]) -> Result<Offers> {
    write(&contexts.join("nr_contexts"), "1")?;
    let c = contexts.join("0");
    let ops = c.join("avail_operations");
    let operations = std::fs::read_to_string(&ops).map_err(|e| Error::file(ops.display(), e))?;
    write(&c.join("schemes/nr_schemes"), "1")?;
    let s = c.join("schemes/0");
    let mut parts = Vec::new();
    let mut check = |part: &'static str, file: PathBuf| {
        if file.exists() {
            parts.push(part);
        }
    };
    check("quotas", s.join("quotas/bytes"));
    check("effective_quota", s.join("quotas/effective_bytes"));
    check("watermarks", s.join("watermarks/metric"));
    check("target_nid", s.join("target_nid"));
    check(
        "intervals_goal",
        c.join("monitoring_attrs/intervals/intervals_goal/access_bp"),
    );
    let mut refused_goal_metrics: Vec<String> =
        goal_metrics.iter().map(|m| m.to_string()).collect();
    if s.join("quotas/goals/nr_goals").exists()
        && write(&s.join("quotas/goals/nr_goals"), "1").is_ok()
    {
        check("quota_goals", s.join("quotas/goals/0/target_metric"));
        check("quota_goal_nid", s.join("quotas/goals/0/nid"));
        let metric = s.join("quotas/goals/0/target_metric");
        refused_goal_metrics.retain(|m| write(&metric, m).is_err());
    }
    if s.join("filters/nr_filters").exists() && write(&s.join("filters/nr_filters"), "1").is_ok() {
        check("filters", s.join("filters/0/type"));
        check("filter_allow", s.join("filters/0/allow"));
        if write(&s.join("filters/0/type"), "young").is_ok() {
            parts.push("filter_young");
        }
        if write(&s.join("filters/0/type"), "target").is_ok() {
            parts.push("filter_target");
        }
    }
    Ok(Offers {
        operations,
        parts,
        refused_goal_metrics,
    })
}

/// The user's quotas, goals, watermarks (scheme `s`) and interval tuning (monitoring
/// attributes `at`).
fn write_tuning(s: &Path, at: &Path, t: &DamonTuning) -> Result<()> {
    let q = s.join("quotas");
    for (file, v) in [
        ("ms", t.quota_ms),
        ("bytes", t.quota_bytes),
        ("reset_interval_ms", t.quota_reset_ms),
    ] {
        if let Some(v) = v {
            write(&q.join(file), &v.to_string())?;
        }
    }
    if !t.quota_goals.is_empty() {
        write(&q.join("goals/nr_goals"), &t.quota_goals.len().to_string())?;
    }
    for (i, g) in t.quota_goals.iter().enumerate() {
        let d = q.join(format!("goals/{i}"));
        write(&d.join("target_metric"), g.metric)?;
        write(&d.join("target_value"), &g.target.to_string())?;
        if let Some(nid) = g.nid {
            write(&d.join("nid"), &nid.to_string())?;
        }
        if let Some(current) = g.current {
            write(&d.join("current_value"), &current.to_string())?;
        }
    }
    if let Some(w) = &t.wmarks {
        let d = s.join("watermarks");
        write(&d.join("metric"), w.metric)?;
        write(&d.join("interval_us"), &w.interval_us.to_string())?;
        // high before low: the kernel checks high >= mid >= low when the kdamond starts.
        write(&d.join("high"), &w.high.to_string())?;
        write(&d.join("mid"), &w.mid.to_string())?;
        write(&d.join("low"), &w.low.to_string())?;
    }
    if let Some(g) = &t.intervals_goal {
        let d = at.join("intervals/intervals_goal");
        write(&d.join("access_bp"), &g.access_bp.to_string())?;
        write(&d.join("aggrs"), &g.aggrs.to_string())?;
        write(&d.join("max_sample_us"), &g.max_sample_us.to_string())?;
        write(&d.join("min_sample_us"), &g.min_sample_us.to_string())?;
    }
    Ok(())
}

/// The scheme's page filters: the user's (anon, young, memcg: rejecting filters, which
/// every kernel with filters has), then the limit to `memcgs`. Kernels with `allow`
/// filters (Linux 6.14+) get one allowing filter per cgroup, last (pages matching none
/// are then rejected); older ones only reject, so one cgroup at most: reject what is not
/// in it.
fn write_filters(dir: &Path, sc: &Scheme) -> Result<()> {
    let user = sc.tuning.map_or(&[][..], |t| &t.filters[..]);
    let memcgs = sc.memcgs;
    let n = user.len() + memcgs.len();
    if n == 0 {
        return Ok(());
    }
    write(&dir.join("nr_filters"), &n.to_string())?;
    let allow = dir.join("0/allow").exists();
    for (i, f) in user.iter().enumerate() {
        let d = dir.join(i.to_string());
        write(&d.join("type"), f.kind)?;
        if let Some(p) = &f.memcg_path {
            write(&d.join("memcg_path"), p)?;
        }
        // Reject the pages that are not the kind (only) or that are (exclude).
        write(&d.join("matching"), if f.only { "N" } else { "Y" })?;
        if allow {
            write(&d.join("allow"), "N")?;
        }
    }
    let dir = &dir.to_path_buf();
    let first = user.len();
    if !allow && memcgs.len() > 1 {
        return Err(Error::new(
            Kind::Unsupported,
            format!(
                "the tasks' processes are in {} memory cgroups ({}); limiting one DAMON \
                 scheme to several needs filters with 'allow' (Linux 6.14+)",
                memcgs.len(),
                memcgs.join(", ")
            ),
        ));
    }
    for (i, path) in memcgs.iter().enumerate() {
        let f = dir.join((first + i).to_string());
        write(&f.join("type"), "memcg")?;
        write(&f.join("memcg_path"), path)?;
        if allow {
            write(&f.join("matching"), "Y")?;
            write(&f.join("allow"), "Y")?;
        } else {
            write(&f.join("matching"), "N")?;
        }
    }
    Ok(())
}

/// Remove every kdamond (`nr_kdamonds` = 0), once ours is off: the kernel refuses while
/// a kdamond still winds down, so this retries for up to a second. Best effort.
pub fn remove_kdamonds() {
    let nr = Path::new(ADMIN).join("kdamonds/nr_kdamonds");
    for _ in 0..100 {
        if write(&nr, "0").is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A running kdamond of ours.
#[derive(Debug)]
pub struct Monitor {
    kdamond: PathBuf,
    active: bool,
    /// How many per-target counting schemes follow the scheme (see
    /// [`Setup::count_targets`]).
    counters: usize,
}

/// One target's regions, as its counting scheme last saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetRegions {
    /// How many regions DAMON splits the target into now.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Scheme `s`'s access pattern: the size, access and age ranges of `sc`, each max
/// before min (the kernel checks min <= max when the kdamond starts).
fn write_access_pattern(s: &Path, sc: &Scheme) -> Result<()> {
    let p = s.join("access_pattern");
    for (dir, (min, max)) in [
        ("sz", sc.size),
        ("nr_accesses", sc.accesses),
        ("age", sc.age),
    ] {
        write(&p.join(dir).join("max"), &max.to_string())?;
        write(&p.join(dir).join("min"), &min.to_string())?;
    }
    Ok(())
}

/// The regions listed in a scheme's `tried_regions` directory `dir`, into `out`
/// (cleared first), in the directory's order.
fn read_tried_regions(dir: &Path, out: &mut Vec<Region>) -> Result<()> {
    out.clear();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::file(dir.display(), e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::file(dir.display(), e))?;
        let numbered = ent
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u64>().is_ok());
        if !numbered {
            continue;
        }
        let r = ent.path();
        out.push(Region {
            start: read_u64(&r.join("start"))?,
            end: read_u64(&r.join("end"))?,
            nr_accesses: read_u64(&r.join("nr_accesses"))?,
            age: read_u64(&r.join("age"))?,
        });
    }
    Ok(())
}

/// Scheme `s` as a `stat` scheme over every region of target `target` only (a `target`
/// filter rejecting the others).
fn write_target_counter(s: &Path, target: usize) -> Result<()> {
    let sc = Scheme::STAT_ALL;
    write(&s.join("action"), sc.action)?;
    write_access_pattern(s, &sc)?;
    let f = s.join("filters");
    write(&f.join("nr_filters"), "1")?;
    let f0 = f.join("0");
    write(&f0.join("type"), "target")
        .map_err(|e| e.context("this kernel's DAMON has no target filters (Linux 6.6+)"))?;
    // `damon_target_idx` (the kernel's name since Linux 6.6; its docs say `target_idx`).
    let idx = ["damon_target_idx", "target_idx"]
        .map(|n| f0.join(n))
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| f0.join("damon_target_idx"));
    write(&idx, &target.to_string())?;
    // Reject what is not the target's.
    write(&f0.join("matching"), "N")?;
    if f0.join("allow").exists() {
        write(&f0.join("allow"), "N")?;
    }
    Ok(())
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| Error::io(format!("write {value:?} to {}", path.display()), e))
}

fn read_u64(path: &Path) -> Result<u64> {
    let t = std::fs::read_to_string(path).map_err(|e| Error::file(path.display(), e))?;
    t.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("{}: unparsable {:?}", path.display(), t.trim())))
}

fn needs(what: &str) -> Error {
    Error::new(
        Kind::Unsupported,
        format!(
            "{what}: the damon backend needs a kernel built with CONFIG_DAMON_VADDR and \
             CONFIG_DAMON_SYSFS (Linux 5.18+)"
        ),
    )
}

/// True if an operations list (`avail_operations`) offers the operations set `ops`.
fn lists_ops(list: &str, ops: &str) -> bool {
    list.split_ascii_whitespace().any(|w| w == ops)
}

/// Can a kdamond of ours be set up (no kdamond exists)? Errors:
/// `Unsupported` naming the kernel options when DAMON sysfs or vaddr is missing; `Io` when
/// someone else's kdamonds exist (rewriting the count would destroy their setup).
pub fn check_available() -> Result<()> {
    let kdamonds = Path::new(ADMIN).join("kdamonds");
    if !kdamonds.is_dir() {
        return Err(needs(&format!("{ADMIN} does not exist")));
    }
    let prior = read_u64(&kdamonds.join("nr_kdamonds"))?;
    // Only a context lists the operations: an existing one, or (with no kdamond) one
    // made for the reading, once. A kernel that monitors physical memory alone must
    // fail here, so the caller moves on to the next backend instead of failing a scan.
    static PROBED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let ops = if prior == 0 {
        Some(match PROBED.get() {
            Some(ops) => ops.clone(),
            None => {
                let ops = probe(&[])?.operations;
                PROBED.get_or_init(|| ops).clone()
            }
        })
    } else {
        std::fs::read_to_string(kdamonds.join("0/contexts/0/avail_operations")).ok()
    };
    if let Some(list) = ops {
        if !lists_ops(&list, "vaddr") {
            return Err(needs(&format!(
                "DAMON offers only \"{}\", not vaddr",
                list.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
            )));
        }
    }
    if prior == 0 {
        return Ok(());
    }
    Err(Error::new(
        Kind::Io,
        format!(
            "{ADMIN} already has {prior} kdamond(s) set up by someone else; the damon \
             backend will not reconfigure them (write 0 to {ADMIN}/kdamonds/nr_kdamonds \
             once they are off to free DAMON)"
        ),
    ))
}

impl Monitor {
    /// Configure and start monitoring `pid`, starting from `regions` (sorted, disjoint,
    /// page aligned; empty: DAMON's own split of the address space). Refuses to touch
    /// kdamonds someone else set up.
    pub fn start(pid: Pid, attrs: Attrs, regions: &[Range]) -> Result<Monitor> {
        Monitor::start_with(&Setup {
            ops: "vaddr",
            attrs,
            targets: &[Target {
                pid: Some(pid),
                regions,
            }],
            scheme: Scheme::STAT_ALL,
            count_targets: false,
        })
    }

    /// Configure a kdamond as `setup` says and turn it on. Refuses to touch kdamonds
    /// someone else set up; on any failure nothing of ours is left behind.
    pub fn start_with(setup: &Setup) -> Result<Monitor> {
        check_available()?;
        let kdamonds = Path::new(ADMIN).join("kdamonds");
        write(&kdamonds.join("nr_kdamonds"), "1")?;
        let mut m = Monitor {
            kdamond: kdamonds.join("0"),
            active: true,
            counters: 0,
        };
        if let Err(e) = m.configure(setup) {
            m.stop();
            return Err(e);
        }
        // Best effort: without the record a SIGKILL leaves the kdamond to the admin. The
        // kdamond's thread may not have its pid yet right after "on".
        let mut pid = m.kdamond_pid();
        for _ in 0..100 {
            if pid.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            pid = m.kdamond_pid();
        }
        match pid.map(|p| super::kdamond_record::record(0, p)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                crate::log_warn!("damon: {e}: a SIGKILL would leave the kdamond running")
            }
            None => crate::log_warn!(
                "damon: the kdamond has no pid yet; a SIGKILL would leave it running"
            ),
        }
        Ok(m)
    }

    fn configure(&mut self, setup: &Setup) -> Result<()> {
        let a = setup.attrs;
        let k = &self.kdamond;
        write(&k.join("contexts/nr_contexts"), "1")?;
        let c = k.join("contexts/0");
        let ops = std::fs::read_to_string(c.join("avail_operations")).unwrap_or_default();
        if !lists_ops(&ops, setup.ops) {
            return Err(match setup.ops {
                "vaddr" => needs("DAMON does not offer vaddr operations"),
                other => Error::new(
                    Kind::Unsupported,
                    format!("this kernel's DAMON does not offer {other} operations"),
                ),
            });
        }
        write(&c.join("operations"), setup.ops)?;
        let at = c.join("monitoring_attrs");
        write(&at.join("intervals/sample_us"), &a.sample_us.to_string())?;
        write(&at.join("intervals/aggr_us"), &a.aggr_us.to_string())?;
        write(&at.join("intervals/update_us"), &a.update_us.to_string())?;
        // max before min: the kernel checks min <= max when the kdamond starts.
        write(&at.join("nr_regions/max"), &a.max_regions.to_string())?;
        write(&at.join("nr_regions/min"), &a.min_regions.to_string())?;
        let t = c.join("targets");
        write(&t.join("nr_targets"), &setup.targets.len().to_string())?;
        for (ti, target) in setup.targets.iter().enumerate() {
            let t = t.join(ti.to_string());
            if let Some(pid) = target.pid {
                write(&t.join("pid_target"), &pid.to_string())?;
            }
            let regions = target.regions;
            // Initial regions: vaddr keeps what the user set instead of its own
            // three-region split, and later address-space updates only trim and extend
            // them.
            let r = t.join("regions");
            write(&r.join("nr_regions"), &regions.len().to_string())?;
            for (i, range) in regions.iter().enumerate() {
                write(&r.join(format!("{i}/start")), &range.start.to_string())?;
                write(&r.join(format!("{i}/end")), &range.end.to_string())?;
            }
        }
        let counters = if setup.count_targets {
            setup.targets.len()
        } else {
            0
        };
        write(&c.join("schemes/nr_schemes"), &(1 + counters).to_string())?;
        for ti in 0..counters {
            write_target_counter(&c.join(format!("schemes/{}", 1 + ti)), ti)?;
        }
        self.counters = counters;
        let s = c.join("schemes/0");
        let sc = &setup.scheme;
        write(&s.join("action"), sc.action)
            .map_err(|e| e.context(format!("this kernel's DAMON has no action {:?}", sc.action)))?;
        if let Some(nid) = sc.target_nid {
            write(&s.join("target_nid"), &nid.to_string()).map_err(|e| {
                e.context("this kernel's DAMON has no target_nid (migrate actions: Linux 6.11+)")
            })?;
        }
        write_filters(&s.join("filters"), sc)?;
        if let Some(t) = sc.tuning {
            write_tuning(&s, &at, t)?;
        }
        write_access_pattern(&s, sc)?;
        // A target that exited makes this fail too; the scan loop tells the two apart by
        // the process's pidfd.
        write(&k.join("state"), "on").map_err(|e| e.context("starting the kdamond"))
    }

    /// The current regions, into `out` (reused). Waits for the kdamond's next
    /// aggregation (at most one aggregation interval). An error of kind `Gone` when the
    /// kdamond stopped because its target exited.
    pub fn regions(&mut self, out: &mut Vec<Region>) -> Result<()> {
        out.clear();
        let state = std::fs::read_to_string(self.kdamond.join("state")).unwrap_or_default();
        if state.trim() != "on" {
            return Err(Error::new(
                Kind::Gone,
                "the kdamond stopped (its target process exited)",
            ));
        }
        write(&self.kdamond.join("state"), "update_schemes_tried_regions")?;
        read_tried_regions(
            &self.kdamond.join("contexts/0/schemes/0/tried_regions"),
            out,
        )?;
        crate::sort::unstable_by_key(out, |r| r.start);
        Ok(())
    }

    /// Each target's regions, in target order, refreshed now
    /// (`update_schemes_tried_regions`, which waits for the kdamond's next aggregation);
    /// empty when the monitor was not set up to count them.
    pub fn target_regions(&mut self) -> Result<Vec<TargetRegions>> {
        if self.counters == 0 {
            return Ok(Vec::new());
        }
        write(&self.kdamond.join("state"), "update_schemes_tried_regions")?;
        let schemes = self.kdamond.join("contexts/0/schemes");
        let mut regions = Vec::new();
        (1..=self.counters)
            .map(|i| {
                read_tried_regions(&schemes.join(format!("{i}/tried_regions")), &mut regions)?;
                Ok(TargetRegions {
                    count: regions.len() as u64,
                    bytes: regions.iter().map(|r| r.end.saturating_sub(r.start)).sum(),
                })
            })
            .collect()
    }

    /// The kdamond's thread, while it runs.
    pub fn kdamond_pid(&self) -> Option<u64> {
        read_u64(&self.kdamond.join("pid")).ok().filter(|&p| p > 0)
    }

    /// Whether the kdamond runs (it stops by itself when all its targets exited).
    pub fn is_on(&self) -> bool {
        std::fs::read_to_string(self.kdamond.join("state")).is_ok_and(|s| s.trim() == "on")
    }

    /// The scheme's statistics, refreshed now (`update_schemes_stats`).
    pub fn scheme_stats(&mut self) -> Result<SchemeStats> {
        write(&self.kdamond.join("state"), "update_schemes_stats")?;
        // Linux 6.9+; older kernels have no effective quota to show.
        let effective = write(
            &self.kdamond.join("state"),
            "update_schemes_effective_quotas",
        )
        .ok()
        .and_then(|()| {
            read_u64(
                &self
                    .kdamond
                    .join("contexts/0/schemes/0/quotas/effective_bytes"),
            )
            .ok()
        })
        .filter(|&b| b > 0);
        let d = self.kdamond.join("contexts/0/schemes/0/stats");
        Ok(SchemeStats {
            nr_tried: read_u64(&d.join("nr_tried"))?,
            sz_tried: read_u64(&d.join("sz_tried"))?,
            nr_applied: read_u64(&d.join("nr_applied"))?,
            sz_applied: read_u64(&d.join("sz_applied"))?,
            qt_exceeds: read_u64(&d.join("qt_exceeds"))?,
            effective_quota: effective,
        })
    }

    /// Turn the kdamond off and restore the kdamond count. Idempotent, never fails
    /// (teardown must not be skipped because of an earlier error).
    pub fn stop(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        let _ = write(&self.kdamond.join("state"), "off");
        super::kdamond_record::forget();
        remove_kdamonds();
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaddr_detection() {
        assert!(lists_ops("vaddr\nfvaddr\npaddr\n", "vaddr"));
        assert!(!lists_ops("paddr\nfvaddr\n", "vaddr"));
    }
}
