//! Requests to actions: what each command code does to the registry (spec §1.4, §5).

use super::registry::Registry;
use super::show::{self, View};
use crate::config;
use crate::rpc::reply::{Reply, Status};
use crate::rpc::request::{Cmd, Request};
use crate::rpc::server::Handler;

/// The daemon's state behind the socket.
pub struct Daemon {
    pub registry: Registry,
    /// Besides root, the uid whose config files we accept (our own).
    pub uid: u32,
}

impl Daemon {
    pub fn new(uid: u32) -> Daemon {
        Daemon {
            registry: Registry::default(),
            uid,
        }
    }

    fn load(&self, req: &Request) -> Result<config::ConfigFile, Reply> {
        let name = req
            .file_name
            .as_deref()
            .ok_or_else(|| Reply::fail(Status::Inval, "no config file given"))?;
        let file =
            config::load(name, self.uid).map_err(|e| Reply::fail(Status::Inval, e.to_string()))?;
        for w in &file.warnings {
            crate::log_warn!("{w}");
        }
        Ok(file)
    }

    fn project_name(req: &Request) -> Result<&str, Reply> {
        req.proj_name
            .as_deref()
            .ok_or_else(|| Reply::fail(Status::Inval, "no project name given"))
    }

    fn engine_cmd(&self, req: &Request) -> Result<Reply, Reply> {
        let pname = Self::project_name(req)?;
        let p = self
            .registry
            .project(pname)
            .ok_or_else(|| Reply::fail(Status::ProNoexist, format!("project {pname}")))?;
        if !p.started() {
            return Err(Reply::fail(
                Status::Inval,
                format!("project {pname} is not started"),
            ));
        }
        let ename = req
            .eng_name
            .as_deref()
            .ok_or_else(|| Reply::fail(Status::Inval, "no engine name given"))?;
        let e = p.engine(ename).ok_or_else(|| {
            Reply::fail(
                Status::EngNoexist,
                format!("engine {ename} in project {pname}"),
            )
        })?;
        if let Some(t) = req.task_name.as_deref() {
            if !e.tasks.iter().any(|s| s.conf.name == t) {
                return Err(Reply::fail(
                    Status::TaskNoexist,
                    format!("task {t} in engine {ename}"),
                ));
            }
        }
        let cmd = req
            .eng_cmd
            .as_deref()
            .ok_or_else(|| Reply::fail(Status::Inval, "no engine command given"))?;
        Err(Reply::fail(
            Status::Inval,
            format!("engine {ename} has no command {cmd:?}"),
        ))
    }
}

fn outcome(r: Result<(), (Status, String)>) -> Reply {
    match r {
        Ok(()) => Reply::Ok(String::new()),
        Err((status, detail)) => {
            crate::log_warn!("{}: {detail}", status.text());
            Reply::Fail(status, detail)
        }
    }
}

impl Handler for Daemon {
    fn handle(&mut self, req: &Request) -> Reply {
        let r = match Cmd::from_code(req.cmd) {
            None => Err(Reply::fail(
                Status::Inval,
                format!("unknown command code {}", req.cmd),
            )),
            Some(Cmd::ObjAdd) => self.load(req).map(|f| outcome(self.registry.add(f))),
            Some(Cmd::ObjDel) => self.load(req).map(|f| outcome(self.registry.del(&f))),
            Some(Cmd::ProjectStart) => {
                Self::project_name(req).map(|n| outcome(self.registry.start(n)))
            }
            Some(Cmd::ProjectStop) => {
                Self::project_name(req).map(|n| outcome(self.registry.stop(n)))
            }
            Some(Cmd::ProjectShow) => match View::from_word(req.eng_cmd.as_deref()) {
                Some(view) => Ok(Reply::Ok(show::show(
                    &self.registry,
                    req.proj_name.as_deref(),
                    view,
                ))),
                None => Err(Reply::fail(
                    Status::Inval,
                    "unknown show view (use verbose or json)",
                )),
            },
            Some(Cmd::Engine) => self.engine_cmd(req),
        };
        r.unwrap_or_else(|e| e)
    }
}
