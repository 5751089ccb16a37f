//! Directory globbing as glibc's `glob()` does it for the psi engine's `cg_dir` (spec
//! §8.4.3: directories only, brace expansion, no recursion): `{a,b}` expands first, then
//! each path component matches on its own with `*`, `?` and `[...]` (`[!...]` or
//! `[^...]` negate, `a-z` ranges, `\` quotes the next character). A wildcard never
//! crosses `/`, `**` is two stars, and a name starting with `.` is matched only by a
//! pattern component that starts with a literal `.`.

use std::io;
use std::path::Path;

/// Most patterns one brace expansion may give: a 63-byte `cg_dir` stays far below it.
const MAX_EXPANSIONS: usize = 4096;

/// Why `pattern` is not a usable pattern, if it is not: an unclosed `[` or `{`, a stray
/// `}`, a trailing `\`, a NUL, a `..` component, or too many brace expansions.
pub fn check(pattern: &str) -> Result<(), String> {
    if pattern.contains('\0') {
        return Err("a NUL byte".into());
    }
    let mut depth = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return Err("a trailing '\\'".into()),
            '{' => depth += 1,
            '}' if depth == 0 => return Err("a '}' without its '{'".into()),
            '}' => depth -= 1,
            _ => {}
        }
    }
    if depth > 0 {
        return Err("a '{' without its '}'".into());
    }
    let patterns = expand_braces(pattern).ok_or("too many {a,b} expansions")?;
    for p in &patterns {
        for comp in p.split('/') {
            if comp == ".." {
                return Err("a '..' component".into());
            }
            if bracket_unclosed(comp) {
                return Err(format!("an unclosed '[' in {comp:?}"));
            }
        }
    }
    Ok(())
}

/// True when a `[` of `comp` has no closing `]`.
fn bracket_unclosed(comp: &str) -> bool {
    let chars: Vec<char> = comp.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '[' => match class_end(&chars, i) {
                Some(end) => i = end + 1,
                None => return true,
            },
            _ => i += 1,
        }
    }
    false
}

/// Every pattern `{a,b}` stands for, outermost first, in order; nested braces work. A
/// `\` quotes the next character. `None` beyond `MAX_EXPANSIONS` or on a `{` without
/// its `}`.
pub fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    expand_into(&chars, &mut out)?;
    Some(out)
}

fn expand_into(chars: &[char], out: &mut Vec<String>) -> Option<()> {
    // The first top-level '{' and its matching '}'.
    let mut i = 0;
    let mut open = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                open = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let Some(open) = open else {
        out.push(chars.iter().collect());
        return (out.len() <= MAX_EXPANSIONS).then_some(());
    };
    let (mut depth, mut j, mut commas) = (0usize, open, vec![open]);
    let close = loop {
        match chars.get(j)? {
            '\\' => j += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break j;
                }
            }
            ',' if depth == 1 => commas.push(j),
            _ => {}
        }
        j += 1;
    };
    commas.push(close);
    for w in commas.windows(2) {
        let mut next: Vec<char> = chars[..open].to_vec();
        next.extend_from_slice(&chars[w[0] + 1..w[1]]);
        next.extend_from_slice(&chars[close + 1..]);
        expand_into(&next, out)?;
    }
    Some(())
}

/// Where the `[...]` class starting at `chars[open]` ends (the index of its `]`); a `]`
/// right after `[`, `[!` or `[^` is a member, as in glibc.
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(chars.get(i), Some('!' | '^')) {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            ']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// True when the component pattern `pat` has a wildcard (`*`, `?`, `[`) not quoted.
pub fn has_wildcard(pat: &str) -> bool {
    let mut chars = pat.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// `pat` with its `\` quotes removed (a component without wildcards, as a name).
fn unquote(pat: &str) -> String {
    let mut out = String::new();
    let mut chars = pat.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// True when one path component `name` matches the component pattern `pat`. A leading
/// `.` of `name` must be matched by a literal `.`.
pub fn component_matches(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    matches_from(&p, &n)
}

/// Matching with one backtrack point, the last `*` (linear in practice, never
/// exponential: a hostile pattern of many stars cannot stall the daemon).
fn matches_from(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if let Some(step) = single(p, pi, n[ni]) {
            pi += step;
            ni += 1;
        } else if p.get(pi) == Some(&'*') {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// How many pattern characters at `p[pi]` match the one name character `c`: `?`, a
/// class, a quoted or plain character; `None` for no match or a `*`.
fn single(p: &[char], pi: usize, c: char) -> Option<usize> {
    match *p.get(pi)? {
        '*' => None,
        '?' => Some(1),
        '[' => match class_end(p, pi) {
            Some(end) => in_class(&p[pi + 1..end], c).then_some(end + 1 - pi),
            // An unclosed '[' is a literal, as in fnmatch.
            None => (c == '[').then_some(1),
        },
        '\\' if pi + 1 < p.len() => (p[pi + 1] == c).then_some(2),
        lit => (lit == c).then_some(1),
    }
}

/// `c` is in the class body (between `[` and `]`).
fn in_class(body: &[char], c: char) -> bool {
    let (negate, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        let mut lo = body[i];
        if lo == '\\' && i + 1 < body.len() {
            i += 1;
            lo = body[i];
        }
        if body.get(i + 1) == Some(&'-') && i + 2 < body.len() {
            let hi = body[i + 2];
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
    found != negate
}

/// The directories under `root` that `pattern` (already [`check`]ed) matches, as paths
/// relative to `root` (no leading `/`), sorted and each once. A directory that cannot be
/// listed is an error naming it, as glibc's `GLOB_ERR`.
pub fn dirs(root: &Path, pattern: &str) -> io::Result<Vec<String>> {
    let patterns = expand_braces(pattern)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad brace pattern"))?;
    let mut found = Vec::new();
    for p in patterns {
        let mut level: Vec<String> = vec![String::new()];
        for comp in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let mut next = Vec::new();
            for rel in &level {
                let dir = root.join(rel);
                let join = |name: &str| {
                    if rel.is_empty() {
                        name.to_string()
                    } else {
                        format!("{rel}/{name}")
                    }
                };
                if !has_wildcard(comp) {
                    let name = unquote(comp);
                    if dir.join(&name).symlink_metadata().is_ok_and(|m| m.is_dir()) {
                        next.push(join(&name));
                    }
                    continue;
                }
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot list {}: {e}", dir.display()))
                })?;
                for entry in entries.flatten() {
                    let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if is_dir && component_matches(comp, name) {
                        next.push(join(name));
                    }
                }
            }
            level = next;
        }
        found.extend(level.into_iter().filter(|r| !r.is_empty()));
    }
    crate::sort::unstable(&mut found);
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_match_as_fnmatch() {
        for (pat, name) in [
            ("*", "docker"),
            ("d*r", "docker"),
            ("d?cker", "docker"),
            ("[a-d]ocker", "docker"),
            ("[!x]ocker", "docker"),
            ("[^x]ocker", "docker"),
            ("[]]x", "]x"),
            ("a\\*", "a*"),
            (".*", ".hidden"),
            ("**", "abc"),
            ("*a*b", "xxaxxaxb"),
            ("a*", "a"),
            ("[", "["),
            ("", ""),
        ] {
            assert!(component_matches(pat, name), "{pat} {name}");
        }
        for (pat, name) in [
            ("*", ".hidden"),
            ("?x", ".x"),
            ("[.]x", ".x"),
            ("d?", "docker"),
            ("[!d]ocker", "docker"),
            ("a\\*", "ab"),
            ("x", ""),
            ("*a", "b"),
        ] {
            assert!(!component_matches(pat, name), "{pat} {name}");
        }
    }

    #[test]
    fn many_stars_do_not_stall() {
        assert!(!component_matches(&"*a".repeat(30), &"a".repeat(29)));
        assert!(component_matches(&"*a".repeat(30), &"a".repeat(200)));
    }

    #[test]
    fn braces_expand_in_order_and_nest() {
        assert_eq!(
            expand_braces("a/{b,c{d,e}}/f").unwrap(),
            vec!["a/b/f", "a/cd/f", "a/ce/f"]
        );
        assert_eq!(expand_braces("x{}y").unwrap(), vec!["xy"]);
        assert_eq!(expand_braces("\\{a,b}").unwrap(), vec!["\\{a,b}"]);
        assert_eq!(expand_braces("{a,b"), None);
        // A stray '}' is a literal here; check() refuses it.
        assert_eq!(expand_braces("a}").unwrap(), vec!["a}"]);
        assert_eq!(expand_braces(&"{a,b,c,d}".repeat(7)), None);
    }

    #[test]
    fn bad_patterns_are_named() {
        assert!(check("isulad/*").is_ok());
        assert!(check("{a,b}/c[0-9]").is_ok());
        for (bad, why) in [
            ("a/../b", "'..'"),
            ("{..,a}", "'..'"),
            ("a[b", "unclosed '['"),
            ("a{b", "'{' without"),
            ("a}b", "'}' without"),
            ("a\\", "trailing"),
            ("a\0", "NUL"),
        ] {
            assert!(check(bad).unwrap_err().contains(why), "{bad:?}");
        }
    }

    #[test]
    fn directories_are_found_under_the_root() {
        let root = std::env::temp_dir().join(format!("etmem-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["isulad/c1", "isulad/c2/x", "isulad/.hid", "other/c3"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("isulad/file"), "").unwrap();
        let got = |p: &str| dirs(&root, p).unwrap();
        assert_eq!(got("isulad/*"), vec!["isulad/c1", "isulad/c2"]);
        assert_eq!(got("isulad"), vec!["isulad"]);
        assert_eq!(got("/isulad/"), vec!["isulad"]);
        assert_eq!(got("*/c?"), vec!["isulad/c1", "isulad/c2", "other/c3"]);
        assert_eq!(got("{other,isulad}/c[13]"), vec!["isulad/c1", "other/c3"]);
        assert_eq!(got("isulad/.*"), vec!["isulad/.hid"]);
        assert_eq!(got("*/*/*"), vec!["isulad/c2/x"]);
        assert!(got("nothing/*").is_empty());
        assert!(got("isulad/file").is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
