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

    /// The share of `r` (one of its regions) resident now, 0 to 1.
    pub fn resident_share(&self, r: Range) -> f64 {
        etmem::act::resident_bytes(self.pid, &[r]).expect("residency of the workload") as f64
            / r.len() as f64
    }

    /// Assert what a swapping engine must leave: the cold region at most 10% resident
    /// (`swapped` says whether the wait for that succeeded), the hot one at least 95%;
    /// both shares are printed with `context`.
    pub fn assert_cold_out_hot_in(&self, swapped: bool, context: &str) {
        let cold_left = self.resident_share(self.cold.expect("a cold region"));
        let hot_left = self.resident_share(self.hot.expect("a hot region"));
        eprintln!(
            "{context}: cold resident {:.1}%, hot resident {:.1}%",
            cold_left * 100.0,
            hot_left * 100.0
        );
        assert!(
            swapped,
            "cold region still {:.1}% resident",
            cold_left * 100.0
        );
        assert!(
            hot_left >= 0.95,
            "hot region only {:.1}% resident",
            hot_left * 100.0
        );
    }

    /// Wait (60 s at most) until an engine started after VmSwap was `swap_before` has
    /// swapped the cold region out, then assert [`Workload::assert_cold_out_hot_in`] and
    /// that VmSwap grew by 90% of the cold region (it went to swap, not away).
    pub fn wait_cold_swapped(&self, swap_before: u64) {
        let cold = self.cold.expect("a cold region");
        let swapped = super::wait_for(std::time::Duration::from_secs(60), || {
            self.resident_share(cold) <= 0.10
        });
        let after = etmem::act::swapped_bytes(self.pid).expect("VmSwap of the workload");
        let vmswap = format!(
            "VmSwap {} KiB before, {} KiB after",
            swap_before >> 10,
            after >> 10
        );
        self.assert_cold_out_hot_in(swapped, &vmswap);
        assert!(
            after >= swap_before + cold.len() * 9 / 10,
            "VmSwap {swap_before} -> {after}"
        );
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
