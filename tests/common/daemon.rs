//! A real `etmemd` on a unique abstract socket for one test, the real `etmem` client to
//! drive it, and config files written with the modes the daemon demands.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or test run) uses.
pub fn unique(tag: &str) -> String {
    format!(
        "etmem-test-{}-{}-{tag}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    /// Write a config file with mode 0600 (what the daemon accepts).
    pub fn conf(&self, name: &str, text: &str) -> String {
        self.file(name, text, 0o600)
    }

    pub fn file(&self, name: &str, text: &str, mode: u32) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The header line of upstream's `project show` table.
pub const SHOW_HEADER: &str =
    "number   type     value            name             engine           started \n";

/// One task row of upstream's `project show` table. Padded by bytes, as C's printf pads
/// (Rust's `{:<16}` would count characters and differ for a non-ASCII name).
pub fn show_row(n: u32, ty: &str, value: &str, name: &str, engine: &str, started: bool) -> String {
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.len())));
    format!(
        "{} {} {} {} {} {}\n",
        pad(&n.to_string(), 8),
        pad(ty, 8),
        pad(value, 16),
        pad(name, 16),
        pad(engine, 16),
        pad(&started.to_string(), 8)
    )
}

/// A running daemon, killed on drop.
pub struct Daemon {
    pub socket: String,
    pub child: Option<Child>,
}

impl Daemon {
    /// Start `etmemd -l 0 -s <unique>` and wait until its socket answers.
    pub fn start(tag: &str) -> Daemon {
        Daemon::start_with_stderr(tag, Stdio::null(), &[])
    }

    /// As [`Daemon::start`], with `extra` options after `-s <unique>`.
    pub fn start_with_args(tag: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with_stderr(tag, Stdio::null(), extra)
    }

    /// As [`Daemon::start`], with the daemon's log (its standard error) going to `log`.
    pub fn start_logging_to(tag: &str, log: &std::path::Path) -> Daemon {
        let f = std::fs::File::create(log).expect("create the daemon's log file");
        Daemon::start_with_stderr(tag, Stdio::from(f), &[])
    }

    fn start_with_stderr(tag: &str, stderr: Stdio, extra: &[&str]) -> Daemon {
        let socket = unique(tag);
        let child = Command::new(super::etmem())
            .args(["etmemd", "-l", "0", "-s", &socket])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn etmemd");
        let d = Daemon {
            socket,
            child: Some(child),
        };
        d.wait_ready();
        d
    }

    /// Spawn `cmd`, a daemon listening on `socket` (another binary, an emulator, a
    /// container runner), and wait until the socket answers; killed on drop.
    pub fn spawn(socket: &str, cmd: &mut Command) -> Daemon {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the daemon");
        let d = Daemon {
            socket: socket.to_string(),
            child: Some(child),
        };
        d.wait_ready();
        d
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if super::run(&["project", "show", "-s", &self.socket])
                .status
                .code()
                == Some(0)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("etmemd on {} never answered", self.socket);
    }

    /// Run the client with `-s <socket>` appended.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["-s", &self.socket]);
        Run::from(super::run(&a))
    }

    pub fn add(&self, file: &str) -> Run {
        self.run(&["obj", "add", "-f", file])
    }

    pub fn show(&self) -> String {
        let r = self.run(&["project", "show"]);
        assert_eq!(r.code, 0, "show failed: {}", r.stderr);
        r.stdout
    }

    /// `project show -v` until its output contains `want` (at most 20 s); the last output.
    pub fn verbose_until(&self, want: &str) -> String {
        let mut seen = String::new();
        super::wait_for(Duration::from_secs(20), || {
            seen = self.run(&["project", "show", "-v"]).expect(0).stdout;
            seen.contains(want)
        });
        seen
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An exit code and the two output streams as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Assert the exit code, showing both streams when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit {} (wanted {code})\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Assert stderr mentions every one of `parts`.
    pub fn err_has(&self, parts: &[&str]) -> &Run {
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "stderr lacks {p:?}: {}",
                self.stderr
            );
        }
        self
    }
}

/// Wait for a child to exit, at most `limit`; the time it took, or None.
pub fn wait_exit(
    child: &mut Child,
    limit: Duration,
) -> Option<(Duration, std::process::ExitStatus)> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some((t0.elapsed(), st));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}
