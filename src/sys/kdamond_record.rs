//! A record of the kdamond this etmemd set up, under `/run/etmemd/`, so that a daemon
//! killed with SIGKILL (which cannot turn its kdamond off) does not leave DAMON running:
//! the next etmemd finds the record of a dead predecessor and turns that kdamond off,
//! provided it is still the very thread recorded. Kdamonds set up by anyone else have no
//! record and are never touched.

use std::path::{Path, PathBuf};

use super::damon_sysfs::ADMIN;
use crate::error::{Error, Result};

/// Where the records live (a tmpfs: a reboot forgets them with the kdamonds).
pub const DIR: &str = "/run/etmemd";

fn mine() -> PathBuf {
    Path::new(DIR).join(format!("kdamond-{}", std::process::id()))
}

/// Record that kdamond `index`, whose thread is `kdamond_pid`, is this process's.
pub fn record(index: u64, kdamond_pid: u64) -> Result<()> {
    std::fs::create_dir_all(DIR).map_err(|e| Error::file(DIR, e))?;
    let path = mine();
    std::fs::write(&path, format!("{index} {kdamond_pid}\n"))
        .map_err(|e| Error::file(path.display(), e))
}

/// Forget this process's record (its kdamond is off).
pub fn forget() {
    let _ = std::fs::remove_file(mine());
}

/// Parse a record: `INDEX KDAMOND_PID`.
pub fn parse(text: &str) -> Option<(u64, u64)> {
    let mut w = text.split_ascii_whitespace();
    let r = (w.next()?.parse().ok()?, w.next()?.parse().ok()?);
    w.next().is_none().then_some(r)
}

/// Turn off the kdamonds of dead predecessors, each only if it is still the thread its
/// record names; drop every record of a dead process. What was done, for the log.
pub fn turn_off_orphans() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(DIR) else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("kdamond-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() || super::process::exists(owner as crate::types::Pid) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let _ = std::fs::remove_file(entry.path());
        let Some((index, kpid)) = parse(&text) else {
            continue;
        };
        let k = Path::new(ADMIN).join(format!("kdamonds/{index}"));
        let now = std::fs::read_to_string(k.join("pid")).unwrap_or_default();
        if now.trim().parse::<u64>().ok() != Some(kpid) {
            continue; // off already, or another user's by now
        }
        let off = std::fs::write(k.join("state"), "off");
        // With the kdamond off, remove it, as its owner would have.
        super::damon_sysfs::remove_kdamonds();
        done.push(match off {
            Ok(()) => format!(
                "turned off kdamond {index} (pid {kpid}) left by etmemd {owner}, which was killed"
            ),
            Err(e) => {
                format!("cannot turn off kdamond {index} (pid {kpid}) left by etmemd {owner}: {e}")
            }
        });
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse() {
        assert_eq!(parse("0 1234\n"), Some((0, 1234)));
        assert_eq!(parse("0"), None);
        assert_eq!(parse("0 1 2"), None);
        assert_eq!(parse("x 1"), None);
    }
}
