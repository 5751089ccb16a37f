//! One task's share of a project cycle: what an engine is handed when it runs, with the
//! task's settings, its status to update, and interruptible waits.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::stop::Stop;
use super::targets::{self, Held};
use super::task_status::TaskStatus;
use crate::config::{ProjectConf, Target, TaskConf};
use crate::error::{Error, Kind, Result};
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
        crate::error::lock(&self.status)
    }

    /// Record the processes this cycle works on (main process first, then its children).
    pub fn set_pids(&self, pids: Vec<Pid>) {
        self.status().pids = pids;
    }

    /// Find and hold this cycle's processes ([`targets::resolve`]) and record their pids.
    /// For `type=pid`, only the process first found since the project started is taken:
    /// once it has exited the error says so, and a later process that got its pid is
    /// refused, not worked on.
    pub fn resolve(&self, with_children: bool) -> Result<Vec<Held>> {
        let found = targets::resolve(&self.task.target, with_children);
        let found = match self.task.target {
            Target::Pid(pid) => self.same_as_first(pid, found),
            Target::Name(_) | Target::Cgroups(_) => found,
        };
        self.set_pids(
            found
                .as_ref()
                .map_or_else(|_| Vec::new(), |held| held.iter().map(Held::pid).collect()),
        );
        found
    }

    /// `found`, if its main process is the one this `type=pid` task first found.
    fn same_as_first(&self, pid: Pid, found: Result<Vec<Held>>) -> Result<Vec<Held>> {
        let mut st = self.status();
        match (st.first_start_time, found) {
            (None, Ok(held)) => {
                st.first_start_time = Some(held[0].identity().start_time);
                Ok(held)
            }
            (Some(first), Ok(held)) if held[0].identity().start_time != first => Err(Error::new(
                Kind::Gone,
                format!(
                    "process {pid} exited, and pid {pid} now names another process, \
                         which this task does not take over (type=pid names one process; \
                         restart the project to work on the new one)"
                ),
            )),
            (Some(_), Err(e)) if e.kind == Kind::NotFound => {
                Err(Error::new(Kind::Gone, format!("process {pid} exited")))
            }
            (_, found) => found,
        }
    }

    /// Record the end of a cycle that took `took`, and its outcome.
    pub fn finish_cycle(&self, outcome: Result<(), String>, took: Duration) {
        let mut s = self.status();
        s.cycles += 1;
        s.last_cycle = Some(SystemTime::now());
        s.last_duration = took;
        s.totals.cycle_time += took;
        match outcome {
            Ok(()) => s.last_error = None,
            Err(e) => {
                s.totals.errors += 1;
                s.last_error = Some(e);
            }
        }
    }
}
