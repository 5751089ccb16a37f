//! The `[task]` group (spec §4.6): which process an engine works on, and the engine's
//! per-task settings. The engine's type follows from the `engine` key: `slide`, `cslide`,
//! `damon` and `memdcd` are built-in types, any other name is a thirdparty engine.

use std::fmt;

use super::engine::BUILTIN_ENGINES;
use super::keyfile::Entry;
use super::project::{ProjectConf, ScanConf};
use super::section::Section;
use super::{value, Origin};
use crate::error::{Error, Result};
use crate::sys::process::COMM_MAX;

/// One task: a target process of one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskConf {
    pub project: String,
    /// The engine's name: its type for built-ins, the `eng_name` for thirdparty.
    pub engine: String,
    pub name: String,
    pub target: Target,
    /// Worker threads for the task's processes, already within 1..=2*CPUs+1.
    pub max_threads: u32,
    /// slide: swap only the pages of tasks that set this (spec §6.6).
    pub swap_flag: bool,
    /// Access-tracking backend; `None` = choose automatically.
    pub scan_backend: Option<String>,
    /// Swap-out backend; `None` = choose automatically.
    pub swap_backend: Option<String>,
    pub params: TaskParams,
    pub origin: Origin,
}

/// How the target process is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pid(i32),
    /// Exact `comm` of the process.
    Name(String),
}

impl Target {
    /// The `type` word: `pid` or `name`.
    pub fn type_word(&self) -> &'static str {
        match self {
            Target::Pid(_) => "pid",
            Target::Name(_) => "name",
        }
    }

    /// The `value` as configured.
    pub fn value(&self) -> String {
        match self {
            Target::Pid(pid) => pid.to_string(),
            Target::Name(name) => name.clone(),
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
    Slide(SlideTask),
    Cslide(CslideTask),
    Damon,
    /// memdcd's socket: `-` for the default `@_memdcd.server`, else the name as given.
    Memdcd {
        sock: String,
    },
    /// Every key of the group, once each (last value wins), raw: the plugin reads them.
    Thirdparty {
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
}

/// cslide task settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CslideTask {
    /// VMA flags a mapping must have to be scanned; only `ht` (hugetlb) exists.
    pub vm_flags: Vec<String>,
    pub anon_only: bool,
    pub ign_host: bool,
}

/// The `scan_backend` words; `auto` means "choose".
pub const SCAN_BACKENDS: &[&str] = &[
    "auto",
    "idle_pages",
    "page_idle",
    "damon",
    "softdirty",
    "smaps",
];

/// The `swap_backend` words; `auto` means "choose".
pub const SWAP_BACKENDS: &[&str] = &["auto", "swap_pages", "process_madvise"];

/// The largest `T`: 3 accesses per scan (spec §6.2) times the largest `loop`.
const T_MAX: i64 = 3 * 120;

/// Reads a `[task]` group; `None` when it has errors (all reported).
pub fn read(s: &mut Section) -> Option<TaskConf> {
    let project = s.name("project");
    let engine = s.name("engine");
    let (name, value_entry) = name_and_value(s);
    let type_word = s.choice("type", &["pid", "name"], None);
    let target = value_entry.and_then(|e| s.convert(e, true, |raw| target(raw, type_word)));
    let swap_flag = s.yes_no("swap_flag", false);
    let max_threads = read_max_threads(s);
    let scan_backend = backend(s, "scan_backend", SCAN_BACKENDS);
    let swap_backend = backend(s, "swap_backend", SWAP_BACKENDS);
    let params = match engine.as_deref() {
        Some("slide") => read_slide(s).map(TaskParams::Slide),
        Some("cslide") => Some(TaskParams::Cslide(read_cslide(s))),
        Some("damon") => Some(TaskParams::Damon),
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
    Some(TaskConf {
        project: project?,
        engine: engine?,
        name: name?,
        target: target??,
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
    if s.peek("value").is_none() && s.count("name") == 2 {
        let names = s.all("name");
        let (first, second) = (names[0], names[1]);
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

/// An optional backend choice; `Some(None)` for absent or `auto`.
fn backend(s: &mut Section, key: &str, words: &[&'static str]) -> Option<Option<String>> {
    if s.peek(key).is_none() {
        return Some(None);
    }
    let word = s.choice(key, words, None)?;
    Some((word != "auto").then(|| word.to_string()))
}

fn read_slide(s: &mut Section) -> Option<SlideTask> {
    let t = s.int("T", true, 0, T_MAX);
    let swap_threshold = s.get("swap_threshold", None, true, swap_threshold);
    let dram_percent = s.int("dram_percent", false, 1, 100);
    Some(SlideTask {
        t: t?,
        swap_threshold,
        dram_percent,
    })
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

fn read_cslide(s: &mut Section) -> CslideTask {
    let vm_flags = s
        .get("vm_flags", None, true, |raw| {
            let flags: Vec<String> = raw
                .split([' ', ','])
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            if flags.is_empty() || flags.iter().any(|f| f != "ht") {
                return Err("ht (the only VMA flag cslide supports)".to_string());
            }
            Ok(flags)
        })
        .unwrap_or_else(|| vec!["ht".to_string()]);
    CslideTask {
        vm_flags,
        anon_only: s.yes_no("anon_only", false),
        ign_host: s.yes_no("ign_host", false),
    }
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
    )))
}

/// True when `engine` names a built-in engine type rather than a thirdparty `eng_name`.
pub fn is_builtin_engine(engine: &str) -> bool {
    BUILTIN_ENGINES.contains(&engine)
}
