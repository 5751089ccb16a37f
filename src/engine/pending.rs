//! The engines whose policy is not built yet. They do what is real today, resolve their
//! tasks' processes every cycle, and say plainly that they do nothing more: nothing here
//! pretends to scan, swap or migrate.

use super::Engine;
use crate::config::{ProjectConf, TaskConf};
use crate::engine::task_run::TaskRun;
use crate::error::Result;

/// An engine type whose policy arrives later: it only finds its tasks' processes.
pub struct Pending {
    /// Whether the direct children of a task's process are worked on too.
    pub children: bool,
    /// What the policy would do, for the task's note (`NUMA tiering`...).
    pub what: &'static str,
}

impl Engine for Pending {
    fn wants_children(&self) -> bool {
        self.children
    }

    fn check_start(&self, _project: &ProjectConf) -> Result<()> {
        Ok(())
    }

    fn note(&self, _project: &ProjectConf, _task: &TaskConf) -> Option<String> {
        Some(format!(
            "{} is not built yet: this task only finds its processes",
            self.what
        ))
    }

    fn run_cycle(&self, run: &TaskRun) -> Result<()> {
        run.resolve(self.children).map(drop)
    }
}
