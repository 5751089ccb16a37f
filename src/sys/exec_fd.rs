//! Starting a plug-in program from its open, checked file ([`TrustedFile`]) with
//! `execveat(fd, "", AT_EMPTY_PATH)`: the program that runs is the file checked, never
//! whatever its path names by then. The child gets pipes for its standard input, output
//! and error and no other descriptor (a script keeps its own file open, which its
//! interpreter reads as `/dev/fd/N`), runs in a process group of its own from `/`, with
//! only `PATH` in its environment, and is killed by the kernel when the thread that
//! started it exits (`PR_SET_PDEATHSIG`): start it from a thread that lives as long as
//! the daemon.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::raw::c_char;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::trusted_file::TrustedFile;
use crate::error::{Error, Result};

/// The only environment a plug-in gets.
pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A null-terminated array of C string pointers into strings the same closure owns.
struct Argv {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into `_strings`, owned by the same value and never changed;
// they are only read, in the child, between fork and exec.
unsafe impl Send for Argv {}
// SAFETY: as for Send: shared reads of immutable data.
unsafe impl Sync for Argv {}

impl Argv {
    fn new(words: &[&str]) -> Result<Argv> {
        let strings = words
            .iter()
            .map(|w| CString::new(*w))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::invalid("a NUL byte in a plug-in's argument"))?;
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(Argv {
            _strings: strings,
            ptrs,
        })
    }
}

/// Start the program `file` holds, as `argv0`, with its standard streams piped. Fails
/// when the kernel refuses to run it (not an executable, a missing interpreter), with the
/// reason.
pub fn spawn(file: &TrustedFile, argv0: &str) -> Result<Child> {
    let exe = file.fd().as_raw_fd();
    let script = file.is_script();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let argv = Argv::new(&[argv0])?;
    let envp = Argv::new(&[PATH])?;
    let fd_limit = open_files_limit();
    let mut cmd = Command::new(file.resolved());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/")
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec. It calls only
    // async-signal-safe functions (prctl, getppid, fcntl, close_range, execveat) and
    // allocates nothing: the argument and environment arrays were built before the fork.
    // It never returns Ok, so std never execs the path itself.
    unsafe {
        cmd.pre_exec(move || exec_in_child(exe, script, parent, &argv, &envp, fd_limit));
    }
    cmd.spawn().map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) if script => {
                "the interpreter its #! line names is missing".to_string()
            }
            Some(libc::ENOEXEC) => "it is neither a program nor a #! script".to_string(),
            _ => e.to_string(),
        };
        Error::io(format!("cannot start {}: {why}", file.resolved()), e)
    })
}

/// SIGKILL to the process group `pgid` (a child started by [`spawn`] leads one): the
/// plug-in and whatever it started. Call it before reaping the child, while the group id
/// cannot name another group.
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: kill takes integers; a negative pid names a process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// The child's side: die with the parent, close every descriptor above the standard
/// streams at exec (but the script's own), and exec the open file. Returns only the
/// error that stopped it.
fn exec_in_child(
    exe: RawFd,
    script: bool,
    parent: libc::pid_t,
    argv: &Argv,
    envp: &Argv,
    fd_limit: RawFd,
) -> std::io::Result<()> {
    let last = std::io::Error::last_os_error;
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(last());
    }
    // The parent may have gone before the death signal was armed.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    close_on_exec_above(2, exe, fd_limit);
    let flags = if script { 0 } else { libc::FD_CLOEXEC };
    // SAFETY: F_SETFD takes an integer flag set.
    if unsafe { libc::fcntl(exe, libc::F_SETFD, flags) } != 0 {
        return Err(last());
    }
    // SAFETY: `exe` is an open descriptor, the path is an empty C string, and argv and
    // envp are null-terminated arrays of C strings that live as long as this call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe,
            c"".as_ptr(),
            argv.ptrs.as_ptr(),
            envp.ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Err(last())
}

/// Mark every descriptor above `low` close-on-exec except `keep` (whose flag the caller
/// sets): `close_range(CLOSE_RANGE_CLOEXEC)` (Linux 5.11+), else one fcntl per number
/// below `limit`. std's own error pipe stays open until the exec, as it must.
fn close_on_exec_above(low: RawFd, keep: RawFd, limit: RawFd) {
    let ranges = [(low + 1, keep - 1), (keep + 1, RawFd::MAX)];
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: close_range takes integers; CLOSE_RANGE_CLOEXEC closes nothing now.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                last as libc::c_uint,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if r != 0 {
            for fd in first..last.min(limit) {
                // SAFETY: F_SETFD on any number is harmless (EBADF when not open).
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// The highest descriptor number that may be open, for the fallback of
/// [`close_on_exec_above`] (capped, so the loop stays short).
fn open_files_limit() -> RawFd {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if r != 0 {
        return 1 << 16;
    }
    lim.rlim_cur.min(1 << 20) as RawFd
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_open_file_runs_with_nothing_but_its_pipes() {
        if crate::sys::euid() != 0 {
            assert_ne!(
                std::env::var("ETMEM_REQUIRE_ALL").as_deref(),
                Ok("1"),
                "needs root: root-owned plug-ins"
            );
            eprintln!("skipped: needs root (root-owned plug-ins)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("etmem-exec-fd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p");
        let script = "#!/bin/sh\necho \"$0 $PWD $(ls /proc/self/fd | wc -l)\"\nenv\n";
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = TrustedFile::open(p.to_str().unwrap()).unwrap();
        // Swapped after the check: the checked file still runs.
        let other = dir.join("o");
        std::fs::write(&other, "#!/bin/sh\necho swapped\n").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::rename(&other, &p).unwrap();
        let mut child = spawn(&file, "policy").unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(child.wait().unwrap().success());
        let mut lines = out.lines();
        let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
        // sh names its script /dev/fd/N; cwd is /; open: 0, 1, 2, the script, and ls's
        // own directory handle.
        assert!(first[0].starts_with("/dev/fd/"), "{out}");
        assert_eq!(first[1], "/");
        assert_eq!(first[2], "5", "{out}");
        let env: Vec<&str> = lines.filter(|l| !l.starts_with("PWD=")).collect();
        assert_eq!(env, [PATH], "{out}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
