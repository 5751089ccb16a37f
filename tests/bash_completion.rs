//! packaging/bash-completion/etmem in a real bash, the way bash calls it: a typed line
//! split into COMP_WORDS as bash splits it (at blanks and at `=`), COMP_CWORD, COMP_LINE
//! and COMP_POINT set, the function `complete -p` names for the program called, and
//! COMPREPLY printed. Each check runs twice: with the file alone, and under the
//! bash-completion package's helpers (`_init_completion`, `_filedir`). What it offers
//! is checked against the binary: every option of every program's help, and the words
//! of the code's backend, engine and log-level tables.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::daemon::{Daemon, Scratch};
use etmem::types::{Family, ScanBackend, SwapBackend};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/bash-completion/etmem"
);

/// bash-completion's main file (Debian package bash-completion).
const HELPERS: &str = "/usr/share/bash-completion/bash_completion";

/// Completes at the end of the line `$1` with the file `$2`, after sourcing `$3` when
/// it is not empty; prints COMPREPLY, one word a line.
const SCRIPT: &str = r#"
[[ -n $3 ]] && source "$3"
source "$2"
COMP_LINE=$1 COMP_POINT=${#1} COMP_WORDS=() w=
for ((i = 0; i < ${#COMP_LINE}; i++)); do
    c=${COMP_LINE:i:1}
    if [[ $c == " " ]]; then
        [[ -n $w ]] && COMP_WORDS+=("$w")
        w=
    elif [[ $c == "=" ]]; then
        [[ -n $w ]] && COMP_WORDS+=("$w")
        COMP_WORDS+=("=")
        w=
    else
        w+=$c
    fi
done
[[ -n $w || $COMP_LINE == *" " ]] && COMP_WORDS+=("$w")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
spec=$(complete -p "${COMP_WORDS[0]##*/}") || exit 3
fn=${spec#*-F }
fn=${fn%% *}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

/// With the file alone, or under bash-completion's helpers.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Alone,
    Helpers,
}

/// The modes this machine can run: both where bash-completion is installed, else the
/// file alone after a skip (a failure under ETMEM_REQUIRE_ALL=1).
fn modes() -> Vec<Mode> {
    if std::path::Path::new(HELPERS).is_file() {
        vec![Mode::Alone, Mode::Helpers]
    } else {
        common::skip("bash-completion is not installed: checked without its helpers only");
        vec![Mode::Alone]
    }
}

/// What the completion offers at the end of `line`, run in `dir`.
fn complete_in(mode: Mode, dir: &std::path::Path, line: &str) -> Vec<String> {
    let helpers = match mode {
        Mode::Alone => "",
        Mode::Helpers => HELPERS,
    };
    let out = Command::new("bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            SCRIPT,
            "bash",
            line,
            FILE,
            helpers,
        ])
        .current_dir(dir)
        .env_remove("BASH_ENV")
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{mode:?} {line:?}: status {:?}, stderr:\n{stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn complete(mode: Mode, line: &str) -> Vec<String> {
    complete_in(mode, std::path::Path::new("/"), line)
}

fn set<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    words.into_iter().map(|w| w.as_ref().to_string()).collect()
}

/// The lines whose completions, together, must offer all of a program's options.
fn option_lines(program: &str) -> &'static [&'static str] {
    match program {
        "etmemd" => &["etmemd -", "etmem etmemd -"],
        "etmem-scan" => &["etmem-scan -", "etmem scan -"],
        "etmem-swap" => &["etmem-swap -", "etmem swap -"],
        "etmem" => &[
            "etmem -",
            "etmem obj add -",
            "etmem project show -",
            "etmem engine showhostpages -",
            "etmem --install -",
        ],
        other => panic!("no completion lines for {other}"),
    }
}

#[test]
fn every_option_of_every_help_is_offered() {
    let programs = common::help::programs();
    for mode in modes() {
        for p in &programs {
            let lines = option_lines(p.name);
            let offered: BTreeSet<String> =
                lines.iter().flat_map(|line| complete(mode, line)).collect();
            for option in &p.options {
                assert!(
                    offered.contains(option),
                    "{mode:?}: {option} ({} help) is not offered by {lines:?}: {offered:?}",
                    p.name
                );
            }
        }
        // The multi-call form offers what the link does.
        for (link, word) in [("etmem-scan", "scan"), ("etmem-swap", "swap")] {
            assert_eq!(
                complete(mode, &format!("{link} --")),
                complete(mode, &format!("etmem {word} --")),
                "{mode:?}"
            );
        }
    }
}

#[test]
fn fixed_values_are_the_code_tables() {
    let levels: Vec<String> = (0..10)
        .filter(|n| etmem::log::Level::from_number(*n).is_some())
        .map(|n| n.to_string())
        .collect();
    for mode in modes() {
        for (lines, words) in [
            (
                &[
                    "etmem-scan --backend ",
                    "etmem-scan -b ",
                    "etmem-swap --backend ",
                    "etmem scan --backend=",
                ][..],
                ScanBackend::words(),
            ),
            (
                &[
                    "etmem-swap --swap-backend ",
                    "etmem-swap -s ",
                    "etmem swap --swap-backend=",
                ],
                SwapBackend::words(),
            ),
        ] {
            for line in lines {
                assert_eq!(set(complete(mode, line)), set(&words), "{mode:?} {line:?}");
            }
        }
        assert_eq!(
            complete(mode, "etmem-swap --swap-backend=proc"),
            ["process_madvise"],
            "{mode:?}"
        );
        assert_eq!(
            set(complete(mode, "etmem engine showhostpages -n p -e ")),
            set(etmem::config::BUILTIN_ENGINES),
            "{mode:?}"
        );
        assert_eq!(set(complete(mode, "etmemd -l ")), set(&levels), "{mode:?}");
    }
}

#[test]
fn objects_commands_and_options_of_the_client() {
    let usage = common::texts(&common::run(&["help"])).0;
    let objects: Vec<&str> = usage
        .lines()
        .find_map(|l| l.trim().strip_prefix("OBJECT  := {"))
        .expect("etmem help names the objects")
        .trim_end_matches('}')
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(set(&objects), set(["project", "obj", "engine"]));
    for mode in modes() {
        let first = set(complete(mode, "etmem "));
        let mut wanted = set(&objects);
        wanted.extend(set([
            "help",
            "etmemd",
            "scan",
            "swap",
            "--install",
            "--list",
            "--version",
        ]));
        assert!(first.is_superset(&wanted), "{mode:?}: {first:?}");
        assert_eq!(complete(mode, "etmem pro"), ["project"], "{mode:?}");
        assert_eq!(
            set(complete(mode, "etmem obj ")),
            set(["add", "del", "help"])
        );
        assert_eq!(
            set(complete(mode, "etmem project ")),
            set(["start", "stop", "show", "help"])
        );
        assert_eq!(
            set(complete(mode, "etmem engine ")),
            set(["showhostpages", "showtaskpages", "help"])
        );
        // Each command is offered its own options only.
        let add = set(complete(mode, "etmem obj add -"));
        assert_eq!(add, set(["-f", "--file", "-s", "--socket"]), "{mode:?}");
        let start = set(complete(mode, "etmem project start -"));
        assert_eq!(start, set(["-n", "--name", "-s", "--socket"]), "{mode:?}");
        assert!(complete(mode, "etmem project show --p").contains(&"--prometheus".into()));
        assert_eq!(
            complete(mode, "etmem engine showtaskpages --t"),
            ["--task_name"]
        );
        // A value nothing can complete is not offered options instead.
        assert!(complete(mode, "etmem project start -n ").is_empty());
        assert!(complete(mode, "etmem-scan --loop ").is_empty());
    }
}

#[test]
fn files_directories_pids_names_and_sockets() {
    let s = Scratch::new("completion");
    s.conf("conf-a.yaml", "");
    std::fs::create_dir(s.0.join("conf-dir")).unwrap();
    let dir = s.0.to_string_lossy().into_owned();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let sleeper_pid = sleeper.id().to_string();
    let comm = format!("/proc/{sleeper_pid}/comm");
    assert!(common::wait_for(std::time::Duration::from_secs(5), || {
        std::fs::read_to_string(&comm).is_ok_and(|c| c == "sleep\n")
    }));
    let d = Daemon::start("completion");
    for mode in modes() {
        let conf = complete(mode, &format!("etmem obj add -s x -f {dir}/conf-"));
        assert!(
            conf.contains(&format!("{dir}/conf-a.yaml")),
            "{mode:?}: {conf:?}"
        );
        let metrics = complete(mode, &format!("etmemd -s x --metrics-file={dir}/conf-a"));
        assert!(
            metrics.contains(&format!("{dir}/conf-a.yaml")),
            "{mode:?}: {metrics:?}"
        );
        let install = complete(mode, &format!("etmem --install {dir}/conf-"));
        assert!(
            install
                .iter()
                .all(|w| w.starts_with(&format!("{dir}/conf-dir")))
                && !install.is_empty(),
            "{mode:?}: only the directory: {install:?}"
        );
        for line in ["etmem-scan -p ", "etmem-swap --pid=", "etmem scan --pid "] {
            let pids = complete(mode, line);
            assert!(pids.contains(&sleeper_pid), "{mode:?} {line:?}: {pids:?}");
            assert!(pids.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())));
        }
        let started = complete(mode, &format!("etmem-scan -p {sleeper_pid}"));
        assert!(
            started.contains(&sleeper_pid) && started.iter().all(|p| p.starts_with(&sleeper_pid)),
            "{mode:?}: {started:?}"
        );
        let names = complete(mode, "etmem-swap --name sle");
        assert!(names.contains(&"sleep".to_string()), "{mode:?}: {names:?}");
        let sockets = complete(mode, "etmem project show -s etmem-test-");
        assert!(
            sockets.contains(&d.socket),
            "{mode:?}: {} not in {sockets:?}",
            d.socket
        );
    }
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn a_process_name_is_never_run_by_the_shell() {
    // A process may name itself anything; a name that is shell code must be neither
    // expanded (compgen -W would run it) nor offered.
    let s = Scratch::new("completion-name");
    // 15 bytes: all of it is the comm. Run through a link, not a copy: the comm is the
    // name exec'd, and a copy just written can fail to exec with ETXTBSY while another
    // test's fork still holds it open for writing.
    let evil = "$(touch${IFS}p)";
    let exe = s.0.join(evil);
    std::os::unix::fs::symlink("/bin/sleep", &exe).unwrap();
    let mut child = Command::new(&exe).arg("60").spawn().unwrap();
    let comm = format!("/proc/{}/comm", child.id());
    assert!(
        common::wait_for(std::time::Duration::from_secs(5), || {
            std::fs::read_to_string(&comm).is_ok_and(|c| c.trim_end() == evil)
        }),
        "the child never ran as {evil:?}"
    );
    for mode in modes() {
        for line in ["etmem-scan -n ", "etmem-swap --name="] {
            let names = complete_in(mode, &s.0, line);
            assert!(
                !names.iter().any(|n| n.contains('$')),
                "{mode:?} {line:?}: {names:?}"
            );
        }
        assert!(!s.0.join("p").exists(), "{mode:?}: the name was run");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
