//! `etmemd`: the daemon's command line (spec §3), startup, `-m` forking, and shutdown.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::getopt::{self, Opt};
use crate::daemon::handler::Daemon;
use crate::log::{self, Level};
use crate::rpc::server;
use crate::sys::fork::{fork, Forked};

const USAGE: &str = "
usage of etmemd:
    etmemd [options]

options:
    -l|--log-level <log-level>  Log level
    -s|--socket <sockect name>  Socket name to listen to
    -m|--mode-systemctl         mode used to start(systemctl)
    -h|--help                   Show this message
       --pid-file <path>        Pid file written in -m mode (default /run/etmemd.pid)

Log levels: 0 debug, 1 info, 2 warning, 3 error (default 3). Messages go to syslog
(ident etmemd) and, unless -m is given, to stderr too. The socket is an abstract unix
socket name of 1 to 106 bytes. Exit status: 0 after SIGINT/SIGTERM, 1 when the daemon
cannot start (for example the socket name is in use), 2 for bad usage.";

const LEVELS: &str = "
[0] for debug level
[1] for info level
[2] for warning level
[3] for error level
default level is error
";

const OPTS: &[Opt] = &[
    Opt::value("log-level", Some('l')),
    Opt::value("socket", Some('s')),
    Opt::flag("mode-systemctl", Some('m')),
    // Upstream's loop breaks at the first -h, so nothing after it is parsed (`-help`).
    Opt::flag("help", Some('h')).stops(),
    Opt::value("pid-file", None),
];

struct Args {
    level: Level,
    socket: String,
    systemctl: bool,
    pid_file: String,
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("etmemd: {msg}");
    eprintln!("Try 'etmemd --help'.");
    2
}

fn parse(args: &[String]) -> Result<Option<Args>, i32> {
    let items = getopt::parse(args, OPTS).map_err(|e| usage_error(&e))?;
    if let Some(opt) = repeated(&items) {
        return Err(usage_error(&format!(
            "{} given more than once",
            spelled(opt)
        )));
    }
    if getopt::has(&items, "help") {
        // As upstream: help only when it is the one word (`-h`, `--help`, `-help`, `-mh`);
        // anything else beside it is refused rather than silently dropped.
        if args.len() != 1 {
            return Err(usage_error("-h/--help must be given alone"));
        }
        println!("{USAGE}");
        return Ok(None);
    }
    if let Some(w) = getopt::words(&items).first() {
        return Err(usage_error(&format!("unexpected argument {w:?}")));
    }
    let socket = getopt::last(&items, "socket")
        .ok_or_else(|| usage_error("socket name of rpc to listen must be provided (-s NAME)"))?;
    crate::rpc::check_socket_name(socket).map_err(|e| usage_error(&e))?;
    let level = match getopt::last(&items, "log-level") {
        None => Level::Error,
        Some(v) => match v.parse::<i64>().ok().and_then(Level::from_number) {
            Some(l) => l,
            None => {
                eprintln!("etmemd: invalid log level [{v}]{LEVELS}");
                return Err(2);
            }
        },
    };
    Ok(Some(Args {
        level,
        socket: socket.to_string(),
        systemctl: getopt::has(&items, "mode-systemctl"),
        pid_file: getopt::last(&items, "pid-file")
            .unwrap_or("/run/etmemd.pid")
            .to_string(),
    }))
}

/// The first option given a second time, which `parse` refuses for every option: a
/// repeated `-s` is an error upstream, and upstream's six-word argv limit refuses the
/// other repeats in practice (`-l 0 -l 0 -s S`), so "last wins" would only hide typos.
fn repeated(items: &[getopt::Item]) -> Option<&'static Opt> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if let getopt::Item::Opt(long, _) = item {
            if seen.contains(long) {
                return OPTS.iter().find(|o| o.long == *long);
            }
            seen.push(long);
        }
    }
    None
}

/// How usage messages name an option: `-s/--socket`, or `--pid-file` without a letter.
fn spelled(opt: &Opt) -> String {
    match opt.short {
        Some(c) => format!("-{c}/--{}", opt.long),
        None => format!("--{}", opt.long),
    }
}

/// The daemon: `args` after the program name (spec §3); returns 0 after SIGINT or
/// SIGTERM, 1 when it cannot start, 2 for bad usage.
pub fn main(args: &[String]) -> i32 {
    let args = match parse(args) {
        Ok(Some(a)) => a,
        Ok(None) => return 0,
        Err(code) => return code,
    };
    crate::sys::syslog::open();
    log::init_daemon(args.level, !args.systemctl, crate::sys::syslog::send);
    // In -m mode the parent waits until the child listens, then exits (Type=forking).
    let ready = if args.systemctl {
        match fork_handshake(&args.pid_file) {
            Ok(tx) => Some(tx),
            Err(code) => return code,
        }
    } else {
        None
    };
    let listener = match server::bind(&args.socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("etmemd: fail to start rpc server of etmemd: {e}");
            crate::log_error!("fail to start rpc server: {e}");
            return 1;
        }
    };
    if let Some(mut tx) = ready {
        let _ = tx.write_all(&1i32.to_ne_bytes());
    }
    crate::log_info!("etmemd listening on socket {:?}", args.socket);
    let mut daemon = Daemon::new(crate::sys::euid());
    let code = match server::serve(listener, daemon.uid, &mut daemon) {
        Ok(_) => 0,
        Err(e) => {
            crate::log_error!("{e}");
            1
        }
    };
    daemon.registry.stop_all();
    if args.systemctl {
        let _ = std::fs::remove_file(&args.pid_file);
    }
    crate::log_info!("etmemd exits");
    code
}

/// Fork; the parent writes the pid file, waits for the child's "listening" word and
/// exits 0 (or 1 if the child died first): only the child returns, with its end of the
/// channel.
fn fork_handshake(pid_file: &str) -> Result<UnixStream, i32> {
    let (mut parent_end, child_end) = UnixStream::pair().map_err(|e| {
        eprintln!("etmemd: socketpair: {e}");
        1
    })?;
    match fork() {
        Err(e) => {
            eprintln!("etmemd: {e}");
            Err(1)
        }
        Ok(Forked::Child) => {
            drop(parent_end);
            Ok(child_end)
        }
        Ok(Forked::Parent { child }) => {
            drop(child_end);
            if let Err(e) = write_pid_file(pid_file, child) {
                eprintln!("etmemd: cannot write pid file {pid_file}: {e}");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child),
                    nix::sys::signal::SIGTERM,
                );
                std::process::exit(1);
            }
            let mut word = [0u8; 4];
            let code = match parent_end.read_exact(&mut word) {
                Ok(()) if i32::from_ne_bytes(word) == 1 => 0,
                _ => 1,
            };
            std::process::exit(code);
        }
    }
}

fn write_pid_file(path: &str, pid: i32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    write!(f, "{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Option<Args>, i32> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn help_alone_in_any_spelling_that_reaches_h_first() {
        for a in [
            &["-h"][..],
            &["--help"],
            &["--he"],
            &["-help"],
            &["-mh"],
            &["-hx"],
        ] {
            assert!(matches!(p(a), Ok(None)), "{a:?}");
        }
    }

    #[test]
    fn help_beside_other_words_is_refused() {
        for a in [
            &["-l", "0", "-h", "-s", "S"][..],
            &["-l", "0", "-h"],
            &["-h", "help"],
            &["-s", "x", "-h"],
            &["--help", "-s", "x"],
            &["junk", "-h"],
        ] {
            assert!(matches!(p(a), Err(2)), "{a:?}");
        }
        // An unknown option before the h is getopt's error (also exit 2).
        assert!(matches!(p(&["-xh"]), Err(2)));
    }

    #[test]
    fn every_option_at_most_once() {
        for a in [
            &["-l", "0", "-l", "0", "-s", "S"][..],
            &["-s", "a", "-s", "b"],
            &["-m", "-m", "-s", "S"],
            &["-mm", "-s", "S"],
            &["--pid-file", "a", "--pid-file=b", "-s", "S"],
        ] {
            assert!(matches!(p(a), Err(2)), "{a:?}");
        }
        let items = getopt::parse(&["-l0".into(), "--log-level=1".into()], OPTS).unwrap();
        assert_eq!(spelled(repeated(&items).unwrap()), "-l/--log-level");
        let items = getopt::parse(&["--pid-file=a".into(), "--pid=b".into()], OPTS).unwrap();
        assert_eq!(spelled(repeated(&items).unwrap()), "--pid-file");
    }

    #[test]
    fn a_full_command_line_parses() {
        let a = p(&["-l", "0", "-s", "S", "-m", "--pid-file", "/tmp/p"])
            .unwrap()
            .unwrap();
        assert_eq!(a.socket, "S");
        assert!(a.systemctl);
        assert_eq!(a.pid_file, "/tmp/p");
        assert!(matches!(a.level, Level::Debug));
    }
}
