//! A started project's scheduler thread: every cycle it runs each task through its
//! engine (tasks side by side, one scoped thread each; the tasks of an engine whose
//! cycles are joint share one thread and one call), then sleeps until the next cycle.
//! Stopping raises a flag that wakes it at once. A panic in an engine is caught at the
//! task's thread and becomes that task's error for the cycle; the project goes on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{ProjectConf, ScanConf, TaskConf};
use crate::engine::stop::Stop;
use crate::engine::task_run::TaskRun;
use crate::engine::task_status::TaskStatus;
use crate::engine::Engine;
use crate::error::panic_message;

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

/// Called after every cycle of every project (the daemon rewrites its metrics file).
pub type CycleEnded = Arc<dyn Fn() + Send + Sync>;

/// The running scheduler of a started project.
pub struct Runner {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Start the scheduler thread of `project`: it runs the tasks in `work` every cycle
    /// until stopped. Fails only when the thread cannot be created.
    /// `ended`, if given, is called after each cycle.
    pub fn start(
        project: Arc<ProjectConf>,
        work: Arc<Mutex<Vec<Work>>>,
        ended: Option<CycleEnded>,
    ) -> std::io::Result<Runner> {
        let stop = Arc::new(Stop::new());
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("etmemd:{}", project.name))
            .spawn(move || run(project, work, flag, ended))?;
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
/// projects the aggregation interval, at least one second; `interval` seconds for psi.
pub fn cycle_pause(project: &ProjectConf) -> Duration {
    match &project.scan {
        ScanConf::Page(p) => Duration::from_secs(p.sleep.into()),
        ScanConf::Region(r) => Duration::from_micros(r.aggr_interval).max(Duration::from_secs(1)),
        ScanConf::Psi(p) => Duration::from_secs(p.interval.into()),
    }
}

fn run(
    project: Arc<ProjectConf>,
    work: Arc<Mutex<Vec<Work>>>,
    stop: Arc<Stop>,
    ended: Option<CycleEnded>,
) {
    crate::log_info!("project {}: started", project.name);
    while !stop.is_set() {
        let items: Vec<Work> = crate::error::lock(&work).clone();
        // The task threads catch their engines' panics; this catches anything else a
        // task thread could raise (the scope re-raises it here), so the project goes on.
        let cycle = catch_unwind(AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                for group in groups(items) {
                    let engine = group[0].engine.clone();
                    let runs: Vec<TaskRun> = group
                        .iter()
                        .map(|w| TaskRun {
                            project: project.clone(),
                            task: w.task.clone(),
                            status: w.status.clone(),
                            project_stop: stop.clone(),
                            task_stop: w.task_stop.clone(),
                        })
                        .collect();
                    let name = runs[0].task.name.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("etmemd:{name}"))
                        .spawn_scoped(s, move || run_group(&*engine, &runs));
                    if let Err(e) = spawned {
                        crate::log_error!(
                            "project {}: cannot start a thread for task {name}: {e}",
                            project.name,
                        );
                    }
                }
            })
        }));
        if let Err(payload) = cycle {
            crate::log_error!(
                "project {}: a task thread panicked: {}",
                project.name,
                panic_message(&*payload)
            );
        }
        if let Some(f) = &ended {
            f();
        }
        if stop.wait(cycle_pause(&project)) {
            break;
        }
    }
    crate::log_info!("project {}: stopped", project.name);
}

/// The cycle's units of work: each task alone, except that the tasks of an engine whose
/// cycles are joint ([`Engine::joint`]) go together, in their list order.
fn groups(items: Vec<Work>) -> Vec<Vec<Work>> {
    let mut out: Vec<Vec<Work>> = Vec::new();
    for w in items {
        let with = w.engine.joint().then(|| {
            out.iter()
                .position(|g| Arc::ptr_eq(&g[0].engine, &w.engine))
        });
        match with.flatten() {
            Some(i) => out[i].push(w),
            None => out.push(vec![w]),
        }
    }
    out
}

/// One unit of a cycle on its own thread. A bug in an engine fails this cycle of its
/// tasks, not the project and not the daemon: the panic is the cycle's error, and the
/// next cycle runs as usual.
fn run_group(engine: &dyn Engine, runs: &[TaskRun]) {
    let began = Instant::now();
    let ran = catch_unwind(AssertUnwindSafe(|| {
        if engine.joint() {
            engine.run_joint_cycle(runs)
        } else {
            runs.iter().map(|r| engine.run_cycle(r)).collect()
        }
    }));
    let outcomes: Vec<Result<(), String>> = match ran {
        Ok(results) => runs
            .iter()
            .enumerate()
            .map(|(i, run)| match results.get(i) {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => {
                    crate::log_warn!("project {} task {}: {e}", run.project.name, run.task.name);
                    Err(e.to_string())
                }
                None => Err("the engine reported no outcome for this task".to_string()),
            })
            .collect(),
        Err(payload) => {
            let e = format!("the engine panicked: {}", panic_message(&*payload));
            for run in runs {
                crate::log_error!("project {} task {}: {e}", run.project.name, run.task.name);
            }
            vec![Err(e); runs.len()]
        }
    };
    let took = began.elapsed();
    for (run, outcome) in runs.iter().zip(outcomes) {
        if !run.should_stop() {
            run.finish_cycle(outcome, took);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TaskConf;
    use crate::engine::task_run::TaskRun;
    use crate::error::Result;
    use std::time::Instant;

    /// A test engine: with `buggy`, every cycle panics, and while holding its task's
    /// status lock, so the mutex is poisoned too; otherwise it does nothing and succeeds.
    struct TestEngine {
        buggy: bool,
    }

    impl Engine for TestEngine {
        fn wants_children(&self) -> bool {
            false
        }
        fn check_start(&self, _: &ProjectConf) -> Result<()> {
            Ok(())
        }
        fn note(&self, _: &ProjectConf, _: &TaskConf) -> Option<String> {
            None
        }
        fn run_cycle(&self, run: &TaskRun) -> Result<()> {
            if self.buggy {
                let _held = run.status();
                panic!("index out of bounds: the len is 0 but the index is 7");
            }
            Ok(())
        }
    }

    fn status(w: &Work) -> TaskStatus {
        crate::error::lock(&w.status).clone()
    }

    #[test]
    fn a_panicking_engine_fails_its_task_not_the_project() {
        let text = concat!(
            "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\n",
            "[engine]\nname=slide\nproject=p\n",
            "[task]\nproject=p\nengine=slide\nname=bad\ntype=pid\nvalue=1\nT=1\n",
            "[task]\nproject=p\nengine=slide\nname=good\ntype=pid\nvalue=1\nT=1\n",
        );
        let mut file = crate::config::parse(text, "/etc/etmem/t.conf").unwrap();
        let project = Arc::new(file.projects.remove(0));
        let work = |engine: Arc<dyn Engine>, task: TaskConf| Work {
            engine,
            task: Arc::new(task),
            status: Arc::default(),
            task_stop: Arc::new(Stop::new()),
        };
        let bad = work(Arc::new(TestEngine { buggy: true }), file.tasks.remove(0));
        let good = work(Arc::new(TestEngine { buggy: false }), file.tasks.remove(0));
        let list = Arc::new(Mutex::new(vec![bad.clone(), good.clone()]));
        let runner = Runner::start(project, list, None).unwrap();
        // Cycles go on, for the buggy task and for its neighbour, a second apart.
        let t0 = Instant::now();
        while (status(&bad).cycles < 2 || status(&good).cycles < 2)
            && t0.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        runner.stop();
        let (b, g) = (status(&bad), status(&good));
        assert!(b.cycles >= 2, "the buggy task's cycles stopped: {b:?}");
        assert!(g.cycles >= 2, "the other task's cycles stopped: {g:?}");
        assert_eq!(
            b.last_error.as_deref(),
            Some("the engine panicked: index out of bounds: the len is 0 but the index is 7")
        );
        assert_eq!(g.last_error, None);
    }
}
