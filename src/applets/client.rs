//! `etmem`: the client. One request to a running etmemd, its answer printed. The command
//! line is upstream's (spec §2); results go to stdout, errors to stderr, and the exit
//! status is 0 success, 1 the daemon refused or failed, 2 bad usage, 3 no daemon.

use super::getopt::{self, Item, Opt};
use crate::error::Kind;
use crate::rpc::client::call;
use crate::rpc::request::{Cmd, Request};

/// Exit status: the request was carried out.
pub const EXIT_OK: i32 = 0;
/// Exit status: the daemon refused or failed the request, or sending or receiving failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit status: the command line is wrong (nothing was sent).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: no daemon listens on the socket named with `-s`.
pub const EXIT_NO_DAEMON: i32 = 3;

const USAGE: &str = "
Usage:
    etmem OBJECT COMMAND
    etmem help

Parameters:
    OBJECT  := { project | obj | engine }
    COMMAND := { add | del | start | stop | show | eng_cmd | help }
";

const OBJ_HELP: &str = "
Usage:
    etmem obj add [options]
    etmem obj del [options]
    etmem obj help [options]

Options:
    -f|--file <conf_file>       Add configuration file
    -s|--socket <socket_name>   Socket name to connect

Notes:
    1. Configuration file must be given.
    2. Socket name must be given.
";

const PROJECT_HELP: &str = "
Usage:
    etmem project start [options]
    etmem project stop [options]
    etmem project show [options]
    etmem project help

Options:
    -n|--name <proj_name>     Add project name
    -s|--socket <socket_name> Socket name to connect
    -v|--verbose              show: also each task's processes, cycles and errors
       --json                 show: everything as one JSON object
       --prometheus           show: the metrics in Prometheus' text format

Notes:
    1. Project name and socket name must be given when execute add or del option.
    2. Socket name must be given when execute show option.
";

const ENGINE_HELP: &str = "
Usage:
    etmem engine eng_cmd [options]
    etmem engine help

Options:
    -n|--proj_name <proj_name> project engine belongs to
    -s|--socket <socket_name> socket name to connect
    -e|--engine <engine_name> engine to execute cmd
    -t|--task_name <task_name> task for cmd
       --json                 the answer as one JSON object (etmemd in Rust only)

Notes:
    1. project name must be given.
    2. socket name must be given.
    3. engine name must be given.
    4. engine cmd must be given.
    5. eng_cmd is supported by engine own.
    6. cslide engine eng_cmd: showtaskpages (needs -t), showhostpages.
";

/// Turns an object's command word and options into the request to send.
type ObjectParser = fn(&str, &[String]) -> Result<Request, String>;

const EXIT_NOTE: &str =
    "Exit status: 0 success, 1 etmemd refused or failed, 2 bad usage, 3 no etmemd on that socket.";

/// The `etmem` client: `args` after the program name (`OBJECT COMMAND [options]`);
/// returns one of the `EXIT_*` statuses.
pub fn main(args: &[String]) -> i32 {
    let Some(object) = args.first() else {
        eprintln!("{USAGE}");
        return EXIT_USAGE;
    };
    let (help, run): (&str, ObjectParser) = match object.as_str() {
        "help" | "-h" | "--help" if args.len() == 1 => {
            return print_out_status(&format!("{USAGE}\n{EXIT_NOTE}\n"));
        }
        "obj" => (OBJ_HELP, obj),
        "project" => (PROJECT_HELP, project),
        "engine" => (ENGINE_HELP, engine),
        other => {
            eprintln!("etmem: unknown object {other:?}\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    let Some(command) = args.get(1) else {
        eprintln!("etmem {object}: a command is missing\n{help}");
        return EXIT_USAGE;
    };
    if command == "help" {
        return print_out_status(&format!("{help}\n"));
    }
    let req = match run(command, &args[2..]) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("etmem {object} {command}: {msg}");
            eprintln!("Try 'etmem {object} help'.");
            return EXIT_USAGE;
        }
    };
    let socket = socket_of(&args[2..]);
    send(&socket, &req)
}

/// Send the request and print the answer; returns the exit status.
fn send(socket: &str, req: &Request) -> i32 {
    match call(socket, req) {
        Ok(a) if a.ok => print_out_status(&a.text),
        Ok(a) => {
            eprintln!("{}", a.text.trim_end_matches('\n'));
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("etmem: {e}");
            if e.kind == Kind::NotFound {
                EXIT_NO_DAEMON
            } else {
                EXIT_FAILED
            }
        }
    }
}

/// The socket name (already validated by the object's parser).
fn socket_of(args: &[String]) -> String {
    let items = getopt::parse(args, ALL_OPTS).unwrap_or_default();
    getopt::last(&items, "socket")
        .unwrap_or_default()
        .to_string()
}

const ALL_OPTS: &[Opt] = &[
    Opt::value("socket", Some('s')),
    Opt::value("file", Some('f')),
    Opt::value("name", Some('n')),
    Opt::value("proj_name", Some('n')),
    Opt::value("engine", Some('e')),
    Opt::value("task_name", Some('t')),
    Opt::flag("verbose", Some('v')),
    Opt::flag("json", None),
    Opt::flag("prometheus", None),
];

/// Parse the options of one object; no stray words allowed.
fn options(args: &[String], opts: &[Opt]) -> Result<Vec<Item>, String> {
    let items = getopt::parse(args, opts)?;
    if let Some(w) = getopt::words(&items).first() {
        return Err(format!("unexpected argument {w:?}"));
    }
    Ok(items)
}

/// A required option's value: given, non-empty, and sendable (no spaces).
fn required(items: &[Item], long: &str, what: &str) -> Result<String, String> {
    match getopt::last(items, long) {
        None | Some("") => Err(format!("{what} must be given")),
        Some(v) => sendable(v, what),
    }
}

fn sendable(v: &str, what: &str) -> Result<String, String> {
    if v.chars().any(char::is_whitespace) {
        return Err(format!(
            "{what} {v:?} contains white space, which the protocol cannot carry"
        ));
    }
    Ok(v.to_string())
}

fn socket(items: &[Item]) -> Result<String, String> {
    let s = required(items, "socket", "socket name (-s)")?;
    crate::rpc::check_socket_name(&s)?;
    Ok(s)
}

fn obj(command: &str, args: &[String]) -> Result<Request, String> {
    let cmd = match command {
        "add" => Cmd::ObjAdd,
        "del" => Cmd::ObjDel,
        _ => {
            return Err(format!(
                "obj cmd {command} is not supported (use add or del)"
            ))
        }
    };
    let items = options(
        args,
        &[
            Opt::value("file", Some('f')),
            Opt::value("socket", Some('s')),
        ],
    )?;
    socket(&items)?;
    let file = required(&items, "file", "configuration file (-f)")?;
    // The daemon resolves relative names against its own directory (/ under systemd);
    // send what the user means: the file relative to where they typed the command.
    let file = if file.starts_with('/') {
        file
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot tell the current directory: {e}"))?;
        sendable(
            &cwd.join(&file).to_string_lossy(),
            "configuration file path",
        )?
    };
    Ok(Request {
        file_name: Some(file),
        ..Request::new(cmd)
    })
}

fn project(command: &str, args: &[String]) -> Result<Request, String> {
    let cmd = match command {
        "start" => Cmd::ProjectStart,
        "stop" => Cmd::ProjectStop,
        "show" => Cmd::ProjectShow,
        _ => {
            return Err(format!(
                "project cmd {command} is not supported (use start, stop or show)"
            ))
        }
    };
    let mut opts = vec![
        Opt::value("name", Some('n')),
        Opt::value("socket", Some('s')),
    ];
    if cmd == Cmd::ProjectShow {
        opts.extend([
            Opt::flag("verbose", Some('v')),
            Opt::flag("json", None),
            Opt::flag("prometheus", None),
        ]);
    }
    let items = options(args, &opts)?;
    socket(&items)?;
    let name = if cmd == Cmd::ProjectShow {
        getopt::last(&items, "name")
            .map(|n| sendable(n, "project name (-n)"))
            .transpose()?
    } else {
        Some(required(&items, "name", "project name (-n)")?)
    };
    if name.as_deref() == Some("") {
        return Err("project name (-n) must not be empty".into());
    }
    let views: Vec<&str> = ["verbose", "json", "prometheus"]
        .into_iter()
        .filter(|v| getopt::has(&items, v))
        .collect();
    let view = match views[..] {
        [] => None,
        [one] => Some(one.to_string()),
        _ => return Err(format!("--{} cannot be combined", views.join(" and --"))),
    };
    Ok(Request {
        proj_name: name,
        eng_cmd: view,
        ..Request::new(cmd)
    })
}

fn engine(command: &str, args: &[String]) -> Result<Request, String> {
    if command.is_empty() || command.starts_with('-') {
        return Err(
            "engine command must be given first (etmem engine CMD -n ... -e ... -s ...)".into(),
        );
    }
    let items = options(
        args,
        &[
            Opt::value("proj_name", Some('n')),
            Opt::value("socket", Some('s')),
            Opt::value("engine", Some('e')),
            Opt::value("task_name", Some('t')),
            Opt::flag("json", None),
        ],
    )?;
    socket(&items)?;
    let proj = required(&items, "proj_name", "project name (-n)")?;
    let mut eng_cmd = sendable(command, "engine command")?;
    if getopt::has(&items, "json") {
        eng_cmd.push_str(crate::rpc::request::JSON_SUFFIX);
    }
    let eng = required(&items, "engine", "engine name (-e)")?;
    let task = match getopt::last(&items, "task_name") {
        None => None,
        Some("") => return Err("task name (-t) must not be empty".into()),
        Some(t) => Some(sendable(t, "task name (-t)")?),
    };
    Ok(Request {
        proj_name: Some(proj),
        eng_name: Some(eng),
        eng_cmd: Some(eng_cmd),
        task_name: task,
        ..Request::new(Cmd::Engine)
    })
}

/// Write `text` to standard output: [`EXIT_OK`], or [`EXIT_FAILED`] when it cannot be
/// written (a reader that went away ends the client quietly).
fn print_out_status(text: &str) -> i32 {
    if super::print_out("etmem", text) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_utf8_word_is_sendable_but_no_white_space() {
        assert_eq!(sendable("проект", "name").as_deref(), Ok("проект"));
        for bad in ["a b", "a\tb", "a\u{3000}b"] {
            assert!(sendable(bad, "name").unwrap_err().contains("white space"));
        }
    }
}
