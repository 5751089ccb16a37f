//! A started project's scheduler thread: every cycle it runs each task through its
//! engine (tasks side by side, one scoped thread each), then sleeps until the next cycle.
//! Stopping raises a flag that wakes it at once.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{ProjectConf, ScanConf, TaskConf};
use crate::engine::stop::Stop;
use crate::engine::task_run::TaskRun;
use crate::engine::task_status::TaskStatus;
use crate::engine::Engine;

/// One task as the scheduler sees it; the registry keeps the list current while the
/// project runs, so tasks added or deleted meanwhile are picked up next cycle.
#[derive(Clone)]
pub struct Work {
    /// The policy that runs the task's cycles (its engine's).
    pub engine: Arc<dyn Engine>,
    /// The task's settings.
    pub task: Arc<TaskConf>,
    /// The task's status, shared with the registry and `project show`.
    pub status: Arc<Mutex<TaskStatus>>,
    /// The task's own stop flag, raised when the task is deleted.
    pub task_stop: Arc<Stop>,
}

/// The running scheduler of a started project.
pub struct Runner {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Start the scheduler thread of `project`: it runs the tasks in `work` every cycle
    /// until stopped. Fails only when the thread cannot be created.
    pub fn start(
        project: Arc<ProjectConf>,
        work: Arc<Mutex<Vec<Work>>>,
    ) -> std::io::Result<Runner> {
        let stop = Arc::new(Stop::new());
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("etmemd:{}", project.name))
            .spawn(move || run(project, work, flag))?;
        Ok(Runner {
            stop,
            thread: Some(thread),
        })
    }

    /// Stop the scheduler and wait for its thread (and the task threads) to end.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.set();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                crate::log_error!("a scheduler thread panicked");
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The pause between cycles: `sleep` seconds for page projects; for region (DAMON)
/// projects the aggregation interval, at least one second.
pub fn cycle_pause(project: &ProjectConf) -> Duration {
    match &project.scan {
        ScanConf::Page(p) => Duration::from_secs(p.sleep.into()),
        ScanConf::Region(r) => Duration::from_micros(r.aggr_interval).max(Duration::from_secs(1)),
    }
}

fn run(project: Arc<ProjectConf>, work: Arc<Mutex<Vec<Work>>>, stop: Arc<Stop>) {
    crate::log_info!("project {}: started", project.name);
    while !stop.is_set() {
        let items: Vec<Work> = work.lock().unwrap_or_else(|p| p.into_inner()).clone();
        std::thread::scope(|s| {
            for w in items {
                let run = TaskRun {
                    project: project.clone(),
                    task: w.task.clone(),
                    status: w.status.clone(),
                    project_stop: stop.clone(),
                    task_stop: w.task_stop.clone(),
                };
                let engine = w.engine.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("etmemd:{}", w.task.name))
                    .spawn_scoped(s, move || {
                        let outcome = engine.run_cycle(&run);
                        if let Err(e) = &outcome {
                            crate::log_warn!(
                                "project {} task {}: {e}",
                                run.project.name,
                                run.task.name
                            );
                        }
                        if !run.should_stop() {
                            run.finish_cycle(outcome.map_err(|e| e.to_string()));
                        }
                    });
                if let Err(e) = spawned {
                    crate::log_error!(
                        "project {}: cannot start a thread for task {}: {e}",
                        project.name,
                        w.task.name
                    );
                }
            }
        });
        if stop.wait(cycle_pause(&project)) {
            break;
        }
    }
    crate::log_info!("project {}: stopped", project.name);
}
