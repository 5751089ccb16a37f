//! The problems found in one file, collected rather than returned at the first one, so an
//! operator sees every mistake of a file in one go and fixes them all at once.

use crate::error::{Error, Result};

/// At most this many problems are listed in one error; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// At most this many messages of each kind are kept, so a 10 MiB file of junk lines
/// cannot make the daemon hold millions of messages; the rest are only counted.
pub const MAX_KEPT: usize = 1000;

/// Errors and warnings, each already worded for the operator, with the line that sorts it.
#[derive(Debug, Default)]
pub struct Diag {
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
    errors_dropped: usize,
    warnings_dropped: usize,
}

impl Diag {
    /// A problem that makes the whole file unusable.
    pub fn error(&mut self, line: usize, msg: String) {
        keep(&mut self.errors, &mut self.errors_dropped, line, msg);
    }

    /// Something worth telling that does not stop the file from being used.
    pub fn warn(&mut self, line: usize, msg: String) {
        keep(&mut self.warnings, &mut self.warnings_dropped, line, msg);
    }

    /// The warnings in file order when there is no error; otherwise one `Invalid` error
    /// listing the problems in file order, one per line.
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
        Err(Error::invalid(lines.join("\n")))
    }
}

fn keep(list: &mut Vec<(usize, String)>, dropped: &mut usize, line: usize, msg: String) {
    if list.len() < MAX_KEPT {
        list.push((line, msg));
    } else {
        *dropped += 1;
    }
}

/// Messages sorted by line; messages of one line keep the order they were found in.
fn in_file_order(mut list: Vec<(usize, String)>) -> Vec<String> {
    list.sort_by_key(|(line, _)| *line);
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
        let e = d.finish().unwrap_err().msg;
        assert!(e.ends_with(&format!(
            "... and {} more problems",
            MAX_KEPT + 7 - MAX_LISTED
        )));
    }

    #[test]
    fn warnings_alone_pass() {
        let mut d = Diag::default();
        d.warn(3, "b".into());
        d.warn(1, "a".into());
        assert_eq!(d.finish().unwrap(), vec!["a", "b"]);
    }
}
