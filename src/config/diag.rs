//! The problems found in one file, collected rather than returned at the first one, so an
//! operator sees every mistake of a file in one go and fixes them all at once.

use crate::error::{Error, Result};

/// At most this many problems are listed in one error; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// Errors and warnings, each already worded for the operator, with the line that sorts it.
#[derive(Debug, Default)]
pub struct Diag {
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
}

impl Diag {
    /// A problem that makes the whole file unusable.
    pub fn error(&mut self, line: usize, msg: String) {
        self.errors.push((line, msg));
    }

    /// Something worth telling that does not stop the file from being used.
    pub fn warn(&mut self, line: usize, msg: String) {
        self.warnings.push((line, msg));
    }

    /// The warnings in file order when there is no error; otherwise one `Invalid` error
    /// listing the problems in file order, one per line.
    pub fn finish(self) -> Result<Vec<String>> {
        if self.errors.is_empty() {
            return Ok(in_file_order(self.warnings));
        }
        let errors = in_file_order(self.errors);
        let mut lines: Vec<String> = errors.iter().take(MAX_LISTED).cloned().collect();
        if errors.len() > MAX_LISTED {
            lines.push(format!(
                "... and {} more problems",
                errors.len() - MAX_LISTED
            ));
        }
        Err(Error::invalid(lines.join("\n")))
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
    fn warnings_alone_pass() {
        let mut d = Diag::default();
        d.warn(3, "b".into());
        d.warn(1, "a".into());
        assert_eq!(d.finish().unwrap(), vec!["a", "b"]);
    }
}
