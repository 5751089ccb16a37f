//! The socket as other programs see it: the exact bytes the upstream C client sends and
//! reads, peers that may not command the daemon, and peers that stall.

mod common;
use common::daemon::{Daemon, Run, Scratch};

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::Duration;

fn connect(socket: &str) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(socket.as_bytes()).unwrap();
    let s = UnixStream::connect_addr(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Send one request exactly as the C client does (one write, no newline, no NUL) and
/// read up to and including the terminator byte.
fn raw(socket: &str, msg: &str) -> Vec<u8> {
    let mut s = connect(socket);
    s.write_all(msg.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "daemon closed without a terminator after {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        if matches!(out.last(), Some(0xff) | Some(0xfe)) {
            return out;
        }
    }
}

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
