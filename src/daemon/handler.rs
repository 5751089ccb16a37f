//! Requests to actions: what each command code does to the registry (spec §1.4, §5),
//! and the one place where a failure's kind becomes upstream's reply code.

use std::sync::Arc;

use super::metrics_file::MetricsFile;
use super::registry::Registry;
use super::show::{self, View};
use crate::config;
use crate::engine::Command;
use crate::error::{panic_message, Error, Kind, Object, Result};
use crate::rpc::reply::{Reply, Status};
use crate::rpc::request::{Cmd, Request, JSON_SUFFIX};
use crate::rpc::server::Handler;

/// The daemon's state behind the socket.
pub struct Daemon {
    /// The projects, engines and tasks the requests act on.
    pub registry: Registry,
    /// Besides root, the uid whose config files we accept (our own).
    pub uid: u32,
    /// `--metrics-file`: rewritten at start and after every cycle.
    pub metrics: Option<MetricsFile>,
}

impl Daemon {
    /// A daemon with no objects yet, accepting config files owned by root or by `uid`.
    pub fn new(uid: u32) -> Daemon {
        Daemon {
            registry: Registry::default(),
            uid,
            metrics: None,
        }
    }

    fn load(&self, req: &Request) -> Result<config::ConfigFile> {
        let name = req
            .file_name
            .as_deref()
            .ok_or_else(|| Error::usage("no config file given"))?;
        self.load_file(name)
    }

    /// Read and check the config file `name`, its warnings logged.
    fn load_file(&self, name: &str) -> Result<config::ConfigFile> {
        let file = config::load(name, self.uid)?;
        for w in &file.warnings {
            crate::log_warn!("{w}");
        }
        Ok(file)
    }

    /// `etmemd --load`: add each file in order, as `obj add` does, then start every
    /// project the files' `[project]` groups define (a container or an initramfs has no
    /// one to run the client after the daemon starts). The first failure is returned,
    /// naming the file or project; what was added stays until the daemon exits, which it
    /// then does.
    pub fn load_and_start(&mut self, files: &[String]) -> Result<()> {
        let mut projects = Vec::new();
        for name in files {
            let in_file = |e: Error| e.context(format!("--load {name}"));
            let file = self.load_file(name).map_err(in_file)?;
            projects.extend(file.projects.iter().map(|p| p.name.clone()));
            self.registry.add(file).map_err(in_file)?;
        }
        for name in projects {
            self.registry
                .start(&name)
                .map_err(|e| e.context(format!("--load: project start {name}")))?;
            crate::log_info!("--load: started project {name}");
        }
        self.woken();
        Ok(())
    }

    fn project_name(req: &Request) -> Result<&str> {
        req.proj_name
            .as_deref()
            .ok_or_else(|| Error::usage("no project name given"))
    }

    fn show(&self, req: &Request) -> Result<String> {
        let view = View::from_word(req.eng_cmd.as_deref())
            .ok_or_else(|| Error::usage("unknown show view (use verbose or json)"))?;
        let name = req.proj_name.as_deref();
        // Our choice (man page): showing a project that does not exist is a failure, so
        // scripts can trust the client's exit status. Upstream replied success.
        if let Some(n) = name.filter(|n| self.registry.project(n).is_none()) {
            return Err(not_found(Object::Project, format!("project {n}")));
        }
        Ok(show::show(&self.registry, name, view))
    }

    fn engine_cmd(&self, req: &Request) -> Result<String> {
        let pname = Self::project_name(req)?;
        let p = self
            .registry
            .project(pname)
            .ok_or_else(|| not_found(Object::Project, format!("project {pname}")))?;
        if !p.started() {
            return Err(Error::usage(format!("project {pname} is not started")));
        }
        let ename = req
            .eng_name
            .as_deref()
            .ok_or_else(|| Error::usage("no engine name given"))?;
        let e = p.engine(ename).ok_or_else(|| {
            not_found(Object::Engine, format!("engine {ename} in project {pname}"))
        })?;
        if let Some(t) = req.task_name.as_deref() {
            if !e.tasks.iter().any(|s| s.conf.name == t) {
                return Err(not_found(
                    Object::Task,
                    format!("task {t} in engine {ename}"),
                ));
            }
        }
        let cmd = req
            .eng_cmd
            .as_deref()
            .ok_or_else(|| Error::usage("no engine command given"))?;
        // Our client's --json arrives as a suffix of the command word.
        let (word, json) = match cmd.strip_suffix(JSON_SUFFIX) {
            Some(w) => (w, true),
            None => (cmd, false),
        };
        e.engine.command(&Command {
            engine: ename,
            word,
            task: req.task_name.as_deref(),
            json,
        })
    }
}

fn not_found(object: Object, msg: String) -> Error {
    Error::new(Kind::NotFound, msg).about(object)
}

/// Upstream's reply code for a failure of `cmd`: the one place where the kinds of our
/// errors become wire codes (spec §1.6, §4.3, §5).
fn status(cmd: Cmd, e: &Error) -> Status {
    match (e.kind, e.object) {
        (Kind::NotFound, Some(Object::Project)) => Status::ProNoexist,
        (Kind::NotFound, Some(Object::Engine)) => Status::EngNoexist,
        (Kind::NotFound, Some(Object::Task)) => Status::TaskNoexist,
        (Kind::Exists, Some(Object::Project)) => Status::ProExisted,
        (Kind::Exists, Some(Object::Engine)) => Status::EngExisted,
        (Kind::Exists, Some(Object::Task)) => Status::TaskExisted,
        (Kind::State, _) if cmd == Cmd::ProjectStart => Status::ProStarted,
        (Kind::State, _) => Status::ProStopped,
        // A request that lacks a field or names what does not exist for that command.
        (Kind::Usage, _) => Status::Inval,
        // A bad value inside [engine] or [task]: upstream's engine and task readers
        // answer "internal error" (spec §4.3).
        (Kind::Invalid, Some(Object::Engine | Object::Task)) => Status::InterErr,
        // The file itself (admission, syntax) and [project] values.
        _ if matches!(cmd, Cmd::ObjAdd | Cmd::ObjDel) => Status::Inval,
        // Anything that fails while starting a project or acting on one.
        _ => Status::InterErr,
    }
}

/// The reply for the outcome of `cmd`; failures are logged.
fn reply(cmd: Cmd, r: Result<String>) -> Reply {
    match r {
        Ok(text) => Reply::Ok(text),
        Err(e) => {
            let status = status(cmd, &e);
            crate::log_warn!("{}: {e}", status.text());
            Reply::Fail(status, e.into_info().msg)
        }
    }
}

impl Handler for Daemon {
    fn handle(&mut self, req: &Request) -> Reply {
        let reply = contain_panic(|| self.dispatch(req));
        // Objects added, deleted, started or stopped: the metrics say so at once.
        if !matches!(
            Cmd::from_code(req.cmd),
            Some(Cmd::ProjectShow | Cmd::Engine)
        ) {
            self.woken();
        }
        reply
    }

    fn attach_waker(&mut self, wake: Arc<dyn Fn() + Send + Sync>) {
        if self.metrics.is_some() {
            self.registry.cycle_ended = Some(wake);
            self.woken();
        }
    }

    fn woken(&mut self) {
        if let Some(m) = &mut self.metrics {
            m.write(&self.registry);
        }
    }
}

/// The reply `f` makes, or, if it panics (a bug), upstream's internal-error reply saying
/// so: one request fails, and the daemon goes on serving the others.
fn contain_panic(f: impl FnOnce() -> Reply) -> Reply {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = format!(
            "etmemd panicked handling this request: {}",
            panic_message(&*payload)
        );
        crate::log_error!("{msg}");
        Reply::Fail(Status::InterErr, msg)
    })
}

impl Daemon {
    fn dispatch(&mut self, req: &Request) -> Reply {
        let Some(cmd) = Cmd::from_code(req.cmd) else {
            return Reply::fail(Status::Inval, format!("unknown command code {}", req.cmd));
        };
        let done = |r: Result<()>| r.map(|()| String::new());
        let r = match cmd {
            Cmd::ObjAdd => self.load(req).and_then(|f| done(self.registry.add(f))),
            Cmd::ObjDel => self.load(req).and_then(|f| done(self.registry.del(&f))),
            Cmd::ProjectStart => Self::project_name(req).and_then(|n| done(self.registry.start(n))),
            Cmd::ProjectStop => Self::project_name(req).and_then(|n| done(self.registry.stop(n))),
            Cmd::ProjectShow => self.show(req),
            Cmd::Engine => self.engine_cmd(req),
        };
        reply(cmd, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_handling_is_an_internal_error_reply() {
        assert_eq!(
            contain_panic(|| panic!("slice index starts at 9")),
            Reply::Fail(
                Status::InterErr,
                "etmemd panicked handling this request: slice index starts at 9".into()
            )
        );
        assert_eq!(
            contain_panic(|| Reply::Ok("x".into())),
            Reply::Ok("x".into())
        );
    }

    #[test]
    fn kinds_become_upstream_codes_here() {
        let e = |k, o: Option<Object>| {
            let mut e = Error::new(k, "x");
            e.object = o;
            e
        };
        let cases = [
            (
                Cmd::ObjAdd,
                e(Kind::NotFound, Some(Object::Project)),
                Status::ProNoexist,
            ),
            (
                Cmd::ObjAdd,
                e(Kind::Exists, Some(Object::Task)),
                Status::TaskExisted,
            ),
            (Cmd::ObjAdd, e(Kind::Invalid, None), Status::Inval),
            (
                Cmd::ObjAdd,
                e(Kind::Invalid, Some(Object::Engine)),
                Status::InterErr,
            ),
            (
                Cmd::ObjAdd,
                e(Kind::Invalid, Some(Object::Task)),
                Status::InterErr,
            ),
            (Cmd::ObjAdd, e(Kind::Permission, None), Status::Inval),
            (Cmd::ObjAdd, e(Kind::NotFound, None), Status::Inval),
            (
                Cmd::ObjDel,
                e(Kind::NotFound, Some(Object::Engine)),
                Status::EngNoexist,
            ),
            (
                Cmd::ProjectStart,
                e(Kind::State, Some(Object::Project)),
                Status::ProStarted,
            ),
            (
                Cmd::ProjectStop,
                e(Kind::State, Some(Object::Project)),
                Status::ProStopped,
            ),
            (Cmd::ProjectStart, e(Kind::Invalid, None), Status::InterErr),
            (
                Cmd::ProjectStart,
                e(Kind::Unsupported, None),
                Status::InterErr,
            ),
            (Cmd::ProjectStart, e(Kind::Usage, None), Status::Inval),
            (
                Cmd::ProjectShow,
                e(Kind::NotFound, Some(Object::Project)),
                Status::ProNoexist,
            ),
            (Cmd::Engine, e(Kind::Usage, None), Status::Inval),
            (
                Cmd::Engine,
                e(Kind::NotFound, Some(Object::Task)),
                Status::TaskNoexist,
            ),
        ];
        for (cmd, err, want) in cases {
            assert_eq!(status(cmd, &err), want, "{cmd:?} {err:?}");
        }
    }
}
