//! `/proc/PID/status` field reading: `process::field` (the lookup behind `status_field`,
//! `tgid`, `status_bytes`) and `process::parse_kb` on any text.
//!
//! The input is `key \n status text`. Properties: never panics; the lookup returns the
//! trimmed rest of the first line whose text before its first colon is exactly the key,
//! and nothing when no line is; `parse_kb` reads `N kB`, `N` (and blanks around) as N KiB
//! in bytes, never overflows, and reads back what it prints.
#![no_main]

use etmem::sys::process::{field, parse_kb};
use libfuzzer_sys::fuzz_target;

fn check_kb(v: &str) {
    let Some(n) = parse_kb(v) else {
        return;
    };
    assert_eq!(n % 1024, 0);
    let k = n / 1024;
    let digits = v.strip_suffix("kB").unwrap_or(v).trim();
    assert_eq!(
        digits.trim_start_matches('+').trim_start_matches('0').len(),
        {
            let s = k.to_string();
            if k == 0 {
                0
            } else {
                s.len()
            }
        },
        "{v:?}"
    );
    assert_eq!(parse_kb(&format!("{k} kB")), Some(n));
    assert_eq!(parse_kb(&k.to_string()), Some(n));
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return; // status is read with read_to_string: text only
    };
    let (key, text) = input.split_once('\n').unwrap_or((input, ""));
    let want = text.lines().find_map(|l| {
        let colon = l.find(':')?;
        (&l[..colon] == key).then(|| l[colon + 1..].trim())
    });
    let got = field(text, key);
    assert_eq!(got, want, "{key:?}");
    if let Some(v) = got {
        // A slice of the text, not a copy.
        let r = text.as_bytes().as_ptr_range();
        assert!(r.contains(&v.as_ptr()) || v.is_empty());
        check_kb(v);
    }
    check_kb(key);
    for l in text.lines().take(64) {
        check_kb(l);
        if let Some((_, v)) = l.split_once(':') {
            check_kb(v.trim());
        }
    }
});
