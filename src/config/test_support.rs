//! Helpers for the config tests: parse a text as a file named [`F`], set or drop a key of a
//! one-group text, and check an integer key's edges and bad values with their messages.

use super::{parse, ConfigFile};

/// The file name the tests parse under.
pub const F: &str = "/etc/etmem/a.conf";

/// Parses `text`, which must be accepted.
pub fn ok(text: &str) -> ConfigFile {
    match parse(text, F) {
        Ok(c) => c,
        Err(e) => panic!("rejected:\n{text}\n---\n{e}"),
    }
}

/// Parses `text`, which must be rejected; returns the message.
pub fn err(text: &str) -> String {
    match parse(text, F) {
        Ok(c) => panic!("accepted:\n{text}\n---\n{c:?}"),
        Err(e) => {
            assert_eq!(e.kind, crate::error::Kind::Invalid);
            e.into_info().msg
        }
    }
}

/// Asserts that `text` is rejected with a message containing `want`.
pub fn err_has(text: &str, want: &str) {
    let msg = err(text);
    assert!(
        msg.contains(want),
        "message\n{msg}\ndoes not contain\n{want}"
    );
}

/// `base` without any `key=` line.
pub fn unset(base: &str, key: &str) -> String {
    base.lines()
        .filter(|l| l.split_once('=').map(|(k, _)| k.trim()) != Some(key))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `base` with `key=value` as its last line (replacing earlier ones); and that line.
pub fn set(base: &str, key: &str, value: &str) -> (String, usize) {
    let mut text = unset(base, key);
    text.push_str(&format!("{key}={value}\n"));
    let line = text.lines().count();
    (text, line)
}

/// `key=value` in `base` is accepted and `get` reads `want` back.
pub fn accepts<T: PartialEq + std::fmt::Debug>(
    base: &str,
    key: &str,
    value: &str,
    want: T,
    get: impl Fn(&ConfigFile) -> T,
) {
    let (text, _) = set(base, key, value);
    assert_eq!(get(&ok(&text)), want, "{key}={value}");
}

/// `key=value` in `base` is rejected with `FILE:LINE: [group] key=value: must be RULE`.
pub fn rejects(base: &str, group: &str, key: &str, value: &str, rule: &str) {
    let (text, line) = set(base, key, value);
    let shown = super::value::shown(value);
    err_has(
        &text,
        &format!("{F}:{line}: [{group}] {key}={shown}: must be {rule}"),
    );
}

/// An integer key: `min` and `max` accepted (read back by `get`), one beyond each edge
/// and every kind of malformed integer rejected with the range in the message.
pub fn int_edges(
    base: &str,
    group: &str,
    key: &str,
    (min, max): (i64, i64),
    get: impl Fn(&ConfigFile) -> i64,
) {
    let rule = super::value::int_rule(min, max);
    for v in [min, max] {
        accepts(base, key, &v.to_string(), v, &get);
    }
    if let Some(below) = min.checked_sub(1) {
        rejects(base, group, key, &below.to_string(), &rule);
    }
    if let Some(above) = max.checked_add(1) {
        rejects(base, group, key, &above.to_string(), &rule);
    }
    for bad in [
        "abc",
        "0x10",
        "",
        "5x",
        "1.5",
        "99999999999999999999",
        "-99999999999999999999",
    ] {
        rejects(base, group, key, bad, &rule);
    }
}
