//! The `[task]` group (spec §4.6, §8.4.2): which process (or, for psi, which memory
//! cgroups) an engine works on, and the engine's per-task settings. The engine's type
//! follows from the `engine` key: `slide`, `cslide`, `damon`, `memdcd` and `psi` are
//! built-in types, any other name is a thirdparty engine.

use std::fmt;

use super::engine::BUILTIN_ENGINES;
use super::keyfile::Entry;
use super::positive::{positive, Positive};
use super::project::{ProjectConf, ScanConf};
use super::section::Section;
use super::{value, Origin};
use crate::error::{Error, Object, Result};
use crate::sys::process::COMM_MAX;
use crate::types::{Family, ScanBackend, SwapBackend};

/// One task: a target process of one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskConf {
    /// Key `project`: the name of the project the task's engine belongs to.
    pub project: String,
    /// The engine's name: its type for built-ins, the `eng_name` for thirdparty.
    pub engine: String,
    /// The task's name, unique within its engine: an object name (see
    /// [`NAME_RULE`](super::NAME_RULE)).
    pub name: String,
    /// Keys `type` and `value`: the process the task works on (psi: the cgroups).
    pub target: Target,
    /// Worker threads for the task's processes, already within 1..=2*CPUs+1.
    pub max_threads: u32,
    /// slide: swap only the pages of tasks that set this (spec §6.6).
    pub swap_flag: bool,
    /// Access-tracking backend; `None` = choose automatically.
    pub scan_backend: Option<ScanBackend>,
    /// Swap-out backend; `None` = choose automatically.
    pub swap_backend: Option<SwapBackend>,
    /// The settings that depend on the engine's type.
    pub params: TaskParams,
    /// Where the `[task]` group starts.
    pub origin: Origin,
}

/// How the target process is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `type=pid`: the process with this id, above 0.
    Pid(i32),
    /// Exact `comm` of the process.
    Name(String),
    /// A psi task without `type` and `value` (upstream's README example): it works on the
    /// memory cgroups its `cg_dir` pattern matches, held here as the value shown.
    Cgroups(String),
}

impl Target {
    /// The `type` word: `pid` or `name`.
    pub fn type_word(&self) -> &'static str {
        match self {
            Target::Pid(_) => "pid",
            Target::Name(_) => "name",
            Target::Cgroups(_) => "cgroup",
        }
    }

    /// The `value` as configured.
    pub fn value(&self) -> String {
        match self {
            Target::Pid(pid) => pid.to_string(),
            Target::Name(name) | Target::Cgroups(name) => name.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.type_word(), self.value())
    }
}

/// The engine-specific settings of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskParams {
    /// A slide task's settings.
    Slide(SlideTask),
    /// A cslide task's settings.
    Cslide(CslideTask),
    /// damon tasks have no settings of their own: they only name processes.
    Damon,
    /// A psi task's settings: which cgroups, and its feedback loop's parameters.
    Psi(PsiTask),
    /// memdcd's socket: `-` for the default `@_memdcd.server`, else the name as given.
    Memdcd {
        /// Key `Sock`, 1 to 107 bytes.
        sock: String,
    },
    /// Every key of the group, once each (last value wins), raw: the plugin reads them.
    Thirdparty {
        /// (key, value) pairs in file order.
        keys: Vec<(String, String)>,
    },
}

/// slide task settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlideTask {
    /// Pages accessed at least `t` times per cycle are hot.
    pub t: u32,
    /// Do not swap while the process uses less than this (bytes).
    pub swap_threshold: Option<u64>,
    /// Keep at most this % of the process's memory in DRAM (undocumented upstream key).
    pub dram_percent: Option<u32>,
    /// Ours, `pressure_limit`: pause swapping while the memory pressure of the process's
    /// cgroup (else the system's), some avg10 in percent, is above this (0 < p <= 100).
    pub pressure_limit: Option<Positive>,
    /// Ours, `resident_floor`: never swap a process below this resident size (bytes).
    pub resident_floor: Option<u64>,
    /// Ours, `refault_hold`: pages swapped out and back in DRAM at the next cycle stay
    /// in DRAM for this many cycles (1 to 1000).
    pub refault_hold: Option<u32>,
}

/// cslide task settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CslideTask {
    /// The smaps `VmFlags` a mapping must all have to be tiered (`ht`: hugetlb); empty
    /// (no `vm_flags` key) takes every mapping. Upstream accepted only `ht`.
    pub vm_flags: Vec<String>,
    /// Scan only anonymous mappings (`anon_only=yes`); default no.
    pub anon_only: bool,
    /// Ignore the host's page-table access bits when scanning a VM (`ign_host=yes`);
    /// default no.
    pub ign_host: bool,
}

/// psi task settings (spec §8.4.2), upstream's keys and defaults; the floats are finite
/// and above 0, and `reclaim_rate_min <= reclaim_rate <= reclaim_rate_max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiTask {
    /// Key `cg_dir`: which memory cgroups, a pattern of 1 to 63 bytes relative to the
    /// memory cgroup hierarchy's root, with `*`, `?`, `[...]`, `{a,b}` per component.
    pub cg_dir: String,
    /// Key `pressure` (default 0.1): reclaim only while the cgroup's memory pressure,
    /// max(some avg10, some avg60) in percent of time stalled, is below it.
    pub pressure: Positive,
    /// Key `reclaim_rate` (default 0.05): the share of the memory above the floor asked
    /// back in a cycle, where each cgroup's rate starts.
    pub reclaim_rate: Positive,
    /// Key `reclaim_rate_min` (default 0.01): the lowest a cgroup's rate adapts down to.
    pub reclaim_rate_min: Positive,
    /// Key `reclaim_rate_max` (default 0.5): the highest a cgroup's rate adapts up to.
    pub reclaim_rate_max: Positive,
    /// Key `limit_min_ratio` (default 0.1): the floor is at least this share of the
    /// cgroup's limit (when it has one).
    pub limit_min_ratio: Positive,
    /// Key `limit_min_bytes` (default 0): bytes always left to the cgroup above what it
    /// cannot give back.
    pub limit_min_bytes: u64,
    /// Key `reclaim_max_bytes` (default 1 GiB): at most this much per cgroup and cycle.
    pub reclaim_max_bytes: u64,
}

/// The largest `T`: 3 accesses per scan (spec §6.2) times the largest `loop`.
const T_MAX: i64 = 3 * 120;

/// Reads a `[task]` group; `None` when it has errors (all reported).
pub fn read(s: &mut Section) -> Option<TaskConf> {
    let project = s.name("project");
    let engine = s.name("engine");
    // Upstream's psi README example has neither type nor value (unused by psi): accepted.
    let untargeted =
        engine.as_deref() == Some("psi") && s.peek("type").is_none() && s.peek("value").is_none();
    let (name, target) = if untargeted {
        (s.name("name"), Some(None))
    } else {
        let (name, value_entry) = name_and_value(s);
        let type_word = s.choice("type", &["pid", "name"], None);
        let target = value_entry.and_then(|e| s.convert(e, true, |raw| target(raw, type_word)));
        (name, target)
    };
    let swap_flag = s.yes_no("swap_flag", false);
    let max_threads = read_max_threads(s);
    let scan_backend = backend::<ScanBackend>(s, "scan_backend");
    let swap_backend = backend::<SwapBackend>(s, "swap_backend");
    let params = match engine.as_deref() {
        Some("slide") => read_slide(s).map(TaskParams::Slide),
        Some("cslide") => Some(TaskParams::Cslide(read_cslide(s))),
        Some("damon") => Some(TaskParams::Damon),
        Some("psi") => read_psi(s).map(TaskParams::Psi),
        Some("memdcd") => read_memdcd(s),
        Some("thirdparty") => {
            if let Some(e) = s.peek("engine") {
                s.error(e, "name the thirdparty engine by its eng_name");
            }
            None
        }
        Some(_) => Some(TaskParams::Thirdparty { keys: s.keep_all() }),
        // The engine is unknown, so are its keys: do not also call them unknown.
        None => {
            s.keep_all();
            None
        }
    };
    let target = match (untargeted, &params) {
        (true, Some(TaskParams::Psi(p))) => Target::Cgroups(p.cg_dir.clone()),
        _ => target??,
    };
    Some(TaskConf {
        project: project?,
        engine: engine?,
        name: name?,
        target,
        max_threads,
        swap_flag,
        scan_backend: scan_backend?,
        swap_backend: swap_backend?,
        params: params?,
        origin: s.origin(),
    })
}

/// The task's `name` and the entry holding its `value`.
///
/// The user guide's cslide example (and the README's combined example) says
/// `type=pid`, `name=background_cslide`, `name=23456` and has no `value=`: a typo for
/// `value=23456`. Every guide example must load as written, so a `[task]` without
/// `value` and with exactly two `name` keys takes the first as the name and the second as
/// the value, with a warning asking for `value=`. Any other repeat of `name` is the usual
/// "last one wins".
fn name_and_value<'a>(s: &mut Section<'a>) -> (Option<String>, Option<&'a Entry>) {
    if let (None, 2) = (s.peek("value"), s.count("name")) {
        let [first, second] = s.all("name")[..] else {
            return (None, None);
        };
        let name = s.convert(first, true, value::name);
        s.warn(
            second,
            &format!(
                "read as value={v}: a [task] with two name= and no value= takes the second as the value (a typo in the user guide's example); write value={v}",
                v = value::shown(&second.value)
            ),
        );
        return (name, Some(second));
    }
    let name = s.name("name");
    let value = s.entry("value");
    if value.is_none() {
        s.missing("value", VALUE_RULE);
    }
    (name, value)
}

const VALUE_RULE: &str =
    "a pid, or a process name of 1 to 15 characters from A-Z a-z 0-9 . % / _ -";

/// `value` read according to `type`; `Ok(None)` when `type` itself is bad (reported
/// there), so only the characters are checked.
fn target(raw: &str, type_word: Option<&str>) -> Result<Option<Target>, String> {
    let chars_ok = |b: u8| b.is_ascii_alphanumeric() || b".%/_-".contains(&b);
    if raw.is_empty() || raw.len() > COMM_MAX || !raw.bytes().all(chars_ok) {
        return Err(VALUE_RULE.to_string());
    }
    match type_word {
        Some("pid") => match raw.parse::<i32>() {
            Ok(pid) if pid > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(Target::Pid(pid)))
            }
            _ => Err("a process id: a decimal number above 0 (type=pid)".to_string()),
        },
        Some(_) => Ok(Some(Target::Name(raw.to_string()))),
        None => Ok(None),
    }
}

/// `max_threads`, default 1; out-of-range values are brought into 1..=2*CPUs+1 with a
/// warning, as upstream did.
fn read_max_threads(s: &mut Section) -> u32 {
    let Some(e) = s.peek("max_threads") else {
        return 1;
    };
    let Some(n) = s.int::<i64>("max_threads", false, i64::MIN, i64::MAX) else {
        return 1;
    };
    let cpus = crate::sys::online_cpus();
    let most = u32::try_from(cpus.saturating_mul(2).saturating_add(1)).unwrap_or(u32::MAX);
    if n <= 0 {
        s.warn(e, "must be at least 1; using 1");
        return 1;
    }
    match u32::try_from(n) {
        Ok(n) if n <= most => n,
        _ => {
            s.warn(
                e,
                &format!("more than 2 x {cpus} online CPUs + 1; using {most}"),
            );
            most
        }
    }
}

/// An optional backend choice of family `F`; `Some(None)` for absent or `auto`.
fn backend<F: Family>(s: &mut Section, key: &str) -> Option<Option<F>> {
    if s.peek(key).is_none() {
        return Some(None);
    }
    let word = s.choice(key, &F::words(), None)?;
    F::choose(word).ok()
}

fn read_slide(s: &mut Section) -> Option<SlideTask> {
    let t = s.int("T", true, 0, T_MAX);
    let swap_threshold = s.get("swap_threshold", None, true, swap_threshold);
    let dram_percent = s.int("dram_percent", false, 1, 100);
    let pressure_limit = s.get("pressure_limit", None, false, |raw| {
        positive(raw)
            .ok()
            .filter(|p| p.get() <= 100.0)
            .ok_or_else(|| PRESSURE_RULE.to_string())
    });
    let resident_floor = s.get("resident_floor", None, false, size);
    let refault_hold = s.int("refault_hold", false, 1, 1000);
    Some(SlideTask {
        t: t?,
        swap_threshold,
        dram_percent,
        pressure_limit,
        resident_floor,
        refault_hold,
    })
}

/// What `pressure_limit` may hold.
const PRESSURE_RULE: &str =
    "a percentage of time stalled above 0 and at most 100, such as 10 or 2.5";

/// `resident_floor`: bytes, or a number with `k`, `m` or `g` (KiB, MiB, GiB; either
/// case).
fn size(raw: &str) -> Result<u64, String> {
    let rule =
        || "a size in bytes such as 1073741824, 512m or 1g (k, m, g: KiB, MiB, GiB)".to_string();
    let (digits, unit) = match raw.as_bytes().last() {
        Some(b'k' | b'K') => (&raw[..raw.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&raw[..raw.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&raw[..raw.len() - 1], 1 << 30),
        _ => (raw, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rule());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(rule)
}

/// `swap_threshold`: `<digits>g` or `<digits>G`, 1 to 10 characters, GiB; in bytes.
fn swap_threshold(raw: &str) -> Result<u64, String> {
    let rule =
        || "a size in GiB such as 10g: digits then g or G, at most 10 characters".to_string();
    let digits = raw
        .strip_suffix(['g', 'G'])
        .filter(|d| !d.is_empty() && raw.len() <= 10 && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(rule)?;
    digits
        .parse::<u64>()
        .ok()
        .and_then(|g| g.checked_mul(1 << 30))
        .ok_or_else(rule)
}

/// The two-letter `VmFlags` tokens of `/proc/PID/smaps` (the kernel's
/// `show_smap_vma_flags`), any of which `vm_flags` may name.
pub const VM_FLAG_TOKENS: &[&str] = &[
    "rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf", "dw", "lo", "io", "sr", "rr", "dc",
    "de", "ac", "nr", "ht", "sf", "nl", "ar", "wf", "dd", "sd", "mm", "hg", "nh", "mg", "um", "uw",
    "ui", "ss", "sl", "bt", "mt", "lf", "gu",
];

/// The guide's limit on the `vm_flags` value.
const VM_FLAGS_MAX: usize = 256;

fn read_cslide(s: &mut Section) -> CslideTask {
    let rule = format!(
        "smaps VmFlags tokens separated by spaces or commas, at most {VM_FLAGS_MAX} bytes, \
         e.g. ht (hugetlb); known tokens: {}",
        VM_FLAG_TOKENS.join(" ")
    );
    let vm_flags = s
        .get("vm_flags", None, true, |raw| {
            let flags: Vec<String> = raw
                .split([' ', ','])
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            if raw.len() > VM_FLAGS_MAX || flags.is_empty() {
                return Err(rule.clone());
            }
            match flags.iter().find(|f| !VM_FLAG_TOKENS.contains(&f.as_str())) {
                Some(f) => Err(format!("{rule} ({f:?} is not one)")),
                None => Ok(flags),
            }
        })
        .unwrap_or_default();
    CslideTask {
        vm_flags,
        anon_only: s.yes_no("anon_only", false),
        ign_host: s.yes_no("ign_host", false),
    }
}

/// The longest `cg_dir`, bytes (upstream's buffer; its README says 64).
const CG_DIR_MAX: usize = 63;

fn read_psi(s: &mut Section) -> Option<PsiTask> {
    // Upstream's order (spec §8.4.2): every key is read, so every problem is reported.
    let pressure = float(s, "pressure", 0.1);
    let reclaim_rate = float(s, "reclaim_rate", 0.05);
    let reclaim_rate_max = float(s, "reclaim_rate_max", 0.5);
    let reclaim_rate_min = float(s, "reclaim_rate_min", 0.01);
    let limit_min_bytes = bytes(s, "limit_min_bytes", 0);
    let limit_min_ratio = float(s, "limit_min_ratio", 0.1);
    let reclaim_max_bytes = bytes(s, "reclaim_max_bytes", 1 << 30);
    let rule = format!(
        "a cgroup path pattern of 1 to {CG_DIR_MAX} bytes under the memory cgroup root,          such as isulad/*, with * ? [...] {{a,b}} per component and no '..'"
    );
    let cg_dir = s.get("cg_dir", Some(&rule), true, |raw| {
        let pattern = raw.trim_start_matches('/');
        if raw.is_empty() || raw.len() > CG_DIR_MAX || pattern.is_empty() {
            return Err(rule.clone());
        }
        crate::sys::glob::check(pattern).map_err(|why| format!("{rule} ({why})"))?;
        Ok(pattern.to_string())
    });
    let (rate, min, max) = (reclaim_rate?, reclaim_rate_min?, reclaim_rate_max?);
    if !rates_in_order(s, rate, min, max) {
        return None;
    }
    Some(PsiTask {
        cg_dir: cg_dir?,
        pressure: pressure?,
        reclaim_rate: rate,
        reclaim_rate_min: min,
        reclaim_rate_max: max,
        limit_min_ratio: limit_min_ratio?,
        limit_min_bytes: limit_min_bytes?,
        reclaim_max_bytes: reclaim_max_bytes?,
    })
}

/// An optional psi float: `default` when absent, `None` when invalid (reported). Read
/// raw, as `g_key_file_get_double` does (no string escapes).
fn float(s: &mut Section, key: &str, default: f64) -> Option<Positive> {
    match s.peek(key) {
        None => Positive::new(default),
        Some(_) => s.get(key, None, false, positive),
    }
}

/// An optional psi byte count: `default` when absent. Decimal digits with an optional
/// `+` (upstream's `strtoul` also wrapped `-1` to 2^64-1; refused here).
fn bytes(s: &mut Section, key: &str, default: u64) -> Option<u64> {
    if s.peek(key).is_none() {
        return Some(default);
    }
    s.get(key, None, true, |raw| {
        let digits = raw.strip_prefix('+').unwrap_or(raw);
        digits
            .parse::<u64>()
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("a number of bytes from 0 to {}, in decimal", u64::MAX))
    })
}

/// `reclaim_rate_min <= reclaim_rate <= reclaim_rate_max` (upstream did not check). A
/// problem is reported at a key the file gives (a default has no line).
fn rates_in_order(s: &mut Section, rate: Positive, min: Positive, max: Positive) -> bool {
    let (what, keys): (String, &[&str]) = if min > max {
        (
            format!("reclaim_rate_min={min} is above reclaim_rate_max={max}"),
            &["reclaim_rate_max", "reclaim_rate_min"],
        )
    } else if rate < min || rate > max {
        (
            format!(
                "reclaim_rate={rate} is outside reclaim_rate_min={min} to reclaim_rate_max={max}"
            ),
            &["reclaim_rate", "reclaim_rate_min", "reclaim_rate_max"],
        )
    } else {
        return true;
    };
    if let Some(e) = keys.iter().find_map(|k| s.peek(k)) {
        s.error(
            e,
            &format!("must keep reclaim_rate_min <= reclaim_rate <= reclaim_rate_max ({what})"),
        );
    }
    false
}

/// The longest memdcd socket name: `sun_path` is 108 bytes with the NUL.
const SOCK_MAX: usize = 107;

fn read_memdcd(s: &mut Section) -> Option<TaskParams> {
    let rule = format!("a socket name of 1 to {SOCK_MAX} bytes, or - for the default");
    let sock = s.get("Sock", Some(&rule), true, |raw| {
        if raw.is_empty() || raw.len() > SOCK_MAX || raw.contains('\0') {
            Err(rule.clone())
        } else {
            Ok(raw.to_string())
        }
    })?;
    Some(TaskParams::Memdcd { sock })
}

/// Checks that `task` fits `project` (which may come from another file): a slide task's
/// `T` must be reachable, at most 3 accesses per scan times the project's `loop`.
pub fn check_task(task: &TaskConf, project: &ProjectConf) -> Result<()> {
    let (TaskParams::Slide(slide), ScanConf::Page(page)) = (&task.params, &project.scan) else {
        return Ok(());
    };
    let most = page.loops.saturating_mul(3);
    if slide.t <= most {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}:{}: [task] T={}: must be at most 3 x loop = {most} (loop={} in project {}, {}:{})",
        task.origin.file,
        task.origin.line,
        slide.t,
        page.loops,
        project.name,
        project.origin.file,
        project.origin.line
    ))
    .about(Object::Task))
}

/// True when `engine` names a built-in engine type rather than a thirdparty `eng_name`.
pub fn is_builtin_engine(engine: &str) -> bool {
    BUILTIN_ENGINES.contains(&engine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::{parse, ConfigFile, PageScan, RegionScan, NAME_RULE};

    const SLIDE: &str =
        "[task]\nproject=test\nengine=slide\nname=background_slide\ntype=name\nvalue=mysql\nT=1\n";
    const CSLIDE: &str = "[task]\nproject=test\nengine=cslide\nname=c\ntype=pid\nvalue=23456\n";
    const MEMDCD: &str = "[task]\nproject=test\nengine=memdcd\nname=m\ntype=pid\nvalue=1\nSock=-\n";

    fn slide(c: &ConfigFile) -> SlideTask {
        match &c.tasks[0].params {
            TaskParams::Slide(s) => s.clone(),
            p => panic!("{p:?}"),
        }
    }

    fn cslide(c: &ConfigFile) -> CslideTask {
        match &c.tasks[0].params {
            TaskParams::Cslide(s) => s.clone(),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn common_defaults() {
        let c = ok(SLIDE);
        let t = &c.tasks[0];
        assert_eq!(
            (t.project.as_str(), t.engine.as_str(), t.name.as_str()),
            ("test", "slide", "background_slide")
        );
        assert_eq!(t.target, Target::Name("mysql".into()));
        assert_eq!(t.target.to_string(), "name mysql");
        assert_eq!((t.max_threads, t.swap_flag), (1, false));
        assert_eq!((t.scan_backend, t.swap_backend), (None, None));
        assert_eq!(
            slide(&c),
            SlideTask {
                t: 1,
                swap_threshold: None,
                dram_percent: None,
                pressure_limit: None,
                resident_floor: None,
                refault_hold: None
            }
        );
        assert_eq!(
            t.origin,
            Origin {
                file: F.into(),
                line: 1
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let pid = Target::Pid(23456);
        assert_eq!(
            (pid.type_word(), pid.value(), pid.to_string()),
            ("pid", "23456".to_string(), "pid 23456".to_string())
        );
    }

    #[test]
    fn identity_keys() {
        for key in ["project", "engine", "name"] {
            err_has(
                &unset(SLIDE, key),
                &format!("{F}:1: [task] {key} is missing (required: {NAME_RULE})"),
            );
            rejects(SLIDE, "task", key, "", NAME_RULE);
            rejects(SLIDE, "task", key, &"x".repeat(65), NAME_RULE);
            rejects(SLIDE, "task", key, "-n", NAME_RULE);
        }
        err_has(
            &unset(SLIDE, "type"),
            &format!("{F}:1: [task] type is missing (required: one of pid, name)"),
        );
        rejects(SLIDE, "task", "type", "PID", "one of pid, name");
        err_has(
            &unset(SLIDE, "value"),
            &format!("{F}:1: [task] value is missing (required: a pid, or a process name"),
        );
    }

    #[test]
    fn target_value() {
        let target = |c: &ConfigFile| c.tasks[0].target.clone();
        accepts(
            SLIDE,
            "value",
            "my.app_1%/-x",
            Target::Name("my.app_1%/-x".into()),
            target,
        );
        accepts(
            SLIDE,
            "value",
            &"v".repeat(15),
            Target::Name("v".repeat(15)),
            target,
        );
        for bad in ["", &"v".repeat(16), "a b", "a+b", "a:b", "é"] {
            rejects(
                SLIDE,
                "task",
                "value",
                bad,
                "a pid, or a process name of 1 to 15",
            );
        }
        accepts(CSLIDE, "value", "1", Target::Pid(1), target);
        accepts(CSLIDE, "value", "2147483647", Target::Pid(i32::MAX), target);
        for bad in ["0", "-1", "abc", "2147483648", "12a"] {
            rejects(
                CSLIDE,
                "task",
                "value",
                bad,
                "a process id: a decimal number above 0",
            );
        }
    }

    #[test]
    fn flags_threads_and_backends() {
        accepts(SLIDE, "swap_flag", "yes", true, |c| c.tasks[0].swap_flag);
        accepts(SLIDE, "swap_flag", "no", false, |c| c.tasks[0].swap_flag);
        rejects(SLIDE, "task", "swap_flag", "YES", "yes or no");
        rejects(SLIDE, "task", "swap_flag", "", "yes or no");

        let most = u32::try_from(crate::sys::online_cpus() * 2 + 1).unwrap();
        accepts(SLIDE, "max_threads", "1", 1, |c| c.tasks[0].max_threads);
        accepts(SLIDE, "max_threads", &most.to_string(), most, |c| {
            c.tasks[0].max_threads
        });
        for (v, want, warn) in [
            ("0", 1, "must be at least 1; using 1"),
            ("-5", 1, "using 1"),
            (&*(most + 1).to_string(), most, "online CPUs + 1; using"),
            ("99999999999", most, "using"),
        ] {
            let (text, line) = set(SLIDE, "max_threads", v);
            let c = ok(&text);
            assert_eq!(c.tasks[0].max_threads, want);
            assert_eq!(c.warnings.len(), 1);
            assert!(
                c.warnings[0].starts_with(&format!("{F}:{line}: [task] max_threads={v}: ")),
                "{:?}",
                c.warnings
            );
            assert!(c.warnings[0].contains(warn), "{:?}", c.warnings);
        }
        for bad in ["x", "", "0x10", "99999999999999999999"] {
            rejects(SLIDE, "task", "max_threads", bad, "an integer");
        }

        for w in ScanBackend::words() {
            let want = ScanBackend::choose(w).unwrap();
            accepts(SLIDE, "scan_backend", w, want, |c| c.tasks[0].scan_backend);
        }
        for w in SwapBackend::words() {
            let want = SwapBackend::choose(w).unwrap();
            accepts(SLIDE, "swap_backend", w, want, |c| c.tasks[0].swap_backend);
        }
        rejects(
            SLIDE,
            "task",
            "scan_backend",
            "idle",
            "one of auto, idle_pages, page_idle, damon, softdirty, smaps",
        );
        rejects(
            SLIDE,
            "task",
            "swap_backend",
            "",
            "one of auto, swap_pages, process_madvise",
        );
    }

    #[test]
    fn slide_keys() {
        int_edges(SLIDE, "task", "T", (0, 360), |c| i64::from(slide(c).t));
        err_has(
            &unset(SLIDE, "T"),
            &format!("{F}:1: [task] T is missing (required: an integer from 0 to 360)"),
        );
        // Keys are case-sensitive: t is not T.
        err_has(
            &set(&unset(SLIDE, "T"), "t", "1").0,
            &format!("{F}:1: [task] T is missing"),
        );
        let g = 1u64 << 30;
        let thr = |c: &ConfigFile| slide(c).swap_threshold;
        accepts(SLIDE, "swap_threshold", "10g", Some(10 * g), thr);
        accepts(SLIDE, "swap_threshold", "0G", Some(0), thr);
        accepts(
            SLIDE,
            "swap_threshold",
            "999999999g",
            Some(999_999_999 * g),
            thr,
        );
        for bad in [
            "g",
            "G",
            "",
            "10",
            "10m",
            "1234",
            "9999999999g",
            "+1g",
            "1 g",
            "0x1g",
        ] {
            rejects(
                SLIDE,
                "task",
                "swap_threshold",
                bad,
                "a size in GiB such as 10g",
            );
        }
        int_edges(SLIDE, "task", "dram_percent", (1, 100), |c| {
            i64::from(slide(c).dram_percent.unwrap())
        });
    }

    #[test]
    fn slide_extension_keys() {
        let plain = slide(&ok(SLIDE));
        assert_eq!(
            (
                plain.pressure_limit,
                plain.resident_floor,
                plain.refault_hold
            ),
            (None, None, None),
            "absent keys change nothing"
        );
        let p = |c: &ConfigFile| slide(c).pressure_limit.map(|p| p.get());
        accepts(SLIDE, "pressure_limit", "10", Some(10.0), p);
        accepts(SLIDE, "pressure_limit", "100", Some(100.0), p);
        accepts(SLIDE, "pressure_limit", "0.5", Some(0.5), p);
        for bad in ["0", "-1", "100.5", "nan", "inf", "ten", ""] {
            rejects(SLIDE, "task", "pressure_limit", bad, PRESSURE_RULE);
        }
        let f = |c: &ConfigFile| slide(c).resident_floor;
        accepts(SLIDE, "resident_floor", "4096", Some(4096), f);
        accepts(SLIDE, "resident_floor", "512m", Some(512 << 20), f);
        accepts(SLIDE, "resident_floor", "2G", Some(2 << 30), f);
        accepts(SLIDE, "resident_floor", "8k", Some(8 << 10), f);
        for bad in [
            "-1",
            "1.5g",
            "g",
            "1t",
            "99999999999999999999",
            "18446744073709551615g",
        ] {
            rejects(
                SLIDE,
                "task",
                "resident_floor",
                bad,
                "a size in bytes such as 1073741824, 512m or 1g",
            );
        }
        int_edges(SLIDE, "task", "refault_hold", (1, 1000), |c| {
            i64::from(slide(c).refault_hold.unwrap())
        });
    }

    #[test]
    fn cslide_keys() {
        let c = ok(CSLIDE);
        assert_eq!(
            cslide(&c),
            CslideTask {
                vm_flags: Vec::new(),
                anon_only: false,
                ign_host: false
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        accepts(
            CSLIDE,
            "vm_flags",
            "ht, ht",
            vec!["ht".to_string(), "ht".to_string()],
            |c| cslide(c).vm_flags,
        );
        accepts(
            CSLIDE,
            "vm_flags",
            "ht mr",
            vec!["ht".to_string(), "mr".to_string()],
            |c| cslide(c).vm_flags,
        );
        for bad in ["", ",", "HT", "ht,xx", &"ht ".repeat(90)] {
            rejects(CSLIDE, "task", "vm_flags", bad, "smaps VmFlags tokens");
        }
        accepts(CSLIDE, "anon_only", "yes", true, |c| cslide(c).anon_only);
        accepts(CSLIDE, "ign_host", "yes", true, |c| cslide(c).ign_host);
        rejects(CSLIDE, "task", "anon_only", "1", "yes or no");
        rejects(CSLIDE, "task", "ign_host", "true", "yes or no");
        // slide keys are not cslide keys.
        let (text, line) = set(CSLIDE, "T", "1");
        assert_eq!(
            ok(&text).warnings,
            vec![format!(
                "{F}:{line}: [task] T=1: unknown key in [task], ignored"
            )]
        );
    }

    #[test]
    fn memdcd_damon_and_thirdparty() {
        let sock = |c: &ConfigFile| c.tasks[0].params.clone();
        accepts(
            MEMDCD,
            "Sock",
            "-",
            TaskParams::Memdcd { sock: "-".into() },
            sock,
        );
        accepts(
            MEMDCD,
            "Sock",
            r"@my\ssock",
            TaskParams::Memdcd {
                sock: "@my sock".into(),
            },
            sock,
        );
        let long = "s".repeat(107);
        accepts(
            MEMDCD,
            "Sock",
            &long,
            TaskParams::Memdcd { sock: long.clone() },
            sock,
        );
        for bad in ["", &"s".repeat(108)] {
            rejects(
                MEMDCD,
                "task",
                "Sock",
                bad,
                "a socket name of 1 to 107 bytes",
            );
        }
        err_has(
            &unset(MEMDCD, "Sock"),
            &format!("{F}:1: [task] Sock is missing (required: "),
        );
        let damon = "[task]\nproject=p\nengine=damon\nname=d\ntype=name\nvalue=mysqld\n";
        assert_eq!(ok(damon).tasks[0].params, TaskParams::Damon);
        let third = "[task]\nproject=test\nengine=my_engine\nname=t\ntype=pid\nvalue=12345\ntask_private_key=2048\n";
        let c = ok(third);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        match &c.tasks[0].params {
            TaskParams::Thirdparty { keys } => {
                assert_eq!(keys.len(), 6);
                assert_eq!(
                    keys[5],
                    ("task_private_key".to_string(), "2048".to_string())
                );
            }
            p => panic!("{p:?}"),
        }
        assert!(!is_builtin_engine("my_engine") && is_builtin_engine("damon"));
        err_has(
            &set(third, "engine", "thirdparty").0,
            "name the thirdparty engine by its eng_name",
        );
    }

    #[test]
    fn guide_typo_two_names_without_value() {
        let text = "[task]\nproject=test\nengine=cslide\nname=background_cslide\ntype=pid\nname=23456\nvm_flags=ht\n";
        let c = ok(text);
        let t = &c.tasks[0];
        assert_eq!(
            (t.name.as_str(), t.target.clone()),
            ("background_cslide", Target::Pid(23456))
        );
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].starts_with(&format!("{F}:6: [task] name=23456: read as value=23456")),
            "{:?}",
            c.warnings
        );
        assert!(c.warnings[0].contains("write value=23456"));
        // The value read this way follows the value rules.
        err_has(
            &text.replace("name=23456", "name=0"),
            &format!("{F}:6: [task] name=0: must be a process id"),
        );
        // With a value, repeated names are the usual "last one wins".
        let c = ok(&format!("{SLIDE}name=second\n"));
        assert_eq!(c.tasks[0].name, "second");
        assert!(
            c.warnings[0].contains("name is given 2 times (lines 4, 8); the last one is used"),
            "{:?}",
            c.warnings
        );
    }

    const PSI: &str = "[task]\nproject=test\nengine=psi\nname=psi_task\ntype=name\nvalue=cgroup_v1\ncg_dir=isulad/*\npressure=0.1\nlimit_min_bytes=209715200\n";
    /// Upstream's README example: no type, no value.
    const PSI_README: &str = "[task]\nproject=test\nengine=psi\nname=psi_task\ncg_dir=isulad/*\n";

    fn psi(c: &ConfigFile) -> PsiTask {
        match &c.tasks[0].params {
            TaskParams::Psi(p) => p.clone(),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn psi_defaults_and_targets() {
        let c = ok(PSI_README);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let f = |v| Positive::new(v).unwrap();
        assert_eq!(
            psi(&c),
            PsiTask {
                cg_dir: "isulad/*".into(),
                pressure: f(0.1),
                reclaim_rate: f(0.05),
                reclaim_rate_min: f(0.01),
                reclaim_rate_max: f(0.5),
                limit_min_ratio: f(0.1),
                limit_min_bytes: 0,
                reclaim_max_bytes: 1 << 30,
            }
        );
        // Without type and value the task shows its cgroups.
        let t = &c.tasks[0].target;
        assert_eq!(
            (t.type_word(), t.value()),
            ("cgroup", "isulad/*".to_string())
        );
        // The shipped sample's type/value are read (and shown) but unused.
        let c = ok(PSI);
        assert_eq!(c.tasks[0].target, Target::Name("cgroup_v1".into()));
        assert_eq!(psi(&c).limit_min_bytes, 209715200);
        // One of the two without the other is the usual error.
        err_has(
            &unset(PSI, "type"),
            &format!("{F}:1: [task] type is missing"),
        );
        err_has(
            &unset(PSI, "value"),
            &format!("{F}:1: [task] value is missing"),
        );
        rejects(PSI, "task", "value", "a b", "a pid, or a process name");
        // Other engines still need type and value.
        err_has(
            &PSI_README.replace("engine=psi", "engine=damon"),
            &format!("{F}:1: [task] type is missing"),
        );
    }

    #[test]
    fn psi_floats() {
        type Get = fn(&PsiTask) -> f64;
        let keys: [(&str, Get); 5] = [
            ("pressure", |p| p.pressure.get()),
            ("reclaim_rate", |p| p.reclaim_rate.get()),
            ("reclaim_rate_min", |p| p.reclaim_rate_min.get()),
            ("reclaim_rate_max", |p| p.reclaim_rate_max.get()),
            ("limit_min_ratio", |p| p.limit_min_ratio.get()),
        ];
        // Values every key takes alone (the rates stay in order with the defaults).
        let good = |key: &str| -> &[(&str, f64)] {
            match key {
                "reclaim_rate" => &[
                    ("0.01", 0.01),
                    ("0.5", 0.5),
                    ("5e-2", 0.05),
                    ("0x1p-3", 0.125),
                ],
                "reclaim_rate_min" => &[("0.05", 0.05), ("1e-9", 1e-9), (".02", 0.02)],
                "reclaim_rate_max" => &[("0.05", 0.05), ("7", 7.0), ("+1.", 1.0)],
                _ => &[("0.1", 0.1), ("1e-3", 1e-3), ("250", 250.0), ("0x10", 16.0)],
            }
        };
        for (key, get) in keys {
            for &(v, want) in good(key) {
                accepts(PSI, key, v, want, |c| get(&psi(c)));
            }
            for bad in [
                "0", "-0.1", "-inf", "nan", "NaN", "inf", "infinity", "1e400", "1e-400", "", "1,5",
                "x", "0.1%", "0.1\\s",
            ] {
                rejects(PSI, "task", key, bad, "a finite number above 0");
            }
        }
        // The message names file, line, key, value and the range.
        let (text, line) = set(PSI, "pressure", "nan");
        err_has(
            &text,
            &format!("{F}:{line}: [task] pressure=nan: must be a finite number above 0"),
        );
    }

    #[test]
    fn psi_rates_in_order() {
        let with = |pairs: &[(&str, &str)]| {
            let mut t = PSI.to_string();
            for (k, v) in pairs {
                t.push_str(&format!("{k}={v}\n"));
            }
            t
        };
        let c = ok(&with(&[
            ("reclaim_rate", "0.2"),
            ("reclaim_rate_min", "0.2"),
            ("reclaim_rate_max", "0.2"),
        ]));
        assert_eq!(psi(&c).reclaim_rate.get(), 0.2);
        // Above the default max, below the default min: reported at reclaim_rate.
        err_has(
            &with(&[("reclaim_rate", "0.6")]),
            &format!("{F}:10: [task] reclaim_rate=0.6: must keep reclaim_rate_min <= reclaim_rate <= reclaim_rate_max (reclaim_rate=0.6 is outside reclaim_rate_min=0.01 to reclaim_rate_max=0.5)"),
        );
        err_has(
            &with(&[("reclaim_rate", "0.001")]),
            "reclaim_rate=0.001 is outside",
        );
        // A bound that leaves the default rate out is reported at the bound.
        err_has(
            &with(&[("reclaim_rate_min", "0.1")]),
            &format!("{F}:10: [task] reclaim_rate_min=0.1: must keep reclaim_rate_min <= reclaim_rate <= reclaim_rate_max (reclaim_rate=0.05 is outside"),
        );
        err_has(
            &with(&[("reclaim_rate_max", "0.02")]),
            &format!("{F}:10: [task] reclaim_rate_max=0.02: must keep"),
        );
        // min above max is named as such, at max.
        err_has(
            &with(&[("reclaim_rate_min", "0.3"), ("reclaim_rate_max", "0.2"), ("reclaim_rate", "0.25")]),
            &format!("{F}:11: [task] reclaim_rate_max=0.2: must keep reclaim_rate_min <= reclaim_rate <= reclaim_rate_max (reclaim_rate_min=0.3 is above reclaim_rate_max=0.2)"),
        );
    }

    #[test]
    fn psi_bytes_and_cg_dir() {
        for key in ["limit_min_bytes", "reclaim_max_bytes"] {
            let get = |c: &ConfigFile| {
                let p = psi(c);
                if key == "limit_min_bytes" {
                    p.limit_min_bytes
                } else {
                    p.reclaim_max_bytes
                }
            };
            accepts(PSI, key, "0", 0, get);
            accepts(PSI, key, "+4096", 4096, get);
            accepts(PSI, key, "18446744073709551615", u64::MAX, get);
            for bad in [
                "-1",
                "18446744073709551616",
                "0x10",
                "200M",
                "1e9",
                "",
                "x",
                "1\\s",
            ] {
                rejects(
                    PSI,
                    "task",
                    key,
                    bad,
                    "a number of bytes from 0 to 18446744073709551615",
                );
            }
        }
        let cg = |c: &ConfigFile| psi(c).cg_dir;
        accepts(PSI, "cg_dir", "isulad", "isulad".into(), cg);
        accepts(
            PSI,
            "cg_dir",
            "/a/{b,c}/d[0-9]?",
            "a/{b,c}/d[0-9]?".into(),
            cg,
        );
        accepts(PSI, "cg_dir", r"a\sb", "a b".into(), cg);
        accepts(PSI, "cg_dir", &"c".repeat(63), "c".repeat(63), cg);
        let rule = "a cgroup path pattern of 1 to 63 bytes";
        for bad in [
            "",
            "/",
            &"c".repeat(64),
            "a/../b",
            "..",
            "a[b",
            "{a,b",
            "a}",
        ] {
            rejects(PSI, "task", "cg_dir", bad, rule);
        }
        let (text, line) = set(PSI, "cg_dir", "a/../b");
        err_has(
            &text,
            &format!("{F}:{line}: [task] cg_dir=a/../b: must be {rule}"),
        );
        err_has(&text, "(a '..' component)");
        err_has(
            &unset(PSI, "cg_dir"),
            &format!("{F}:1: [task] cg_dir is missing (required: {rule}"),
        );
        // Slide keys are not psi keys.
        let (text, line) = set(PSI, "T", "1");
        assert_eq!(
            ok(&text).warnings,
            vec![format!(
                "{F}:{line}: [task] T=1: unknown key in [task], ignored"
            )]
        );
        // Every bad key is reported at once.
        let msg = err(&format!(
            "{PSI}pressure=0\nreclaim_rate=nan\nreclaim_max_bytes=-1\n"
        ));
        assert_eq!(msg.lines().count(), 3, "{msg}");
    }

    fn project(loops: u32) -> ProjectConf {
        ProjectConf {
            name: "test".into(),
            scan: ScanConf::Page(PageScan {
                loops,
                interval: 1,
                sleep: 1,
            }),
            sysmem_threshold: None,
            swapcache_wmark: None,
            origin: Origin {
                file: "/p.conf".into(),
                line: 2,
            },
        }
    }

    #[test]
    fn t_fits_loop() {
        let task = &parse(&set(SLIDE, "T", "6").0, F).unwrap().tasks[0];
        assert!(check_task(task, &project(2)).is_ok());
        let e = check_task(task, &project(1)).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Invalid);
        assert_eq!(e.msg, format!("{F}:1: [task] T=6: must be at most 3 x loop = 3 (loop=1 in project test, /p.conf:2)"));
        let region = ProjectConf {
            scan: ScanConf::Region(RegionScan {
                sample_interval: 1,
                aggr_interval: 1,
                update_interval: 1,
                min_nr_regions: 3,
                max_nr_regions: 4,
            }),
            ..project(1)
        };
        assert!(check_task(task, &region).is_ok());
        assert!(check_task(&ok(CSLIDE).tasks[0], &project(1)).is_ok());
    }
}
