//! Which processes a task works on this cycle: the configured pid or the lowest pid with
//! that exact name, plus its direct children when the engine wants them (spec §5.4).
//!
//! A pid is only a number: once its process exits, the kernel may give it to an
//! unrelated one. So a process is held by a pidfd from the moment it is listed, with what
//! identified it then (its start time and, for a child, its parent), and checked to be
//! the same process before anything touches it. [`Held`] can only be made here, by the
//! listing, so no one can work on a bare pid by mistake.

use crate::config::Target;
use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::sys::process;
use crate::types::Pid;

/// What tells a process from a later one that reuses its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// When it started (field 22 of `/proc/PID/stat`, clock ticks after boot).
    pub start_time: u64,
    /// For a child, the process it was listed as a child of.
    pub parent: Option<Pid>,
}

/// A process found by a listing, held by a pidfd opened when it was listed.
#[derive(Debug)]
pub struct Held {
    pidfd: Pidfd,
    identity: Identity,
}

impl Held {
    /// Hold `pid`: open its pidfd, then read what identifies it and check it is what the
    /// listing saw (a child of `parent`, named `name`). What was read belonged to the
    /// held process if it is still alive after the reads.
    fn open(pid: Pid, parent: Option<Pid>, name: Option<&str>) -> Result<Held> {
        let pidfd = Pidfd::open(pid)?;
        let st = process::stat(pid)?;
        if let Some(pp) = parent.filter(|&pp| pp != st.ppid) {
            return Err(Error::new(
                Kind::Gone,
                format!("process {pid} is no longer a child of {pp}"),
            ));
        }
        if let Some(n) = name.filter(|n| !process::has_name(pid, n)) {
            return Err(Error::new(
                Kind::Gone,
                format!("process {pid} is no longer named {n:?}"),
            ));
        }
        pidfd.check_alive()?;
        Ok(Held {
            pidfd,
            identity: Identity {
                start_time: st.start_time,
                parent,
            },
        })
    }

    /// The pid the process was listed under.
    pub fn pid(&self) -> Pid {
        self.pidfd.pid()
    }

    /// What identified the process when it was listed.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The pidfd to work through, once the process is checked to be alive and still the
    /// one listed (see [`check_identity`]); an error of kind `Gone` otherwise. Call it
    /// before touching the process, and again after any long wait.
    pub fn check(&self) -> Result<&Pidfd> {
        self.pidfd.check_alive()?;
        check_identity(self.pid(), &self.identity)?;
        // Alive after the reads: what they saw was this process, not a successor.
        self.pidfd.check_alive()?;
        Ok(&self.pidfd)
    }
}

/// Check that `pid` names, now, the process `identity` describes: the same start time
/// and, for a child, the same parent. A different process that took the pid fails with
/// kind `Gone`, as does an exited one.
pub fn check_identity(pid: Pid, identity: &Identity) -> Result<()> {
    let st = process::stat(pid).map_err(|e| match e.kind {
        Kind::NotFound => Error::new(Kind::Gone, format!("process {pid} exited")),
        _ => e,
    })?;
    if st.start_time != identity.start_time {
        return Err(Error::new(
            Kind::Gone,
            format!("process {pid} exited, and its pid now names another process"),
        ));
    }
    if let Some(pp) = identity.parent.filter(|&pp| pp != st.ppid) {
        return Err(Error::new(
            Kind::Gone,
            format!("process {pid} is no longer a child of {pp}"),
        ));
    }
    Ok(())
}

/// Resolve a task's target now and hold what it finds: the main process first, then
/// (with `with_children`) its direct children. Children that exit while they are listed
/// are left out.
pub fn resolve(target: &Target, with_children: bool) -> Result<Vec<Held>> {
    let main = match target {
        Target::Pid(pid) => {
            if !process::exists(*pid) {
                return Err(Error::new(
                    Kind::NotFound,
                    format!("no process with pid {pid}"),
                ));
            }
            Held::open(*pid, None, None).map_err(|e| match e.kind {
                Kind::NotFound | Kind::Gone => {
                    Error::new(Kind::NotFound, format!("no process with pid {pid}"))
                }
                _ => e,
            })?
        }
        // The lowest pid with that name; if it exits while we look, the next one.
        Target::Name(name) => process::pids_by_name(name)
            .into_iter()
            .find_map(|pid| Held::open(pid, None, Some(name)).ok())
            .ok_or_else(|| Error::new(Kind::NotFound, format!("no process named {name:?}")))?,
        Target::Cgroups(pattern) => {
            return Err(Error::usage(format!(
                "the task names memory cgroups (cg_dir={pattern}), not processes"
            )))
        }
    };
    let main_pid = main.pid();
    let mut held = vec![main];
    if with_children {
        let kids = process::children(main_pid);
        // The children were read under /proc/MAIN: they are the held main's only if it
        // is still alive now.
        held[0].pidfd.check_alive()?;
        held.extend(
            kids.into_iter()
                .filter_map(|pid| Held::open(pid, Some(main_pid), None).ok()),
        );
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sleeper() -> std::process::Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn a_process_that_took_the_pid_is_not_the_one_listed() {
        let me = std::process::id() as Pid;
        let mut a = sleeper();
        let a_pid = a.id() as Pid;
        let held = resolve(&Target::Pid(me), true).unwrap();
        let a_held = held
            .iter()
            .find(|h| h.pid() == a_pid)
            .expect("child listed");
        assert_eq!(a_held.identity().parent, Some(me));
        assert!(a_held.check().is_ok());
        let a_id = a_held.identity();

        // A exits; B starts. The kernel may give B A's pid: B must not pass for A.
        a.kill().unwrap();
        a.wait().unwrap();
        let e = a_held.check().unwrap_err();
        assert_eq!(
            (e.kind, e.msg.as_str()),
            (Kind::Gone, &*format!("process {a_pid} exited"))
        );
        std::thread::sleep(std::time::Duration::from_millis(20)); // a later start time
        let mut b = sleeper();
        let b_pid = b.id() as Pid;
        let b_id = resolve(&Target::Pid(b_pid), false).unwrap()[0].identity();
        assert!(b_id.start_time > a_id.start_time, "{a_id:?} {b_id:?}");
        // Asked with A's identity, B's pid (the same number after a reuse) is refused.
        let e = check_identity(b_pid, &a_id).unwrap_err();
        assert_eq!(e.kind, Kind::Gone);
        assert_eq!(
            e.msg,
            format!("process {b_pid} exited, and its pid now names another process")
        );
        assert!(check_identity(
            b_pid,
            &Identity {
                parent: None,
                ..b_id
            }
        )
        .is_ok());
        // B is our child too, but not of process 1.
        let e = check_identity(
            b_pid,
            &Identity {
                parent: Some(1),
                ..b_id
            },
        )
        .unwrap_err();
        assert_eq!(e.msg, format!("process {b_pid} is no longer a child of 1"));
        b.kill().unwrap();
        b.wait().unwrap();
        assert_eq!(check_identity(b_pid, &b_id).unwrap_err().kind, Kind::Gone);
    }

    #[test]
    fn a_listed_child_must_still_be_a_child() {
        let me = std::process::id() as Pid;
        // Process 1 is not our child, whatever a stale listing said.
        let e = Held::open(1, Some(me), None).unwrap_err();
        assert_eq!(e.msg, format!("process 1 is no longer a child of {me}"));
        let e = Held::open(me, None, Some("no-such-name-q")).unwrap_err();
        assert_eq!(e.kind, Kind::Gone);
    }
}
