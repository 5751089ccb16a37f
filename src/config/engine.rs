//! The `[engine]` group (spec §4.5, §7.1, §8.1, §8.2, §8.4): which policy a project runs and its
//! settings. The type is named by `name=` (as the guide's samples do) or `engine=`.

use super::project::{ProjectConf, ScanConf};
use super::section::Section;
use super::{value, Origin};
use crate::error::{Error, Object, Result};

/// The engine types etmem knows; any other engine is a thirdparty plugin's `eng_name`.
pub const BUILTIN_ENGINES: &[&str] = &["slide", "cslide", "damon", "memdcd", "psi"];

/// Every word `name=` (the engine type) may hold.
pub const ENGINE_TYPES: &[&str] = &["slide", "cslide", "damon", "memdcd", "psi", "thirdparty"];

/// One engine of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConf {
    /// Key `project`: the name of the project the engine belongs to.
    pub project: String,
    /// The engine type (key `name`, or its synonym `engine`) and its type's settings.
    pub kind: EngineKind,
    /// Where the `[engine]` group starts.
    pub origin: Origin,
}

impl EngineConf {
    /// The engine's name, which tasks use in `engine=`: the type for built-in engines, the
    /// `eng_name` for a thirdparty one.
    pub fn name(&self) -> &str {
        match &self.kind {
            EngineKind::Thirdparty(t) => &t.eng_name,
            kind => kind.type_word(),
        }
    }
}

/// The engine's type with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineKind {
    /// slide: swaps a process's cold pages out; no engine keys (spec §6).
    Slide,
    /// memdcd: hands every scanned page with its access count to the memdcd daemon; no
    /// engine keys (spec §8.3).
    Memdcd,
    /// cslide: NUMA tiering between DRAM and slower nodes (spec §7).
    Cslide(CslideConf),
    /// damon: one DAMON scheme run by the kernel (spec §8.1).
    Damon(DamonConf),
    /// psi: proactive reclaim from memory cgroups, steered by their memory pressure; no
    /// engine keys (spec §8.4).
    Psi,
    /// thirdparty: a plugin library (spec §8.2).
    Thirdparty(ThirdpartyConf),
}

impl EngineKind {
    /// The type word as written in `name=`.
    pub fn type_word(&self) -> &'static str {
        match self {
            EngineKind::Slide => "slide",
            EngineKind::Memdcd => "memdcd",
            EngineKind::Cslide(_) => "cslide",
            EngineKind::Damon(_) => "damon",
            EngineKind::Psi => "psi",
            EngineKind::Thirdparty(_) => "thirdparty",
        }
    }
}

/// cslide: NUMA tiering between DRAM nodes and slower (persistent-memory) nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CslideConf {
    /// NUMA node pairs as written: the guide writes "AEP,DRAM", upstream's samples
    /// "DRAM,AEP", so the engine decides each pair's roles from the machine at project
    /// start. Checked against this machine's nodes then too, so a file can be read on
    /// another machine.
    pub node_pairs: Vec<(u32, u32)>,
    /// Access count per cycle at or above which a page is hot, 0 or more (upstream
    /// silently clamped it to 3 x `loop` + 1).
    pub hot_threshold: u32,
    /// MiB per pair and direction per cycle.
    pub node_mig_quota: u64,
    /// MiB of DRAM kept free for hot pages.
    pub node_hot_reserve: u64,
}

/// damon: one DAMON scheme (what to do with regions of a given size, access count, age).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamonConf {
    /// Smallest region the scheme applies to, bytes.
    pub min_size: u64,
    /// Largest region the scheme applies to, bytes; at least `min_size`.
    pub max_size: u64,
    /// Fewest accesses per aggregation interval (DAMON's `nr_accesses`) of a region.
    pub min_acc: u32,
    /// Most accesses per aggregation interval of a region; at least `min_acc`.
    pub max_acc: u32,
    /// Youngest region age, in aggregation intervals.
    pub min_age: u32,
    /// Oldest region age, in aggregation intervals; at least `min_age`.
    pub max_age: u32,
    /// What DAMON does with the matching regions.
    pub action: DamonAction,
    /// `target_nid` (ours): the NUMA node `migrate_hot`/`migrate_cold` move pages to;
    /// required by those actions and refused with the others.
    pub target_nid: Option<u32>,
    /// `operations` (ours): which address space DAMON monitors.
    pub operations: DamonOps,
    /// DAMON's quotas, goal, watermarks, filters and interval tuning (ours).
    pub tuning: super::damon_tuning::DamonTuning,
}

/// Which address space the damon engine's kdamond monitors (`operations=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamonOps {
    /// `auto` (the default): each task's virtual address space where the kernel can do
    /// all the engine asks that way, else physical memory scoped to the tasks' memory
    /// cgroups.
    Auto,
    /// `vaddr`: each task's virtual address space (CONFIG_DAMON_VADDR).
    Vaddr,
    /// `paddr`: physical memory, the scheme limited to the memory cgroups of the tasks'
    /// processes by `memcg` filters (CONFIG_DAMON_PADDR).
    Paddr,
}

impl DamonOps {
    /// Every config word.
    pub const WORDS: [&'static str; 3] = ["auto", "vaddr", "paddr"];

    /// The mode a config word names.
    pub fn from_word(w: &str) -> Option<DamonOps> {
        match w {
            "auto" => Some(DamonOps::Auto),
            "vaddr" => Some(DamonOps::Vaddr),
            "paddr" => Some(DamonOps::Paddr),
            _ => None,
        }
    }
}

/// A DAMON scheme action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamonAction {
    /// `willneed` (0): advise the kernel the regions will be used soon.
    Willneed,
    /// `cold` (1): mark the regions' pages as the first to reclaim.
    Cold,
    /// `pageout` (2): reclaim the regions' pages now.
    Pageout,
    /// `hugepage` (3): back the regions with transparent hugepages.
    Hugepage,
    /// `nohugepage` (4): stop backing the regions with transparent hugepages.
    Nohugepage,
    /// `stat` (5): only count the matching regions.
    Stat,
    /// `migrate_hot` (ours; DAMON's, Linux 6.11+): move the regions' pages to
    /// `target_nid`, the hottest first.
    MigrateHot,
    /// `migrate_cold` (ours; DAMON's, Linux 6.11+): move the regions' pages to
    /// `target_nid`, the coldest first.
    MigrateCold,
}

impl DamonAction {
    /// All actions: upstream's six in its numbering order, then the migrations.
    pub const ALL: [DamonAction; 8] = [
        DamonAction::Willneed,
        DamonAction::Cold,
        DamonAction::Pageout,
        DamonAction::Hugepage,
        DamonAction::Nohugepage,
        DamonAction::Stat,
        DamonAction::MigrateHot,
        DamonAction::MigrateCold,
    ];

    /// The config word.
    pub fn name(&self) -> &'static str {
        match self {
            DamonAction::Willneed => "willneed",
            DamonAction::Cold => "cold",
            DamonAction::Pageout => "pageout",
            DamonAction::Hugepage => "hugepage",
            DamonAction::Nohugepage => "nohugepage",
            DamonAction::Stat => "stat",
            DamonAction::MigrateHot => "migrate_hot",
            DamonAction::MigrateCold => "migrate_cold",
        }
    }

    /// Whether the action moves pages to `target_nid`.
    pub fn migrates(&self) -> bool {
        matches!(self, DamonAction::MigrateHot | DamonAction::MigrateCold)
    }

    /// The action named `word`.
    pub fn from_name(word: &str) -> Option<DamonAction> {
        DamonAction::ALL.into_iter().find(|a| a.name() == word)
    }
}

/// thirdparty: a plug-in, run as a policy process (`exec=`, ours) or loaded as a shared
/// object (`libname=` with `ops_name=`, upstream's; only in a build with the `dlopen`
/// feature). Its file is opened and checked at `obj add`, not here, so that a file can be
/// read on a machine without the plug-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdpartyConf {
    /// The engine's own name, which tasks give in `engine=`: an object name (see
    /// [`NAME_RULE`](super::NAME_RULE)) that is not an engine type.
    pub eng_name: String,
    /// Which form the plug-in takes, and its file.
    pub form: PluginForm,
    /// Key `reply_timeout` (ours; policy processes only): the seconds etmemd waits for
    /// each answer of the plug-in before it fails the engine, 1 to 3600, default
    /// [`REPLY_TIMEOUT_DEFAULT`].
    pub reply_timeout: u32,
    /// Every key of the group, once each (last value wins), raw as written: the plug-in
    /// reads its own keys.
    pub keys: Vec<(String, String)>,
}

/// The default of `reply_timeout`, seconds: long enough for a script to answer a scan of
/// a large process, short enough that a hung plug-in is noticed within a cycle or two.
pub const REPLY_TIMEOUT_DEFAULT: u32 = 10;

/// The two forms of a thirdparty plug-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginForm {
    /// `exec=`: a program etmemd starts and speaks a line protocol with over its standard
    /// input and output (`etmem-policy(7)`); works in the static binary.
    Process {
        /// The program.
        exec: PluginFile,
    },
    /// `libname=` and `ops_name=`: upstream's shared object and the name of its `struct
    /// engine_ops`.
    Library {
        /// The shared object.
        libname: PluginFile,
        /// Its `struct engine_ops` symbol, a C identifier of at most 256 bytes.
        ops_name: String,
        /// `FILE:LINE: [engine] ops_name=NAME`: the head of a refusal about the symbol.
        ops_at: String,
    },
}

impl PluginForm {
    /// The plug-in's file, whichever the form.
    pub fn file(&self) -> &PluginFile {
        match self {
            PluginForm::Process { exec } => exec,
            PluginForm::Library { libname, .. } => libname,
        }
    }
}

/// A plug-in's file as the config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFile {
    /// The absolute path as written (at most 4096 bytes).
    pub path: String,
    /// `FILE:LINE: [engine] KEY=PATH`: the head of every message about the file, so that
    /// a refusal at `obj add` names where the path was written.
    pub at: String,
}

/// Reads an `[engine]` group; `None` when it has errors (all reported).
pub fn read(s: &mut Section) -> Option<EngineConf> {
    let project = s.name("project");
    let kind = match read_type(s)? {
        "slide" => Some(EngineKind::Slide),
        "memdcd" => Some(EngineKind::Memdcd),
        "psi" => Some(EngineKind::Psi),
        "cslide" => read_cslide(s).map(EngineKind::Cslide),
        "damon" => read_damon(s).map(EngineKind::Damon),
        _ => read_thirdparty(s).map(EngineKind::Thirdparty),
    };
    Some(EngineConf {
        project: project?,
        kind: kind?,
        origin: s.origin(),
    })
}

/// The engine type from `name=` or its synonym `engine=`.
fn read_type(s: &mut Section) -> Option<&'static str> {
    let by_name = s.entry("name");
    let by_engine = s.entry("engine");
    let e = match (by_name, by_engine) {
        (Some(n), Some(e)) if n.value != e.value => {
            let msg = format!(
                "conflicts with name={} (engine= is another word for name=, the engine type; give one)",
                value::shown(&n.value)
            );
            s.error(e, &msg);
            return None;
        }
        (Some(e), _) | (None, Some(e)) => e,
        (None, None) => {
            let what = format!("the engine type, {}", value::choice_rule(ENGINE_TYPES));
            s.missing("name", &what);
            return None;
        }
    };
    s.convert(e, true, |raw| value::choice(raw, ENGINE_TYPES))
}

fn read_cslide(s: &mut Section) -> Option<CslideConf> {
    let node_pairs = s.get("node_pair", Some(NODE_PAIR_RULE), true, node_pairs);
    let max = i64::from(i32::MAX);
    let hot_threshold = s.int("hot_threshold", true, 0, max);
    let node_mig_quota = s.int("node_mig_quota", true, 0, max);
    let node_hot_reserve = s.int("node_hot_reserve", true, 0, max);
    Some(CslideConf {
        node_pairs: node_pairs?,
        hot_threshold: hot_threshold?,
        node_mig_quota: node_mig_quota?,
        node_hot_reserve: node_hot_reserve?,
    })
}

const NODE_PAIR_RULE: &str =
    "pairs of NUMA nodes 'a,b' separated by ';', each node once, e.g. 2,0;3,1 \
     (which node of a pair is DRAM is decided from the machine at project start)";

/// `node_pair` (spec §7.1): pairs separated by `;` or blanks, the two nodes of a pair by
/// `,`, as written (the engine decides which is DRAM from the machine).
fn node_pairs(raw: &str) -> Result<Vec<(u32, u32)>, String> {
    let bad = |why: String| format!("{NODE_PAIR_RULE} ({why})");
    let mut pairs = Vec::new();
    // A set, not a list: a 10 MiB file can name a million nodes, and a list made the
    // duplicate check quadratic (minutes of the daemon's time for one `obj add`).
    let mut seen = std::collections::HashSet::new();
    for pair in raw.split([';', ' ', '\t']).filter(|p| !p.is_empty()) {
        let Some((hot, cold)) = pair.split_once(',') else {
            return Err(bad(format!("'{pair}' is not two nodes joined by ','")));
        };
        let mut nodes = [0u32; 2];
        for (slot, text) in nodes.iter_mut().zip([hot, cold]) {
            let node = value::int(text, 0, i64::from(i32::MAX))
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(format!("'{text}' in '{pair}' is not a node number")))?;
            if !seen.insert(node) {
                return Err(bad(format!("node {node} appears twice")));
            }
            *slot = node;
        }
        pairs.push((nodes[0], nodes[1]));
    }
    if pairs.is_empty() {
        return Err(bad("no pair given".to_string()));
    }
    Ok(pairs)
}

fn read_damon(s: &mut Section) -> Option<DamonConf> {
    let min_size = s.int("min_size", true, 0, i64::MAX);
    let max_size = s.int("max_size", true, 0, i64::MAX);
    let u32_max = i64::from(u32::MAX);
    let min_acc = s.int("min_acc", true, 0, u32_max);
    let max_acc = s.int("max_acc", true, 0, u32_max);
    let min_age = s.int("min_age", true, 0, u32_max);
    let max_age = s.int("max_age", true, 0, u32_max);
    let words: Vec<&'static str> = DamonAction::ALL.iter().map(DamonAction::name).collect();
    let action = s
        .choice("action", &words, None)
        .and_then(DamonAction::from_name);
    let ordered = [
        min_max(s, "size", min_size, max_size),
        min_max(s, "acc", min_acc, max_acc),
        min_max(s, "age", min_age, max_age),
    ];
    let target_nid = read_target_nid(s, action);
    let operations = s
        .choice("operations", &DamonOps::WORDS, Some("auto"))
        .and_then(DamonOps::from_word);
    let tuning = super::damon_tuning::read(s);
    if ordered.contains(&false) {
        return None;
    }
    Some(DamonConf {
        min_size: min_size?,
        max_size: max_size?,
        min_acc: min_acc?,
        max_acc: max_acc?,
        min_age: min_age?,
        max_age: max_age?,
        action: action?,
        target_nid: target_nid?,
        operations: operations?,
        tuning: tuning?,
    })
}

/// `target_nid`: a node number, required by the migrate actions and only by them.
/// `None` (reported) when wrong; `Some(None)` when rightly absent.
fn read_target_nid(s: &mut Section, action: Option<DamonAction>) -> Option<Option<u32>> {
    let migrates = action.is_some_and(|a| a.migrates());
    let given = s.peek("target_nid");
    match (given, action) {
        (Some(e), Some(a)) if !migrates => {
            let msg = format!(
                "only migrate_hot and migrate_cold move pages to a node; action={} does not",
                a.name()
            );
            s.error(e, &msg);
            None
        }
        (None, Some(_)) if migrates => {
            s.missing(
                "target_nid",
                "the NUMA node migrate_hot/migrate_cold move pages to",
            );
            None
        }
        _ => {
            let node = s.int("target_nid", false, 0, i64::from(i32::MAX));
            match (given, node) {
                (Some(_), None) => None,
                (_, n) => Some(n),
            }
        }
    }
}

/// `min_X <= max_X` (a fix: upstream let DAMON reject it at project start). False when
/// they are out of order, which is reported at `max_X`.
fn min_max<T: PartialOrd + std::fmt::Display>(
    s: &mut Section,
    what: &str,
    min: Option<T>,
    max: Option<T>,
) -> bool {
    let (Some(min), Some(max)) = (min, max) else {
        return true;
    };
    if min <= max {
        return true;
    }
    if let Some(e) = s.peek(&format!("max_{what}")) {
        s.error(e, &format!("must not be below min_{what}={min}"));
    }
    false
}

/// The longest plug-in path (PATH_MAX) and `ops_name` (the guide's limit).
const PATH_MAX: usize = 4096;
const OPS_NAME_MAX: usize = 256;

/// What `exec` is, for the message when no form is given.
const PLUGIN_RULE: &str = "the plug-in: exec=/absolute/path of a policy program, \
     or libname= and ops_name= of a .so plug-in";

fn read_thirdparty(s: &mut Section) -> Option<ThirdpartyConf> {
    let eng_name = s.get("eng_name", Some(value::NAME_RULE), true, |raw| {
        let name = value::name(raw)?;
        if ENGINE_TYPES.contains(&raw) {
            return Err(format!(
                "a name of your own, not an engine type ({})",
                ENGINE_TYPES.join(", ")
            ));
        }
        Ok(name)
    });
    let form = read_plugin_form(s);
    let reply_timeout = match (s.peek("reply_timeout"), &form) {
        (Some(e), Some(PluginForm::Library { .. })) => {
            s.error(e, "only means something with exec= (a policy process)");
            None
        }
        // Present: `None` when it is wrong (reported).
        (Some(_), _) => s.int("reply_timeout", false, 1, 3600),
        (None, _) => Some(REPLY_TIMEOUT_DEFAULT),
    };
    let keys = s.keep_all();
    Some(ThirdpartyConf {
        eng_name: eng_name?,
        form: form?,
        reply_timeout: reply_timeout?,
        keys,
    })
}

/// Exactly one form: `exec=`, or `libname=` with `ops_name=`.
fn read_plugin_form(s: &mut Section) -> Option<PluginForm> {
    let exec = s.peek("exec");
    let library = s.peek("libname").or_else(|| s.peek("ops_name"));
    match (exec, library) {
        (Some(exec), Some(other)) => {
            let msg = format!(
                "conflicts with exec={} (a plug-in is a policy process, exec=, or a .so, \
                 libname= with ops_name=: give one)",
                value::shown(&exec.value)
            );
            s.error(other, &msg);
            None
        }
        (Some(_), None) => plugin_file(s, "exec").map(|exec| PluginForm::Process { exec }),
        (None, Some(_)) => {
            let libname = plugin_file(s, "libname");
            let ops_rule = format!("a C identifier of at most {OPS_NAME_MAX} bytes");
            let ops_at = s.peek("ops_name").map(|e| s.at(e));
            let ops_name = s.get("ops_name", Some(&ops_rule), true, |raw| {
                if is_c_identifier(raw) && raw.len() <= OPS_NAME_MAX {
                    Ok(raw.to_string())
                } else {
                    Err(ops_rule.clone())
                }
            });
            Some(PluginForm::Library {
                libname: libname?,
                ops_name: ops_name?,
                ops_at: ops_at?,
            })
        }
        (None, None) => {
            s.missing("exec", PLUGIN_RULE);
            None
        }
    }
}

/// A plug-in's path from `key`: required, absolute, at most [`PATH_MAX`] bytes.
fn plugin_file(s: &mut Section, key: &str) -> Option<PluginFile> {
    let rule = format!("an absolute path of at most {PATH_MAX} bytes");
    let at = s.peek(key).map(|e| s.at(e));
    let path = s.get(key, Some(&rule), true, |raw| {
        if raw.starts_with('/') && raw.len() <= PATH_MAX && !raw.contains('\0') {
            Ok(raw.to_string())
        } else {
            Err(rule.clone())
        }
    })?;
    Some(PluginFile { path, at: at? })
}

fn is_c_identifier(word: &str) -> bool {
    let mut bytes = word.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks that `engine` fits `project` (which may come from another file): damon needs
/// `scan_type=region`, psi `scan_type=psi`, every other engine `scan_type=page` (upstream
/// did not check and read region settings as page settings, or past the end of psi's).
pub fn check_engine(engine: &EngineConf, project: &ProjectConf) -> Result<()> {
    let ty = engine.kind.type_word();
    let wants = match engine.kind {
        EngineKind::Damon(_) => "region",
        EngineKind::Psi => "psi",
        _ => "page",
    };
    let has = project.scan.type_word();
    if project.name != engine.project {
        return Err(Error::invalid(format!(
            "{}:{}: [engine] project={}: checked against project {}",
            engine.origin.file, engine.origin.line, engine.project, project.name
        )));
    }
    if matches!(
        (wants, &project.scan),
        ("region", ScanConf::Region(_)) | ("page", ScanConf::Page(_)) | ("psi", ScanConf::Psi(_))
    ) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}:{}: [engine] name={ty}: the {ty} engine needs a project with scan_type={wants}; project {} ({}:{}) has scan_type={has}",
        engine.origin.file, engine.origin.line, project.name, project.origin.file, project.origin.line
    )).about(Object::Engine))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::{parse, ConfigFile, PageScan, RegionScan};

    const CSLIDE: &str = "[engine]\nname=cslide\nproject=test\nnode_pair=0,2;1,3\nhot_threshold=1\nnode_mig_quota=1024\nnode_hot_reserve=1024\n";
    const DAMON: &str = "[engine]\nname=damon\nproject=test\nmin_size=0\nmax_size=9223372036854775807\nmin_acc=0\nmax_acc=4294967295\nmin_age=0\nmax_age=4294967295\naction=pageout\n";
    const THIRD: &str = "[engine]\nname=thirdparty\nproject=test\neng_name=my_engine\nlibname=/usr/lib/etmem_fetch/my_engine.so\nops_name=my_engine_ops\nengine_private_key=1024\n";

    fn cslide(c: &ConfigFile) -> CslideConf {
        match &c.engines[0].kind {
            EngineKind::Cslide(x) => x.clone(),
            k => panic!("{k:?}"),
        }
    }

    fn damon(c: &ConfigFile) -> DamonConf {
        match &c.engines[0].kind {
            EngineKind::Damon(x) => x.clone(),
            k => panic!("{k:?}"),
        }
    }

    fn third(c: &ConfigFile) -> ThirdpartyConf {
        match &c.engines[0].kind {
            EngineKind::Thirdparty(x) => x.clone(),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn type_by_name_or_engine() {
        let c = ok("[engine]\nname=slide\nproject=test\n");
        let e = &c.engines[0];
        assert_eq!(
            (e.kind.clone(), e.name(), e.project.as_str()),
            (EngineKind::Slide, "slide", "test")
        );
        assert!(c.warnings.is_empty());
        assert_eq!(
            ok("[engine]\nengine=memdcd\nproject=p\n").engines[0].kind,
            EngineKind::Memdcd
        );
        assert_eq!(
            ok("[engine]\nengine=slide\nname=slide\nproject=p\n").engines[0].name(),
            "slide"
        );
        err_has(
            "[engine]\nname=slide\nengine=cslide\nproject=p\n",
            &format!("{F}:3: [engine] engine=cslide: conflicts with name=slide"),
        );
        err_has(
            "[engine]\nproject=p\n",
            &format!("{F}:1: [engine] name is missing (required: the engine type, one of slide, cslide, damon, memdcd, psi, thirdparty)"),
        );
        err_has(
            "[engine]\nname=Slide\nproject=p\n",
            &format!("{F}:2: [engine] name=Slide: must be one of slide, cslide, damon, memdcd, psi, thirdparty"),
        );
        err_has(
            "[engine]\nname=slide\n",
            &format!("{F}:1: [engine] project is missing"),
        );
        err_has(
            "[engine]\nname=slide\nproject=a b\n",
            &format!("{F}:3: [engine] project=a b: must be 1 to 64"),
        );
        let (text, line) = set("[engine]\nname=slide\nproject=p\n", "node_pair", "0,1");
        assert_eq!(
            ok(&text).warnings,
            vec![format!(
                "{F}:{line}: [engine] node_pair=0,1: unknown key in [engine], ignored"
            )]
        );
    }

    #[test]
    fn cslide_keys() {
        let c = ok(CSLIDE);
        assert_eq!(
            cslide(&c),
            CslideConf {
                node_pairs: vec![(0, 2), (1, 3)],
                hot_threshold: 1,
                node_mig_quota: 1024,
                node_hot_reserve: 1024
            }
        );
        assert_eq!(c.engines[0].name(), "cslide");
        let pairs = |c: &ConfigFile| cslide(c).node_pairs;
        accepts(CSLIDE, "node_pair", "2,0;3,1", vec![(2, 0), (3, 1)], pairs);
        accepts(CSLIDE, "node_pair", "0,1 2,3;", vec![(0, 1), (2, 3)], pairs);
        accepts(CSLIDE, "node_pair", "0,1", vec![(0, 1)], pairs);
        for (bad, why) in [
            ("", "no pair given"),
            (";", "no pair given"),
            ("0", "'0' is not two nodes"),
            ("0,0", "node 0 appears twice"),
            ("0,1;1,2", "node 1 appears twice"),
            ("a,1", "'a' in 'a,1' is not a node number"),
            ("0,1,2", "'1,2' in '0,1,2' is not a node number"),
            ("-1,2", "'-1' in '-1,2'"),
            ("+1,2", "'+1' in '+1,2'"),
            ("0,", "'' in '0,'"),
            ("0,2147483648", "'2147483648'"),
        ] {
            let (text, line) = set(CSLIDE, "node_pair", bad);
            err_has(
                &text,
                &format!("{F}:{line}: [engine] node_pair={bad}: must be pairs of NUMA nodes"),
            );
            err_has(&text, why);
        }
        // Found by the fuzz target `config`: the refused text was quoted raw, control
        // characters and all; now escaped as the value before it is.
        let (text, line) = set(CSLIDE, "node_pair", "2,0;3,\0\x011");
        err_has(
            &text,
            &format!("{F}:{line}: [engine] node_pair=2,0;3,\\u{{0}}\\u{{1}}1: must be pairs"),
        );
        err_has(
            &text,
            "('\\u{0}\\u{1}1' in '3,\\u{0}\\u{1}1' is not a node number)",
        );
        // Found while fuzzing `config`: each node was looked for in a list of the nodes
        // before it, so a long node_pair took quadratic time (200000 pairs: minutes).
        let many: Vec<String> = (0..200_000)
            .map(|i| format!("{},{}", 2 * i, 2 * i + 1))
            .collect();
        let (text, _) = set(CSLIDE, "node_pair", &many.join(";"));
        let t = std::time::Instant::now();
        assert_eq!(cslide(&ok(&text)).node_pairs.len(), 200_000);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
        let max = i64::from(i32::MAX);
        int_edges(CSLIDE, "engine", "hot_threshold", (0, max), |c| {
            i64::from(cslide(c).hot_threshold)
        });
        int_edges(CSLIDE, "engine", "node_mig_quota", (0, max), |c| {
            cslide(c).node_mig_quota as i64
        });
        int_edges(CSLIDE, "engine", "node_hot_reserve", (0, max), |c| {
            cslide(c).node_hot_reserve as i64
        });
        for key in [
            "node_pair",
            "hot_threshold",
            "node_mig_quota",
            "node_hot_reserve",
        ] {
            err_has(
                &unset(CSLIDE, key),
                &format!("{F}:1: [engine] {key} is missing (required: "),
            );
        }
    }

    #[test]
    fn damon_keys() {
        let d = damon(&ok(DAMON));
        assert_eq!(d.action, DamonAction::Pageout);
        assert_eq!(d.max_size, i64::MAX as u64);
        for key in ["min_size", "max_size"] {
            int_edges(DAMON, "engine", key, (0, i64::MAX), |c| {
                let d = damon(c);
                (if key == "min_size" {
                    d.min_size
                } else {
                    d.max_size
                }) as i64
            });
        }
        for key in ["min_acc", "max_acc", "min_age", "max_age"] {
            int_edges(DAMON, "engine", key, (0, i64::from(u32::MAX)), |c| {
                let d = damon(c);
                i64::from(match key {
                    "min_acc" => d.min_acc,
                    "max_acc" => d.max_acc,
                    "min_age" => d.min_age,
                    _ => d.max_age,
                })
            });
        }
        for a in DamonAction::ALL.iter().filter(|a| !a.migrates()) {
            assert_eq!(DamonAction::from_name(a.name()), Some(*a));
            accepts(DAMON, "action", a.name(), *a, |c| damon(c).action);
        }
        assert_eq!(damon(&ok(DAMON)).operations, DamonOps::Auto);
        for (w, want) in [("vaddr", DamonOps::Vaddr), ("paddr", DamonOps::Paddr)] {
            accepts(DAMON, "operations", w, want, |c| damon(c).operations);
        }
        rejects(
            DAMON,
            "engine",
            "operations",
            "fvaddr",
            "one of auto, vaddr, paddr",
        );
        // The migrations need a node, and only they take one.
        let (text, _) = set(DAMON, "action", "migrate_cold");
        err_has(
            &text,
            "[engine] target_nid is missing (required: the NUMA node",
        );
        let (text, _) = set(&text, "target_nid", "1");
        assert_eq!(
            (damon(&ok(&text)).action, damon(&ok(&text)).target_nid),
            (DamonAction::MigrateCold, Some(1))
        );
        int_edges(
            &text,
            "engine",
            "target_nid",
            (0, i64::from(i32::MAX)),
            |c| i64::from(damon(c).target_nid.unwrap()),
        );
        let (text, line) = set(DAMON, "target_nid", "1");
        err_has(
            &text,
            &format!("{F}:{line}: [engine] target_nid=1: only migrate_hot and migrate_cold"),
        );
        rejects(
            DAMON,
            "engine",
            "action",
            "PAGEOUT",
            "one of willneed, cold, pageout, hugepage, nohugepage, stat, migrate_hot, migrate_cold",
        );
        for key in [
            "min_size", "max_size", "min_acc", "max_acc", "min_age", "max_age", "action",
        ] {
            err_has(
                &unset(DAMON, key),
                &format!("{F}:1: [engine] {key} is missing (required: "),
            );
        }
        for (what, min) in [("size", "5"), ("acc", "5"), ("age", "5")] {
            let (text, _) = set(DAMON, &format!("min_{what}"), min);
            let (text, line) = set(&text, &format!("max_{what}"), "4");
            err_has(
                &text,
                &format!("{F}:{line}: [engine] max_{what}=4: must not be below min_{what}=5"),
            );
        }
    }

    /// The library form's file and symbol, or a panic.
    fn library(c: &ConfigFile) -> (String, String, String) {
        match third(c).form {
            PluginForm::Library {
                libname, ops_name, ..
            } => (libname.path, libname.at, ops_name),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn thirdparty_keys() {
        let c = ok(THIRD);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let t = third(&c);
        assert_eq!(c.engines[0].name(), "my_engine");
        assert_eq!(
            library(&c),
            (
                "/usr/lib/etmem_fetch/my_engine.so".to_string(),
                format!("{F}:5: [engine] libname=/usr/lib/etmem_fetch/my_engine.so"),
                "my_engine_ops".to_string()
            )
        );
        assert_eq!(t.reply_timeout, REPLY_TIMEOUT_DEFAULT);
        assert_eq!(t.keys.len(), 6);
        assert_eq!(
            t.keys[5],
            ("engine_private_key".to_string(), "1024".to_string())
        );
        for bad in ["slide", "cslide", "damon", "memdcd", "psi", "thirdparty"] {
            rejects(
                THIRD,
                "engine",
                "eng_name",
                bad,
                "a name of your own, not an engine type",
            );
        }
        rejects(THIRD, "engine", "eng_name", "-x", crate::config::NAME_RULE);
        let long_ok = format!("/{}", "l".repeat(4095));
        accepts(THIRD, "libname", &long_ok, long_ok.clone(), |c| {
            library(c).0
        });
        for bad in [
            "my_engine.so",
            "",
            "./x.so",
            &format!("/{}", "l".repeat(4096)),
        ] {
            rejects(
                THIRD,
                "engine",
                "libname",
                bad,
                "an absolute path of at most 4096 bytes",
            );
        }
        let ops_ok = format!("_{}", "a9".repeat(127) + "z");
        accepts(THIRD, "ops_name", &ops_ok, ops_ok.clone(), |c| library(c).2);
        for bad in ["", "9ops", "my-ops", "a b", &"o".repeat(257)] {
            rejects(
                THIRD,
                "engine",
                "ops_name",
                bad,
                "a C identifier of at most 256 bytes",
            );
        }
        for key in ["eng_name", "libname", "ops_name"] {
            err_has(
                &unset(THIRD, key),
                &format!("{F}:1: [engine] {key} is missing (required: "),
            );
        }
        // reply_timeout is the policy process's; a .so answers in etmemd's own thread.
        let (text, line) = set(THIRD, "reply_timeout", "5");
        err_has(
            &text,
            &format!("{F}:{line}: [engine] reply_timeout=5: only means something with exec="),
        );
    }

    const EXEC: &str = "[engine]\nname=thirdparty\nproject=test\neng_name=mine\nexec=/usr/libexec/etmem/cold0\nkey=v\n";

    #[test]
    fn thirdparty_policy_process_keys() {
        let c = ok(EXEC);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let t = third(&c);
        assert_eq!(
            t.form,
            PluginForm::Process {
                exec: PluginFile {
                    path: "/usr/libexec/etmem/cold0".into(),
                    at: format!("{F}:5: [engine] exec=/usr/libexec/etmem/cold0"),
                }
            }
        );
        assert_eq!(t.form.file().path, "/usr/libexec/etmem/cold0");
        assert_eq!(t.reply_timeout, 10);
        // Every key goes to the plug-in, ours too.
        let keys: Vec<&str> = t.keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["name", "project", "eng_name", "exec", "key"]);
        int_edges(EXEC, "engine", "reply_timeout", (1, 3600), |c| {
            i64::from(third(c).reply_timeout)
        });
        for bad in ["cold0", "", "~/cold0", &format!("/{}", "x".repeat(4096))] {
            rejects(
                EXEC,
                "engine",
                "exec",
                bad,
                "an absolute path of at most 4096 bytes",
            );
        }
        // Escapes apply to the path as to any string; the message shows it as written.
        let (text, line) = set(EXEC, "exec", "/opt/my\\spolicy");
        let c = ok(&text);
        assert_eq!(third(&c).form.file().path, "/opt/my policy");
        assert_eq!(
            third(&c).form.file().at,
            format!("{F}:{line}: [engine] exec=/opt/my\\spolicy")
        );
        // Exactly one form.
        for key in ["libname", "ops_name"] {
            let (text, line) = set(EXEC, key, "x");
            err_has(
                &text,
                &format!("{F}:{line}: [engine] {key}=x: conflicts with exec=/usr/libexec/etmem/cold0 (a plug-in is a policy process, exec=, or a .so, libname= with ops_name=: give one)"),
            );
        }
        err_has(
            &unset(EXEC, "exec"),
            &format!("{F}:1: [engine] exec is missing (required: the plug-in: exec=/absolute/path of a policy program, or libname= and ops_name= of a .so plug-in)"),
        );
    }

    fn project(scan: ScanConf) -> ProjectConf {
        ProjectConf {
            name: "test".into(),
            scan,
            sysmem_threshold: None,
            swapcache_wmark: None,
            origin: Origin {
                file: "/p.conf".into(),
                line: 4,
            },
        }
    }

    #[test]
    fn engine_type_must_fit_scan_type() {
        let page = project(ScanConf::Page(PageScan {
            loops: 1,
            interval: 1,
            sleep: 1,
        }));
        let region = project(ScanConf::Region(RegionScan {
            sample_interval: 1,
            aggr_interval: 1,
            update_interval: 1,
            min_nr_regions: 3,
            max_nr_regions: 4,
        }));
        let damon_engine = &ok(DAMON).engines[0];
        let third_engine = &ok(THIRD).engines[0];
        let slide = &ok("[engine]\nname=slide\nproject=test\n").engines[0];
        assert!(check_engine(damon_engine, &region).is_ok());
        assert!(check_engine(slide, &page).is_ok());
        assert!(check_engine(third_engine, &page).is_ok());
        let e = check_engine(damon_engine, &page).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Invalid);
        assert_eq!(
            e.msg,
            format!("{F}:1: [engine] name=damon: the damon engine needs a project with scan_type=region; project test (/p.conf:4) has scan_type=page")
        );
        assert!(check_engine(slide, &region)
            .unwrap_err()
            .msg
            .contains("needs a project with scan_type=page"));
        let psi_project = project(ScanConf::Psi(crate::config::PsiScan { interval: 6 }));
        let psi = &ok("[engine]\nname=psi\nproject=test\n").engines[0];
        assert_eq!((psi.kind.clone(), psi.name()), (EngineKind::Psi, "psi"));
        assert!(check_engine(psi, &psi_project).is_ok());
        assert!(check_engine(psi, &page)
            .unwrap_err()
            .msg
            .contains("the psi engine needs a project with scan_type=psi; project test (/p.conf:4) has scan_type=page"));
        assert!(check_engine(slide, &psi_project)
            .unwrap_err()
            .msg
            .contains("needs a project with scan_type=page"));
        assert!(check_engine(damon_engine, &psi_project).is_err());
        // psi has no engine keys.
        let (text, line) = set("[engine]\nname=psi\nproject=p\n", "pressure", "1");
        assert_eq!(
            ok(&text).warnings,
            vec![format!(
                "{F}:{line}: [engine] pressure=1: unknown key in [engine], ignored"
            )]
        );
        let other = parse("[engine]\nname=slide\nproject=other\n", F).unwrap();
        assert!(check_engine(&other.engines[0], &page).is_err());
    }

    #[test]
    fn damon_tuning_keys() {
        use crate::config::damon_tuning::{Filter, QuotaGoal};
        let with = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .fold(DAMON.to_string(), |t, (k, v)| set(&t, k, v).0)
        };
        let t = damon(&ok(&with(&[
            ("quota_bytes", "4194304"),
            ("quota_reset_interval_ms", "1000"),
            ("quota_goal_metric", "node_mem_free_bp"),
            ("quota_goal_target", "2000"),
            ("quota_goal_nid", "1"),
            ("filter_anon", "only"),
            ("filter_memcg", "/workload"),
        ])))
        .tuning;
        assert_eq!(
            (t.quota_bytes, t.quota_reset_ms, t.quota_ms),
            (Some(4 << 20), Some(1000), None)
        );
        assert_eq!(
            t.quota_goals,
            vec![QuotaGoal {
                metric: "node_mem_free_bp",
                target: 2000,
                nid: Some(1),
                current: None
            }]
        );
        // More goals, numbered from 2 (up to 4): the kernel follows the one furthest off.
        let two = damon(&ok(&with(&[
            ("quota_goal_metric", "some_mem_psi_us"),
            ("quota_goal_target", "1000"),
            ("quota_goal3_metric", "node_mem_used_bp"),
            ("quota_goal3_target", "9000"),
            ("quota_goal3_nid", "0"),
        ])))
        .tuning
        .quota_goals;
        assert_eq!(
            two.iter()
                .map(|g| (g.metric, g.target, g.nid))
                .collect::<Vec<_>>(),
            [
                ("some_mem_psi_us", 1000, None),
                ("node_mem_used_bp", 9000, Some(0))
            ]
        );
        err_has(
            &with(&[("quota_goal2_metric", "user_input")]),
            "quota_goal2_target is missing",
        );
        err_has(
            &with(&[("quota_goal4_target", "1")]),
            "only means something with quota_goal4_metric",
        );
        assert_eq!(
            t.filters,
            vec![
                Filter {
                    kind: "anon",
                    memcg_path: None,
                    only: true
                },
                Filter {
                    kind: "memcg",
                    memcg_path: Some("/workload".into()),
                    only: true
                },
            ]
        );
        assert_eq!(damon(&ok(DAMON)).tuning, Default::default());
        err_has(
            &with(&[("quota_goal_metric", "some_mem_psi_us")]),
            "quota_goal_target is missing",
        );
        err_has(
            &with(&[
                ("quota_goal_metric", "node_mem_used_bp"),
                ("quota_goal_target", "1"),
            ]),
            "quota_goal_nid is missing",
        );
        err_has(
            &with(&[("quota_goal_nid", "1")]),
            "only means something with quota_goal_metric",
        );
        let user = damon(&ok(&with(&[
            ("quota_goal_metric", "user_input"),
            ("quota_goal_target", "100"),
            ("quota_goal_current", "40"),
        ])));
        assert_eq!(user.tuning.quota_goals[0].current, Some(40));
        err_has(
            &with(&[
                ("quota_goal_metric", "some_mem_psi_us"),
                ("quota_goal_target", "100"),
                ("quota_goal_current", "40"),
            ]),
            "only means something with quota_goal_metric=user_input",
        );
        err_has(
            &with(&[("wmarks_high", "1")]),
            "only means something with wmarks_metric",
        );
        let wm = [
            ("wmarks_metric", "free_mem_rate"),
            ("wmarks_interval_us", "1000000"),
            ("wmarks_high", "500"),
            ("wmarks_mid", "400"),
            ("wmarks_low", "200"),
        ];
        assert_eq!(damon(&ok(&with(&wm))).tuning.wmarks.unwrap().mid, 400);
        err_has(
            &with(&[wm[0], wm[1], wm[2], ("wmarks_mid", "600"), wm[4]]),
            "wmarks_high=500 >= wmarks_mid",
        );
        err_has(&with(&wm[..4]), "wmarks_low is missing");
        err_has(
            &with(&[("filter_memcg", "workload")]),
            "must be an absolute memory cgroup path",
        );
        err_has(
            &with(&[("filter_young", "yes")]),
            "must be one of only, exclude",
        );
        err_has(
            &with(&[("intervals_goal_access_bp", "400")]),
            "intervals_goal_aggrs is missing",
        );
        err_has(
            &with(&[
                ("intervals_goal_access_bp", "400"),
                ("intervals_goal_aggrs", "3"),
                ("intervals_goal_min_sample_us", "5000"),
                ("intervals_goal_max_sample_us", "100"),
            ]),
            "must not be below intervals_goal_min_sample_us=5000",
        );
    }
}
