//! `etmemd`: the daemon's command line (spec §3), startup, `-m` forking, and shutdown.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::getopt::{self, Opt};
use crate::daemon::handler::Daemon;
use crate::daemon::metrics_file::MetricsFile;
use crate::log::{self, Level};
use crate::rpc::server;
use crate::sys::fork::{fork, Forked};
use crate::sys::replace_file;

const USAGE: &str = "
usage of etmemd:
    etmemd [options]

options:
    -l|--log-level <log-level>  Log level
    -s|--socket <sockect name>  Socket name to listen to
    -m|--mode-systemctl         mode used to start(systemctl)
    -h|--help                   Show this message
       --pid-file <path>        Pid file written in -m mode (default /run/etmemd.pid)
       --metrics-file <path>    Keep the metrics (Prometheus text format) in this file,
                                rewritten after every cycle (node_exporter's textfile
                                collector reads *.prom files)
       --load <file>            Before serving, add the file as 'etmem obj add' would;
                                may be given more than once; then start every project
                                the files define. Any failure: etmemd exits 1

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
    Opt::value("metrics-file", None),
    Opt::value("load", None).many(),
];

struct Args {
    level: Level,
    socket: String,
    systemctl: bool,
    pid_file: String,
    metrics_file: Option<std::path::PathBuf>,
    load: Vec<String>,
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
        super::print_out("etmemd", &format!("{USAGE}\n"));
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
        metrics_file: match getopt::last(&items, "metrics-file") {
            None => None,
            Some(p) => Some(check_metrics_file(p).map_err(|e| usage_error(&e))?),
        },
        load: getopt::all(&items, "load")
            .into_iter()
            .map(str::to_string)
            .collect(),
    }))
}

/// The `--metrics-file` path: an absolute or relative file name in a directory that
/// exists (checked at start, so a typo is a usage error, not a warning every cycle).
fn check_metrics_file(path: &str) -> Result<std::path::PathBuf, String> {
    let p = std::path::Path::new(path);
    if path.is_empty() || p.file_name().is_none() {
        return Err(format!("--metrics-file {path:?} does not name a file"));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "--metrics-file {path}: {} is not a directory",
            dir.display()
        ));
    }
    // Relative to where etmemd was started, whatever directory it is in later.
    std::path::absolute(p).map_err(|e| format!("--metrics-file {path}: {e}"))
}

/// The first option but a [`Opt::many`] one given a second time, which `parse` refuses:
/// a repeated `-s` is an error upstream, and upstream's six-word argv limit refuses the
/// other repeats in practice (`-l 0 -l 0 -s S`), so "last wins" would only hide typos.
fn repeated(items: &[getopt::Item]) -> Option<&'static Opt> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if let getopt::Item::Opt(long, _) = item {
            let opt = OPTS.iter().find(|o| o.long == *long)?;
            if !opt.many && seen.contains(long) {
                return Some(opt);
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
    // A predecessor killed with SIGKILL could not turn its kdamond off.
    for what in crate::sys::kdamond_record::turn_off_orphans() {
        crate::log_warn!("{what}");
    }
    let mut daemon = Daemon::new(crate::sys::euid());
    daemon.metrics = args.metrics_file.clone().map(MetricsFile::new);
    // Before the -m parent is told we listen, so a file that fails fails the start.
    if let Err(e) = daemon.load_and_start(&args.load) {
        if args.systemctl {
            eprintln!("etmemd: {e}"); // the log goes to syslog alone then
        }
        crate::log_error!("{e}");
        daemon.registry.stop_all();
        return 1;
    }
    if let Some(mut tx) = ready {
        let _ = tx.write_all(&1i32.to_ne_bytes());
    }
    crate::log_info!("etmemd listening on socket {:?}", args.socket);
    let code = match server::serve(listener, daemon.uid, &mut daemon) {
        Ok(_) => 0,
        Err(e) => {
            crate::log_error!("{e}");
            1
        }
    };
    daemon.registry.stop_all();
    if args.systemctl {
        remove_pid_file(&args.pid_file, std::process::id());
    }
    crate::log_info!("etmemd exits");
    code
}

/// Fork; the parent waits for the child's "listening" word, then writes the pid file and
/// exits 0 (or exits 1 if the child died first, or the pid file cannot be written): only
/// the child returns, with its end of the channel. The pid file is written only once the
/// child listens, so a start that fails leaves none behind (and does not overwrite that
/// of the etmemd already holding the socket name).
fn fork_handshake(pid_file: &str) -> Result<UnixStream, i32> {
    // Refuse a bad pid file path before starting anything.
    check_pid_file(pid_file).map_err(|e| {
        eprintln!("etmemd: cannot write pid file: {e}");
        1
    })?;
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
            let mut word = [0u8; 4];
            match parent_end.read_exact(&mut word) {
                Ok(()) if i32::from_ne_bytes(word) == 1 => {}
                _ => std::process::exit(1),
            }
            if let Err(e) = write_pid_file(pid_file, child) {
                eprintln!("etmemd: cannot write pid file: {e}");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child),
                    nix::sys::signal::SIGTERM,
                );
                std::process::exit(1);
            }
            std::process::exit(0);
        }
    }
}

/// Refuse a pid file path that exists and is not a regular file: a symbolic link planted
/// there would have root write (or create) whatever it points to.
fn check_pid_file(path: &str) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{path} is a symbolic link; the pid file is never written through one"
        )),
        Ok(m) if !m.is_file() => Err(format!("{path} exists and is not a regular file")),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// Write `pid` (no newline, as upstream) to the pid file without ever opening `path`: a
/// new file (O_EXCL, so never through a link) in the same directory, renamed over `path`.
/// A symbolic link at `path` is refused; a hard link to another file, or a symbolic link
/// planted after that check, is replaced by the rename, never written through.
fn write_pid_file(path: &str, pid: i32) -> Result<(), String> {
    check_pid_file(path)?;
    replace_file::replace(
        std::path::Path::new(path),
        pid.to_string().as_bytes(),
        0o600,
    )
}

/// At exit, remove the pid file if it is still ours: a regular file holding our pid
/// (not one another etmemd wrote since, nor anything planted in its place).
fn remove_pid_file(path: &str, pid: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    let ours = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| {
            let regular = f.metadata()?.is_file();
            let mut text = String::new();
            if regular {
                f.read_to_string(&mut text)?;
            }
            Ok(regular && text == pid.to_string())
        })
        .unwrap_or(false);
    if ours {
        let _ = std::fs::remove_file(path);
    }
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
        // --load is one per file; a repeat after it is still refused.
        let load = |a: &[&str]| {
            let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            getopt::parse(&v, OPTS).unwrap()
        };
        assert!(repeated(&load(&["--load", "a", "--load=b", "-s", "S"])).is_none());
        let items = load(&["--load", "a", "--load", "b", "-l", "0", "-l", "1"]);
        assert_eq!(spelled(repeated(&items).unwrap()), "-l/--log-level");
    }

    #[test]
    fn the_pid_file_replaces_links_and_is_removed_only_while_ours() {
        let dir = std::env::temp_dir().join(format!("etmemd-pid-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let at = |n: &str| dir.join(n).to_string_lossy().into_owned();
        std::fs::write(at("victim"), "precious").unwrap();
        std::os::unix::fs::symlink(at("victim"), at("sym.pid")).unwrap();
        let err = write_pid_file(&at("sym.pid"), 42).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        std::fs::hard_link(at("victim"), at("hard.pid")).unwrap();
        write_pid_file(&at("hard.pid"), 42).unwrap();
        assert_eq!(std::fs::read_to_string(at("hard.pid")).unwrap(), "42");
        assert_eq!(std::fs::read_to_string(at("victim")).unwrap(), "precious");
        // Another pid's file stays; ours goes.
        remove_pid_file(&at("hard.pid"), 43);
        assert!(std::path::Path::new(&at("hard.pid")).exists());
        remove_pid_file(&at("hard.pid"), 42);
        assert!(!std::path::Path::new(&at("hard.pid")).exists());
        // No temporary file is left beside them.
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        crate::sort::unstable(&mut left);
        assert_eq!(left, ["sym.pid", "victim"]);
        std::fs::remove_dir_all(&dir).unwrap();
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
