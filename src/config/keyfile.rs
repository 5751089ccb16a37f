//! The INI syntax of etmem config files, as GLib's GKeyFile reads it (spec §4.2), keeping
//! the line of every group and key so that messages can point at them. Differences from
//! GKeyFile, on purpose: a UTF-8 BOM is skipped, trailing blanks of a value are dropped,
//! and repeated groups stay separate (the caller makes one object of each).

use super::diag::Diag;

/// One `key=value` line. `value` is raw: blanks around it removed, escapes not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One `[name]` line and the entries under it, in file order (repeated keys included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// GKeyFile's blanks (`g_ascii_isspace` without the newline, which ends a line).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// Splits `text` into groups, reporting every syntax problem to `diag` (naming `file` and
/// the line) and skipping the offending line, so later lines are still checked.
pub fn read(text: &[u8], file: &str, diag: &mut Diag) -> Vec<Group> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut groups: Vec<Group> = Vec::new();
    for (index, bytes) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let Ok(raw) = std::str::from_utf8(bytes) else {
            diag.error(
                line,
                format!("{file}:{line}: this line is not valid UTF-8 text"),
            );
            continue;
        };
        let content = raw.trim_matches(is_blank);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(rest) = content.strip_prefix('[') {
            match group_name(rest) {
                Some(name) => groups.push(Group {
                    name: name.to_string(),
                    line,
                    entries: Vec::new(),
                }),
                None => diag.error(
                    line,
                    format!(
                        "{file}:{line}: {}: not a valid group line (expected [project], [engine] or [task])",
                        super::value::shown(content)
                    ),
                ),
            }
            continue;
        }
        let Some((key, value)) = content.split_once('=') else {
            diag.error(
                line,
                format!(
                    "{file}:{line}: {}: expected key=value, a [group] line or a # comment",
                    super::value::shown(content)
                ),
            );
            continue;
        };
        let key = key.trim_matches(is_blank);
        if key.is_empty() {
            diag.error(
                line,
                format!(
                    "{file}:{line}: ={}: the key name is missing before '='",
                    super::value::shown(value)
                ),
            );
            continue;
        }
        let Some(group) = groups.last_mut() else {
            diag.error(
                line,
                format!(
                    "{file}:{line}: {}={}: a key before the first [group] line; put it under [project], [engine] or [task]",
                    super::value::shown(key),
                    super::value::shown(value.trim_matches(is_blank))
                ),
            );
            continue;
        };
        group.entries.push(Entry {
            key: key.to_string(),
            value: value.trim_matches(is_blank).to_string(),
            line,
        });
    }
    groups
}

/// The name of a group line given what follows its `[`: up to the first `]`, non-empty,
/// no control characters, only blanks after the `]` (as `g_key_file_is_group_name`).
fn group_name(rest: &str) -> Option<&str> {
    let (name, after) = rest.split_once(']')?;
    let ok = !name.is_empty()
        && !name.contains('[')
        && !name.chars().any(char::is_control)
        && after.chars().all(is_blank);
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(text: &str) -> Vec<Group> {
        let mut d = Diag::default();
        let groups = read(text.as_bytes(), "f", &mut d);
        d.finish().expect("no syntax errors");
        groups
    }

    fn read_err(text: &[u8]) -> String {
        let mut d = Diag::default();
        read(text, "f", &mut d);
        d.finish().expect_err("syntax errors").into_info().msg
    }

    #[test]
    fn groups_keys_comments_and_blanks() {
        let g = read_ok("# c\n\n  # c2\n[a]  \n k = v v  \nx=\n[ b ]\n[a]\ny=1=2\n");
        assert_eq!(g.len(), 3);
        assert_eq!((g[0].name.as_str(), g[0].line), ("a", 4));
        assert_eq!(
            g[0].entries,
            vec![
                Entry {
                    key: "k".into(),
                    value: "v v".into(),
                    line: 5
                },
                Entry {
                    key: "x".into(),
                    value: "".into(),
                    line: 6
                },
            ]
        );
        assert_eq!(g[1].name, " b ");
        assert_eq!(g[2].entries[0].value, "1=2");
    }

    #[test]
    fn crlf_bom_and_no_final_newline() {
        let g = read_ok("\u{feff}[a]\r\nk=v\r\nz=1");
        assert_eq!(g[0].name, "a");
        assert_eq!(g[0].entries[0].value, "v");
        assert_eq!(g[0].entries[1].line, 3);
    }

    #[test]
    fn syntax_errors_name_their_lines() {
        let msg = read_err(b"k=v\n[a]\njunk\n[b\n=v\n[c]x\nok=\xff\n");
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 6, "{msg}");
        assert!(lines[0].starts_with("f:1: k=v: a key before the first [group]"));
        assert!(lines[1].starts_with("f:3: junk: expected key=value"));
        assert!(lines[2].starts_with("f:4: [b: not a valid group line"));
        assert!(lines[3].starts_with("f:5: =v: the key name is missing"));
        assert!(lines[4].starts_with("f:6: [c]x: not a valid group line"));
        assert_eq!(lines[5], "f:7: this line is not valid UTF-8 text");
    }

    #[test]
    fn a_key_before_any_group_is_shown_escaped_and_short() {
        // Found by the fuzz target `config`: this message printed the key raw, control
        // characters and all, however long (the others already went through `shown`).
        let long = "k".repeat(1000);
        let msg = read_err(format!("a\u{1}b=v\n{long}=v\n").as_bytes());
        let lines: Vec<&str> = msg.lines().collect();
        assert!(
            lines[0].starts_with("f:1: a\\u{1}b=v: a key before"),
            "{msg}"
        );
        assert!(lines[1].starts_with(&format!("f:2: {}...=v: a key before", &long[..48])));
        assert!(!msg.chars().any(|c| c.is_control() && c != '\n'));
    }
}
