//! Engines: the policies that decide, each cycle, what to do with a task's processes.
//! One trait, one implementation per engine type (slide, cslide, damon, psi, thirdparty,
//! memdcd), chosen from the engine's config.
//!
//! The contract between the daemon and an engine lives here too, so that engines depend
//! on nothing above them: [`Engine`], the [`task_run::TaskRun`] a cycle is handed, the
//! [`task_status::TaskStatus`] and [`task_status::CycleStats`] it reports, and the
//! [`stop::Stop`] flag that ends it.

pub mod claim;
pub mod cold;
pub mod cslide;
pub mod damon;
pub mod pending;
pub mod psi;
pub mod refaults;
pub mod slide;
pub mod stop;
pub mod swap_gate;
pub mod targets;
pub mod task_run;
pub mod task_status;
pub mod thirdparty;

use crate::config::{EngineConf, EngineKind, ProjectConf, TaskConf};
use crate::engine::task_run::TaskRun;
use crate::error::{Error, Result};

/// A policy engine. The scheduler calls `run_cycle` once per cycle for each task.
pub trait Engine: Send + Sync {
    /// Whether the direct children of a task's process are worked on too.
    fn wants_children(&self) -> bool;

    /// Check, at project start, that this engine can run on this machine.
    fn check_start(&self, project: &ProjectConf) -> Result<()>;

    /// Check, at project start and after [`Engine::check_start`], that one of the
    /// engine's tasks can run here (psi: its cgroups have the files it needs).
    fn check_task_start(&self, _project: &ProjectConf, _task: &TaskConf) -> Result<()> {
        Ok(())
    }

    /// Start what the engine runs in the kernel for the whole project, after every check
    /// passed, so that a refusal fails `project start` (the damon engine's kdamond)
    /// instead of the first cycle.
    fn start_tasks(&self, _project: &ProjectConf, _tasks: &[&TaskConf]) -> Result<()> {
        Ok(())
    }

    /// What `project show` should say about tasks of this engine on this machine.
    fn note(&self, project: &ProjectConf, task: &TaskConf) -> Option<String>;

    /// One cycle for one task: find its processes and act on them.
    fn run_cycle(&self, run: &TaskRun) -> Result<()>;

    /// Whether one cycle takes all of the engine's tasks together, through
    /// [`Engine::run_joint_cycle`]: cslide's migration quotas are per node pair and
    /// cycle, shared by its tasks. Otherwise each task runs on its own.
    fn joint(&self) -> bool {
        false
    }

    /// One cycle for all of a joint engine's tasks: the outcome of each, in the order
    /// given.
    fn run_joint_cycle(&self, runs: &[TaskRun]) -> Vec<Result<()>> {
        runs.iter().map(|r| self.run_cycle(r)).collect()
    }

    /// The project stopped, was deleted, the daemon shuts down, or a start failed after
    /// this engine's [`Engine::check_start`]: release what the engine holds in the kernel
    /// (the damon engine's kdamond). Called with no cycle running.
    fn stopped(&self) {}

    /// A task of this engine is being added (`obj add`), its project `started` or not:
    /// take it on (a `.so` plug-in reads the task's keys, and starts the task in a
    /// started project). An error refuses the whole file, and nothing of the task stays.
    fn task_added(&self, _project: &ProjectConf, _task: &TaskConf, _started: bool) -> Result<()> {
        Ok(())
    }

    /// A task of this engine was deleted (`obj del`), while its project runs or not: let
    /// go of what the engine keeps for it (a policy process is told to stop and forget
    /// it). Its cycle, if one is under way, has been told to stop.
    fn task_deleted(&self, _task: &TaskConf) {}

    /// The engine's own command (`etmem engine CMD`): the text to send back. The daemon
    /// has checked that the project runs and that the task, if named, is the engine's.
    fn command(&self, cmd: &Command) -> Result<String> {
        Err(Error::usage(format!(
            "engine {} has no command {:?}",
            cmd.engine, cmd.word
        )))
    }
}

/// [`Engine::run_cycle`] of a joint engine: its joint cycle with one task.
pub fn run_alone(engine: &dyn Engine, run: &TaskRun) -> Result<()> {
    engine
        .run_joint_cycle(std::slice::from_ref(run))
        .pop()
        .unwrap_or(Ok(()))
}

/// An engine command as `etmem engine` sends it.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// The engine's name (`-e`).
    pub engine: &'a str,
    /// The command word, e.g. `showtaskpages`.
    pub word: &'a str,
    /// The task named with `-t`, if any.
    pub task: Option<&'a str>,
    /// Answer as JSON (our client's `--json`) instead of upstream's text.
    pub json: bool,
}

/// The engine for an engine config of `project`. Fails when a thirdparty engine's
/// plug-in does not pass its checks (the message names the file, line, key and reason).
pub fn for_conf(conf: &EngineConf, project: &ProjectConf) -> Result<Box<dyn Engine>> {
    Ok(match &conf.kind {
        EngineKind::Slide => Box::new(slide::Slide::default()),
        EngineKind::Memdcd => Box::new(pending::Pending {
            children: true,
            what: "sending scans to memdcd",
        }),
        EngineKind::Cslide(c) => Box::new(cslide::Cslide::new(c.clone())),
        EngineKind::Damon(d) => Box::new(damon::Damon::new(d.clone())),
        EngineKind::Psi => Box::new(psi::Psi),
        EngineKind::Thirdparty(t) => thirdparty::build(t, project)?,
    })
}
