//! The problems found in one file, collected rather than returned at the first one, so an
//! operator sees every mistake of a file in one go and fixes them all at once.

use crate::error::{Error, Object, Result};

/// At most this many problems are listed in one error; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// At most this many messages of each kind are kept, so a 10 MiB file of junk lines
/// cannot make the daemon hold millions of messages; the rest are only counted.
pub const MAX_KEPT: usize = 1000;

/// Where upstream would have stopped on an error (spec §4.3): it reads a file's
/// `[project]` group, then `[engine]`, then `[task]`, each group's lookup keys before its
/// values, and answers "invalid parameters" for the file, the project and lookup keys,
/// but "internal error" for a bad value inside `[engine]` or `[task]`. The error of the
/// lowest step decides the reply; the message still lists every problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The file itself, its syntax, or the `[project]` group.
    File,
    /// An `[engine]` group's lookup keys (`project`, a missing `name`).
    EngineLookup,
    /// A value in an `[engine]` group.
    EngineValue,
    /// A `[task]` group's lookup keys (`project`, `engine`, `name`).
    TaskLookup,
    /// A value in a `[task]` group.
    TaskValue,
}

impl Step {
    /// The object the reply is about: an engine or task for a bad value there.
    fn object(self) -> Option<Object> {
        match self {
            Step::EngineValue => Some(Object::Engine),
            Step::TaskValue => Some(Object::Task),
            _ => None,
        }
    }
}

/// Errors and warnings, each already worded for the operator, with the line that sorts it.
#[derive(Debug, Default)]
pub struct Diag {
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
    errors_dropped: usize,
    warnings_dropped: usize,
    /// The lowest step any error was found at.
    first_step: Option<Step>,
}

impl Diag {
    /// A problem that makes the whole file unusable, at the file or project step.
    pub fn error(&mut self, line: usize, msg: String) {
        self.error_at(Step::File, line, msg);
    }

    /// A problem found at `step` of upstream's reading order.
    pub fn error_at(&mut self, step: Step, line: usize, msg: String) {
        self.first_step = Some(self.first_step.map_or(step, |s| s.min(step)));
        keep(&mut self.errors, &mut self.errors_dropped, line, msg);
    }

    /// Something worth telling that does not stop the file from being used.
    pub fn warn(&mut self, line: usize, msg: String) {
        keep(&mut self.warnings, &mut self.warnings_dropped, line, msg);
    }

    /// The warnings in file order when there is no error; otherwise one `Invalid` error
    /// listing the problems in file order, one per line, about the engine or task when
    /// the first problem in upstream's order is a value there.
    pub fn finish(self) -> Result<Vec<String>> {
        if self.errors.is_empty() {
            let mut warnings = in_file_order(self.warnings);
            if self.warnings_dropped > 0 {
                warnings.push(format!("... and {} more warnings", self.warnings_dropped));
            }
            return Ok(warnings);
        }
        let errors = in_file_order(self.errors);
        let more = errors.len().saturating_sub(MAX_LISTED) + self.errors_dropped;
        let mut lines: Vec<String> = errors.into_iter().take(MAX_LISTED).collect();
        if more > 0 {
            lines.push(format!("... and {more} more problems"));
        }
        let e = Error::invalid(lines.join("\n"));
        Err(match self.first_step.and_then(Step::object) {
            Some(o) => e.about(o),
            None => e,
        })
    }
}

fn keep(list: &mut Vec<(usize, String)>, dropped: &mut usize, line: usize, msg: String) {
    if list.len() < MAX_KEPT {
        list.push((line, printable(msg)));
    } else {
        *dropped += 1;
    }
}

/// `msg` with its control characters escaped, as [`value::shown`](super::value::shown)
/// shows a value: a reader's rule may quote the text it refused (`node_pair` does), and no
/// message may garble the log line or reply it ends up in.
fn printable(msg: String) -> String {
    if !msg.chars().any(char::is_control) {
        return msg;
    }
    let mut out = String::with_capacity(msg.len() + 16);
    for c in msg.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Messages sorted by line; messages of one line keep the order they were found in.
fn in_file_order(mut list: Vec<(usize, String)>) -> Vec<String> {
    crate::sort::stable_by_key(&mut list, |(line, _)| *line);
    list.into_iter().map(|(_, msg)| msg).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn errors_win_and_come_sorted_and_capped() {
        let mut d = Diag::default();
        d.warn(1, "w".into());
        for line in (1..=25).rev() {
            d.error(line, format!("e{line}"));
        }
        let e = d.finish().unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        let lines: Vec<&str> = e.msg.lines().collect();
        assert_eq!(lines.len(), MAX_LISTED + 1);
        assert_eq!(lines[0], "e1");
        assert_eq!(lines[19], "e20");
        assert_eq!(lines[20], "... and 5 more problems");
    }

    #[test]
    fn floods_are_counted_not_kept() {
        let mut d = Diag::default();
        for line in 0..MAX_KEPT + 7 {
            d.warn(line, "w".into());
        }
        let w = d.finish().unwrap();
        assert_eq!(w.len(), MAX_KEPT + 1);
        assert_eq!(w[MAX_KEPT], "... and 7 more warnings");
        let mut d = Diag::default();
        for line in 0..MAX_KEPT + 7 {
            d.error(line, "e".into());
        }
        let e = d.finish().unwrap_err().into_info().msg;
        assert!(e.ends_with(&format!(
            "... and {} more problems",
            MAX_KEPT + 7 - MAX_LISTED
        )));
    }

    #[test]
    fn the_first_step_in_upstream_order_decides_the_object() {
        let mut d = Diag::default();
        d.error_at(Step::TaskValue, 1, "t".into());
        d.error_at(Step::EngineValue, 9, "e".into());
        assert_eq!(d.finish().unwrap_err().object, Some(Object::Engine));
        let mut d = Diag::default();
        d.error_at(Step::TaskValue, 1, "t".into());
        d.error_at(Step::TaskLookup, 2, "n".into());
        assert_eq!(d.finish().unwrap_err().object, None);
        let mut d = Diag::default();
        d.error_at(Step::TaskValue, 1, "t".into());
        assert_eq!(d.finish().unwrap_err().object, Some(Object::Task));
    }

    #[test]
    fn control_characters_are_escaped_in_every_message() {
        // Found by the fuzz target `config`: node_pair's rule quoted the refused text raw.
        let mut d = Diag::default();
        d.warn(1, "w\u{7}".into());
        assert_eq!(d.finish().unwrap(), vec!["w\\u{7}"]);
        let mut d = Diag::default();
        d.error(1, "a\0b\tc\nd".into());
        assert_eq!(d.finish().unwrap_err().msg, "a\\u{0}b\\tc\\nd");
    }

    #[test]
    fn warnings_alone_pass() {
        let mut d = Diag::default();
        d.warn(3, "b".into());
        d.warn(1, "a".into());
        assert_eq!(d.finish().unwrap(), vec!["a", "b"]);
    }
}
