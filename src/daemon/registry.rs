//! The daemon's objects: projects hold engines, engines hold tasks (spec §5). Every
//! change is checked whole before anything is applied, so a request either does all it
//! says or nothing.

use std::sync::{Arc, Mutex};

use super::scheduler::{Runner, Work};
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
    pub tasks: Vec<TaskSlot>,
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
        *self.work.lock().unwrap_or_else(|p| p.into_inner()) = list;
    }

    fn stop(&mut self) {
        if let Some(r) = self.runner.take() {
            r.stop();
        }
    }
}

/// All projects, newest first.
#[derive(Default)]
pub struct Registry {
    /// Every project added and not yet deleted, newest first as upstream lists them.
    pub projects: Vec<Project>,
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
        for e in engines {
            let engine: Arc<dyn Engine> = Arc::from(engine::for_conf(&e));
            crate::log_info!("added engine {} to project {}", e.name(), e.project);
            let p = self
                .project_mut(&e.project)
                .expect("checked: project exists");
            p.engines.insert(
                0,
                EngineSlot {
                    conf: Arc::new(e),
                    engine,
                    tasks: Vec::new(),
                },
            );
        }
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
            e.tasks.insert(
                0,
                TaskSlot {
                    conf: Arc::new(t),
                    status: Arc::new(Mutex::new(status)),
                    stop: Arc::new(Stop::new()),
                },
            );
            p.sync_work();
        }
        Ok(())
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
            let dup_in_registry = registered
                .map(|e| e.tasks.iter().any(|s| s.conf.name == t.name))
                .unwrap_or(false);
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
            if !e.tasks.iter().any(|s| s.conf.name == t.name) {
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
        for t in &file.tasks {
            let p = self.project_mut(&t.project).expect("checked");
            let e = p
                .engines
                .iter_mut()
                .find(|e| e.conf.name() == t.engine)
                .expect("checked");
            if let Some(i) = e.tasks.iter().position(|s| s.conf.name == t.name) {
                e.tasks.remove(i).stop.set();
            }
            p.sync_work();
            crate::log_info!("deleted task {} from project {}", t.name, t.project);
        }
        for e in &file.engines {
            let p = self.project_mut(&e.project).expect("checked");
            if let Some(i) = p.engines.iter().position(|s| s.conf.name() == e.name()) {
                for t in &p.engines.remove(i).tasks {
                    t.stop.set();
                }
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
        for e in &p.engines {
            e.engine
                .check_start(&p.conf)
                .map_err(|err| err.context(format!("project {name} engine {}", e.conf.name())))?;
        }
        for e in &p.engines {
            for t in &e.tasks {
                let mut s = t.status.lock().unwrap_or_else(|p| p.into_inner());
                s.reset();
                s.note = e.engine.note(&p.conf, &t.conf);
            }
        }
        p.sync_work();
        let runner = Runner::start(p.conf.clone(), p.work.clone())
            .map_err(|err| Error::io(format!("project {name}: cannot start its thread"), err))?;
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
