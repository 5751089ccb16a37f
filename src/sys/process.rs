//! Finding processes by reading `/proc`: by exact name, their children, and facts from
//! `/proc/PID/status`. Never runs `pgrep` (spec §5.4 lists why).

use crate::error::{Error, Kind, Result};
use crate::types::Pid;

/// The longest name the kernel keeps for a task (`comm`, TASK_COMM_LEN - 1).
pub const COMM_MAX: usize = 15;

/// The pids of every process (not thread) whose `comm` is exactly `name`, ascending.
/// A name longer than 15 bytes is compared on its first 15, as the kernel truncates.
pub fn pids_by_name(name: &str) -> Vec<Pid> {
    let mut found: Vec<Pid> = all_pids().filter(|&pid| has_name(pid, name)).collect();
    crate::sort::unstable(&mut found);
    found
}

/// True if the `comm` of `pid` is exactly `name` now (on its first 15 bytes, as the
/// kernel truncates); false if it differs or cannot be read.
pub fn has_name(pid: Pid, name: &str) -> bool {
    let want = &name.as_bytes()[..name.len().min(COMM_MAX)];
    std::fs::read(format!("/proc/{pid}/comm"))
        .map(|c| c.strip_suffix(b"\n").unwrap_or(&c) == want)
        .unwrap_or(false)
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
    crate::sort::unstable(&mut out);
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

/// True for kernel threads: they have no user address space to scan. (A zombie has no
/// address space either, but it is a process that exited: see [`Stat::is_zombie`].)
pub fn is_kernel_thread(pid: Pid) -> Result<bool> {
    Ok(stat(pid)?.is_kernel_thread())
}

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat` (include/linux/sched.h).
const PF_KTHREAD: u32 = 0x0020_0000;

/// What `/proc/PID/stat` says about a process that we need: its state, its parent, its
/// flags and its start time, which together with the pid tells one process from a later
/// one that reuses the pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3, the state letter: `R`, `S`, `D`, `Z` (zombie), `X` (dead)...
    pub state: u8,
    /// Field 4, the parent's pid.
    pub ppid: Pid,
    /// Field 9, the kernel's `PF_*` flags.
    pub flags: u32,
    /// Field 22, when the process started, in clock ticks after boot.
    pub start_time: u64,
}

impl Stat {
    /// A kernel thread (`PF_KTHREAD`): no user memory.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// A process that exited and is not yet reaped (or its main thread exited): it has
    /// no user memory left.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// Read and parse `/proc/PID/stat`. `NotFound` when there is no such process.
pub fn stat(pid: Pid) -> Result<Stat> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read(&path).map_err(|e| proc_error(pid, &path, e))?;
    parse_stat(&text).ok_or_else(|| {
        Error::invalid(format!(
            "{path}: unparsable: {:?}",
            String::from_utf8_lossy(&text)
        ))
    })
}

/// Parse the text of `/proc/PID/stat`. The name (field 2) is in parentheses and may hold
/// spaces, parentheses and bytes that are not UTF-8, so the fields are counted from the
/// text after the last `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    // Field 3 is the first word after the name.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| f.get(n - 3).copied();
    let state = field(3).filter(|s| s.len() == 1)?.as_bytes()[0];
    Some(Stat {
        state,
        ppid: field(4)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
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

/// CPU time this process has used, user and system, all threads (getrusage).
pub fn own_cpu_time() -> std::time::Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_SELF is a valid `who`, so the call
    // cannot fail, and it fills the whole struct (which zeroed() already initialised).
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec.max(0) as u64)
            + std::time::Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
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
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // A name with spaces and parentheses (comm may hold any byte but NUL and '/').
        let t = b"4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 108 0 0 0 1 2 0 0 20 0 1 0 \
                  987654 8609792 917 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1\n";
        let s = parse_stat(t).unwrap();
        assert_eq!(
            s,
            Stat {
                state: b'S',
                ppid: 17,
                flags: 4194560,
                start_time: 987654
            }
        );
        assert!(!s.is_kernel_thread() && !s.is_zombie());
        // Not UTF-8 in the name is fine; a truncated line is not.
        assert!(
            parse_stat(b"1 (\xff\xfe) Z 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
                .unwrap()
                .is_zombie()
        );
        assert_eq!(parse_stat(b"1 (x) S 0 0 0"), None);
        assert_eq!(parse_stat(b"no parenthesis"), None);
    }

    #[test]
    fn a_zombie_is_not_a_kernel_thread() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as Pid;
        let before = stat(pid).unwrap();
        assert_eq!(before.ppid, std::process::id() as Pid);
        child.kill().unwrap();
        // Killed, not yet reaped: a zombie, with no mm, but no kernel thread.
        let mut st = before;
        for _ in 0..200 {
            st = stat(pid).unwrap();
            if st.is_zombie() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(st.is_zombie(), "{st:?}");
        assert!(
            !is_kernel_thread(pid).unwrap(),
            "a zombie was called a kernel thread"
        );
        assert_eq!(st.start_time, before.start_time);
        child.wait().unwrap();
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
