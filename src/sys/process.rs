//! Finding processes by reading `/proc`: by exact name, their children, and facts from
//! `/proc/PID/status`. Never runs `pgrep` (spec §5.4 lists why).

use crate::error::{Error, Kind, Result};
use crate::types::Pid;

/// The longest name the kernel keeps for a task (`comm`, TASK_COMM_LEN - 1).
pub const COMM_MAX: usize = 15;

/// The pids of every process (not thread) whose `comm` is exactly `name`, ascending.
/// A name longer than 15 bytes is compared on its first 15, as the kernel truncates.
pub fn pids_by_name(name: &str) -> Vec<Pid> {
    let want = &name.as_bytes()[..name.len().min(COMM_MAX)];
    let mut found: Vec<Pid> = all_pids()
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/comm"))
                .map(|c| c.strip_suffix(b"\n").unwrap_or(&c) == want)
                .unwrap_or(false)
        })
        .collect();
    found.sort_unstable();
    found
}

/// The lowest pid whose `comm` is exactly `name` (what `pgrep -x` printed first upstream).
pub fn pid_by_name(name: &str) -> Option<Pid> {
    pids_by_name(name).into_iter().next()
}

/// Every numeric entry of `/proc`: the processes (thread-group leaders) of this pid namespace.
pub fn all_pids() -> impl Iterator<Item = Pid> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<Pid>().ok())
}

/// Direct children of `pid`, ascending, gathered from every thread's
/// `/proc/PID/task/TID/children` (a child belongs to the thread that forked it).
pub fn children(pid: Pid) -> Vec<Pid> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for t in tasks.flatten() {
        let path = t.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(
                text.split_ascii_whitespace()
                    .filter_map(|w| w.parse::<Pid>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// True if `/proc/PID` exists and is a process (not only a thread id).
pub fn exists(pid: Pid) -> bool {
    pid > 0
        && std::path::Path::new(&format!("/proc/{pid}/status")).exists()
        && tgid(pid) == Some(pid)
}

/// The thread-group id (process id) of a task id.
pub fn tgid(pid: Pid) -> Option<Pid> {
    status_field(pid, "Tgid").ok()?.parse().ok()
}

/// The process name (`comm`).
pub fn comm(pid: Pid) -> Result<String> {
    let path = format!("/proc/{pid}/comm");
    let c = std::fs::read_to_string(&path).map_err(|e| proc_error(pid, &path, e))?;
    Ok(c.trim_end_matches('\n').to_string())
}

/// True for kernel threads: they have no user address space to scan.
pub fn is_kernel_thread(pid: Pid) -> Result<bool> {
    // Kernel threads have no VmSize line in status (no mm); PF_KTHREAD is in stat too,
    // but status is simpler and also true for exiting zombies, which equally have no mm.
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| proc_error(pid, &path, e))?;
    Ok(!text.lines().any(|l| l.starts_with("VmSize:")))
}

/// One field of `/proc/PID/status`, the text after the colon, trimmed.
pub fn status_field(pid: Pid, key: &str) -> Result<String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| proc_error(pid, &path, e))?;
    field(&text, key)
        .map(str::to_string)
        .ok_or_else(|| Error::new(Kind::NotFound, format!("{path}: no {key} line")))
}

/// A `kB` field of `/proc/PID/status` (e.g. `VmRSS`, `VmSwap`) in bytes.
pub fn status_bytes(pid: Pid, key: &str) -> Result<u64> {
    let v = status_field(pid, key)?;
    parse_kb(&v)
        .ok_or_else(|| Error::invalid(format!("/proc/{pid}/status: {key}: unparsable value {v:?}")))
}

/// `key: value` lookup in procfs text (status, meminfo): exact key, value trimmed.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// `"1234 kB"` -> 1234 * 1024.
pub fn parse_kb(v: &str) -> Option<u64> {
    let n = v.strip_suffix("kB").unwrap_or(v).trim();
    n.parse::<u64>().ok()?.checked_mul(1024)
}

/// A read failure under `/proc/PID`, with `Gone`/`NotFound` when the process is not there.
pub fn proc_error(pid: Pid, path: &str, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => {
            Error::new(Kind::NotFound, format!("no process with pid {pid}"))
        }
        _ => Error::file(path, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_by_name_and_as_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as Pid;
        // The exec may not have happened yet: comm is "sleep" only after it.
        let mut ok = false;
        for _ in 0..200 {
            if pids_by_name("sleep").contains(&pid) {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ok, "sleep child not found by name");
        assert!(children(std::process::id() as Pid).contains(&pid));
        assert!(exists(pid));
        assert!(!is_kernel_thread(pid).unwrap());
        assert!(status_bytes(pid, "VmRSS").unwrap() > 0);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!exists(pid));
        assert_eq!(comm(pid).unwrap_err().kind, Kind::NotFound);
    }

    #[test]
    fn kernel_threads_have_no_mm() {
        // kthreadd is pid 2 on every Linux system with a full pid namespace.
        if comm(2).map(|c| c == "kthreadd").unwrap_or(false) {
            assert!(is_kernel_thread(2).unwrap());
        }
    }

    #[test]
    fn parses_fields() {
        let t = "Name:\tbash\nVmRSS:\t    1234 kB\nVmSwap:\t0 kB\n";
        assert_eq!(field(t, "Name"), Some("bash"));
        assert_eq!(field(t, "VmRSS").and_then(parse_kb), Some(1234 * 1024));
        assert_eq!(field(t, "VmSw"), None);
    }
}
