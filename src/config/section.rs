//! Reading the keys of one group: looks a key up (last value wins, as GKeyFile), converts
//! it with a reader from `value`, and words every problem the same way:
//! `FILE:LINE: [group] key=value: must be ...`. Remembers which keys were read so that the
//! rest can be reported as unknown.

use super::diag::{Diag, Step};
use super::keyfile::{Entry, Group};
use super::value;
use super::Origin;

/// One group being read into one object.
pub struct Section<'a> {
    group: &'a Group,
    file: &'a str,
    diag: &'a mut Diag,
    used: Vec<bool>,
    /// Every key belongs to a plugin: none is unknown.
    keep_all: bool,
}

/// The lookup keys of a group: the ones that name it and its parents (spec §4.3).
fn lookup_keys(group: &str) -> &'static [&'static str] {
    match group {
        "engine" => &["project"],
        "task" => &["project", "engine", "name"],
        _ => &[],
    }
}

impl<'a> Section<'a> {
    pub fn new(group: &'a Group, file: &'a str, diag: &'a mut Diag) -> Section<'a> {
        Section {
            group,
            file,
            diag,
            used: vec![false; group.entries.len()],
            keep_all: false,
        }
    }

    /// Where the group starts.
    pub fn origin(&self) -> Origin {
        Origin {
            file: self.file.to_string(),
            line: self.group.line,
        }
    }

    /// The last entry of `key` without marking it read (for cross-key checks).
    pub fn peek(&self, key: &str) -> Option<&'a Entry> {
        self.group.entries.iter().rev().find(|e| e.key == key)
    }

    /// How many times `key` appears in the group.
    pub fn count(&self, key: &str) -> usize {
        self.group.entries.iter().filter(|e| e.key == key).count()
    }

    /// Every entry of `key`, in file order, marked read; no warning for repeats.
    pub fn all(&mut self, key: &str) -> Vec<&'a Entry> {
        let group = self.group;
        group
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.key == key)
            .map(|(i, e)| {
                self.used[i] = true;
                e
            })
            .collect()
    }

    /// The entry of `key` that counts (the last one), marked read; a repeated key gets a
    /// warning because the earlier values are silently overridden.
    pub fn entry(&mut self, key: &str) -> Option<&'a Entry> {
        let entries = self.all(key);
        let last = *entries.last()?;
        if entries.len() > 1 {
            let lines: Vec<String> = entries.iter().map(|e| e.line.to_string()).collect();
            let msg = format!(
                "{}: {key} is given {} times (lines {}); the last one is used",
                self.at(last),
                entries.len(),
                lines.join(", ")
            );
            self.diag.warn(last.line, msg);
        }
        Some(last)
    }

    /// Marks `keys` read without reading them: used when an earlier error leaves their
    /// meaning unknown, so they are not also reported as unknown.
    pub fn skip(&mut self, keys: &[&str]) {
        for key in keys {
            self.all(key);
        }
    }

    /// Every key of the group belongs to a plugin: keep them all, report none as unknown.
    /// Returns each key once, in order of first appearance, with its last value (raw).
    pub fn keep_all(&mut self) -> Vec<(String, String)> {
        self.keep_all = true;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for e in &self.group.entries {
            match pairs.iter_mut().find(|(k, _)| *k == e.key) {
                Some(pair) => pair.1 = e.value.clone(),
                None => pairs.push((e.key.clone(), e.value.clone())),
            }
        }
        pairs
    }

    /// `FILE:LINE: [group] key=value`, the head of every message about an entry. The key
    /// and value are shown as [`value::shown`] does (control characters escaped, cut after
    /// a few dozen characters), so no file can put a huge or raw line into the log.
    pub fn at(&self, e: &Entry) -> String {
        format!(
            "{}:{}: [{}] {}={}",
            self.file,
            e.line,
            self.group.name,
            value::shown(&e.key),
            value::shown(&e.value)
        )
    }

    /// Where in upstream's reading order a problem with `key` is found (it picks the
    /// reply code): a group's lookup keys come before its values; an `[engine]` without
    /// its type (`name`) cannot even be looked up.
    fn step(&self, key: &str, missing: bool) -> Step {
        let lookup = lookup_keys(&self.group.name).contains(&key)
            || (missing && self.group.name == "engine" && key == "name");
        match (self.group.name.as_str(), lookup) {
            ("engine", true) => Step::EngineLookup,
            ("engine", false) => Step::EngineValue,
            ("task", true) => Step::TaskLookup,
            ("task", false) => Step::TaskValue,
            _ => Step::File,
        }
    }

    /// Reports `entry` as wrong; `what` says what is allowed (`must be ...`) or why not.
    pub fn error(&mut self, e: &Entry, what: &str) {
        let msg = format!("{}: {what}", self.at(e));
        let step = self.step(&e.key, false);
        self.diag.error_at(step, e.line, msg);
    }

    /// Reports a required key as absent; `what` is a noun phrase of what it must be.
    pub fn missing(&mut self, key: &str, what: &str) {
        let line = self.group.line;
        let msg = format!(
            "{}:{line}: [{}] {key} is missing (required: {what})",
            self.file, self.group.name
        );
        let step = self.step(key, true);
        self.diag.error_at(step, line, msg);
    }

    /// A warning about `entry`.
    pub fn warn(&mut self, e: &Entry, what: &str) {
        let msg = format!("{}: {what}", self.at(e));
        self.diag.warn(e.line, msg);
    }

    /// Converts one entry: `unescape` applies GKeyFile string escapes first (string keys;
    /// integer keys are read raw as `get_int64` does). Errors are reported; `None` then.
    pub fn convert<T>(
        &mut self,
        e: &Entry,
        unescape: bool,
        conv: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = if unescape {
            match value::unescape(&e.value) {
                Ok(t) => t,
                Err(rule) => {
                    self.error(e, &format!("must be {rule}"));
                    return None;
                }
            }
        } else {
            e.value.clone()
        };
        match conv(&text) {
            Ok(v) => Some(v),
            Err(rule) => {
                self.error(e, &format!("must be {rule}"));
                None
            }
        }
    }

    /// Reads `key`: `None` when absent (reported as missing when `required`, with
    /// `what` as the requirement) or invalid (reported).
    pub fn get<T>(
        &mut self,
        key: &str,
        required: Option<&str>,
        unescape: bool,
        conv: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.entry(key) {
            Some(e) => self.convert(e, unescape, conv),
            None => {
                if let Some(what) = required {
                    self.missing(key, what);
                }
                None
            }
        }
    }

    /// A required object name.
    pub fn name(&mut self, key: &str) -> Option<String> {
        self.get(key, Some(value::NAME_RULE), true, value::name)
    }

    /// An integer in `min..=max`, converted to the field's type (the range fits it).
    pub fn int<T: TryFrom<i64>>(
        &mut self,
        key: &str,
        required: bool,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let rule = value::int_rule(min, max);
        let required = required.then_some(rule.as_str());
        self.get(key, required, false, |raw| {
            value::int(raw, min, max).and_then(|v| T::try_from(v).map_err(|_| rule.clone()))
        })
    }

    /// An optional `yes`/`no`, `default` when absent (or invalid, which is reported).
    pub fn yes_no(&mut self, key: &str, default: bool) -> bool {
        self.get(key, None, true, value::yes_no).unwrap_or(default)
    }

    /// One word of `words`; `default` when absent, reported as missing when `default` is
    /// `None`.
    pub fn choice(
        &mut self,
        key: &str,
        words: &[&'static str],
        default: Option<&'static str>,
    ) -> Option<&'static str> {
        if self.peek(key).is_none() {
            if default.is_none() {
                self.missing(key, &value::choice_rule(words));
            }
            return default;
        }
        self.get(key, None, true, |raw| value::choice(raw, words))
    }

    /// Warns about every key that was not read (unless the group belongs to a plugin).
    pub fn finish(self) {
        if self.keep_all {
            return;
        }
        for (e, used) in self.group.entries.iter().zip(&self.used) {
            if !used {
                let msg = format!(
                    "{}: unknown key in [{}], ignored",
                    self.at(e),
                    self.group.name
                );
                self.diag.warn(e.line, msg);
            }
        }
    }
}
