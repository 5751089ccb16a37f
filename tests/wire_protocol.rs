//! The socket as other programs see it: the exact bytes the upstream C client sends and
//! reads, peers that may not command the daemon, and peers that stall.

mod common;
use common::daemon::{Daemon, Run, Scratch};
use common::wire::{connect, raw};

use std::io::{BufRead, BufReader, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn upstream_client_bytes_get_upstream_replies() {
    let d = Daemon::start("raw");
    let s = Scratch::new("raw");
    let f = s.conf(
        "slide.conf",
        "[project]\nname=test\nloop=1\ninterval=1\nsleep=1\n[engine]\nname=slide\nproject=test\n\
         [task]\nproject=test\nengine=slide\nname=background_slide\ntype=name\nvalue=mysql\nT=1\n",
    );
    assert_eq!(
        raw(
            &d.socket,
            "proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -"
        ),
        b"no project exists\n\n\xff"
    );
    assert_eq!(
        raw(
            &d.socket,
            &format!("proj_name - file_name {f} cmd 0 eng_name - eng_cmd - task_name -")
        ),
        b"\xff"
    );
    let show = raw(
        &d.socket,
        "proj_name test file_name - cmd 4 eng_name - eng_cmd - task_name -",
    );
    let want = "project: test\n\
                number   type     value            name             engine           started \n\
                1        name     mysql            background_slide slide            false   \n\u{ff}";
    assert_eq!(
        String::from_utf8_lossy(&show[..show.len() - 1]),
        want[..want.len() - 2]
    );
    assert_eq!(*show.last().unwrap(), 0xff);
    assert_eq!(
        raw(
            &d.socket,
            "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -"
        ),
        b"\xff"
    );
    let again = raw(
        &d.socket,
        "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -",
    );
    assert!(
        again.starts_with(b"error: project has been started"),
        "{:?}",
        String::from_utf8_lossy(&again)
    );
    assert_eq!(*again.last().unwrap(), 0xfe);
    assert_eq!(
        raw(
            &d.socket,
            "proj_name test file_name - cmd 3 eng_name - eng_cmd - task_name -"
        ),
        b"\xff"
    );
    let nope = raw(
        &d.socket,
        "proj_name zz file_name - cmd 3 eng_name - eng_cmd - task_name -",
    );
    assert!(nope.starts_with(b"error: project is not exist"));
    let unknown = raw(
        &d.socket,
        "proj_name - file_name - cmd 9 eng_name - eng_cmd - task_name -",
    );
    assert!(unknown.starts_with(b"error: invalid parameters: unknown command code 9"));
    assert_eq!(*unknown.last().unwrap(), 0xfe);
    assert_eq!(
        raw(
            &d.socket,
            &format!("proj_name - file_name {f} cmd 1 eng_name - eng_cmd - task_name -")
        ),
        b"\xff"
    );
}

#[test]
fn malformed_requests_get_a_failure_reply_that_says_why() {
    let d = Daemon::start("malformed");
    let bad = raw(
        &d.socket,
        "proj_name - file_name - cmd x eng_name - eng_cmd - task_name -",
    );
    assert!(bad
        .starts_with(b"error: invalid parameters: malformed request: field 'cmd' is not a number"));
    assert_eq!(*bad.last().unwrap(), 0xfe);
    let garbage = raw(&d.socket, "hello etmemd, please task_name x");
    assert!(
        garbage.starts_with(b"error: invalid parameters: malformed request"),
        "{garbage:?}"
    );
    // Too long: more than 512 bytes.
    let long = format!(
        "proj_name {} file_name - cmd 4 eng_name - eng_cmd - task_name -",
        "p".repeat(600)
    );
    let r = raw(&d.socket, &long);
    assert!(String::from_utf8_lossy(&r).contains("at most 512"), "{r:?}");
    // The daemon still serves.
    Run::from(common::run(&["project", "show", "-s", &d.socket])).expect(0);
}

#[test]
fn a_stalled_peer_blocks_nobody_and_is_dropped() {
    let d = Daemon::start("stall");
    let mut idle = connect(&d.socket);
    let mut half = connect(&d.socket);
    half.write_all(b"proj_name te").unwrap();
    // Others are served while both are connected.
    for _ in 0..3 {
        Run::from(common::run(&["project", "show", "-s", &d.socket])).expect(0);
    }
    // Both stalled peers are answered with a failure and closed at their deadline.
    for s in [&mut idle, &mut half] {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            String::from_utf8_lossy(&out).contains("incomplete request"),
            "{out:?}"
        );
        assert_eq!(out.last(), Some(&0xfe));
    }
}

#[test]
fn peers_other_than_root_or_the_daemon_user_are_refused() {
    if !common::root_or_skip("switch to uid 65534 with setpriv to be an unprivileged peer") {
        return;
    }
    let d = Daemon::start("peer");
    let s = Scratch::new("peer");
    let f = s.conf("p.conf", "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\n");
    let as_nobody = |args: &[&str]| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::etmem(),
        ])
        .args(args)
        .arg("-s")
        .arg(&d.socket);
        Run::from(cmd.output().expect("setpriv (util-linux) is needed"))
    };
    // Told why, in words, and at once (the peer is closed as soon as it is accepted).
    let why = "permission denied: uid 65534 is not allowed: only root may use this etmemd";
    for _ in 0..20 {
        as_nobody(&["project", "show"]).expect(1).err_has(&[why]);
    }
    as_nobody(&["obj", "add", "-f", &f])
        .expect(1)
        .err_has(&[why]);
    assert_eq!(
        d.show(),
        "no project exists\n\n",
        "a refused peer changed state"
    );
    // Root is obeyed.
    d.add(&f).expect(0);
}

#[test]
fn the_client_refuses_a_socket_held_by_another_user() {
    // While no etmemd listens, anyone may bind its name and answer "success".
    let name = common::daemon::unique("squat");
    let Some(mut squatter) = common::Nobody::python(common::SQUATTER, &[&name]) else {
        return;
    };
    let r = Run::from(common::run(&["project", "show", "-s", &name]));
    eprintln!("client: exit {}: {}", r.code, r.stderr.trim());
    r.expect(1).err_has(&[
        "uid 65534",
        &format!("pid {}", squatter.pid()),
        "nothing was sent",
    ]);
    // The client hung up without sending its request.
    assert_eq!(squatter.line(), "got 0");
    let r = Run::from(common::run(&["project", "stop", "-n", "p", "-s", &name]));
    r.expect(1).err_has(&["uid 65534"]);
    assert_eq!(squatter.line(), "got 0");
}

/// A fake etmemd on a fresh abstract socket name, run by this (root's) test process, so
/// the client trusts it: for each connection, one read of the request, then `answer`
/// writes to the stream. Serves in a thread until the test process ends.
fn fake_daemon(tag: &str, answer: impl Fn(&mut UnixStream) + Send + 'static) -> String {
    let name = common::daemon::unique(tag);
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.read(&mut [0u8; 512]);
            answer(&mut s);
        }
    });
    name
}

/// The client, `etmem ARGS...`, with its output streams piped.
fn spawn_client(args: &[&str]) -> std::process::Child {
    Command::new(common::etmem())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait at most `limit` for the client; kill it if it is still running. Its exit status
/// (None if it had to be killed), how long it ran, and its standard error.
fn finish(
    mut child: std::process::Child,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, Duration, String) {
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let t0 = Instant::now();
    let status = common::daemon::wait_exit(&mut child, limit).map(|(_, st)| st);
    let took = t0.elapsed();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (status, took, reader.join().unwrap())
}

#[test]
fn the_client_exits_quietly_when_its_output_is_closed() {
    use std::os::unix::process::ExitStatusExt;
    let check = |what: &str, status: Option<std::process::ExitStatus>, stderr: &str| {
        let status = status.unwrap_or_else(|| panic!("{what}: the client hung"));
        eprintln!("{what}: {status:?}, stderr {stderr:?}");
        assert!(
            !stderr.contains("panicked"),
            "{what}: the client panicked on a closed pipe: {stderr}"
        );
        assert!(
            status.code() == Some(1) || status.signal() == Some(libc_sigpipe()),
            "{what}: {status:?}: {stderr}"
        );
    };
    // `etmem project show | head -1` with an answer far larger than a pipe holds.
    let name = fake_daemon("epipe", |s| {
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..20_000 {
            if s.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
        let _ = s.write_all(&[0xff]);
    });
    let mut child = spawn_client(&["project", "show", "-s", &name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.len(), 100);
    drop(out);
    let (status, _, stderr) = finish(child, Duration::from_secs(20));
    check("| head -1", status, &stderr);
    // The real daemon, the pipe closed before the client writes anything.
    let d = Daemon::start("epipe");
    let mut child = spawn_client(&["project", "show", "-s", &d.socket]);
    drop(child.stdout.take());
    let (status, _, stderr) = finish(child, Duration::from_secs(20));
    check("closed at once", status, &stderr);
}

fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn the_client_gives_up_on_an_answer_that_never_ends() {
    // A server that trickles bytes and never sends the terminator: every receive gets
    // something well within 10 s, so only a deadline on the whole request ends it.
    let name = fake_daemon("trickle", |s| {
        while s.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let child = spawn_client(&["project", "show", "-s", &name]);
    let (status, took, stderr) = finish(child, Duration::from_secs(25));
    eprintln!("the client ended after {took:?} with {status:?}: {stderr}");
    let status = status.expect("the client never gave up on a trickling server");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(stderr.contains("within 10 s"), "{stderr}");
}

#[test]
fn the_client_reads_a_large_answer_in_linear_time() {
    const SIZE: usize = 32 << 20;
    let name = fake_daemon("large", |s| {
        let line = format!("{}\n", "y".repeat(1023));
        for _ in 0..SIZE / 1024 {
            if s.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
        let _ = s.write_all(&[0xff]);
    });
    let mut child = spawn_client(&["project", "show", "-s", &name]);
    let mut out = child.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut n = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(k) = out.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let (status, took, stderr) = finish(child, Duration::from_secs(20));
    eprintln!("32 MiB answer: {status:?} after {took:?}");
    let status = status.expect("the client took more than 20 s to read a 32 MiB answer");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(counter.join().unwrap(), SIZE);
}

#[test]
fn a_slow_reader_gets_the_whole_large_answer_and_a_stopped_one_is_dropped() {
    // About 1 MiB of `project show`: four projects of 2000 tasks with long names.
    let d = Daemon::start("slowread");
    let s = Scratch::new("slowread");
    for p in 0..4 {
        let mut text = format!(
            "[project]\nname=big{p}\nloop=1\ninterval=1\nsleep=1\n\
             [engine]\nname=slide\nproject=big{p}\n"
        );
        for t in 0..2000 {
            text += &format!(
                "[task]\nproject=big{p}\nengine=slide\nname=t{t:05}_{}\ntype=pid\nvalue=1\nT=1\n",
                "x".repeat(57)
            );
        }
        d.add(&s.conf(&format!("big{p}.conf"), &text)).expect(0);
    }
    let want = d.show().len() + 1;
    assert!(want > 950_000, "{want}");
    const SHOW: &[u8] = b"proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -";
    // One peer stops reading after its first bytes: it is dropped after 5 s without
    // progress (what it has not read by then never comes, nor does the terminator).
    let stopped = {
        let mut c = connect(&d.socket);
        c.write_all(SHOW).unwrap();
        std::thread::spawn(move || {
            let mut got = vec![0u8; 4096];
            let first = c.read(&mut got).unwrap();
            std::thread::sleep(Duration::from_secs(8));
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            (first + rest.len(), rest.last().copied())
        })
    };
    // Another reads slowly but steadily, about 100 KiB/s: the transfer takes about 10 s,
    // far more than 5 s, and it must get all of it.
    let mut c = connect(&d.socket);
    c.write_all(SHOW).unwrap();
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if matches!(got.last(), Some(0xff) | Some(0xfe)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    eprintln!(
        "slow reader: {} of {want} bytes in {:?}, last byte {:?}",
        got.len(),
        t0.elapsed(),
        got.last()
    );
    assert_eq!(
        got.last(),
        Some(&0xff),
        "the daemon cut a reader that kept reading"
    );
    assert_eq!(got.len(), want);
    let (stopped_got, stopped_last) = stopped.join().unwrap();
    eprintln!("stopped reader: {stopped_got} of {want} bytes");
    assert!(stopped_got < want && stopped_last != Some(0xff));
    // The daemon still serves.
    assert_eq!(d.show().len() + 1, want);
}

/// A client beyond the daemon's connection limit is told why, not "Broken pipe": the
/// daemon answers it with a failure and the client prints that answer even when its own
/// send failed because the daemon had already closed.
#[test]
fn a_client_over_the_connection_limit_is_told_why() {
    let d = Daemon::start("limit");
    let held: Vec<UnixStream> = (0..64)
        .map(|_| etmem::rpc::client::connect(&d.socket, Duration::from_secs(10)).unwrap())
        .collect();
    // Let the daemon accept all of them before the one too many arrives.
    std::thread::sleep(Duration::from_millis(300));
    let r = d.run(&["project", "show"]);
    assert!(!r.stderr.contains("Broken pipe"), "{}", r.stderr);
    r.expect(1).err_has(&[
        "error: etmemd has internal error",
        "too many clients at once; try again",
    ]);
    drop(held);
    d.run(&["project", "show"]).expect(0);
}
