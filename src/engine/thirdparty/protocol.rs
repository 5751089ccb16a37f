//! The policy-process protocol, version 1 (`etmem-policy(7)`, ours): what etmemd writes to
//! a plug-in's standard input, and the reading of each line the plug-in answers on its
//! standard output. Line-oriented text, fields separated by one space; every request gets
//! exactly one answer, in order. Text fields etmemd sends (names, keys, values, paths) are
//! escaped ([`escape`]) so that each is one field; what a plug-in writes after `error ` or
//! `text ` is free text to the end of its line.
//!
//! Everything here is pure: the process, its pipes and limits are `process.rs`.

use std::fmt::Write as _;

use crate::engine::cold::Scanned;
use crate::types::{size_name, Range};

/// The protocol's name in the hello, so that a program that is not a policy at all (one
/// that echoes its input, say) is told apart at once.
pub const NAME: &str = "etmem-policy";

/// The versions this etmemd speaks.
pub const VERSIONS: [u32; 1] = [1];

/// The feature a plug-in names in its hello when it answers `command` requests.
pub const COMMAND_FEATURE: &str = "command";

/// Escape a text field: each byte below `!`, above `~`, and `%` itself, as `%` and two
/// upper-case hex digits; so `my file` is `my%20file`, and UTF-8 text is kept byte for byte.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The first request: the protocol's name and the versions etmemd speaks.
pub fn hello() -> String {
    let versions: Vec<String> = VERSIONS.iter().map(u32::to_string).collect();
    format!("hello {NAME} {}\n", versions.join(" "))
}

/// A block of `key KEY VALUE` lines under `head`, ended by `end`: the engine's or a
/// task's config group, every key of it.
fn keys_block(head: &str, keys: &[(String, String)]) -> String {
    let mut out = format!("{head}\n");
    for (k, v) in keys {
        let _ = writeln!(out, "key {} {}", escape(k), escape(v));
    }
    out.push_str("end\n");
    out
}

/// `engine NAME` with the `[engine]` group's keys (upstream's `fill_eng_params`).
pub fn engine(name: &str, keys: &[(String, String)]) -> String {
    keys_block(&format!("engine {}", escape(name)), keys)
}

/// `task NAME` with the `[task]` group's keys (upstream's `fill_task_params`).
pub fn task(name: &str, keys: &[(String, String)]) -> String {
    keys_block(&format!("task {}", escape(name)), keys)
}

/// A request about one task with no body: `start`, `stop` or `forget`.
pub fn about_task(word: &str, task: &str) -> String {
    format!("{word} {}\n", escape(task))
}

/// `scan TASK PID LOOPS`, then for each VMA scanned a `vma START-END PERMS MAPPING` line
/// followed by its resident pages as `pages START-END SIZE COUNT` runs (adjacent pages of
/// one size with one access count), then `end`.
pub fn scan(task: &str, pid: i32, loops: u32, scanned: &Scanned) -> String {
    let mut out = format!("scan {} {pid} {loops}\n", escape(task));
    for c in &scanned.counts {
        let v = c.vma();
        let mapping = if v.path.is_empty() { "[anon]" } else { &v.path };
        let _ = writeln!(out, "vma {} {} {}", v.range, v.perms(), escape(mapping));
        for r in c.runs() {
            let _ = writeln!(
                out,
                "pages {} {} {}",
                r.range,
                size_name(r.size.bytes()),
                r.count
            );
        }
    }
    out.push_str("end\n");
    out
}

/// `command WORD TASK FORMAT`: an `etmem engine` command passed on; `-` when no task was
/// named; FORMAT is `text` or `json` (the client's `--json`).
pub fn command(word: &str, task: Option<&str>, json: bool) -> String {
    format!(
        "command {} {} {}\n",
        escape(word),
        task.map_or_else(|| "-".to_string(), escape),
        if json { "json" } else { "text" }
    )
}

/// The last request: the plug-in should exit.
pub const BYE: &str = "bye\n";

/// What a plug-in's hello says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The version it chose, one of [`VERSIONS`].
    pub version: u32,
    /// It answers `command` requests ([`COMMAND_FEATURE`]).
    pub command: bool,
}

/// A line shown in a message: escaped and cut, so that nothing a plug-in writes can
/// garble the log or a reply.
pub fn shown(line: &str) -> String {
    let cut: String = line.chars().take(80).collect();
    let more = if cut.len() < line.len() { "..." } else { "" };
    format!("{:?}{more}", cut)
}

/// The answer to the hello: `hello etmem-policy VERSION [FEATURE...]`. Features this
/// etmemd does not know are ignored, so a plug-in may offer more.
pub fn parse_hello(line: &str) -> Result<Hello, String> {
    let mut f = line.split(' ');
    match (f.next(), f.next(), f.next()) {
        (Some("hello"), Some(NAME), Some(v)) => {
            let version = v
                .parse::<u32>()
                .ok()
                .filter(|v| VERSIONS.contains(v))
                .ok_or_else(|| {
                    format!(
                        "asked in its hello for version {}, and this etmemd speaks {} version {}",
                        shown(v),
                        NAME,
                        VERSIONS.map(|v| v.to_string()).join(", ")
                    )
                })?;
            Ok(Hello {
                version,
                command: f.any(|w| w == COMMAND_FEATURE),
            })
        }
        _ => Err(format!(
            "answered the hello with {}, not \"hello {NAME} VERSION\"",
            shown(line)
        )),
    }
}

/// The answer to a request that is done or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `ok`.
    Ok,
    /// `error TEXT`: the plug-in refuses, saying why.
    Error(String),
}

/// `error TEXT`, the plug-in's refusal; the text as written (at least a word).
fn error_text(line: &str) -> Option<Status> {
    let text = line.strip_prefix("error ")?.trim();
    Some(Status::Error(if text.is_empty() {
        "(no reason given)".to_string()
    } else {
        text.to_string()
    }))
}

/// `ok` or `error TEXT`.
pub fn parse_status(line: &str) -> Result<Status, String> {
    if line == "ok" {
        return Ok(Status::Ok);
    }
    error_text(line).ok_or_else(|| {
        format!(
            "answered with {}, not \"ok\" or \"error TEXT\"",
            shown(line)
        )
    })
}

/// One line of the answer to a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `swap START-END`: swap these pages out.
    Swap(Range),
    /// `move START-END NODE`: move these pages to that NUMA node.
    Move(Range, u32),
}

/// One line of an answer to a scan or command: an item, its end, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<T> {
    /// An item of the answer.
    Item(T),
    /// `end`: the answer is complete.
    End,
    /// `error TEXT`: the plug-in refuses the request (whatever it wrote before in this
    /// answer is dropped).
    Error(String),
}

/// `end` or `error TEXT`, common to every multi-line answer.
fn end_or_error<T>(line: &str) -> Option<Line<T>> {
    if line == "end" {
        return Some(Line::End);
    }
    match error_text(line)? {
        Status::Error(e) => Some(Line::Error(e)),
        Status::Ok => None,
    }
}

/// A line of the answer to a scan: `swap START-END`, `move START-END NODE`, `end`, or
/// `error TEXT`. Addresses are hex (`0x` optional), as etmemd writes them.
pub fn parse_action(line: &str) -> Result<Line<Action>, String> {
    if let Some(l) = end_or_error(line) {
        return Ok(l);
    }
    let f: Vec<&str> = line.split(' ').collect();
    let range =
        |s: &str| Range::parse(s).ok_or_else(|| format!("{} is not START-END in hex", shown(s)));
    match f.as_slice() {
        ["swap", r] => Ok(Line::Item(Action::Swap(range(r)?))),
        ["move", r, node] => {
            let n = node
                .parse::<u32>()
                .ok()
                .filter(|_| node.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("{} is not a NUMA node number", shown(node)))?;
            Ok(Line::Item(Action::Move(range(r)?, n)))
        }
        _ => Err(format!(
            "answered a scan with {}, not \"swap START-END\", \"move START-END NODE\", \
             \"end\" or \"error TEXT\"",
            shown(line)
        )),
    }
}

/// A line of the answer to a command: `text TEXT` (one line of output for the client;
/// `text` alone is an empty line), `end`, or `error TEXT`.
pub fn parse_text(line: &str) -> Result<Line<String>, String> {
    if let Some(l) = end_or_error(line) {
        return Ok(l);
    }
    if line == "text" {
        return Ok(Line::Item(String::new()));
    }
    match line.strip_prefix("text ") {
        Some(t) => Ok(Line::Item(t.to_string())),
        None => Err(format!(
            "answered a command with {}, not \"text TEXT\", \"end\" or \"error TEXT\"",
            shown(line)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::VmaCounts;
    use crate::types::{PageSize, Vma};

    #[test]
    fn requests_are_one_field_per_word() {
        assert_eq!(escape("a b%c\td"), "a%20b%25c%09d");
        assert_eq!(escape("véé"), "v%C3%A9%C3%A9");
        assert_eq!(hello(), "hello etmem-policy 1\n");
        let keys = vec![
            ("name".to_string(), "thirdparty".to_string()),
            ("k".to_string(), "two words".to_string()),
        ];
        assert_eq!(
            engine("e", &keys),
            "engine e\nkey name thirdparty\nkey k two%20words\nend\n"
        );
        assert_eq!(task("t", &[]), "task t\nend\n");
        assert_eq!(about_task("start", "t"), "start t\n");
        assert_eq!(command("stats", None, false), "command stats - text\n");
        assert_eq!(command("stats", Some("t"), true), "command stats t json\n");
    }

    #[test]
    fn a_scan_lists_vmas_and_their_runs() {
        let b = PageSize::Base.bytes();
        let vma = |start: u64, pages: u64, path: &str| Vma {
            range: Range::new(start, start + pages * b),
            read: true,
            write: true,
            exec: false,
            shared: false,
            offset: 0,
            major: 0,
            minor: 0,
            inode: 0,
            path: path.into(),
        };
        let mut a = VmaCounts::new(vma(0x10000, 4, ""));
        a.set_present(0, 2);
        a.add(1, 1, 2);
        let c = VmaCounts::new(vma(0x20000, 1, "/memfd:x y (deleted)"));
        let s = Scanned {
            backend: crate::types::ScanBackend::PageIdle,
            counts: vec![a, c],
        };
        assert_eq!(
            scan("t", 7, 2, &s),
            format!(
                "scan t 7 2\nvma 10000-14000 rw-p [anon]\npages 10000-{:x} 4K 0\npages {:x}-{:x} 4K 2\n\
                 vma 20000-21000 rw-p /memfd:x%20y%20(deleted)\nend\n",
                0x10000 + b,
                0x10000 + b,
                0x10000 + 2 * b
            )
        );
    }

    #[test]
    fn hellos() {
        assert_eq!(
            parse_hello("hello etmem-policy 1 command future"),
            Ok(Hello {
                version: 1,
                command: true
            })
        );
        assert_eq!(
            parse_hello("hello etmem-policy 1"),
            Ok(Hello {
                version: 1,
                command: false
            })
        );
        assert!(parse_hello("hello etmem-policy 2").unwrap_err().contains(
            "asked in its hello for version \"2\", and this etmemd speaks etmem-policy version 1"
        ));
        for bad in [
            "",
            "hello",
            "hello etmem-policy",
            "hi etmem-policy 1",
            "hello other 1",
        ] {
            assert!(
                parse_hello(bad)
                    .unwrap_err()
                    .contains("not \"hello etmem-policy VERSION\""),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers() {
        assert_eq!(parse_status("ok"), Ok(Status::Ok));
        assert_eq!(
            parse_status("error no such key"),
            Ok(Status::Error("no such key".into()))
        );
        assert_eq!(
            parse_status("error "),
            Ok(Status::Error("(no reason given)".into()))
        );
        assert!(parse_status("OK").is_err());
        assert!(parse_status("ok ").is_err());
        let r = Range::new(0x1000, 0x3000);
        assert_eq!(
            parse_action("swap 1000-3000"),
            Ok(Line::Item(Action::Swap(r)))
        );
        assert_eq!(
            parse_action("move 0x1000-0x3000 1"),
            Ok(Line::Item(Action::Move(r, 1)))
        );
        assert_eq!(parse_action("end"), Ok(Line::End));
        assert_eq!(parse_action("error busy"), Ok(Line::Error("busy".into())));
        for (bad, why) in [
            ("swap", "not \"swap START-END\""),
            ("swap 1000", "\"1000\" is not START-END"),
            ("swap 1000-3000 x", "not \"swap START-END\""),
            ("move 1000-3000 +1", "\"+1\" is not a NUMA node"),
            ("move 1000-3000 99999999999", "is not a NUMA node"),
            ("swap  1000-3000", "not \"swap START-END\""),
            ("ok", "not \"swap START-END\""),
        ] {
            assert!(parse_action(bad).unwrap_err().contains(why), "{bad}");
        }
        assert_eq!(
            parse_text("text  two  spaces"),
            Ok(Line::Item(" two  spaces".into()))
        );
        assert_eq!(parse_text("text"), Ok(Line::Item(String::new())));
        assert_eq!(parse_text("end"), Ok(Line::End));
        assert!(parse_text("texts").is_err());
    }

    #[test]
    fn what_a_plugin_wrote_is_shown_escaped_and_short() {
        let s = shown(&format!("\u{1b}[31m{}", "x".repeat(200)));
        assert!(
            s.starts_with("\"\\u{1b}[31mxxx") && s.ends_with("\"..."),
            "{s}"
        );
        assert!(s.len() < 100);
    }
}
