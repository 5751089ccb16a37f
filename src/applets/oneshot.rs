//! What the one-shot applets (`etmem-scan`, `etmem-swap`) share, so that both behave and
//! speak alike: the start of `main` (help, usage errors), the scan options (`--loop`,
//! `--interval`, `--backend`, `--threshold`), the process they work on (`--pid N` or
//! `--name COMM`, found in `/proc`, held by a pidfd) with the messages for each way that
//! can fail, the exit status an error gives, and the stop flag the termination signals
//! set.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::getopt::{self, Item};
pub use crate::config::Target;
use crate::engine::cold::{ScanSpec, Watch};
use crate::engine::targets::{self, Held};
use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::sys::process;
use crate::types::{Family, Pid, ScanBackend};

/// The arguments `parsed` holds, or the exit status when there is nothing to run: 0
/// after printing `help` (`Ok(None)` means --help), 2 after printing a usage error.
pub fn args_or_exit<A>(
    applet: &str,
    help: &str,
    parsed: Result<Option<A>, String>,
) -> Result<A, i32> {
    match parsed {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(if super::print_out(applet, &format!("{help}\n")) {
            0
        } else {
            1
        }),
        Err(e) => {
            eprintln!("{applet}: {e}\nTry '{applet} --help'.");
            Err(2)
        }
    }
}

/// The process the command line names, from the `pid` and `name` options; `verb`
/// completes the message when neither is given ("give the process to VERB with --pid N or
/// --name COMM"). The same [`Target`] a task's config names.
pub fn target_from_options(items: &[Item], verb: &str) -> Result<Target, String> {
    match (getopt::last(items, "pid"), getopt::last(items, "name")) {
        (Some(_), Some(_)) => Err("give either --pid or --name, not both".into()),
        (Some(p), None) => p
            .parse::<Pid>()
            .ok()
            .filter(|&n| n > 0)
            .map(Target::Pid)
            .ok_or_else(|| format!("--pid: {p:?} is not a process id")),
        (None, Some(n)) if !n.is_empty() => Ok(Target::Name(n.to_string())),
        (None, Some(_)) => Err("--name: the name is empty".into()),
        (None, None) => Err(format!(
            "give the process to {verb} with --pid N or --name COMM"
        )),
    }
}

/// The target's process now (the lowest pid with that exact name), then with `children`
/// its direct children, each held from the moment it is listed: as the daemon resolves a
/// task's target.
pub fn processes(target: &Target, children: bool) -> Result<Vec<Held>> {
    targets::resolve(target, children)
}

/// How to scan: `--loop`, `--interval`, `--backend` and `--threshold`, with the same
/// ranges and defaults wherever a command line asks for a scan (`etmem-swap --cold` too).
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Passes per scan (`--loop`): 1 to 120, default 1.
    pub loops: u32,
    /// The pause before each pass (`--interval`, seconds): over 0 up to 1200, default 1.
    pub interval: Duration,
    /// The interval as given, for output that echoes it.
    pub interval_text: String,
    /// `None` is auto.
    pub backend: Option<ScanBackend>,
    /// Hot from this count on; cold below it (for the slide rule).
    pub threshold: u16,
}

impl ScanOptions {
    /// The scan options of parsed command-line `items`, defaults filled in; the error
    /// names the option, the bad value and what is allowed.
    pub fn from_options(items: &[getopt::Item]) -> Result<ScanOptions, String> {
        let loops = match getopt::last(items, "loop") {
            None => 1,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=120).contains(n))
                .ok_or_else(|| format!("--loop: {v:?} is not a number from 1 to 120"))?,
        };
        let interval_text = getopt::last(items, "interval").unwrap_or("1").to_string();
        let interval = interval_text
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1200.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                format!("--interval: {interval_text:?} is not a number of seconds in (0, 1200]")
            })?;
        let backend = match getopt::last(items, "backend") {
            None => None,
            Some(b) => ScanBackend::choose(b).map_err(|e| format!("--backend: {e}"))?,
        };
        let max_t = 3 * loops;
        let threshold = match getopt::last(items, "threshold") {
            None => loops,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|t| *t <= max_t)
                .ok_or_else(|| format!("--threshold: {v:?} is not a number from 0 to {max_t}"))?,
        };
        Ok(ScanOptions {
            loops,
            interval,
            interval_text,
            backend,
            threshold: threshold as u16,
        })
    }
}

impl ScanOptions {
    /// The scan these options ask for, over the VMAs `watch` names.
    pub fn spec(&self, watch: Watch) -> ScanSpec {
        ScanSpec {
            backend: self.backend,
            loops: self.loops,
            interval: self.interval,
            watch,
        }
    }
}

/// Check that `held` is still the process listed and that it has user memory (is not a
/// kernel thread, has not exited); returns its pidfd and the process name. `verb` says
/// what we wanted to do with it.
pub fn open_user_process<'h>(held: &'h Held, verb: &str) -> Result<(&'h Pidfd, String)> {
    let pid = held.pid();
    let target = held.check()?;
    let comm = process::comm(pid)?;
    let st = process::stat(pid)?;
    if st.is_zombie() {
        return Err(Error::new(
            Kind::Gone,
            format!("process {pid} ({comm}) exited (zombie): it has no user memory to {verb}"),
        ));
    }
    if st.is_kernel_thread() {
        return Err(Error::invalid(format!(
            "pid {pid} ({comm}) is a kernel thread: it has no user memory to {verb}"
        )));
    }
    // The name was read from this process, not from one that took its pid meanwhile.
    held.check()?;
    Ok((target, comm))
}

/// The message for a failure while working on `pid`; `doing` names the work for the
/// permission hint ("scanning", "swapping").
pub fn describe(pid: Pid, e: &Error, doing: &str) -> String {
    describe_as(crate::sys::euid(), pid, e, doing)
}

/// [`describe`] for a caller whose effective uid is `euid`. Root is denied a process's
/// `/proc` files only by the kernel's ptrace access rules (an undumpable process, Yama's
/// ptrace_scope, an LSM), so it is told that rather than to become root.
fn describe_as(euid: u32, pid: Pid, e: &Error, doing: &str) -> String {
    match (&e.path, e.kind) {
        (Some(path), Kind::Permission) if path.starts_with("/proc/") && euid == 0 => format!(
            "the kernel denied access to {path}: reading another process's memory maps needs \
             ptrace access (it may be undumpable, or Yama/an LSM forbids it)"
        ),
        (Some(path), Kind::Permission) if path.starts_with("/proc/") => {
            format!("permission denied reading {path}: {doing} another user's process needs root")
        }
        (_, Kind::NotFound) if !process::exists(pid) => format!("no process with pid {pid}"),
        _ => e.msg.clone(),
    }
}

/// The exit status of a one-shot applet that failed with `e`: 2 for bad usage (an
/// option, a range, unreadable input), 1 for anything else (the process, the kernel).
pub fn exit_status(e: &Error) -> i32 {
    if e.kind == Kind::Usage {
        2
    } else {
        1
    }
}

/// Say on stderr why `applet` failed; returns the exit status for it.
pub fn fail(applet: &str, e: &Error) -> i32 {
    eprintln!("{applet}: {e}");
    exit_status(e)
}

/// A flag that SIGINT, SIGTERM and SIGHUP set, so a one-shot applet ends its scan or
/// swap-out promptly and tidily (DAMON torn down, a summary of what was done printed).
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(a: &[&str]) -> Result<Target, String> {
        let opts = [
            getopt::Opt::value("pid", Some('p')),
            getopt::Opt::value("name", Some('n')),
        ];
        let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        target_from_options(&getopt::parse(&args, &opts)?, "frob")
    }

    #[test]
    fn pid_or_name_but_not_both() {
        assert_eq!(target(&["-p", "7"]), Ok(Target::Pid(7)));
        assert_eq!(target(&["-n", "x"]), Ok(Target::Name("x".into())));
        assert!(target(&["-p", "0"]).unwrap_err().contains("--pid: \"0\""));
        assert!(target(&["-p", "1", "-n", "x"])
            .unwrap_err()
            .contains("not both"));
        assert!(target(&["-n", ""]).unwrap_err().contains("empty"));
        assert_eq!(
            target(&[]).unwrap_err(),
            "give the process to frob with --pid N or --name COMM"
        );
    }

    #[test]
    fn a_denied_proc_file_is_explained_by_who_asks() {
        let mut e = Error::new(Kind::Permission, "/proc/1/pagemap: Permission denied");
        e.path = Some("/proc/1/pagemap".into());
        let me = std::process::id() as Pid;
        assert_eq!(
            describe_as(1000, me, &e, "scanning"),
            "permission denied reading /proc/1/pagemap: scanning another user's process needs root"
        );
        assert_eq!(
            describe_as(0, me, &e, "scanning"),
            "the kernel denied access to /proc/1/pagemap: reading another process's memory maps \
             needs ptrace access (it may be undumpable, or Yama/an LSM forbids it)"
        );
    }

    #[test]
    fn resolving_a_missing_process_says_so() {
        assert_eq!(
            processes(&Target::Pid(0x3fff_fff0), false).unwrap_err().msg,
            format!("no process with pid {}", 0x3fff_fff0)
        );
        assert!(processes(&Target::Name("no-such-comm-q".into()), false)
            .unwrap_err()
            .msg
            .contains("no process named"));
        let me = std::process::id() as Pid;
        let held = processes(&Target::Pid(me), false).unwrap();
        assert_eq!(held.iter().map(Held::pid).collect::<Vec<_>>(), vec![me]);
        assert_eq!(open_user_process(&held[0], "frob").unwrap().0.pid(), me);
    }
}
