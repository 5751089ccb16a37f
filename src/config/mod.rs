//! Config files: INI text into typed, validated project, engine and task settings.
//!
//! The syntax is GLib GKeyFile's, as upstream etmem read it (spec §4.2), with deliberate
//! fixes: each `[project]`, `[engine]` and `[task]` group is one object (upstream merged
//! repeated groups), every problem of a file is reported at once with its file and line,
//! integers are range-checked in full width, and file admission has no TOCTOU window.
//! Checks that need a project from another file are [`check_engine`] and [`check_task`].

mod admission;
pub mod damon_tuning;
mod diag;
mod engine;
mod keyfile;
mod positive;
mod project;
mod section;
mod task;
mod value;

pub use engine::{
    check_engine, CslideConf, DamonAction, DamonConf, DamonOps, EngineConf, EngineKind, PluginFile,
    PluginForm, ThirdpartyConf, BUILTIN_ENGINES, ENGINE_TYPES, REPLY_TIMEOUT_DEFAULT,
};
pub use positive::Positive;
pub use project::{PageScan, ProjectConf, PsiScan, RegionScan, ScanConf, Wmark};
pub use task::{
    check_task, is_builtin_engine, CslideTask, PsiTask, SlideTask, Target, TaskConf, TaskParams,
};
pub use value::{NAME_MAX, NAME_RULE};

use crate::error::Result;
use diag::Diag;
use section::Section;

/// Where an object's group starts, for messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The config file as named in messages (the resolved path for a loaded file).
    pub file: String,
    /// The 1-based line of the group's `[...]` header.
    pub line: usize,
}

/// Everything one config file describes, objects in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file's resolved path when loaded (or the path as given, when resolving it leads
    /// to another file: through `/proc/PID/root`), or the name given to [`parse`].
    pub path: String,
    /// The `[project]` groups.
    pub projects: Vec<ProjectConf>,
    /// The `[engine]` groups; their projects may be in this file or already added.
    pub engines: Vec<EngineConf>,
    /// The `[task]` groups; their projects and engines may be in this file or already
    /// added.
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

/// Parse the bytes of a file, which may not be UTF-8 (each such line is an error naming
/// it); `file` is only used in messages. [`load`] reads a file's bytes and calls this, so
/// it is the parser a config file really meets (public for the fuzz targets).
pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<ConfigFile> {
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
    find_repeats(&config, &mut diag);
    if known_groups == 0 {
        diag.error(
            usize::MAX,
            format!("{file}: no [project], [engine] or [task] group; nothing to add"),
        );
    }
    config.warnings = diag.finish()?;
    Ok(config)
}

/// Reports an object defined twice in one file (same project name; same engine name in a
/// project; same task name in an engine): adding the file would fail half-way, so say
/// where both are now.
fn find_repeats(config: &ConfigFile, diag: &mut Diag) {
    let projects = config
        .projects
        .iter()
        .map(|p| (format!("[project] name={}", p.name), &p.origin));
    let engines = config.engines.iter().map(|e| {
        let what = format!("[engine] {} of project {}", e.name(), e.project);
        (what, &e.origin)
    });
    let tasks = config.tasks.iter().map(|t| {
        let what = format!(
            "[task] name={} of engine {} in project {}",
            t.name, t.engine, t.project
        );
        (what, &t.origin)
    });
    let mut first_line: std::collections::HashMap<String, usize> = Default::default();
    for (what, origin) in projects.chain(engines).chain(tasks) {
        let msg = first_line.get(&what).map(|first| {
            format!(
                "{}:{}: {what}: already defined at line {first} of this file",
                origin.file, origin.line
            )
        });
        match msg {
            Some(msg) => diag.error(origin.line, msg),
            None => {
                first_line.insert(what, origin.line);
            }
        }
    }
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn repeated_groups_are_separate_objects_in_order() {
        let c = ok(include_str!("../../conf/example_config.yaml"));
        let engines: Vec<&str> = c.engines.iter().map(EngineConf::name).collect();
        assert_eq!(engines, ["slide", "cslide", "my_engine"]);
        let tasks: Vec<(&str, &str)> = c
            .tasks
            .iter()
            .map(|t| (t.engine.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            tasks,
            [
                ("slide", "background_slide"),
                ("cslide", "background_cslide"),
                ("my_engine", "backgroud_third")
            ]
        );
        let c = ok("[project]\nname=a\nloop=1\ninterval=1\nsleep=1\n[project]\nname=b\nloop=2\ninterval=1\nsleep=1\n");
        let names: Vec<(&str, usize)> = c
            .projects
            .iter()
            .map(|p| (p.name.as_str(), p.origin.line))
            .collect();
        assert_eq!(names, [("a", 1), ("b", 6)]);
    }

    #[test]
    fn objects_defined_twice_are_rejected() {
        let p = "[project]\nname=a\nloop=1\ninterval=1\nsleep=1\n";
        err_has(
            &format!("{p}{p}"),
            &format!("{F}:6: [project] name=a: already defined at line 1 of this file"),
        );
        let e = "[engine]\nname=slide\nproject=a\n";
        err_has(
            &format!("{e}{e}"),
            &format!("{F}:4: [engine] slide of project a: already defined at line 1"),
        );
        ok(&format!("{e}[engine]\nname=slide\nproject=b\n"));
        let t = "[task]\nproject=a\nengine=damon\nname=t\ntype=pid\nvalue=1\n";
        err_has(
            &format!("{t}{t}"),
            &format!(
                "{F}:7: [task] name=t of engine damon in project a: already defined at line 1"
            ),
        );
        ok(&format!("{t}{}", t.replace("engine=damon", "engine=x")));
    }

    #[test]
    fn unknown_keys_and_groups_warn() {
        let c =
            ok("[project]\nname=t\nloop=1\ninterval=1\nsleep=1\nloops=3\n[ task ]\nx=1\n[extra]\n");
        assert_eq!(
            c.warnings,
            [
                format!("{F}:6: [project] loops=3: unknown key in [project], ignored"),
                format!("{F}:7: [ task ]: unknown group, ignored (etmem reads [project], [engine] and [task])"),
                format!("{F}:9: [extra]: unknown group, ignored (etmem reads [project], [engine] and [task])"),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_logged_short_and_escaped() {
        let key = format!("k\u{1b}[31m{}", "x".repeat(1 << 20));
        let c = ok(&format!(
            "[project]\nname=t\nloop=1\ninterval=1\nsleep=1\n{key}=v\n"
        ));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings.len());
        let w = &c.warnings[0];
        assert!(w.len() < 200, "a {} byte warning", w.len());
        assert!(
            w.contains("k\\u{1b}[31mxxx") && w.contains("...=v: unknown key"),
            "{w}"
        );
        assert!(!w.contains('\u{1b}'), "{w}");
    }

    #[test]
    fn files_without_objects_are_rejected() {
        for text in ["", "# only a comment\n", "[other]\nk=v\n"] {
            assert_eq!(
                err(text),
                format!("{F}: no [project], [engine] or [task] group; nothing to add")
            );
        }
        let msg = err("k=v\n[project]\n");
        assert!(
            msg.starts_with(&format!("{F}:1: k=v: a key before the first [group] line")),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{F}:2: [project] name is missing")),
            "{msg}"
        );
        err_has(
            "[engine]\nname=slide\nproject=p\njunk\n",
            &format!("{F}:4: junk: expected key=value"),
        );
    }

    #[test]
    fn crlf_bom_escapes_and_trailing_blanks() {
        let text = "\u{feff}[project]\r\nname = test \r\nloop=3   \r\ninterval=\t2\r\nsleep=1\r\n";
        let c = ok(text);
        assert_eq!(c.projects[0].name, "test");
        assert_eq!(
            c.projects[0].scan,
            ScanConf::Page(PageScan {
                loops: 3,
                interval: 2,
                sleep: 1
            })
        );
        let c =
            ok("[task]\nproject=p\nengine=memdcd\nname=m\ntype=pid\nvalue=1\nSock=\\sa\\\\b\\t\n");
        assert_eq!(
            c.tasks[0].params,
            TaskParams::Memdcd {
                sock: " a\\b\t".into()
            }
        );
        assert!(parse_bytes(b"[project]\nname=\xff\n", F)
            .unwrap_err()
            .msg
            .contains(&format!("{F}:2: this line is not valid UTF-8 text")));
    }

    #[test]
    fn every_problem_in_file_order() {
        let text = "[task]\nproject=p\nengine=slide\nname=t\ntype=pid\nvalue=x\nT=999\n[project]\nname=p\nloop=0\ninterval=1\nsleep=1\n";
        let msg = err(text);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        assert!(lines[0].starts_with(&format!("{F}:6: [task] value=x: must be a process id")));
        assert!(lines[1].starts_with(&format!(
            "{F}:7: [task] T=999: must be an integer from 0 to 360"
        )));
        assert!(lines[2].starts_with(&format!(
            "{F}:10: [project] loop=0: must be an integer from 1 to 120"
        )));
    }

    #[test]
    fn slide_example() {
        let c = ok(include_str!("../../conf/slide_conf.yaml"));
        assert_eq!(c.projects.len(), 1);
        let p = &c.projects[0];
        assert_eq!(
            (p.name.as_str(), p.sysmem_threshold, p.swapcache_wmark),
            ("test", Some(50), None)
        );
        assert_eq!(
            p.scan,
            ScanConf::Page(PageScan {
                loops: 1,
                interval: 1,
                sleep: 1
            })
        );
        assert_eq!(c.engines.len(), 1);
        assert_eq!(
            (c.engines[0].kind.clone(), c.engines[0].project.as_str()),
            (EngineKind::Slide, "test")
        );
        let t = &c.tasks[0];
        assert_eq!(
            (t.name.as_str(), t.engine.as_str(), t.target.clone()),
            ("background_slide", "slide", Target::Name("mysql".into()))
        );
        assert_eq!((t.max_threads, t.swap_flag), (1, true));
        assert_eq!(
            t.params,
            TaskParams::Slide(SlideTask {
                t: 1,
                swap_threshold: Some(10 << 30),
                dram_percent: None,
                pressure_limit: None,
                resident_floor: None,
                refault_hold: None,
            })
        );
        // The guide's *_vmark typos are unknown keys.
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("[project] swapcache_high_vmark=10: unknown key"));
        assert!(c.warnings[1].contains("[project] swapcache_low_vmark=6: unknown key"));
        assert!(check_engine(&c.engines[0], p).is_ok());
        assert!(check_task(t, p).is_ok());
    }

    #[test]
    fn cslide_example() {
        let c = ok(include_str!("../../conf/cslide_conf.yaml"));
        assert!(c.projects.is_empty());
        let EngineKind::Cslide(e) = &c.engines[0].kind else {
            panic!("{:?}", c.engines)
        };
        assert_eq!(
            e,
            &CslideConf {
                node_pairs: vec![(2, 0), (3, 1)],
                hot_threshold: 1,
                node_mig_quota: 1024,
                node_hot_reserve: 1024
            }
        );
        let t = &c.tasks[0];
        assert_eq!(
            (t.project.as_str(), t.name.as_str(), t.target.clone()),
            ("test", "background_cslide", Target::Pid(23456))
        );
        assert_eq!(
            t.params,
            TaskParams::Cslide(CslideTask {
                vm_flags: vec!["ht".into()],
                anon_only: false,
                ign_host: false
            })
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("name=23456: read as value=23456"));
    }

    #[test]
    fn thirdparty_example() {
        let c = ok(include_str!("../../conf/thirdparty_conf.yaml"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let EngineKind::Thirdparty(e) = &c.engines[0].kind else {
            panic!("{:?}", c.engines)
        };
        assert_eq!(e.eng_name, "my_engine");
        assert_eq!(
            e.form,
            PluginForm::Library {
                libname: PluginFile {
                    path: "/usr/lib/etmem_fetch/my_engine.so".into(),
                    at: format!("{F}:9: [engine] libname=/usr/lib/etmem_fetch/my_engine.so")
                },
                ops_name: "my_engine_ops".into(),
                ops_at: format!("{F}:10: [engine] ops_name=my_engine_ops"),
            }
        );
        assert!(e
            .keys
            .contains(&("engine_private_key".into(), "engine_private_value".into())));
        let t = &c.tasks[0];
        assert_eq!(
            (t.engine.as_str(), t.name.as_str(), t.target.clone()),
            ("my_engine", "background_third", Target::Pid(12345))
        );
        let TaskParams::Thirdparty { keys } = &t.params else {
            panic!("{:?}", t.params)
        };
        assert!(keys.contains(&("task_private_key".into(), "task_private_value".into())));
    }

    #[test]
    fn thirdparty_exec_example() {
        let c = ok(include_str!("../../conf/thirdparty_exec_conf.yaml"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let EngineKind::Thirdparty(e) = &c.engines[0].kind else {
            panic!("{:?}", c.engines)
        };
        assert_eq!((e.eng_name.as_str(), e.reply_timeout), ("swap_idle", 10));
        assert_eq!(e.form.file().path, "/usr/libexec/etmem/swap_idle_policy.sh");
        assert!(matches!(e.form, PluginForm::Process { .. }));
        let t = &c.tasks[0];
        assert_eq!(
            (t.engine.as_str(), t.target.clone()),
            ("swap_idle", Target::Name("mysql".into()))
        );
        assert!(check_engine(&c.engines[0], &c.projects[0]).is_ok());
        assert!(check_task(t, &c.projects[0]).is_ok());
    }

    #[test]
    fn damon_example() {
        let c = ok(include_str!("../../conf/damon_conf.yaml"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let p = &c.projects[0];
        assert_eq!(
            p.scan,
            ScanConf::Region(RegionScan {
                sample_interval: 5000,
                aggr_interval: 100_000,
                update_interval: 1_000_000,
                min_nr_regions: 10,
                max_nr_regions: 1000
            })
        );
        let EngineKind::Damon(d) = &c.engines[0].kind else {
            panic!("{:?}", c.engines)
        };
        assert_eq!(
            d,
            &DamonConf {
                min_size: 0,
                max_size: 4_294_967_295,
                min_acc: 0,
                max_acc: 2,
                min_age: 0,
                max_age: 4_294_967_295,
                action: DamonAction::Pageout,
                target_nid: None,
                operations: DamonOps::Auto,
                tuning: Default::default(),
            }
        );
        assert_eq!(
            (c.tasks[0].target.clone(), c.tasks[0].params.clone()),
            (Target::Name("mysqld".into()), TaskParams::Damon)
        );
        assert!(check_engine(&c.engines[0], p).is_ok());
    }

    #[test]
    fn combined_example() {
        let c = ok(include_str!("../../conf/example_config.yaml"));
        let p = &c.projects[0];
        assert_eq!((p.name.as_str(), p.sysmem_threshold), ("test", None));
        for e in &c.engines {
            assert!(check_engine(e, p).is_ok());
        }
        for t in &c.tasks {
            assert!(check_task(t, p).is_ok());
        }
        assert_eq!(c.tasks[1].target, Target::Pid(23456));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }
}
