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

impl Workload {
    /// Start `etmem workload ARGS...` and wait for its `ready` line.
    pub fn spawn(args: &[&str]) -> Workload {
        let mut child = Command::new(super::etmem())
            .arg("workload")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("workload starts");
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
