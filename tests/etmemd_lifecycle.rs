//! The daemon's own life: its command line, forking mode for systemd, a socket name in
//! use, and a prompt, clean shutdown on SIGTERM and SIGINT.

mod common;
use common::daemon::{unique, wait_exit, Daemon, Run, Scratch};
use common::run;

use std::process::{Command, Stdio};
use std::time::Duration;

fn etmemd(args: &[&str]) -> Run {
    let mut a = vec!["etmemd"];
    a.extend(args);
    Run::from(run(&a))
}

#[test]
fn command_line() {
    let help = etmemd(&["-h"]).expect(0);
    assert!(
        help.stdout.contains("usage of etmemd:") && help.stdout.contains("-m|--mode-systemctl")
    );
    etmemd(&["--help"]).expect(0);
    // As upstream, the first h ends option processing and help must be the only word.
    for alone in ["-help", "-mh"] {
        assert!(etmemd(&[alone])
            .expect(0)
            .stdout
            .contains("usage of etmemd:"));
    }
    for beside in [
        &["-l", "0", "-h", "-s", "S"][..],
        &["-l", "0", "-h"],
        &["-h", "help"],
        &["-s", "x", "-h"],
    ] {
        let r = etmemd(beside).expect(2);
        r.err_has(&["-h/--help must be given alone"]);
        assert!(!r.stdout.contains("usage of etmemd:"), "{beside:?}");
    }
    etmemd(&["-xh"])
        .expect(2)
        .err_has(&["invalid option -- 'x'"]);
    etmemd(&[])
        .expect(2)
        .err_has(&["socket name of rpc to listen must be provided"]);
    etmemd(&["-l", "4", "-s", "x"])
        .expect(2)
        .err_has(&["invalid log level [4]", "[3] for error level"]);
    etmemd(&["-l", "x", "-s", "x"])
        .expect(2)
        .err_has(&["invalid log level [x]"]);
    etmemd(&["-s", "a", "-s", "b"])
        .expect(2)
        .err_has(&["more than once"]);
    // Our choice (upstream's argv limit refuses these too): no option twice.
    for (twice, name) in [
        (&["-l", "0", "-l", "0", "-s", "S"][..], "-l/--log-level"),
        (&["-s", "a", "--socket=a"], "-s/--socket"),
        (&["-m", "-s", "S", "-m"], "-m/--mode-systemctl"),
        (
            &["--pid-file", "/tmp/a", "--pid-file", "/tmp/b", "-s", "S"],
            "--pid-file",
        ),
    ] {
        etmemd(twice)
            .expect(2)
            .err_has(&[&format!("{name} given more than once")]);
    }
    etmemd(&["-s", "a", "junk"])
        .expect(2)
        .err_has(&["unexpected argument"]);
    etmemd(&["-x"])
        .expect(2)
        .err_has(&["invalid option -- 'x'"]);
    etmemd(&["-s", &"n".repeat(107)])
        .expect(2)
        .err_has(&["at most 106"]);
}

#[test]
fn a_second_daemon_on_the_same_socket_fails_at_once() {
    let d = Daemon::start("second");
    etmemd(&["-s", &d.socket])
        .expect(1)
        .err_has(&["already in use"]);
    // The first one is unharmed.
    assert_eq!(d.show(), "no project exists\n\n");
}

#[test]
fn etmemd_names_the_process_squatting_its_socket() {
    let name = unique("squatted");
    let Some(squatter) = common::Nobody::python(common::SQUATTER, &[&name]) else {
        return;
    };
    let r = etmemd(&["-s", &name]);
    eprintln!("etmemd: exit {}: {}", r.code, r.stderr.trim());
    r.expect(1).err_has(&[
        "already in use",
        &format!("pid {}", squatter.pid()),
        "uid 65534",
    ]);
}

/// A project that sleeps 20 minutes between cycles, so a shutdown that waited for the
/// sleep would never finish within the test's bound.
fn long_sleep_project(d: &Daemon, s: &Scratch) {
    let f = s.conf(
        "long.conf",
        "[project]\nname=long\nloop=120\ninterval=1200\nsleep=1200\n[engine]\nname=slide\nproject=long\n\
         [task]\nproject=long\nengine=slide\nname=t\ntype=pid\nvalue=1\nT=1\n",
    );
    d.add(&f).expect(0);
    d.run(&["project", "start", "-n", "long"]).expect(0);
}

#[test]
fn sigterm_and_sigint_shut_down_promptly_while_a_project_runs() {
    for sig in [nix_sig::TERM, nix_sig::INT] {
        let mut d = Daemon::start("sigterm");
        let s = Scratch::new("sigterm");
        long_sleep_project(&d, &s);
        std::thread::sleep(Duration::from_millis(200));
        nix_sig::send(d.pid(), sig);
        let mut child = d.child.take().unwrap();
        // The bound is generous for a noisy machine; the design target (under a second)
        // is reported, not asserted.
        let (took, status) = wait_exit(&mut child, Duration::from_secs(10))
            .expect("etmemd did not exit after the signal");
        eprintln!(
            "etmemd exited {:?} after {:?} (signal {sig})",
            status.code(),
            took
        );
        assert_eq!(status.code(), Some(0));
        // The socket is gone.
        Run::from(run(&["project", "show", "-s", &d.socket])).expect(3);
    }
}

#[test]
fn project_stop_is_prompt_while_a_cycle_sleeps() {
    let d = Daemon::start("stopprompt");
    let s = Scratch::new("stopprompt");
    long_sleep_project(&d, &s);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = std::time::Instant::now();
    d.run(&["project", "stop", "-n", "long"]).expect(0);
    eprintln!("project stop took {:?}", t0.elapsed());
}

#[test]
fn systemctl_mode_returns_once_the_socket_accepts() {
    if !common::root_or_skip("-m writes its pid file and runs as a system service") {
        return;
    }
    let s = Scratch::new("fork");
    let socket = unique("fork");
    let pid_file = s.path("etmemd.pid");
    let status = Command::new(common::etmem())
        .args([
            "etmemd",
            "-l",
            "0",
            "-s",
            &socket,
            "-m",
            "--pid-file",
            &pid_file,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // No retry loop: the socket must accept right now, because the parent only exits
    // after the child listens.
    Run::from(run(&["project", "show", "-s", &socket])).expect(0);
    let text = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !text.ends_with('\n'),
        "upstream writes the pid without a newline"
    );
    let pid: u32 = text.parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    nix_sig::send(pid, nix_sig::TERM);
    common::wait_for(Duration::from_secs(10), || {
        !std::path::Path::new(&pid_file).exists()
    });
    assert!(
        !std::path::Path::new(&pid_file).exists(),
        "pid file not removed on exit"
    );

    // A child that cannot listen makes the parent exit non-zero.
    let d = Daemon::start("forkbusy");
    let status = Command::new(common::etmem())
        .args([
            "etmemd",
            "-s",
            &d.socket,
            "-m",
            "--pid-file",
            &s.path("busy.pid"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

/// `etmemd -m -s SOCKET --pid-file PID_FILE`: its exit status and standard error. (A
/// file, not a pipe, for stderr: the daemon it leaves running keeps its copy open.)
fn etmemd_m(socket: &str, pid_file: &str, s: &Scratch) -> Run {
    let err = s.path("etmemd.stderr");
    let status = Command::new(common::etmem())
        .args(["etmemd", "-s", socket, "-m", "--pid-file", pid_file])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    }
}

/// Stops whatever etmemd still listens on the socket when the test ends, passed or not.
struct StopDaemonOn(String);

impl Drop for StopDaemonOn {
    fn drop(&mut self) {
        if let Some(p) = etmem::rpc::client::holder(&self.0) {
            nix_sig::send(p.pid as u32, nix_sig::TERM);
        }
    }
}

#[test]
fn the_pid_file_is_never_written_through_a_link() {
    if !common::root_or_skip("-m writes its pid file as root") {
        return;
    }
    let s = Scratch::new("pidlink");
    let socket = unique("pidlink");
    let _stop = StopDaemonOn(socket.clone());
    let victim = s.file("victim", "precious\n", 0o644);
    // A symbolic link planted where the pid file goes, to a file root owns.
    let link = s.path("etmemd.pid");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let r = etmemd_m(&socket, &link, &s);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "etmemd wrote its pid through a symbolic link (exit {})",
        r.code
    );
    r.expect(1).err_has(&["symbolic link"]);
    // Nothing was started.
    Run::from(run(&["project", "show", "-s", &socket])).expect(3);
    // A dangling link must not create its target either.
    let target = s.path("created-by-root");
    let dangling = s.path("dangling.pid");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    etmemd_m(&socket, &dangling, &s).expect(1);
    assert!(
        !std::path::Path::new(&target).exists(),
        "etmemd created a file through a dangling symbolic link"
    );
    // A hard link to another file: the pid file is replaced, the other file untouched.
    let hard = s.path("hard.pid");
    std::fs::hard_link(&victim, &hard).unwrap();
    etmemd_m(&socket, &hard, &s).expect(0);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "etmemd wrote its pid into a file hard-linked to the pid file"
    );
    let pid: u32 = std::fs::read_to_string(&hard).unwrap().parse().unwrap();
    nix_sig::send(pid, nix_sig::TERM);
    common::wait_for(Duration::from_secs(10), || {
        !std::path::Path::new(&hard).exists()
    });
    assert!(
        !std::path::Path::new(&hard).exists(),
        "pid file not removed on exit"
    );
}

#[test]
fn a_failed_systemctl_start_leaves_no_pid_file() {
    if !common::root_or_skip("-m writes its pid file as root") {
        return;
    }
    let d = Daemon::start("pidbusy");
    let s = Scratch::new("pidbusy");
    let pid_file = s.path("busy.pid");
    // The child cannot listen (the name is in use): the start fails, with no pid file
    // left behind naming a process that is gone.
    etmemd_m(&d.socket, &pid_file, &s)
        .expect(1)
        .err_has(&["already in use"]);
    assert!(
        !std::path::Path::new(&pid_file).exists(),
        "a failed start left the pid file {pid_file} holding {:?}",
        std::fs::read_to_string(&pid_file).unwrap_or_default()
    );
}

#[test]
fn load_adds_files_and_starts_their_projects_before_serving() {
    let s = Scratch::new("load");
    let shipped = |n: &str| {
        std::fs::read_to_string(format!("{}/conf/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let slide = s.conf("slide.yaml", &shipped("slide_conf.yaml"));
    // A second file adding a task to the first file's project.
    let more = s.conf(
        "more.yaml",
        "[task]\nproject=test\nengine=slide\nname=t2\ntype=name\nvalue=redis\nT=1\n",
    );
    let d = Daemon::start_with_args("load", &["--load", &slide, "--load", &more]);
    // Both files' tasks are there and the project runs, as soon as the socket answers.
    let show = d.show();
    assert!(
        show.contains("background_slide slide            true    \n"),
        "{show}"
    );
    assert!(
        show.contains("t2               slide            true    \n"),
        "{show}"
    );
    drop(d);

    // A file that fails ends the start with exit 1, naming the file; in -m mode the
    // parent says so and leaves no pid file.
    let bad = s.conf("bad.yaml", "[project]\nname=x\nloop=0\n");
    let socket = unique("load-bad");
    etmemd(&["-s", &socket, "--load", &slide, "--load", &bad])
        .expect(1)
        .err_has(&["--load ", "bad.yaml:3"]);
    let pid_file = s.path("load.pid");
    let err = s.path("m.stderr");
    let status = Command::new(common::etmem())
        .args(["etmemd", "-s", &socket, "-m", "--pid-file", &pid_file])
        .args(["--load", &s.path("missing.yaml")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(
        text.contains("--load ") && text.contains("missing.yaml"),
        "{text}"
    );
    assert!(!std::path::Path::new(&pid_file).exists());
    Run::from(run(&["project", "show", "-s", &socket])).expect(3);
}

/// Signals without pulling a crate into the tests.
mod nix_sig {
    pub const TERM: &str = "TERM";
    pub const INT: &str = "INT";
    pub fn send(pid: u32, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}
