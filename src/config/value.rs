//! Typed readers for single config values: integers with ranges, yes/no, choices, object
//! names, GKeyFile string escapes. Each reader returns the value or a noun phrase saying
//! what is allowed, so that every key's error message reads the same way.

/// What an object name (project, engine, task, thirdparty `eng_name`) may be. The limits
/// come from upstream (64 bytes, any UTF-8 text works there) and from the wire format,
/// which cannot carry a word that holds whitespace or starts with `-`; control characters
/// are refused so that names cannot garble `project show` or a log line.
pub const NAME_RULE: &str =
    "1 to 64 bytes of UTF-8 text without white space or control characters, not starting with '-'";

/// The longest object name upstream accepts, in bytes.
pub const NAME_MAX: usize = 64;

/// An integer as GKeyFile's `get_int64` reads it (optional sign, decimal digits only,
/// nothing else, must fit i64), then checked against `min..=max` in full width, so that
/// `4294967297` is out of range rather than wrapping to 1 as upstream's `int` cast did.
pub fn int(raw: &str, min: i64, max: i64) -> Result<i64, String> {
    // `i64::from_str` accepts exactly: an optional `+`/`-` and ASCII digits.
    match raw.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(int_rule(min, max)),
    }
}

/// The noun phrase for an integer range; the i64 limits mean "no bound".
pub fn int_rule(min: i64, max: i64) -> String {
    if (min, max) == (i64::MIN, i64::MAX) {
        "an integer".to_string()
    } else if max == i64::MAX {
        format!("an integer of {min} or more")
    } else {
        format!("an integer from {min} to {max}")
    }
}

/// `yes` or `no`, case-sensitive as upstream.
pub fn yes_no(raw: &str) -> Result<bool, String> {
    match raw {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("yes or no".to_string()),
    }
}

/// One of a fixed set of words; returns the matching static word.
pub fn choice(raw: &str, words: &[&'static str]) -> Result<&'static str, String> {
    words
        .iter()
        .find(|w| **w == raw)
        .copied()
        .ok_or_else(|| choice_rule(words))
}

/// The noun phrase for a set of words: `one of a, b, c`.
pub fn choice_rule(words: &[&str]) -> String {
    format!("one of {}", words.join(", "))
}

/// An object name: see [`NAME_RULE`].
pub fn name(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= NAME_MAX
        && !raw.starts_with('-')
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(raw.to_string())
    } else {
        Err(NAME_RULE.to_string())
    }
}

/// GKeyFile string escapes: `\s` space, `\n`, `\t`, `\r`, `\\`. Any other escape, or a
/// lone `\` at the end, is an error as in GKeyFile.
pub fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                return Err(format!(
                    "a string whose escapes are \\s \\n \\t \\r \\\\ only (\\{other} is not one)"
                ))
            }
            None => return Err("a string that does not end in a lone '\\'".to_string()),
        }
    }
    Ok(out)
}

/// A value as shown inside a message: control characters escaped, long values cut, so a
/// hostile file cannot flood or garble the operator's terminal.
pub fn shown(raw: &str) -> String {
    const MAX: usize = 48;
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_decimal_and_full_width() {
        assert_eq!(int("12", 1, 120), Ok(12));
        assert_eq!(int("+12", 1, 120), Ok(12));
        assert_eq!(int("-1", -5, 5), Ok(-1));
        for bad in [
            "", "+", "-", "0x10", "1e3", "12 ", " 12", "12a", "1_000", "٣",
        ] {
            assert!(int(bad, i64::MIN, i64::MAX).is_err(), "{bad:?}");
        }
        assert!(int("4294967297", 1, 120).is_err());
        assert!(int("9223372036854775808", 0, i64::MAX).is_err());
        assert_eq!(int("9223372036854775807", 0, i64::MAX), Ok(i64::MAX));
        assert_eq!(
            int("0", 1, 120),
            Err("an integer from 1 to 120".to_string())
        );
        assert_eq!(int_rule(3, i64::MAX), "an integer of 3 or more");
        assert_eq!(int_rule(i64::MIN, i64::MAX), "an integer");
    }

    #[test]
    fn yes_no_and_choices() {
        assert_eq!(yes_no("yes"), Ok(true));
        assert_eq!(yes_no("no"), Ok(false));
        assert!(yes_no("Yes").is_err());
        assert_eq!(choice("b", &["a", "b"]), Ok("b"));
        assert_eq!(choice("c", &["a", "b"]), Err("one of a, b".to_string()));
    }

    #[test]
    fn names_follow_the_wire_rules() {
        assert!(name("test").is_ok());
        assert!(name(&"x".repeat(64)).is_ok());
        for good in ["é", "проект", "项目", "a.b_c-9~"] {
            assert_eq!(name(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "-x",
            "-проект",
            "a b",
            "a\tb",
            "a\u{7f}",
            "a\u{a0}b",
            "a\u{3000}b",
            "a\u{85}",
        ] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
        assert!(name(&"x".repeat(65)).is_err());
        // The limit is in bytes: 32 two-byte letters fit, 33 (or 32 and one more) do not.
        assert!(name(&"я".repeat(32)).is_ok());
        assert!(name(&"я".repeat(33)).is_err());
        assert!(name(&format!("{}x", "я".repeat(32))).is_err());
    }

    #[test]
    fn escapes_as_gkeyfile() {
        assert_eq!(unescape(r"a\sb\n\t\r\\").as_deref(), Ok("a b\n\t\r\\"));
        assert!(unescape(r"a\q").unwrap_err().contains(r"\q"));
        assert!(unescape("a\\").is_err());
    }

    #[test]
    fn shown_values_are_tame() {
        assert_eq!(shown("a\u{1b}b"), "a\\u{1b}b");
        assert_eq!(shown(&"x".repeat(60)), format!("{}...", "x".repeat(48)));
    }
}
