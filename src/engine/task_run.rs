//! One task's share of a project cycle: what an engine is handed when it runs, with the
//! task's settings, its status to update, and interruptible waits.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::stop::Stop;
use super::task_status::TaskStatus;
use crate::config::{ProjectConf, TaskConf};
use crate::types::Pid;

/// A task as the scheduler runs it.
pub struct TaskRun {
    /// The settings of the project the task belongs to (its scan parameters).
    pub project: Arc<ProjectConf>,
    /// The task's settings: its target process and engine parameters.
    pub task: Arc<TaskConf>,
    /// The task's status, shared with the registry and `project show`.
    pub status: Arc<Mutex<TaskStatus>>,
    /// Raised when the project stops or the daemon shuts down.
    pub project_stop: Arc<Stop>,
    /// Raised when this task is deleted while its project runs.
    pub task_stop: Arc<Stop>,
}

impl TaskRun {
    /// True once the work should end as soon as possible.
    pub fn should_stop(&self) -> bool {
        self.project_stop.is_set() || self.task_stop.is_set()
    }

    /// The task's status, locked for reading or updating.
    pub fn status(&self) -> MutexGuard<'_, TaskStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record the processes this cycle works on (main process first, then its children).
    pub fn set_pids(&self, pids: Vec<Pid>) {
        self.status().pids = pids;
    }

    /// Record the end of a cycle and its outcome.
    pub fn finish_cycle(&self, outcome: Result<(), String>) {
        let mut s = self.status();
        s.cycles += 1;
        s.last_cycle = Some(SystemTime::now());
        match outcome {
            Ok(()) => s.last_error = None,
            Err(e) => {
                s.last_error = Some(e);
            }
        }
    }
}
