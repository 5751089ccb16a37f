//! Helpers shared by the integration tests: running the `etmem` binary, skipping with a
//! reason (a failure under `ETMEM_REQUIRE_ALL=1`), and reading its JSON back.
#![allow(dead_code)]

pub mod cc;
pub mod cgroup;
pub mod daemon;
pub mod guest;
pub mod help;
pub mod numa_maps;
pub mod redis_load;
pub mod wire;
pub mod workload;

use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn etmem() -> &'static str {
    env!("CARGO_BIN_EXE_etmem")
}

/// Run `etmem ARGS...` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(etmem())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the etmem binary runs")
}

/// Poll `cond` every 100 ms for at most `limit`; true once it holds.
pub fn wait_for(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// stdout and stderr of an output as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Whether `program` is an executable file in a directory of PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Say why a test does not run here. Returns normally (the caller returns) unless
/// `ETMEM_REQUIRE_ALL=1`, where a skip is a failure.
pub fn skip(reason: &str) {
    if std::env::var("ETMEM_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("test cannot run (ETMEM_REQUIRE_ALL=1): {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Root (for `why`) and an active swap device, or skip (a failure under
/// ETMEM_REQUIRE_ALL=1).
pub fn can_swap(why: &str) -> bool {
    if !root_or_skip(why) {
        return false;
    }
    let active = std::fs::read_to_string("/proc/swaps")
        .map(|t| t.lines().count() > 1)
        .unwrap_or(false);
    if !active {
        skip("no swap device is active (CI sets up zram: see .ci/run)");
    }
    active
}

/// True when running as root; otherwise skips with a reason.
pub fn require_root() -> bool {
    root_or_skip("this test")
}

/// True when running as root; otherwise skips, saying what needs root.
pub fn root_or_skip(why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(&format!("needs root: {why}"));
    false
}

/// `text` parsed as JSON; a text that is not JSON fails the test, showing the text.
pub fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// `python3 -c SQUATTER NAME`: bind the abstract socket NAME (as a user who squats the
/// daemon's name while no etmemd runs), print `ready`, then answer every connection with
/// a bare success terminator, printing `got N` (the bytes it was sent) for each.
pub const SQUATTER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\0' + sys.argv[1])
s.listen(16)
print('ready', flush=True)
while True:
    c, _ = s.accept()
    got = b''
    try:
        got = c.recv(4096)
        c.sendall(b'\xff')
    except OSError:
        pass
    print('got', len(got), flush=True)
    c.close()
"#;

/// A python3 program running as uid/gid 65534 (nobody) under `setpriv`, killed and reaped
/// on drop: the unprivileged peer of the socket tests (a flood of connections, a process
/// squatting the daemon's socket name).
pub struct Nobody {
    pub child: std::process::Child,
    pub out: std::io::BufReader<std::process::ChildStdout>,
}

impl Nobody {
    /// Run `python3 -c script args...` as nobody and wait until it prints `ready`. None
    /// (after `skip`) when not root or when python3 or setpriv is missing.
    pub fn python(script: &str, args: &[&str]) -> Option<Nobody> {
        use std::io::BufRead;
        if !root_or_skip("switch to uid 65534 with setpriv to be an unprivileged peer") {
            return None;
        }
        let Some(python) = nobody_python() else {
            skip("no python3 that uid 65534 can run (or no setpriv) is installed");
            return None;
        };
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(python)
            .args(["-c", script])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("setpriv python3 starts");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("python's first line");
        assert_eq!(line.trim(), "ready", "the python helper did not start");
        Some(Nobody { child, out })
    }

    /// The next line it prints, without its newline.
    pub fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.out.read_line(&mut line).expect("python's output");
        line.trim_end().to_string()
    }

    /// Its pid (setpriv execs python3, so this is the python process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nobody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `python3` on PATH that uid 65534 can run under `setpriv` (a pyenv shim under
/// root's home cannot be), found once.
fn nobody_python() -> Option<&'static std::path::Path> {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join("python3"))
                .filter(|p| p.is_file())
                .find(|p| {
                    Command::new("setpriv")
                        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                        .arg(p)
                        .args(["-c", "pass"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
        })
        .as_deref()
}
