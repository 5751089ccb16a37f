//! The daemon's objects: projects hold engines, engines hold tasks (spec §5). Every
//! change is checked whole before anything is applied, so a request either does all it
//! says or nothing.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use super::scheduler::{CycleEnded, Runner, Work};
use crate::config::{self, ConfigFile, EngineConf, ProjectConf, TaskConf};
use crate::engine::stop::Stop;
use crate::engine::task_status::TaskStatus;
use crate::engine::{self, Engine};
use crate::error::{Error, Kind, Object, Result};

/// A refusal of kind `kind` about `object`: the request handler turns the pair into
/// upstream's reply code (`project is not exist`, `task has been existed`...).
fn refuse(kind: Kind, object: Object, msg: String) -> Error {
    Error::new(kind, msg).about(object)
}

/// A task held by the registry: its settings, its status, and its own stop flag.
pub struct TaskSlot {
    /// The task's settings, from its `[task]` group.
    pub conf: Arc<TaskConf>,
    /// What the task has done so far: written by the scheduler, read by `project show`.
    pub status: Arc<Mutex<TaskStatus>>,
    /// Raised when the task is deleted, so that a cycle under way ends early.
    pub stop: Arc<Stop>,
}

/// An engine held by a project, with its tasks.
pub struct EngineSlot {
    /// The engine's settings, from its `[engine]` group.
    pub conf: Arc<EngineConf>,
    /// The policy that runs each of the engine's tasks every cycle.
    pub engine: Arc<dyn Engine>,
    /// Newest first, as upstream lists them.
    pub tasks: VecDeque<TaskSlot>,
}

/// A project held by the registry: its settings, its engines, and its scheduler while
/// it is started.
pub struct Project {
    /// The project's settings, from its `[project]` group.
    pub conf: Arc<ProjectConf>,
    /// Newest first, as upstream lists them.
    pub engines: Vec<EngineSlot>,
    runner: Option<Runner>,
    /// The scheduler's view of the tasks, kept current while the project runs.
    work: Arc<Mutex<Vec<Work>>>,
}

impl Project {
    /// True from `project start` until `project stop` (its scheduler thread runs).
    pub fn started(&self) -> bool {
        self.runner.is_some()
    }

    /// The engine of this project named `name`, if there is one.
    pub fn engine(&self, name: &str) -> Option<&EngineSlot> {
        self.engines.iter().find(|e| e.conf.name() == name)
    }

    fn sync_work(&self) {
        let list = self
            .engines
            .iter()
            .flat_map(|e| {
                e.tasks.iter().map(move |t| Work {
                    engine: e.engine.clone(),
                    task: t.conf.clone(),
                    status: t.status.clone(),
                    task_stop: t.stop.clone(),
                })
            })
            .collect();
        *crate::error::lock(&self.work) = list;
    }

    fn stop(&mut self) {
        if let Some(r) = self.runner.take() {
            r.stop();
            for e in &self.engines {
                e.engine.stopped();
            }
        }
    }
}

/// All projects, newest first.
#[derive(Default)]
pub struct Registry {
    /// Every project added and not yet deleted, newest first as upstream lists them.
    pub projects: Vec<Project>,
    /// Handed to every project started from now on, called after each of its cycles.
    pub cycle_ended: Option<CycleEnded>,
}

impl Registry {
    /// The project named `name`, if there is one.
    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.conf.name == name)
    }

    fn project_mut(&mut self, name: &str) -> Option<&mut Project> {
        self.projects.iter_mut().find(|p| p.conf.name == name)
    }

    /// `obj add`: add every object of the file, or none of them.
    pub fn add(&mut self, file: ConfigFile) -> Result<()> {
        self.check_add(&file)?;
        // Engines are made, and tasks join them, before anything is added: a plug-in that
        // fails its checks or refuses its keys refuses the whole file. What joined is let
        // go again then, and the engines made are dropped.
        let project_of = |name: &str| -> &ProjectConf {
            self.project(name)
                .map(|p| &*p.conf)
                .or_else(|| file.projects.iter().find(|p| p.name == name))
                .expect("checked: project exists")
        };
        let built = file
            .engines
            .iter()
            .map(|e| engine::for_conf(e, project_of(&e.project)).map(Arc::<dyn Engine>::from))
            .collect::<Result<Vec<_>>>()?;
        let mut joined: Vec<(&dyn Engine, &TaskConf)> = Vec::new();
        for t in &file.tasks {
            let in_file = file
                .engines
                .iter()
                .position(|e| e.project == t.project && e.name() == t.engine);
            let registered = self.project(&t.project).and_then(|p| p.engine(&t.engine));
            let engine: &dyn Engine = match (in_file, registered) {
                (Some(i), _) => &*built[i],
                (None, Some(slot)) => &*slot.engine,
                (None, None) => unreachable!("checked: engine exists"),
            };
            let started = self.project(&t.project).is_some_and(Project::started);
            if let Err(e) = engine.task_added(project_of(&t.project), t, started) {
                for (engine, t) in joined.iter().rev() {
                    engine.task_deleted(t);
                }
                let at = format!(
                    "{}:{}: [task] name={}",
                    t.origin.file, t.origin.line, t.name
                );
                return Err(e.context(at).about(Object::Task));
            }
            joined.push((engine, t));
        }
        drop(joined);
        let ConfigFile {
            projects,
            engines,
            tasks,
            ..
        } = file;
        for p in projects {
            crate::log_info!("added project {}", p.name);
            self.projects.insert(
                0,
                Project {
                    conf: Arc::new(p),
                    engines: Vec::new(),
                    runner: None,
                    work: Arc::new(Mutex::new(Vec::new())),
                },
            );
        }
        for (e, engine) in engines.into_iter().zip(built) {
            crate::log_info!("added engine {} to project {}", e.name(), e.project);
            let p = self
                .project_mut(&e.project)
                .expect("checked: project exists");
            p.engines.insert(
                0,
                EngineSlot {
                    conf: Arc::new(e),
                    engine,
                    tasks: VecDeque::new(),
                },
            );
        }
        let mut touched = HashSet::new();
        for t in tasks {
            crate::log_info!(
                "added task {} to project {} engine {}",
                t.name,
                t.project,
                t.engine
            );
            let p = self
                .project_mut(&t.project)
                .expect("checked: project exists");
            let e = p
                .engines
                .iter_mut()
                .find(|e| e.conf.name() == t.engine)
                .expect("checked: engine exists");
            let status = TaskStatus {
                note: e.engine.note(&p.conf, &t),
                ..TaskStatus::default()
            };
            e.tasks.push_front(TaskSlot {
                conf: Arc::new(t),
                status: Arc::new(Mutex::new(status)),
                stop: Arc::new(Stop::new()),
            });
            touched.insert(p.conf.name.clone());
        }
        // Once per project, not once per task: adding n tasks stays linear.
        self.sync_work_of(&touched);
        Ok(())
    }

    /// Bring the scheduler's view of each project named in `names` up to date.
    fn sync_work_of(&self, names: &HashSet<String>) {
        for p in self
            .projects
            .iter()
            .filter(|p| names.contains(&p.conf.name))
        {
            p.sync_work();
        }
    }

    /// Every registered task as (project, engine, task) names, for lookups that must not
    /// scan an engine's task list once per task of a file.
    fn task_names(&self) -> HashSet<(&str, &str, &str)> {
        self.projects
            .iter()
            .flat_map(|p| {
                p.engines.iter().flat_map(move |e| {
                    e.tasks
                        .iter()
                        .map(move |t| (p.conf.name.as_str(), e.conf.name(), t.conf.name.as_str()))
                })
            })
            .collect()
    }

    fn check_add(&self, file: &ConfigFile) -> Result<()> {
        if file.projects.is_empty() && file.engines.is_empty() && file.tasks.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no [project], [engine] or [task] group",
                file.path
            )));
        }
        let at = |o: &config::Origin| format!("{}:{}", o.file, o.line);
        for (i, p) in file.projects.iter().enumerate() {
            if self.project(&p.name).is_some()
                || file.projects[..i].iter().any(|q| q.name == p.name)
            {
                return Err(refuse(
                    Kind::Exists,
                    Object::Project,
                    format!("project {} ({})", p.name, at(&p.origin)),
                ));
            }
        }
        // A parent may come from the registry or from earlier in the same file.
        let find_project = |name: &str| -> Option<&ProjectConf> {
            self.project(name)
                .map(|p| &*p.conf)
                .or_else(|| file.projects.iter().find(|p| p.name == name))
        };
        for e in &file.engines {
            let p = find_project(&e.project).ok_or_else(|| {
                refuse(
                    Kind::NotFound,
                    Object::Project,
                    format!(
                        "project {} of engine {} ({})",
                        e.project,
                        e.name(),
                        at(&e.origin)
                    ),
                )
            })?;
            config::check_engine(e, p)?;
            let dup_in_registry = self
                .project(&e.project)
                .and_then(|p| p.engine(e.name()))
                .is_some();
            if dup_in_registry {
                return Err(refuse(
                    Kind::Exists,
                    Object::Engine,
                    format!(
                        "engine {} in project {} ({})",
                        e.name(),
                        e.project,
                        at(&e.origin)
                    ),
                ));
            }
        }
        let registered_tasks = self.task_names();
        for t in &file.tasks {
            let p = find_project(&t.project).ok_or_else(|| {
                refuse(
                    Kind::NotFound,
                    Object::Project,
                    format!(
                        "project {} of task {} ({})",
                        t.project,
                        t.name,
                        at(&t.origin)
                    ),
                )
            })?;
            let registered = self.project(&t.project).and_then(|p| p.engine(&t.engine));
            let in_file = file
                .engines
                .iter()
                .any(|e| e.project == t.project && e.name() == t.engine);
            if registered.is_none() && !in_file {
                return Err(refuse(
                    Kind::NotFound,
                    Object::Engine,
                    format!(
                        "engine {} in project {} for task {} ({})",
                        t.engine,
                        t.project,
                        t.name,
                        at(&t.origin)
                    ),
                ));
            }
            config::check_task(t, p)?;
            let dup_in_registry = registered_tasks.contains(&(
                t.project.as_str(),
                t.engine.as_str(),
                t.name.as_str(),
            ));
            if dup_in_registry {
                return Err(refuse(
                    Kind::Exists,
                    Object::Task,
                    format!(
                        "task {} in engine {} of project {} ({})",
                        t.name,
                        t.engine,
                        t.project,
                        at(&t.origin)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `obj del`: remove the file's tasks, then its engines, then its projects (stopping
    /// a started project first). Every object must exist, or nothing is removed.
    pub fn del(&mut self, file: &ConfigFile) -> Result<()> {
        let registered_tasks = self.task_names();
        for t in &file.tasks {
            let p = self.project(&t.project).ok_or_else(|| {
                refuse(
                    Kind::NotFound,
                    Object::Project,
                    format!("project {}", t.project),
                )
            })?;
            let e = p.engine(&t.engine).ok_or_else(|| {
                refuse(
                    Kind::NotFound,
                    Object::Engine,
                    format!("engine {} in project {}", t.engine, t.project),
                )
            })?;
            let key = (t.project.as_str(), e.conf.name(), t.name.as_str());
            if !registered_tasks.contains(&key) {
                return Err(refuse(
                    Kind::NotFound,
                    Object::Task,
                    format!(
                        "task {} in engine {} of project {}",
                        t.name, t.engine, t.project
                    ),
                ));
            }
        }
        for e in &file.engines {
            let p = self.project(&e.project).ok_or_else(|| {
                refuse(
                    Kind::NotFound,
                    Object::Project,
                    format!("project {}", e.project),
                )
            })?;
            if p.engine(e.name()).is_none() {
                return Err(refuse(
                    Kind::NotFound,
                    Object::Engine,
                    format!("engine {} in project {}", e.name(), e.project),
                ));
            }
        }
        for p in &file.projects {
            if self.project(&p.name).is_none() {
                return Err(refuse(
                    Kind::NotFound,
                    Object::Project,
                    format!("project {}", p.name),
                ));
            }
        }
        if file.projects.is_empty() && file.engines.is_empty() && file.tasks.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no [project], [engine] or [task] group",
                file.path
            )));
        }
        // One pass over the registry, not one per task: deleting n tasks stays linear.
        let doomed: HashSet<(&str, &str, &str)> = file
            .tasks
            .iter()
            .map(|t| (t.project.as_str(), t.engine.as_str(), t.name.as_str()))
            .collect();
        let mut touched = HashSet::new();
        for p in &mut self.projects {
            let pname: &str = &p.conf.name;
            for e in p.engines.iter_mut() {
                let ename = e.conf.name();
                let engine = &e.engine;
                let before = e.tasks.len();
                e.tasks.retain(|t| {
                    let gone = doomed.contains(&(pname, ename, t.conf.name.as_str()));
                    if gone {
                        t.stop.set();
                        engine.task_deleted(&t.conf);
                        crate::log_info!("deleted task {} from project {pname}", t.conf.name);
                    }
                    !gone
                });
                if e.tasks.len() != before {
                    touched.insert(pname.to_string());
                }
            }
        }
        self.sync_work_of(&touched);
        for e in &file.engines {
            let p = self.project_mut(&e.project).expect("checked");
            if let Some(i) = p.engines.iter().position(|s| s.conf.name() == e.name()) {
                let slot = p.engines.remove(i);
                for t in &slot.tasks {
                    t.stop.set();
                }
                slot.engine.stopped();
            }
            p.sync_work();
            crate::log_info!("deleted engine {} from project {}", e.name(), e.project);
        }
        for p in &file.projects {
            if let Some(i) = self.projects.iter().position(|q| q.conf.name == p.name) {
                self.projects.remove(i).stop();
            }
            crate::log_info!("deleted project {}", p.name);
        }
        Ok(())
    }

    /// `project start`.
    pub fn start(&mut self, name: &str) -> Result<()> {
        let ended = self.cycle_ended.clone();
        let p = self
            .project_mut(name)
            .ok_or_else(|| refuse(Kind::NotFound, Object::Project, format!("project {name}")))?;
        if p.started() {
            return Err(refuse(
                Kind::State,
                Object::Project,
                format!("project {name}"),
            ));
        }
        for (i, e) in p.engines.iter().enumerate() {
            let context = || format!("project {name} engine {}", e.conf.name());
            let checked = e.engine.check_start(&p.conf).and_then(|()| {
                e.tasks
                    .iter()
                    .try_for_each(|t| e.engine.check_task_start(&p.conf, &t.conf))
            });
            if let Err(err) = checked {
                // Nothing of a failed start stays behind in the kernel.
                for done in &p.engines[..=i] {
                    done.engine.stopped();
                }
                return Err(err.context(context()));
            }
        }
        for e in &p.engines {
            let tasks: Vec<&TaskConf> = e.tasks.iter().map(|t| &*t.conf).collect();
            if let Err(err) = e.engine.start_tasks(&p.conf, &tasks) {
                for e in &p.engines {
                    e.engine.stopped();
                }
                return Err(err.context(format!("project {name} engine {}", e.conf.name())));
            }
        }
        for e in &p.engines {
            for t in &e.tasks {
                let mut s = crate::error::lock(&t.status);
                s.reset();
                s.note = e.engine.note(&p.conf, &t.conf);
            }
        }
        p.sync_work();
        let runner = Runner::start(p.conf.clone(), p.work.clone(), ended).map_err(|err| {
            for e in &p.engines {
                e.engine.stopped();
            }
            Error::io(format!("project {name}: cannot start its thread"), err)
        })?;
        p.runner = Some(runner);
        Ok(())
    }

    /// `project stop`.
    pub fn stop(&mut self, name: &str) -> Result<()> {
        let p = self
            .project_mut(name)
            .ok_or_else(|| refuse(Kind::NotFound, Object::Project, format!("project {name}")))?;
        if !p.started() {
            return Err(refuse(
                Kind::State,
                Object::Project,
                format!("project {name}"),
            ));
        }
        p.stop();
        Ok(())
    }

    /// Stop every project (daemon shutdown).
    pub fn stop_all(&mut self) {
        for p in &mut self.projects {
            p.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A file with one project, one slide engine and `n` tasks.
    fn file(n: usize) -> ConfigFile {
        let mut text = String::from(
            "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\n[engine]\nname=slide\nproject=p\n",
        );
        for i in 0..n {
            text.push_str(&format!(
                "[task]\nproject=p\nengine=slide\nname=t{i}\ntype=pid\nvalue={}\nT=1\n",
                i + 1
            ));
        }
        config::parse(&text, "/t.conf").unwrap()
    }

    /// Time to add then delete a file of `n` tasks (parsing not counted).
    fn add_del(n: usize) -> (Duration, Duration) {
        let f = file(n);
        let mut reg = Registry::default();
        let t = Instant::now();
        reg.add(f.clone()).unwrap();
        let added = t.elapsed();
        assert_eq!(reg.projects[0].engines[0].tasks.len(), n);
        assert_eq!(reg.projects[0].work.lock().unwrap().len(), n);
        let only_tasks = ConfigFile {
            projects: Vec::new(),
            engines: Vec::new(),
            ..f
        };
        let t = Instant::now();
        reg.del(&only_tasks).unwrap();
        let deleted = t.elapsed();
        assert!(reg.projects[0].engines[0].tasks.is_empty());
        assert!(reg.projects[0].work.lock().unwrap().is_empty());
        (added, deleted)
    }

    /// `obj add` and `obj del` take time linear in the tasks of the file (they rebuilt
    /// the scheduler's list once per task: 10k tasks took 2.8 s and 4 s). Measured as a
    /// ratio in one run, so a slow machine does not matter: 8 times the tasks may take
    /// at most 32 times as long (linear work measured 10 to 18 times here, the quadratic
    /// code 67 times).
    #[test]
    fn add_and_del_are_linear_in_the_tasks() {
        let _ = add_del(500); // warm up allocator and caches
        let (a1, d1) = add_del(1500);
        let (a8, d8) = add_del(12000);
        let ratio =
            |big: Duration, small: Duration| big.as_secs_f64() / small.as_secs_f64().max(1e-4);
        assert!(
            ratio(a8, a1) < 32.0,
            "add: {a1:?} for 1500 tasks, {a8:?} for 12000"
        );
        assert!(
            ratio(d8, d1) < 32.0,
            "del: {d1:?} for 1500 tasks, {d8:?} for 12000"
        );
    }

    #[test]
    fn tasks_are_listed_newest_first_and_deleted_by_name() {
        let mut reg = Registry::default();
        reg.add(file(3)).unwrap();
        let names: Vec<&str> = reg.projects[0].engines[0]
            .tasks
            .iter()
            .map(|t| t.conf.name.as_str())
            .collect();
        assert_eq!(names, ["t2", "t1", "t0"]);
        let mut one = file(2);
        one.projects.clear();
        one.engines.clear();
        one.tasks.remove(1);
        reg.del(&one).unwrap();
        let names: Vec<&str> = reg.projects[0].engines[0]
            .tasks
            .iter()
            .map(|t| t.conf.name.as_str())
            .collect();
        assert_eq!(names, ["t2", "t1"]);
        let e = reg.del(&one).unwrap_err();
        assert_eq!((e.kind, e.object), (Kind::NotFound, Some(Object::Task)));
    }
}
