//! What a task has done so far, as `project show` reports it. Written by the scheduler
//! thread, read by the request handler; a mutex guards it.

use std::time::SystemTime;

use crate::types::Pid;

/// Per-task state and statistics.
#[derive(Debug, Clone, Default)]
pub struct TaskStatus {
    /// The processes worked on in the last cycle: the main one first, then its children.
    pub pids: Vec<Pid>,
    /// Cycles completed since the project was started.
    pub cycles: u64,
    /// When the last cycle finished.
    pub last_cycle: Option<SystemTime>,
    /// Why the last cycle failed, if it did (cleared by the next good cycle).
    pub last_error: Option<String>,
    /// A standing remark about what this task can and cannot do here.
    pub note: Option<String>,
}

impl TaskStatus {
    /// Forget everything from an earlier run (on project start).
    pub fn reset(&mut self) {
        *self = TaskStatus::default();
    }
}
