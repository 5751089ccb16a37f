//! The four programs in one binary (busybox style), chosen by the name the binary was
//! called under or by its first argument; plus `--install`, `--list` and `--version`.

pub mod client;
pub mod demo;
pub mod etmemd;
pub mod getopt;
pub mod heatmap;
pub mod oneshot;
pub mod scan;
pub mod scan_text;
pub mod swap;
pub mod workload;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// An applet's entry point: arguments after the applet name, returns the exit status.
type Entry = fn(&[String]) -> i32;

struct Applet {
    /// The name it is installed under (a symlink to the binary).
    link: &'static str,
    /// The word that selects it as `etmem WORD ...`.
    word: &'static str,
    entry: Entry,
    what: &'static str,
}

const APPLETS: &[Applet] = &[
    Applet {
        link: "etmemd",
        word: "etmemd",
        entry: etmemd::main,
        what: "the daemon: holds projects, scans processes, moves cold memory",
    },
    Applet {
        link: "etmem",
        word: "",
        entry: client::main,
        what: "the client: one request to a running etmemd",
    },
    Applet {
        link: "etmem-scan",
        word: "scan",
        entry: scan::main,
        what: "one-shot: which pages of a process are hot and which are cold",
    },
    Applet {
        link: "etmem-swap",
        word: "swap",
        entry: swap::main,
        what: "one-shot: swap out given ranges or the cold pages of a process",
    },
];

/// Write `text` to standard output; false when it could not be written. A reader that
/// went away (`etmem project show | head -1`) ends the program quietly, where `print!`
/// would panic; any other failure is said on stderr, naming `applet`.
pub fn print_out(applet: &str, text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("{applet}: cannot write to standard output: {e}");
            false
        }
    }
}

/// Pick the applet and run it.
pub fn main(argv: Vec<OsString>) -> i32 {
    let argv: Vec<String> = match argv.into_iter().map(|a| a.into_string()).collect() {
        Ok(v) => v,
        Err(bad) => {
            eprintln!("etmem: argument {bad:?} is not valid UTF-8");
            return 2;
        }
    };
    let name = argv.first().map(|a| basename(a)).unwrap_or("etmem");
    let rest = argv.get(1..).unwrap_or(&[]);
    if let Some(app) = APPLETS.iter().find(|a| a.link == name && a.link != "etmem") {
        return (app.entry)(rest);
    }
    match rest.first().map(String::as_str) {
        Some("--list") => {
            let list: String = APPLETS
                .iter()
                .map(|a| format!("{:<11} {}\n", a.link, a.what))
                .collect();
            i32::from(!print_out("etmem", &list))
        }
        Some("--version") => {
            let version = format!("etmem {}\n", env!("CARGO_PKG_VERSION"));
            i32::from(!print_out("etmem", &version))
        }
        Some("--install") => install(&rest[1..]),
        // Hidden: the test workload process (not an installed applet).
        Some("workload") => workload::main(&rest[1..]),
        Some(w) => match APPLETS.iter().find(|a| !a.word.is_empty() && a.word == w) {
            Some(app) => (app.entry)(&rest[1..]),
            None => client(rest),
        },
        None => client(rest),
    }
}

fn client(args: &[String]) -> i32 {
    let app = APPLETS
        .iter()
        .find(|a| a.link == "etmem")
        .expect("client applet is in the table");
    (app.entry)(args)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

const INSTALL_USAGE: &str = "usage: etmem --install [--force] DIR\n\
    Creates the symlinks etmemd, etmem-scan and etmem-swap (and etmem, unless DIR already\n\
    holds this binary) in DIR, pointing at this binary. Refuses to replace an existing\n\
    file unless --force is given.";

/// `etmem --install [--force] DIR`: make the applet symlinks, like `busybox --install`.
fn install(args: &[String]) -> i32 {
    let force = args.iter().any(|a| a == "--force" || a == "-f");
    let dirs: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if dirs.len() != 1
        || args
            .iter()
            .any(|a| a.starts_with('-') && a != "--force" && a != "-f")
    {
        eprintln!("{INSTALL_USAGE}");
        return 2;
    }
    let dir = Path::new(dirs[0]);
    if !dir.is_dir() {
        eprintln!("etmem --install: {}: not a directory", dir.display());
        return 1;
    }
    let exe = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("etmem --install: cannot find this binary's path: {e}");
            return 1;
        }
    };
    // Check everything first so that nothing is half-installed.
    let mut plan: Vec<PathBuf> = Vec::new();
    for a in APPLETS {
        let link = dir.join(a.link);
        if link.canonicalize().map(|p| p == exe).unwrap_or(false) {
            continue; // already this binary (or a link to it)
        }
        if link.symlink_metadata().is_ok() && !force {
            eprintln!(
                "etmem --install: {} exists; use --force to replace it",
                link.display()
            );
            return 1;
        }
        plan.push(link);
    }
    for link in plan {
        if link.symlink_metadata().is_ok() {
            if let Err(e) = std::fs::remove_file(&link) {
                eprintln!("etmem --install: cannot replace {}: {e}", link.display());
                return 1;
            }
        }
        if let Err(e) = std::os::unix::fs::symlink(&exe, &link) {
            eprintln!("etmem --install: cannot create {}: {e}", link.display());
            return 1;
        }
        println!("{} -> {}", link.display(), exe.display());
    }
    0
}
