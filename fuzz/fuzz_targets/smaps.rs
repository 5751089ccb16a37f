//! `/proc/PID/smaps` (spec §9.3): `smaps::parse_smaps` on any text.
//!
//! Properties: never panics; an accepted text has one VMA per maps line, each equal to what
//! `maps::parse_line` makes of that line, with `Rss`, `Referenced` and `AnonHugePages` the
//! last value of that field in its block (in bytes, so whole KiB) and `VmFlags` the
//! trimmed text of the last such field; a sizes field it cannot read is an error.
#![no_main]

use etmem::sys::maps::parse_line;
use etmem::sys::process::parse_kb;
use etmem::sys::smaps::{parse_smaps, SmapsVma};
use libfuzzer_sys::fuzz_target;

/// The smaps text by a simple model: (header line, fields in order).
fn blocks(text: &str) -> Vec<(&str, Vec<(&str, &str)>)> {
    let mut out: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let t = line.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let key = t.split(|c: char| c.is_ascii_whitespace()).next().unwrap();
        match key.strip_suffix(':') {
            Some(name) => match out.last_mut() {
                Some(b) => b.1.push((name, t[key.len()..].trim())),
                None => return out,
            },
            None => out.push((line, Vec::new())),
        }
    }
    out
}

fn check(v: &SmapsVma, header: &str, fields: &[(&str, &str)]) {
    assert_eq!(Some(&v.vma), parse_line(header).as_ref());
    let last = |k: &str| fields.iter().rev().find(|(n, _)| *n == k).map(|f| f.1);
    let kb = |k: &str| last(k).map_or(0, |s| parse_kb(s).unwrap());
    assert_eq!(v.rss, kb("Rss"));
    assert_eq!(v.referenced, kb("Referenced"));
    assert_eq!(v.anon_huge, kb("AnonHugePages"));
    assert_eq!(v.vmflags, last("VmFlags").unwrap_or(""));
    for n in [v.rss, v.referenced, v.anon_huge] {
        assert_eq!(n % 1024, 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // read_smaps reads the file with read_to_string: text only
    };
    let model = blocks(text);
    match parse_smaps(text) {
        Ok(vmas) => {
            assert_eq!(vmas.len(), model.len());
            for (v, (header, fields)) in vmas.iter().zip(&model) {
                check(v, header, fields);
            }
        }
        Err(e) => {
            assert!(
                e.msg.starts_with("unparsable smaps line")
                    || e.msg.starts_with("smaps field before any VMA"),
                "{e}"
            );
            // The model agrees that something is wrong.
            let field_first = text
                .lines()
                .find(|l| !l.is_empty())
                .is_some_and(|l| blocks(l).is_empty());
            let bad = model.iter().any(|(h, f)| {
                parse_line(h).is_none()
                    || f.iter().any(|(n, s)| {
                        matches!(*n, "Rss" | "Referenced" | "AnonHugePages")
                            && parse_kb(s).is_none()
                    })
            });
            assert!(field_first || bad, "refused a good text: {e}");
        }
    }
});
