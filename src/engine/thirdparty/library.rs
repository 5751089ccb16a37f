//! Upstream's form of a thirdparty engine: a shared object (`libname=`) whose `struct
//! etmem_engine_ops` (`ops_name=`, `include/etmem/engine.h`) etmemd loads at `obj add`
//! and drives through its nine callbacks at the times of spec §8.2 and §5.2. Only in a
//! build with the `dlopen` feature, which a static binary cannot have.
//!
//! The plug-in does its own scanning (with `libetmemd_scan.so`) and acting, in threads of
//! its own that `start_task` starts; etmemd's part is the object model around it. While
//! a task is started, each cycle finds its processes (the one `type=`/`value=` name, then
//! its direct children) and tells the plug-in which came (`alloc_pid_params`) and which
//! went (`free_pid_params`). Upstream declared those two but never called them.
//!
//! The callbacks of one engine run one at a time, under the lock of its task list; what
//! the plug-in may call back (`etmem_task_pids` and the like) takes no lock of ours but
//! the short ones of the handle table and of each task's pid list, so a callback that
//! calls back cannot deadlock.

use std::sync::{Arc, Mutex};

use crate::config::{
    PluginForm, ProjectConf, ScanConf, Target, TaskConf, TaskParams, ThirdpartyConf,
};
use crate::engine::targets::{Held, Identity};
use crate::engine::task_run::TaskRun;
use crate::engine::{Command, Engine};
use crate::error::{lock, Error, Kind, Object, Result};
use crate::sys::plugin::handles::{c_string, Handle, Subject};
use crate::sys::plugin::ops::{Blame, Plugin};
use crate::sys::trusted_file::TrustedFile;
use crate::types::Pid;

/// A `.so` plug-in engine.
pub struct Library {
    name: String,
    /// The library's file, resolved, for `project show -v`.
    file: String,
    tasks: Mutex<Vec<LibTask>>,
    eng: Handle,
    /// Last: the library is unloaded after every handle is gone.
    plugin: Plugin,
}

/// A task of the engine, as the plug-in knows it.
struct LibTask {
    name: String,
    handle: Handle,
    started: bool,
    /// The processes the plug-in was told about, main first.
    recorded: Vec<Recorded>,
    /// Their pids, for `etmem_task_pids` (read by the plug-in's threads at any time).
    pids: Arc<Mutex<Vec<u32>>>,
}

/// A process of a started task that `alloc_pid_params` accepted.
struct Recorded {
    pid: Pid,
    identity: Identity,
    handle: Handle,
}

/// The key-value pairs of a config group as C strings.
fn pairs(keys: &[(String, String)]) -> Vec<(std::ffi::CString, std::ffi::CString)> {
    keys.iter()
        .map(|(k, v)| (c_string(k), c_string(v)))
        .collect()
}

/// The project's settings as `etmem_project_get` gives them.
fn project_pairs(p: &ProjectConf) -> Vec<(String, String)> {
    let mut out = vec![
        ("name".to_string(), p.name.clone()),
        ("scan_type".into(), p.scan.type_word().into()),
    ];
    match p.scan {
        ScanConf::Page(s) => out.extend([
            ("loop".into(), s.loops.to_string()),
            ("interval".into(), s.interval.to_string()),
            ("sleep".into(), s.sleep.to_string()),
        ]),
        ScanConf::Psi(s) => out.push(("interval".into(), s.interval.to_string())),
        ScanConf::Region(_) => {}
    }
    if let Some(t) = p.sysmem_threshold {
        out.push(("sysmem_threshold".into(), t.to_string()));
    }
    if let Some(w) = p.swapcache_wmark {
        out.push(("swapcache_high_wmark".into(), w.high.to_string()));
        out.push(("swapcache_low_wmark".into(), w.low.to_string()));
    }
    out
}

/// What a callback's non-zero result means, for messages.
fn refused(callback: &str, n: i32) -> String {
    format!("the plug-in's {callback} returned {n}")
}

/// The engine for a `.so` plug-in of `project` whose file `file` passed the plug-in
/// checks: load it from the open file that was checked, just now (what its path leads
/// to by now does not matter), and call its `fill_eng_params`. A refusal names the config file, line and
/// key it is about (`libname`, or `ops_name` for the symbol) and the reason.
pub fn load(
    conf: &ThirdpartyConf,
    project: &ProjectConf,
    file: TrustedFile,
) -> Result<Box<dyn Engine>> {
    let PluginForm::Library {
        libname,
        ops_name,
        ops_at,
    } = &conf.form
    else {
        return Err(Error::invalid("not a .so plug-in"));
    };
    let refuse =
        |at: &str, e: Error| Error::invalid(format!("{at}: {}", e.msg)).about(Object::Engine);
    let fd = file
        .fd()
        .try_clone_to_owned()
        .map_err(|e| refuse(&libname.at, Error::io("dup the plug-in's descriptor", e)))?;
    let plugin = Plugin::load(fd, file.resolved(), ops_name).map_err(|(blame, e)| match blame {
        Blame::Library => refuse(&libname.at, e),
        Blame::Symbol => refuse(ops_at, e),
    })?;
    let engine =
        Library::new(conf, project, plugin, file.resolved()).map_err(|e| refuse(&libname.at, e))?;
    Ok(Box::new(engine))
}

impl Library {
    /// The engine of a loaded plug-in: `fill_eng_params` with the `[engine]` group. The
    /// error's message is the reason alone.
    fn new(
        conf: &ThirdpartyConf,
        project: &ProjectConf,
        plugin: Plugin,
        file: &str,
    ) -> Result<Library> {
        let eng = Handle::new(Subject::Engine {
            name: c_string(&conf.eng_name),
            project: pairs(&project_pairs(project)),
        });
        let config = Handle::new(Subject::Config(pairs(&conf.keys)));
        match plugin.fill_eng_params(&config, &eng) {
            Some(n) if n != 0 => {
                return Err(Error::invalid(format!(
                    "{} (it refused the keys of [engine])",
                    refused("fill_eng_params", n)
                )));
            }
            _ => {}
        }
        Ok(Library {
            name: conf.eng_name.clone(),
            file: file.to_string(),
            tasks: Mutex::new(Vec::new()),
            eng,
            plugin,
        })
    }

    /// `start_task` for one task; an error saying why when it refused or is missing.
    fn start_one(&self, t: &mut LibTask) -> Result<()> {
        match self.plugin.start_task(&self.eng, &t.handle) {
            Some(0) => {
                t.started = true;
                Ok(())
            }
            Some(n) => Err(Error::new(
                Kind::Io,
                format!("task {}: {}", t.name, refused("start_task", n)),
            )),
            None => Err(self.cannot_start()),
        }
    }

    fn cannot_start(&self) -> Error {
        Error::new(
            Kind::Unsupported,
            format!(
                "engine {}: the plug-in has no start_task, so its project cannot start",
                self.name
            ),
        )
    }

    /// `stop_task`, then `free_pid_params` for each of its processes, if it runs.
    fn stop_one(&self, t: &mut LibTask) {
        if !std::mem::take(&mut t.started) {
            return;
        }
        if !self.plugin.stop_task(&self.eng, &t.handle) {
            crate::log_debug!("engine {}: the plug-in has no stop_task", self.name);
        }
        for r in t.recorded.drain(..) {
            self.plugin.free_pid_params(&self.eng, &r.handle);
        }
        lock(&t.pids).clear();
    }

    /// This cycle's processes of a started task `t`: tell the plug-in which are new
    /// and which are gone.
    fn record(&self, t: &mut LibTask, found: &[Held]) {
        let (kept, gone): (Vec<Recorded>, Vec<Recorded>) =
            std::mem::take(&mut t.recorded).into_iter().partition(|r| {
                found
                    .iter()
                    .any(|h| h.pid() == r.pid && h.identity() == r.identity)
            });
        for r in gone {
            self.plugin.free_pid_params(&self.eng, &r.handle);
        }
        t.recorded = kept;
        for h in found {
            if t.recorded.iter().any(|r| r.pid == h.pid()) {
                continue;
            }
            let handle = Handle::new(Subject::Pid {
                pid: h.pid() as u32,
                task: t.handle.id(),
            });
            match self.plugin.alloc_pid_params(&self.eng, &handle) {
                Some(n) if n != 0 => crate::log_debug!(
                    "engine {} task {}: {} for process {}",
                    self.name,
                    t.name,
                    refused("alloc_pid_params", n),
                    h.pid()
                ),
                _ => t.recorded.push(Recorded {
                    pid: h.pid(),
                    identity: h.identity(),
                    handle,
                }),
            }
        }
        // Main process first, as found.
        crate::sort::stable_by_key(&mut t.recorded, |r| {
            found.iter().position(|h| h.pid() == r.pid)
        });
        *lock(&t.pids) = t.recorded.iter().map(|r| r.pid as u32).collect();
    }
}

impl Engine for Library {
    fn wants_children(&self) -> bool {
        true
    }

    fn check_start(&self, _project: &ProjectConf) -> Result<()> {
        if self.plugin.can_start() {
            Ok(())
        } else {
            Err(self.cannot_start())
        }
    }

    fn start_tasks(&self, _project: &ProjectConf, tasks: &[&TaskConf]) -> Result<()> {
        let mut list = lock(&self.tasks);
        let mut started = Vec::new();
        for (i, t) in list.iter_mut().enumerate() {
            if !tasks.iter().any(|c| c.name == t.name) {
                continue;
            }
            if let Err(e) = self.start_one(t) {
                // Nothing of a failed start keeps running (upstream left the tasks
                // started before the failure running).
                for j in started {
                    self.stop_one(&mut list[j]);
                }
                return Err(e);
            }
            started.push(i);
        }
        Ok(())
    }

    fn task_added(&self, _project: &ProjectConf, task: &TaskConf, started: bool) -> Result<()> {
        let keys = match &task.params {
            TaskParams::Thirdparty { keys } => keys.as_slice(),
            _ => &[],
        };
        let value = match &task.target {
            Target::Pid(p) => p.to_string(),
            Target::Name(n) | Target::Cgroups(n) => n.clone(),
        };
        let kind = match task.target {
            Target::Pid(_) => "pid",
            _ => "name",
        };
        let pids = Arc::new(Mutex::new(Vec::new()));
        let shown = pids.clone();
        let handle = Handle::new(Subject::Task {
            name: c_string(&task.name),
            kind: c_string(kind),
            value: c_string(&value),
            max_threads: i32::try_from(task.max_threads).unwrap_or(i32::MAX),
            swap_flag: i32::from(task.swap_flag),
            engine: self.eng.id(),
            pids: Box::new(move || lock(&shown).clone()),
        });
        let mut t = LibTask {
            name: task.name.clone(),
            handle,
            started: false,
            recorded: Vec::new(),
            pids,
        };
        let mut list = lock(&self.tasks);
        let config = Handle::new(Subject::Config(pairs(keys)));
        if let Some(n) = self.plugin.fill_task_params(&config, &t.handle) {
            if n != 0 {
                return Err(Error::invalid(format!(
                    "task {}: {}",
                    task.name,
                    refused("fill_task_params", n)
                )));
            }
        }
        if started {
            if let Err(e) = self.start_one(&mut t) {
                self.plugin.clear_task_params(&t.handle);
                return Err(e);
            }
        }
        list.push(t);
        Ok(())
    }

    fn task_deleted(&self, task: &TaskConf) {
        let mut list = lock(&self.tasks);
        if let Some(i) = list.iter().position(|t| t.name == task.name) {
            let mut t = list.remove(i);
            self.stop_one(&mut t);
            self.plugin.clear_task_params(&t.handle);
        }
    }

    fn note(&self, _project: &ProjectConf, _task: &TaskConf) -> Option<String> {
        Some(format!(
            "a .so plug-in ({}): it scans and acts in threads of its own; etmemd finds \
             the task's processes each cycle",
            self.file
        ))
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        let mut list = lock(&self.tasks);
        let Some(t) = list.iter_mut().find(|t| t.name == run.task.name) else {
            return Ok(());
        };
        if !t.started {
            return Ok(());
        }
        match run.resolve(true) {
            Ok(found) => {
                self.record(t, &found);
                Ok(())
            }
            Err(e) => {
                self.record(t, &[]);
                Err(e)
            }
        }
    }

    fn stopped(&self) {
        let mut list = lock(&self.tasks);
        for t in list.iter_mut() {
            self.stop_one(t);
        }
    }

    fn command(&self, cmd: &Command) -> Result<String> {
        if !self.plugin.has_commands() {
            return Err(Error::usage(format!(
                "engine {}: the plug-in has no command handler (eng_mgt_func)",
                self.name
            )));
        }
        let list = lock(&self.tasks);
        let task = cmd
            .task
            .and_then(|name| list.iter().find(|t| t.name == name))
            .map(|t| &t.handle);
        let answer = Handle::new(Subject::Answer(Mutex::new(Vec::new())));
        let n = self
            .plugin
            .eng_mgt_func(&self.eng, task, cmd.word, &answer)
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&answer.answer()).into_owned();
        if n == 0 {
            Ok(text)
        } else {
            Err(Error::usage(format!(
                "{text}engine {}: {}",
                self.name,
                refused(&format!("eng_mgt_func for {:?}", cmd.word), n)
            )))
        }
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        let mut list = lock(&self.tasks);
        for mut t in list.drain(..) {
            self.stop_one(&mut t);
            self.plugin.clear_task_params(&t.handle);
        }
        drop(list);
        self.plugin.clear_eng_params(&self.eng);
    }
}
