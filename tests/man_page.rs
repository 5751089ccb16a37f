//! The man pages against the code: every option each program's help prints has an entry
//! in its page's OPTIONS, every name of the code's backend, engine and action tables is
//! documented where the keys that choose them are, every page has the sections a reader
//! looks for, and mandoc finds nothing to complain about. So an option, a backend or an
//! engine added to the code cannot go undocumented.

mod common;

use etmem::types::{Family, ScanBackend, SwapBackend};

/// The five pages of the programs and the config file (etmem-policy.7 is the sixth).
const PAGES: &[&str] = &[
    "etmem.8",
    "etmemd.8",
    "etmem-scan.8",
    "etmem-swap.8",
    "etmem.conf.5",
];

fn man(page: &str) -> String {
    let path = format!("{}/man/{page}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of section `title` (`.SH TITLE` up to the next `.SH`).
fn section<'a>(page: &'a str, text: &'a str, title: &str) -> &'a str {
    text.split(&format!("\n.SH {title}\n"))
        .nth(1)
        .and_then(|s| s.split("\n.SH ").next())
        .unwrap_or_else(|| panic!("man/{page} has no {title} section"))
}

/// The text of subsection `title` (`.SS TITLE...` up to the next `.SS` or `.SH`).
fn subsection<'a>(page: &'a str, text: &'a str, title: &str) -> &'a str {
    let head = format!(".SS {title}");
    let at = text
        .match_indices(&head)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text[..i].ends_with('\n'))
        .unwrap_or_else(|| panic!("man/{page} has no {head} subsection"));
    let start = &text[at + head.len()..];
    let end = [start.find("\n.SS "), start.find("\n.SH ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(start.len());
    &start[..end]
}

/// True when `text` has a `.B WORD` or `.BR WORD ...` line: the word set in bold.
fn has_bold(text: &str, word: &str) -> bool {
    text.lines().any(|l| {
        let mut t = l.split_whitespace();
        matches!(t.next(), Some(".B" | ".BR")) && t.next() == Some(word)
    })
}

/// An option as roff writes it: every `-` escaped.
fn roff(option: &str) -> String {
    option.replace('-', "\\-")
}

/// The words of the tag lines (the line after each `.TP`) of `text`, font escapes and
/// quotes dropped: `.BR \-p ", " \-\-pid " \fIN\fR"` gives `\-p`, `\-\-pid`, `N`.
fn tag_words(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .flat_map(|w| {
            w[1].replace("\\fI", " ")
                .replace("\\fR", " ")
                .replace("\\fB", " ")
                .replace("\\fP", " ")
                .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .filter(|t| !t.is_empty() && !t.starts_with('.'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn help_options_are_read_from_both_layouts() {
    let help = "usage: etmem --install [--force] DIR\n\
                usage: x (--pid N | --name COMM) [options]\n\
                \x20   -l|--log-level <log-level>  Log level\n\
                \x20      --pid-file <path>        Pid file\n\
                \x20 -b, --backend B      auto, idle_pages\n\
                --pages followed by lines, and -m is given\n\
                prose with --not-an-entry\n";
    assert_eq!(
        common::help::options(help),
        [
            "--install",
            "--force",
            "--pid",
            "--name",
            "-l",
            "--log-level",
            "--pid-file",
            "-b",
            "--backend",
            "--pages"
        ]
    );
}

#[test]
fn every_option_of_every_help_has_an_entry_in_its_page() {
    for p in common::help::programs() {
        let page = format!("{}.8", p.name);
        let text = man(&page);
        let entries = tag_words(section(&page, &text, "OPTIONS"));
        for option in &p.options {
            assert!(
                entries.contains(&roff(option)),
                "{option} ({} --help) has no .TP entry in the OPTIONS of man/{page}; \
                 entries: {entries:?}\nhelp:\n{}",
                p.name,
                p.help
            );
        }
    }
}

#[test]
fn every_page_has_the_sections_a_reader_looks_for() {
    for page in PAGES {
        let text = man(page);
        let (name, number) = page.rsplit_once('.').unwrap();
        let title = name.to_uppercase().replace('-', "\\-");
        assert!(
            text.starts_with(&format!(".TH {title} {number} ")),
            "man/{page} does not start with .TH {title} {number}"
        );
        let mut wanted = vec![
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "FILES",
            "DIFFERENCES FROM UPSTREAM",
            "SEE ALSO",
        ];
        if number == "8" {
            wanted.extend(["OPTIONS", "EXIT STATUS"]);
        }
        for title in wanted {
            section(page, &text, title);
        }
    }
}

#[test]
fn every_page_named_in_see_also_exists() {
    for page in PAGES.iter().chain(&["etmem-policy.7"]) {
        let text = man(page);
        let see_also = section(page, &text, "SEE ALSO");
        for line in see_also.lines() {
            let Some(rest) = line.strip_prefix(".BR etmem") else {
                continue;
            };
            let (name, number) = rest.split_once(" (").expect("`.BR NAME (N)`");
            let file = format!("etmem{}.{}", name.replace("\\-", "-"), &number[..1]);
            assert!(
                std::path::Path::new(&format!("{}/man/{file}", env!("CARGO_MANIFEST_DIR")))
                    .is_file(),
                "man/{page} refers to {file}, which does not exist"
            );
        }
    }
}

/// The man page line that documents `key` (its `.BR key " (...)"` line).
fn key_line<'a>(man: &'a str, key: &str) -> &'a str {
    man.lines()
        .find(|l| l.starts_with(&format!(".BR {key} \"")))
        .unwrap_or_else(|| panic!("man/etmem.conf.5 has no `.BR {key} \"(...)\"` line"))
}

fn lists_every_word<F: Family>(man: &str, key: &str) {
    let line = key_line(man, key);
    for w in F::words() {
        assert!(
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|t| t == w),
            "man/etmem.conf.5's {key} line lacks {w:?}: {line}"
        );
    }
}

#[test]
fn task_keys_list_every_backend() {
    let m = man("etmem.conf.5");
    lists_every_word::<ScanBackend>(&m, "scan_backend");
    lists_every_word::<SwapBackend>(&m, "swap_backend");
}

#[test]
fn backends_sections_describe_every_backend() {
    let scan = man("etmem-scan.8");
    let conf = man("etmem.conf.5");
    for (page, text) in [("etmem-scan.8", &scan), ("etmem.conf.5", &conf)] {
        let backends = section(page, text, "BACKENDS");
        for b in ScanBackend::ALL {
            assert!(
                backends.contains(&format!(".TP\n.B {}\n", b.name())),
                "the BACKENDS of man/{page} do not describe {}",
                b.name()
            );
        }
    }
    let backends = section("etmem.conf.5", &conf, "BACKENDS");
    for b in SwapBackend::ALL {
        assert!(
            backends.contains(&format!(".TP\n.B {}\n", b.name())),
            "the BACKENDS of man/etmem.conf.5 do not describe {}",
            b.name()
        );
    }
    // The one-shot programs' --backend and --swap-backend entries name them all too.
    let swap = man("etmem-swap.8");
    for (page, text, option, words) in [
        ("etmem-scan.8", &scan, "backend", ScanBackend::words()),
        ("etmem-swap.8", &swap, "backend", ScanBackend::words()),
        (
            "etmem-swap.8",
            &swap,
            "swap\\-backend",
            SwapBackend::words(),
        ),
    ] {
        let options = section(page, text, "OPTIONS");
        let entry = options
            .split(&format!("\\-\\-{option} \" \\fIB\\fR\"\n"))
            .nth(1)
            .and_then(|s| s.split("\n.TP\n").next())
            .unwrap_or_else(|| panic!("man/{page} has no --{option} entry"));
        for w in words {
            assert!(
                has_bold(entry, w),
                "man/{page}'s --{option} entry lacks {w}: {entry}"
            );
        }
    }
}

#[test]
fn every_engine_type_and_damon_word_is_documented() {
    use etmem::config::{DamonAction, DamonOps, ENGINE_TYPES};
    let m = man("etmem.conf.5");
    let engines = section("etmem.conf.5", &m, "ENGINES");
    for ty in ENGINE_TYPES {
        subsection("etmem.conf.5", engines, &format!("{ty}: "));
    }
    let damon = subsection("etmem.conf.5", engines, "damon: ");
    for a in DamonAction::ALL {
        assert!(
            has_bold(damon, a.name()),
            "the damon subsection lacks the action {}",
            a.name()
        );
    }
    let ops = key_line(&m, "operations");
    for w in DamonOps::WORDS {
        assert!(ops.contains(w), "the operations line lacks {w}: {ops}");
    }
    let goal = key_line(&m, "quota_goal_metric");
    for w in etmem::config::damon_tuning::GOAL_METRICS {
        assert!(
            goal.contains(w),
            "the quota_goal_metric line lacks {w}: {goal}"
        );
    }
}

#[test]
fn the_policy_protocol_and_its_keys_are_documented() {
    use etmem::config::REPLY_TIMEOUT_DEFAULT;
    use etmem::engine::thirdparty::protocol::{COMMAND_FEATURE, NAME, VERSIONS};
    let m = man("etmem.conf.5");
    let thirdparty = subsection("etmem.conf.5", &m, "thirdparty: ");
    for key in [
        "eng_name",
        "exec",
        "reply_timeout",
        "libname",
        "ops_name",
        "dlopen",
    ] {
        assert!(
            thirdparty.contains(key),
            "thirdparty keys lack {key}: {thirdparty}"
        );
    }
    assert!(thirdparty.contains(&format!("default {REPLY_TIMEOUT_DEFAULT};")));
    assert!(thirdparty.contains(".BR etmem\\-policy (7)"));
    let policy = man("etmem-policy.7");
    let name = NAME.replace('-', "\\-");
    assert!(policy.contains(&format!(".BI \"hello {name} \" \"VERSION ...\"")));
    for v in VERSIONS {
        assert!(policy.contains(&format!("(this one: {v})")), "version {v}");
    }
    assert!(policy.contains(&format!("The feature\n.B {COMMAND_FEATURE}\n")));
    for word in ["engine ", "task ", "scan ", "command "] {
        assert!(policy.contains(&format!(".BI \"{word}")), "request {word}");
    }
    for word in ["start ", "stop ", "forget ", "bye"] {
        assert!(policy.contains(word), "request {word}");
    }
}

#[test]
fn mandoc_lint_finds_nothing() {
    if std::process::Command::new("mandoc")
        .arg("-V")
        .output()
        .is_err()
    {
        return common::skip("mandoc is not installed (Debian package mandoc)");
    }
    for page in PAGES.iter().chain(&["etmem-policy.7"]) {
        let path = format!("{}/man/{page}", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("mandoc")
            .args(["-T", "lint", &path])
            .output()
            .expect("mandoc runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.is_empty() && out.status.success(),
            "mandoc -T lint man/{page}:\n{said}"
        );
    }
}
