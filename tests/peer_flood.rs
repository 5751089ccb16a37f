//! Unprivileged peers flooding the daemon's socket: they must not lock root out, and
//! their refusals must not flood the log. A test binary of its own, because a flood
//! loads the machine and would skew the timing of other tests running beside it.

mod common;
use common::daemon::{Daemon, Run, Scratch};
use common::Nobody;

use std::time::{Duration, Instant};

/// `python3 -c FLOOD SOCKET MODE N`: keep N connections to SOCKET open, replacing each
/// one the daemon closes at once. MODE `idle` sends nothing (the peer only holds its
/// connection), `send` sends a `project show` request on each.
const FLOOD: &str = r#"
import select, socket, sys
name, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
REQ = b'proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -'
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect('\0' + name)
    if mode == 'send':
        try:
            s.sendall(REQ)
        except OSError:
            pass
    return s
socks = [conn() for _ in range(n)]
print('ready', flush=True)
while True:
    r, _, _ = select.select(socks, [], [], 1.0)
    for s in r:
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
        socks.remove(s)
        socks.append(conn())
"#;

#[test]
fn an_unprivileged_flood_does_not_lock_root_out() {
    let d = Daemon::start("flood");
    // 64 connections from nobody, as many as the daemon serves at once, each replaced as
    // soon as the daemon closes it.
    let Some(_flood) = Nobody::python(FLOOD, &[&d.socket, "idle", "64"]) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(300));
    let tries = 20;
    let bound = Duration::from_secs(5);
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..tries {
        let t0 = Instant::now();
        let r = Run::from(common::run(&["project", "show", "-s", &d.socket]));
        let took = t0.elapsed();
        slowest = slowest.max(took);
        if r.code == 0 && took < bound {
            answered += 1;
        } else {
            eprintln!("root: exit {} after {took:?}: {}", r.code, r.stderr.trim());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("root got {answered}/{tries} answers during the flood (slowest {slowest:?})");
    assert_eq!(
        answered, tries,
        "root was locked out by an unprivileged flood"
    );
}

#[test]
fn refusals_are_logged_at_most_once_a_second() {
    let s = Scratch::new("floodlog");
    let log = s.0.join("etmemd.log");
    let d = Daemon::start_logging_to("floodlog", &log);
    // Peers that send a request, get refused and reconnect at once, as fast as they can.
    let Some(flood) = Nobody::python(FLOOD, &[&d.socket, "send", "16"]) else {
        return;
    };
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    Run::from(common::run(&["project", "show", "-s", &d.socket])).expect(0);
    drop(flood);
    let secs = t0.elapsed().as_secs_f64();
    // The count of the last second's refusals is logged once that second is over.
    std::thread::sleep(Duration::from_millis(1500));
    drop(d);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("permission denied"))
        .collect();
    eprintln!(
        "{} refusal lines in {secs:.1} s of flood; the last: {:?}",
        lines.len(),
        lines.last()
    );
    assert!(!lines.is_empty(), "no refusal was logged:\n{text}");
    assert!(
        lines.len() <= secs.ceil() as usize + 2,
        "{} refusal lines in {secs:.1} s",
        lines.len()
    );
    let counted: u64 = lines
        .iter()
        .filter_map(|l| l.split("(and ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum();
    eprintln!("{counted} more refusals counted in those lines");
    assert!(
        counted > 0,
        "the lines do not count the refusals they stand for:\n{}",
        lines.join("\n")
    );
}
