//! Which processes a task works on this cycle: the configured pid or the lowest pid with
//! that exact name, plus its direct children when the engine wants them (spec §5.4).

use crate::config::Target;
use crate::error::{Error, Kind, Result};
use crate::sys::process;
use crate::types::Pid;

/// Resolve a task's target now. The main process comes first, then its children.
pub fn resolve(target: &Target, with_children: bool) -> Result<Vec<Pid>> {
    let main = match target {
        Target::Pid(pid) => {
            if !process::exists(*pid) {
                return Err(Error::new(
                    Kind::NotFound,
                    format!("no process with pid {pid}"),
                ));
            }
            *pid
        }
        Target::Name(name) => process::pid_by_name(name)
            .ok_or_else(|| Error::new(Kind::NotFound, format!("no process named {name:?}")))?,
    };
    let mut pids = vec![main];
    if with_children {
        pids.extend(process::children(main));
    }
    Ok(pids)
}
