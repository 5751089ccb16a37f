//! Thirdparty engines (spec §8.2): a policy of the user's own. Ours runs as a policy
//! process (`exec=`): etmemd starts the program at project start, tells it the engine's
//! and tasks' keys, and every cycle sends it each process's scan; the program answers
//! which ranges to swap out or move to a NUMA node, and etmemd checks the answer against
//! the scan and does the work itself (the plug-in needs no privilege and touches nothing).
//! The protocol is `etmem-policy(7)`: `protocol.rs` writes and reads it, `session.rs`
//! holds one conversation, `process.rs` the child and its pipes, `answer.rs` the checks
//! on an answer.
//!
//! Upstream's form, a `.so` with `libname=` and `ops_name=`, needs a build with the
//! `dlopen` feature (`library.rs`); both forms' files are checked at `obj add`
//! ([`build`]).
//!
//! Containment: a plug-in that exits, hangs past `reply_timeout`, floods, or talks
//! nonsense fails its own engine, whose tasks then say why in `project show -v`, until
//! the project is stopped and started again (no restart while it runs); other engines and
//! the daemon go on. An answer that asks for a range outside the scan is refused whole
//! (the task's error for that cycle); the plug-in goes on.

mod answer;
#[cfg(feature = "dlopen")]
pub mod library;
mod process;
pub mod protocol;
mod session;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use self::session::{Fault, Session};
use super::cold::{self, ScanSpec, Watch};
use super::targets::Held;
use super::task_run::TaskRun;
use super::task_status::CycleStats;
use super::{claim, Command, Engine};
use crate::act::migrate::{Migrator, BATCH};
use crate::config::{PluginForm, ProjectConf, ScanConf, TaskConf, ThirdpartyConf};
use crate::error::{Error, Kind, Object, Result};
use crate::sys::numa;
use crate::sys::trusted_file::TrustedFile;
use crate::types::{PageSize, Pid};

/// The engine for a thirdparty `[engine]` group, its plug-in's file opened and checked
/// (`obj add` calls this before it adds anything): a regular file owned by root:root of
/// mode 0500 or 0700. A refusal names the config file, line, key and reason. `project`
/// is what a `.so` plug-in reads with `etmem_project_get`.
#[cfg_attr(not(feature = "dlopen"), allow(unused_variables))]
pub fn build(conf: &ThirdpartyConf, project: &ProjectConf) -> Result<Box<dyn Engine>> {
    let at = &conf.form.file().at;
    let refuse = |why: &str| Error::invalid(format!("{at}: {why}")).about(Object::Engine);
    let open = || TrustedFile::open(&conf.form.file().path).map_err(|e| refuse(&e.msg));
    match &conf.form {
        PluginForm::Process { .. } => Ok(Box::new(Policy::new(conf.clone(), open()?))),
        #[cfg(feature = "dlopen")]
        PluginForm::Library { .. } => library::load(conf, project, open()?),
        #[cfg(not(feature = "dlopen"))]
        PluginForm::Library { .. } => Err(refuse(
            "this etmemd is built without the dlopen feature, so it cannot load .so \
             plug-ins: build it with --features dlopen (a dynamically linked build), or \
             run the policy as a process with exec= (see etmem-policy(7))",
        )),
    }
}

/// Where a policy process stands.
enum State {
    /// Not running: before the first project start, or after a stop.
    Idle,
    /// Running, and talking.
    Running(Session),
    /// It broke while the project ran; why. It stays so until the project stops.
    Failed(String),
}

/// A thirdparty engine whose policy is a process (`exec=`).
pub struct Policy {
    conf: ThirdpartyConf,
    file: TrustedFile,
    state: Mutex<State>,
}

impl Policy {
    fn new(conf: ThirdpartyConf, file: TrustedFile) -> Policy {
        Policy {
            conf,
            file,
            state: Mutex::new(State::Idle),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        crate::error::lock(&self.state)
    }

    /// Run `f` on the session, as the state allows; a broken session fails the engine.
    fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> Result<T, Fault>) -> Result<T> {
        let mut st = self.state();
        let session = match &mut *st {
            State::Running(s) => s,
            State::Failed(why) => return Err(self.failed(why)),
            State::Idle => {
                return Err(Error::new(
                    Kind::State,
                    format!(
                        "engine {} is not running: an engine added while its project runs \
                         starts with the project's next start",
                        self.conf.eng_name
                    ),
                ))
            }
        };
        match f(session) {
            Ok(v) => Ok(v),
            Err(Fault::Refused(e)) => Err(Error::new(
                Kind::Invalid,
                format!("{} refused: {e}", session.who()),
            )),
            Err(Fault::Broken(why)) => {
                let why = format!("{} {why}", session.who());
                crate::log_error!("engine {}: {why}; the engine stops", self.conf.eng_name);
                // Dropping the session kills the process.
                *st = State::Failed(why.clone());
                Err(self.failed(&why))
            }
        }
    }

    fn failed(&self, why: &str) -> Error {
        Error::new(
            Kind::Io,
            format!(
                "engine {} failed: {why}; it stays failed until the project is stopped and \
                 started again",
                self.conf.eng_name
            ),
        )
    }

    /// One process of a task: claim it, scan it, ask the plug-in, check the answer, act;
    /// what it did is added to `total`. The backends used, or `None` when the process
    /// was skipped (the reason is in `total`).
    fn one_process(
        &self,
        run: &TaskRun,
        (loops, interval): (u32, u32),
        held: &Held,
        total: &mut CycleStats,
    ) -> Result<Option<String>> {
        let pid = held.pid();
        let skip = |total: &mut CycleStats, why: &str| {
            total.skipped.push(format!("pid {pid}: {why}"));
            Ok(None)
        };
        let Some(_claim) = claim::claim(pid) else {
            return skip(total, "another task is scanning it");
        };
        let target = held.check()?;
        let spec = ScanSpec {
            backend: run.task.scan_backend,
            loops,
            interval: Duration::from_secs(interval.into()),
            watch: Watch::Swappable {
                only_marked: run.task.swap_flag,
            },
        };
        let stop = || run.should_stop();
        let scanned = cold::scan(target, &spec, &stop);
        if run.should_stop() {
            return skip(total, "stopped");
        }
        let scanned = scanned?;
        let actions = self.with_session(|s| {
            if stop() {
                return Ok(None);
            }
            s.scan(&run.task.name, pid, loops, &scanned, &stop)
                .map(Some)
        })?;
        let Some(actions) = actions else {
            return skip(total, "stopped");
        };
        let plan = answer::plan(&actions, &scanned, &numa::online_nodes()).map_err(|e| {
            Error::invalid(format!(
                "the plug-in's answer for pid {pid} is refused, nothing of it was done: {e}"
            ))
        })?;
        total.pages_scanned += scanned.base_pages();
        total.cold_pages += plan.swap_bytes() / PageSize::Base.bytes();
        // The scan and the answer took a while: check again before acting.
        let target = held.check()?;
        let mut backends = scanned.backend.name().to_string();
        if !plan.swap.is_empty() {
            let swapped = cold::swap_out(target, run.task.swap_backend, &plan.swap, &stop)?;
            total.requested_bytes += swapped.report.requested_bytes;
            total.swapped_bytes += swapped.report.advised_bytes;
            total.vmswap_growth += swapped.vmswap_growth();
            total.keep(&swapped.report.skipped);
            backends = format!("{backends}+{}", swapped.backend.name());
        }
        let mut migrator = Migrator::new();
        for &(node, range, size) in &plan.moves {
            let step = size.bytes();
            let pages: Vec<(u64, PageSize)> = (range.start..range.end)
                .step_by(step as usize)
                .map(|a| (a, size))
                .collect();
            for chunk in pages.chunks(BATCH * 16) {
                let report = migrator.move_to(target, chunk, node, &stop)?;
                total.moved(node, report.moved.bytes);
            }
        }
        Ok(Some(backends))
    }
}

impl Engine for Policy {
    fn wants_children(&self) -> bool {
        true
    }

    fn check_start(&self, project: &ProjectConf) -> Result<()> {
        if !matches!(project.scan, ScanConf::Page(_)) {
            return Err(Error::invalid("a thirdparty engine needs scan_type=page"));
        }
        let file = self.conf.form.file();
        self.file
            .recheck()
            .map_err(|e| Error::invalid(format!("{}: {}", file.at, e.msg)))?;
        if !self.file.path_leads_here(&file.path) {
            crate::log_warn!(
                "engine {}: {} now leads to another file than the one checked at obj add; \
                 the file checked ({}) runs",
                self.conf.eng_name,
                file.path,
                self.file.resolved()
            );
        }
        Ok(())
    }

    fn start_tasks(&self, _project: &ProjectConf, tasks: &[&TaskConf]) -> Result<()> {
        let session = Session::open(&self.file, &self.conf, tasks)
            .map_err(|why| Error::new(Kind::Io, format!("{}: {why}", self.conf.form.file().at)))?;
        crate::log_info!(
            "engine {}: {} runs, protocol version {}{}",
            self.conf.eng_name,
            session.who(),
            session.hello().version,
            if session.hello().command {
                ", with engine commands"
            } else {
                ""
            }
        );
        *self.state() = State::Running(session);
        Ok(())
    }

    fn note(&self, _project: &ProjectConf, _task: &TaskConf) -> Option<String> {
        let what = match &*self.state() {
            State::Running(s) => format!("{} answers", s.who()),
            _ => format!("{} starts with the project", self.file.resolved()),
        };
        Some(format!("a policy process: {what}"))
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        let ScanConf::Page(scan) = &run.project.scan else {
            return Err(Error::invalid("thirdparty task outside a page project"));
        };
        let stop = || run.should_stop();
        self.with_session(|s| {
            if stop() {
                Ok(())
            } else {
                s.announce(&run.task, &stop)
            }
        })?;
        let held = run.resolve(true)?;
        let main = held[0].pid();
        let mut total = CycleStats {
            workers: 1,
            ..CycleStats::default()
        };
        let mut backends = None;
        let mut errors: Vec<(Pid, Error)> = Vec::new();
        for h in &held {
            if run.should_stop() {
                break;
            }
            let pid = h.pid();
            match self.one_process(run, (scan.loops, scan.interval), h, &mut total) {
                Ok(None) => {}
                Ok(Some(b)) => backends = Some(b),
                // A child that exited between lookup and scan is not the task's failure.
                Err(e) if e.kind == Kind::Gone && pid != main => {
                    total.skipped.push(format!("pid {pid}: {e}"))
                }
                Err(e) => {
                    let engine_failed = matches!(*self.state(), State::Failed(_));
                    errors.push((pid, e));
                    if engine_failed {
                        break;
                    }
                }
            }
        }
        let mut st = run.status();
        st.end_cycle(total);
        if backends.is_some() {
            st.backend = backends;
        }
        drop(st);
        if matches!(*self.state(), State::Failed(_)) {
            // The engine's own failure is said once, not per process.
            if let Some((_, e)) = errors.pop() {
                return Err(e);
            }
        }
        let Some(kind) = errors.first().map(|(_, e)| e.kind) else {
            return Ok(());
        };
        let all: Vec<String> = errors
            .iter()
            .map(|(p, e)| format!("pid {p}: {e}"))
            .collect();
        Err(Error::new(kind, all.join("; ")))
    }

    fn stopped(&self) {
        let old = std::mem::replace(&mut *self.state(), State::Idle);
        if let State::Running(s) = old {
            s.close();
        }
    }

    fn task_deleted(&self, task: &TaskConf) {
        if !matches!(*self.state(), State::Running(_)) {
            return;
        }
        let name = &task.name;
        if let Err(e) = self.with_session(|s| s.forget(name)) {
            crate::log_warn!("engine {}: deleting task {name}: {e}", self.conf.eng_name);
        }
    }

    fn command(&self, cmd: &Command) -> Result<String> {
        let has_handler = match &*self.state() {
            State::Running(s) => s.hello().command,
            _ => true,
        };
        if !has_handler {
            return Err(Error::usage(format!(
                "engine {} has no command handler: its plug-in's hello did not offer \"{}\"",
                cmd.engine,
                protocol::COMMAND_FEATURE
            )));
        }
        self.with_session(|s| s.command(cmd))
            .map_err(|e| match e.kind {
                // The plug-in's refusal is upstream's non-zero eng_mgt_func: invalid.
                Kind::Invalid => Error::usage(e.into_info().msg),
                _ => e,
            })
    }
}
