//! Engines: the policies that decide, each cycle, what to do with a task's processes.
//! One trait, one implementation per engine type (slide, cslide, damon, thirdparty,
//! memdcd), chosen from the engine's config.
//!
//! The contract between the daemon and an engine lives here too, so that engines depend
//! on nothing above them: [`Engine`], the [`task_run::TaskRun`] a cycle is handed, the
//! [`task_status::TaskStatus`] and [`task_status::CycleStats`] it reports, and the
//! [`stop::Stop`] flag that ends it.

pub mod claim;
pub mod cold;
pub mod pending;
pub mod slide;
pub mod stop;
pub mod swap_gate;
pub mod targets;
pub mod task_run;
pub mod task_status;

use crate::config::{EngineConf, EngineKind, ProjectConf, TaskConf};
use crate::engine::task_run::TaskRun;
use crate::error::Result;

/// A policy engine. The scheduler calls `run_cycle` once per cycle for each task.
pub trait Engine: Send + Sync {
    /// Whether the direct children of a task's process are worked on too.
    fn wants_children(&self) -> bool;

    /// Check, at project start, that this engine can run on this machine.
    fn check_start(&self, project: &ProjectConf) -> Result<()>;

    /// What `project show` should say about tasks of this engine on this machine.
    fn note(&self, project: &ProjectConf, task: &TaskConf) -> Option<String>;

    /// One cycle for one task: find its processes and act on them.
    fn run_cycle(&self, run: &TaskRun) -> Result<()>;
}

/// The engine for an engine config.
pub fn for_conf(conf: &EngineConf) -> Box<dyn Engine> {
    match &conf.kind {
        EngineKind::Slide => Box::new(slide::Slide::default()),
        EngineKind::Memdcd => Box::new(pending::Pending {
            children: true,
            what: "sending scans to memdcd",
            nodes: Vec::new(),
        }),
        EngineKind::Cslide(c) => Box::new(pending::Pending {
            children: false,
            what: "NUMA tiering",
            nodes: c.node_pairs.iter().flat_map(|&(h, c)| [h, c]).collect(),
        }),
        EngineKind::Damon(_) => Box::new(pending::Pending {
            children: false,
            what: "DAMON monitoring",
            nodes: Vec::new(),
        }),
        EngineKind::Thirdparty(_) => Box::new(pending::Thirdparty),
    }
}
