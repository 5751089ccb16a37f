//! The `[engine]` group (spec §4.5, §7.1, §8.1, §8.2): which policy a project runs and its
//! settings. The type is named by `name=` (as the guide's samples do) or `engine=`.

use super::project::{ProjectConf, ScanConf};
use super::section::Section;
use super::{value, Origin};
use crate::error::{Error, Result};

/// The engine types etmem knows; any other engine is a thirdparty plugin's `eng_name`.
pub const BUILTIN_ENGINES: &[&str] = &["slide", "cslide", "damon", "memdcd"];

/// Every word `name=` (the engine type) may hold.
pub const ENGINE_TYPES: &[&str] = &["slide", "cslide", "damon", "memdcd", "thirdparty"];

/// One engine of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConf {
    pub project: String,
    pub kind: EngineKind,
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
    Slide,
    Memdcd,
    Cslide(CslideConf),
    Damon(DamonConf),
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
            EngineKind::Thirdparty(_) => "thirdparty",
        }
    }
}

/// cslide: NUMA tiering between DRAM nodes and slower (persistent-memory) nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CslideConf {
    /// (hot DRAM node, cold node) pairs. Checked against this machine's nodes at project
    /// start, not here, so a file can be read on another machine.
    pub node_pairs: Vec<(u32, u32)>,
    pub hot_threshold: u32,
    /// MiB per pair and direction per cycle.
    pub node_mig_quota: u64,
    /// MiB of DRAM kept free for hot pages.
    pub node_hot_reserve: u64,
}

/// damon: one DAMON scheme (what to do with regions of a given size, access count, age).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamonConf {
    pub min_size: u64,
    pub max_size: u64,
    pub min_acc: u32,
    pub max_acc: u32,
    pub min_age: u32,
    pub max_age: u32,
    pub action: DamonAction,
}

/// A DAMON scheme action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamonAction {
    Willneed,
    Cold,
    Pageout,
    Hugepage,
    Nohugepage,
    Stat,
}

impl DamonAction {
    /// All actions, in upstream's numbering order.
    pub const ALL: [DamonAction; 6] = [
        DamonAction::Willneed,
        DamonAction::Cold,
        DamonAction::Pageout,
        DamonAction::Hugepage,
        DamonAction::Nohugepage,
        DamonAction::Stat,
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
        }
    }

    /// The number DAMON's debugfs `schemes` file takes (0..5).
    pub fn number(&self) -> u32 {
        match self {
            DamonAction::Willneed => 0,
            DamonAction::Cold => 1,
            DamonAction::Pageout => 2,
            DamonAction::Hugepage => 3,
            DamonAction::Nohugepage => 4,
            DamonAction::Stat => 5,
        }
    }

    /// The action named `word`.
    pub fn from_name(word: &str) -> Option<DamonAction> {
        DamonAction::ALL.into_iter().find(|a| a.name() == word)
    }
}

/// thirdparty: a plugin library; the daemon loads it at project start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdpartyConf {
    pub eng_name: String,
    pub libname: String,
    pub ops_name: String,
    /// Every key of the group, once each (last value wins), raw as written: the plugin
    /// reads its own keys.
    pub keys: Vec<(String, String)>,
}

/// Reads an `[engine]` group; `None` when it has errors (all reported).
pub fn read(s: &mut Section) -> Option<EngineConf> {
    let project = s.name("project");
    let kind = match read_type(s)? {
        "slide" => Some(EngineKind::Slide),
        "memdcd" => Some(EngineKind::Memdcd),
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
    "pairs of NUMA nodes 'hot,cold' separated by ';', each node once, e.g. 0,2;1,3";

/// `node_pair` (spec §7.1): pairs separated by `;` or blanks, the two nodes of a pair by
/// `,`; the first node of a pair is the hot (DRAM) one.
fn node_pairs(raw: &str) -> Result<Vec<(u32, u32)>, String> {
    let bad = |why: String| format!("{NODE_PAIR_RULE} ({why})");
    let mut pairs = Vec::new();
    let mut seen: Vec<u32> = Vec::new();
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
            if seen.contains(&node) {
                return Err(bad(format!("node {node} appears twice")));
            }
            seen.push(node);
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
    })
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

/// The longest `libname` (PATH_MAX) and `ops_name` (the guide's limit).
const LIBNAME_MAX: usize = 4096;
const OPS_NAME_MAX: usize = 256;

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
    let lib_rule = format!("an absolute path of at most {LIBNAME_MAX} bytes");
    let libname = s.get("libname", Some(&lib_rule), true, |raw| {
        if raw.starts_with('/') && raw.len() <= LIBNAME_MAX && !raw.contains('\0') {
            Ok(raw.to_string())
        } else {
            Err(lib_rule.clone())
        }
    });
    let ops_rule = format!("a C identifier of at most {OPS_NAME_MAX} bytes");
    let ops_name = s.get("ops_name", Some(&ops_rule), true, |raw| {
        if is_c_identifier(raw) && raw.len() <= OPS_NAME_MAX {
            Ok(raw.to_string())
        } else {
            Err(ops_rule.clone())
        }
    });
    let keys = s.keep_all();
    Some(ThirdpartyConf {
        eng_name: eng_name?,
        libname: libname?,
        ops_name: ops_name?,
        keys,
    })
}

fn is_c_identifier(word: &str) -> bool {
    let mut bytes = word.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks that `engine` fits `project` (which may come from another file): damon needs
/// `scan_type=region`, every other engine `scan_type=page` (upstream did not check and
/// read region settings as page settings).
pub fn check_engine(engine: &EngineConf, project: &ProjectConf) -> Result<()> {
    let ty = engine.kind.type_word();
    let wants = match engine.kind {
        EngineKind::Damon(_) => "region",
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
        ("region", ScanConf::Region(_)) | ("page", ScanConf::Page(_))
    ) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}:{}: [engine] name={ty}: the {ty} engine needs a project with scan_type={wants}; project {} ({}:{}) has scan_type={has}",
        engine.origin.file, engine.origin.line, project.name, project.origin.file, project.origin.line
    )))
}
