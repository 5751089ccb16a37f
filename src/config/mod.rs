//! Config files: INI text into typed, validated project, engine and task settings.
//!
//! The syntax is GLib GKeyFile's, as upstream etmem read it (spec §4.2), with deliberate
//! fixes: each `[project]`, `[engine]` and `[task]` group is one object (upstream merged
//! repeated groups), every problem of a file is reported at once with its file and line,
//! integers are range-checked in full width, and file admission has no TOCTOU window.
//! Checks that need a project from another file are [`check_engine`] and [`check_task`].

mod admission;
mod diag;
mod engine;
mod keyfile;
mod project;
mod section;
mod task;
mod value;

pub use admission::MAX_SIZE;
pub use engine::{
    check_engine, CslideConf, DamonAction, DamonConf, EngineConf, EngineKind, ThirdpartyConf,
    BUILTIN_ENGINES, ENGINE_TYPES,
};
pub use project::{PageScan, ProjectConf, RegionScan, ScanConf, Wmark};
pub use task::{
    check_task, is_builtin_engine, CslideTask, SlideTask, Target, TaskConf, TaskParams,
    SCAN_BACKENDS, SWAP_BACKENDS,
};
pub use value::{NAME_MAX, NAME_RULE};

use crate::error::Result;
use diag::Diag;
use section::Section;

/// Where an object's group starts, for messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

/// Everything one config file describes, objects in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: String,
    pub projects: Vec<ProjectConf>,
    pub engines: Vec<EngineConf>,
    pub tasks: Vec<TaskConf>,
    /// Things worth logging that did not stop the file (unknown keys, repeated keys,
    /// clamped values), each naming file and line.
    pub warnings: Vec<String>,
}

/// Admission checks (spec §4.1, fixed) then parse. `name` is as received from the client;
/// relative names resolve against the current dir. `allowed_uid` is the daemon's euid
/// (root is always allowed).
pub fn load(name: &str, allowed_uid: u32) -> Result<ConfigFile> {
    let (path, bytes) = admission::read(name, allowed_uid)?;
    parse_bytes(&bytes, &path)
}

/// Parse text; `file` is only used in messages.
pub fn parse(text: &str, file: &str) -> Result<ConfigFile> {
    parse_bytes(text.as_bytes(), file)
}

/// Parse the bytes of a file, which may not be UTF-8 (reported by line).
fn parse_bytes(bytes: &[u8], file: &str) -> Result<ConfigFile> {
    let mut diag = Diag::default();
    let groups = keyfile::read(bytes, file, &mut diag);
    let mut config = ConfigFile {
        path: file.to_string(),
        projects: Vec::new(),
        engines: Vec::new(),
        tasks: Vec::new(),
        warnings: Vec::new(),
    };
    let mut known_groups = 0;
    for group in &groups {
        let mut s = Section::new(group, file, &mut diag);
        match group.name.as_str() {
            "project" => config.projects.extend(project::read(&mut s)),
            "engine" => config.engines.extend(engine::read(&mut s)),
            "task" => config.tasks.extend(task::read(&mut s)),
            other => {
                let msg = format!(
                    "{file}:{}: [{}]: unknown group, ignored (etmem reads [project], [engine] and [task])",
                    group.line,
                    value::shown(other)
                );
                diag.warn(group.line, msg);
                continue;
            }
        }
        known_groups += 1;
        s.finish();
    }
    if known_groups == 0 {
        diag.error(
            usize::MAX,
            format!("{file}: no [project], [engine] or [task] group; nothing to add"),
        );
    }
    config.warnings = diag.finish()?;
    Ok(config)
}

#[cfg(test)]
mod test_support;
