//! The test workload process (`etmem workload`): spawned, its region addresses parsed
//! from its output, killed and reaped on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use etmem::types::Range;

/// A running workload.
pub struct Workload {
    pub child: Child,
    pub pid: i32,
    pub hot: Option<Range>,
    pub cold: Option<Range>,
    pub write: Option<Range>,
    pub sparse: Option<Range>,
    pub children: Vec<i32>,
    out: BufReader<ChildStdout>,
}

fn range(text: &str) -> Range {
    let (a, b) = text.split_once('-').expect("START-END");
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
    Range::new(hex(a), hex(b))
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(super::etmem());
    c.arg("workload").args(args).stdout(Stdio::piped());
    c
}

impl Workload {
    /// Start `etmem workload ARGS...` and wait for its `ready` line.
    pub fn spawn(args: &[&str]) -> Workload {
        Workload::ready(command(args).spawn().expect("workload starts"))
    }

    /// Start a workload whose pid is `pid`, a pid just freed: what the kernel does by
    /// itself when pids wrap around, done now by setting the last pid it handed out to
    /// `pid - 1` (`/proc/sys/kernel/ns_last_pid`, root). Another process or thread that
    /// starts at the same moment can take the pid first, so this waits and retries.
    /// `None` if ns_last_pid cannot be written (not root, not this pid namespace's owner).
    pub fn spawn_at_pid(pid: i32, args: &[&str]) -> Option<Workload> {
        let taken = || std::path::Path::new(&format!("/proc/{pid}")).exists();
        for _ in 0..200 {
            // A thread that took it for a moment ends soon.
            if !super::wait_for(std::time::Duration::from_secs(5), || !taken()) {
                panic!("pid {pid} stays taken by another process");
            }
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
            let mut child = command(args).spawn().expect("workload starts");
            if child.id() as i32 == pid {
                return Some(Workload::ready(child));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start a process with pid {pid} in 200 tries");
    }

    fn ready(mut child: Child) -> Workload {
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (mut hot, mut cold, mut write, mut children) = (None, None, None, Vec::new());
        let mut sparse = None;
        loop {
            let mut line = String::new();
            let n = out.read_line(&mut line).expect("workload output");
            assert!(n > 0, "workload ended before ready");
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("hot"), Some(r)) => hot = Some(range(r)),
                (Some("cold"), Some(r)) => cold = Some(range(r)),
                (Some("write"), Some(r)) => write = Some(range(r)),
                (Some("sparse"), Some(r)) => sparse = Some(range(r)),
                (Some("child"), Some(p)) => children.push(p.parse().expect("child pid")),
                (Some("ready"), _) => break,
                _ => panic!("unexpected workload line {line:?}"),
            }
        }
        Workload {
            pid: child.id() as i32,
            child,
            hot,
            cold,
            write,
            sparse,
            children,
            out,
        }
    }

    /// Ask it to check every page (SIGUSR1) and return its answer line.
    pub fn verify(&mut self) -> String {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .expect("signal the workload");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("verify line");
        line.trim().to_string()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
