//! One run of a policy process, from its hello to its `bye`: the requests of the protocol
//! in the order `etmem-policy(7)` gives, each answer read within the engine's
//! `reply_timeout` and held to the protocol's limits. A plug-in's refusal (`error TEXT`)
//! is the caller's to report; anything else that goes wrong breaks the session for good.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::process::PolicyProcess;
use super::protocol::{self, Action, Hello, Line, Status};
use crate::config::{TaskConf, TaskParams, ThirdpartyConf};
use crate::engine::cold::Scanned;
use crate::engine::Command;
use crate::sys::trusted_file::TrustedFile;

/// The most lines an answer to a scan may have.
pub const MAX_ACTIONS: usize = 1 << 20;
/// The most bytes of text an answer to a command may have.
pub const MAX_TEXT: usize = 1 << 20;
/// The time the plug-in has in all, at project stop, to answer its `stop` requests and
/// exit after `bye`; then it is killed.
pub const CLOSE_BUDGET: Duration = Duration::from_secs(2);

/// Why a request got no good answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The plug-in answered `error TEXT`: it refuses this request, and goes on.
    Refused(String),
    /// The plug-in exited, hung, flooded or wrote what the protocol does not allow: the
    /// session is over (the reason says what happened).
    Broken(String),
}

/// A running policy process and what it has been told.
pub struct Session {
    process: PolicyProcess,
    hello: Hello,
    timeout: Duration,
    /// The tasks it has been given (`task`) and started (`start`).
    known: HashSet<String>,
}

/// Never stop: for requests made by the daemon's own thread, which waits them out.
pub fn never() -> bool {
    false
}

impl Session {
    /// Start the plug-in and give it the engine and `tasks`: `hello`, `engine`, then for
    /// each task `task` and `start`. The error is a whole sentence naming the plug-in.
    pub fn open(
        file: &TrustedFile,
        conf: &ThirdpartyConf,
        tasks: &[&TaskConf],
    ) -> Result<Session, String> {
        let process = PolicyProcess::start(file, &conf.eng_name, conf.reply_timeout)
            .map_err(|e| e.into_info().msg)?;
        let mut s = Session {
            process,
            hello: Hello {
                version: 0,
                command: false,
            },
            timeout: Duration::from_secs(conf.reply_timeout.into()),
            known: HashSet::new(),
        };
        let said = |s: &Session, what: &str, f: Fault| match f {
            Fault::Broken(why) => format!("{} {why}", s.who()),
            Fault::Refused(e) => format!("{} refused {what}: {e}", s.who()),
        };
        let deadline = s.deadline();
        let hello = s
            .send(&protocol::hello(), deadline)
            .and_then(|()| s.line(deadline, &never))
            .and_then(|l| protocol::parse_hello(&l).map_err(Fault::Broken));
        s.hello = hello.map_err(|f| said(&s, "the hello", f))?;
        let engine = protocol::engine(&conf.eng_name, &conf.keys);
        if let Err(f) = s.status(&engine, &never) {
            return Err(said(&s, "the engine's keys", f));
        }
        for t in tasks {
            if let Err(f) = s.announce(t, &never) {
                return Err(said(&s, &format!("task {}", t.name), f));
            }
        }
        Ok(s)
    }

    /// `the plug-in PATH (pid N)`.
    pub fn who(&self) -> &str {
        self.process.who()
    }

    /// What its hello said.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    fn send(&mut self, text: &str, deadline: Instant) -> Result<(), Fault> {
        self.process.send(text, deadline).map_err(Fault::Broken)
    }

    fn line(&mut self, deadline: Instant, stop: &dyn Fn() -> bool) -> Result<String, Fault> {
        self.process.line(deadline, stop).map_err(Fault::Broken)
    }

    /// Send `request` and read its `ok` or `error TEXT`.
    fn status(&mut self, request: &str, stop: &dyn Fn() -> bool) -> Result<(), Fault> {
        let deadline = self.deadline();
        self.send(request, deadline)?;
        let line = self.line(deadline, stop)?;
        match protocol::parse_status(&line).map_err(Fault::Broken)? {
            Status::Ok => Ok(()),
            Status::Error(e) => Err(Fault::Refused(e)),
        }
    }

    /// Give it `task` and start it (`task`, then `start`), unless that was done: before
    /// a task's first scan, and for each task at project start.
    pub fn announce(&mut self, task: &TaskConf, stop: &dyn Fn() -> bool) -> Result<(), Fault> {
        if self.known.contains(&task.name) {
            return Ok(());
        }
        let keys: &[(String, String)] = match &task.params {
            TaskParams::Thirdparty { keys } => keys,
            _ => &[],
        };
        self.status(&protocol::task(&task.name, keys), stop)?;
        self.status(&protocol::about_task("start", &task.name), stop)?;
        self.known.insert(task.name.clone());
        Ok(())
    }

    /// The scan of one of `task`'s processes, and its answer: each action with its line
    /// in the answer.
    pub fn scan(
        &mut self,
        task: &str,
        pid: i32,
        loops: u32,
        scanned: &Scanned,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<(usize, Action)>, Fault> {
        let deadline = self.deadline();
        self.send(&protocol::scan(task, pid, loops, scanned), deadline)?;
        let mut actions = Vec::new();
        for n in 1.. {
            let line = self.line(deadline, stop)?;
            match protocol::parse_action(&line).map_err(Fault::Broken)? {
                Line::Item(a) if actions.len() < MAX_ACTIONS => actions.push((n, a)),
                Line::Item(_) => {
                    return Err(Fault::Broken(format!(
                        "answered a scan with more than {MAX_ACTIONS} lines"
                    )))
                }
                Line::End => break,
                Line::Error(e) => return Err(Fault::Refused(e)),
            }
        }
        Ok(actions)
    }

    /// An `etmem engine` command, and the text to send back to the client.
    pub fn command(&mut self, cmd: &Command) -> Result<String, Fault> {
        let deadline = self.deadline();
        self.send(&protocol::command(cmd.word, cmd.task, cmd.json), deadline)?;
        let mut text = String::new();
        loop {
            let line = self.line(deadline, &never)?;
            match protocol::parse_text(&line).map_err(Fault::Broken)? {
                Line::Item(t) if text.len() + t.len() < MAX_TEXT => {
                    text.push_str(&t);
                    text.push('\n');
                }
                Line::Item(_) => {
                    return Err(Fault::Broken(format!(
                        "answered a command with more than {} KiB of text",
                        MAX_TEXT >> 10
                    )))
                }
                Line::End => return Ok(text),
                Line::Error(e) => return Err(Fault::Refused(e)),
            }
        }
    }

    /// A task was deleted while it ran: `stop` it and `forget` it (upstream's
    /// `stop_task` and `clear_task_params`). Nothing to do for a task it never got.
    pub fn forget(&mut self, task: &str) -> Result<(), Fault> {
        if !self.known.remove(task) {
            return Ok(());
        }
        let stopped = self.status(&protocol::about_task("stop", task), &never);
        let forgot = self.status(&protocol::about_task("forget", task), &never);
        stopped.and(forgot)
    }

    /// The end (project stop, engine deleted, daemon shutdown): `stop` each task, then
    /// `bye`, all within [`CLOSE_BUDGET`]; then the process is ended whatever it does.
    pub fn close(mut self) {
        let until = Instant::now() + CLOSE_BUDGET;
        let mut tasks: Vec<String> = self.known.drain().collect();
        crate::sort::unstable(&mut tasks);
        for t in tasks {
            let r = self
                .send(&protocol::about_task("stop", &t), until)
                .and_then(|()| self.line(until, &never));
            match r.map(|l| protocol::parse_status(&l)) {
                Ok(Ok(Status::Ok)) => {}
                Ok(Ok(Status::Error(e))) => {
                    crate::log_warn!("{}: stop {t}: {e}", self.who());
                }
                Ok(Err(e)) | Err(Fault::Broken(e) | Fault::Refused(e)) => {
                    crate::log_warn!("{}: stop {t}: {e}; killing it", self.who());
                    return;
                }
            }
        }
        if self.send(protocol::BYE, until).is_ok() {
            let grace = until.saturating_duration_since(Instant::now());
            self.process.finish(grace);
        }
    }
}
