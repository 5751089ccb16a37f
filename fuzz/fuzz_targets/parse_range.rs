//! The range syntax of `etmem-swap` ranges and `etmem-scan --pages` lines, `START-END` in
//! hex with an optional `0x`: `Range::parse` on any text.
//!
//! Properties: never panics; a parsed range has exactly the bounds written (each side of
//! the first `-`, hex digits only after an optional `0x`/`0X`, at most 64 bits); what the
//! scan prints (`{:x}-{:x}`, also with `0x`) parses back to the same range; a reversed
//! range parses as written (the check refuses it later, by name).
#![no_main]

use etmem::types::Range;
use libfuzzer_sys::fuzz_target;

fn addr(s: &str) -> Option<u64> {
    let h = s.strip_prefix("0x").or(s.strip_prefix("0X")).unwrap_or(s);
    if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digits = h.trim_start_matches('0');
    if digits.len() > 16 {
        return None;
    }
    Some(
        digits
            .chars()
            .fold(0u64, |n, c| n << 4 | u64::from(c.to_digit(16).unwrap())),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let want = s
        .split_once('-')
        .and_then(|(a, b)| Some(Range::new(addr(a)?, addr(b)?)));
    let got = Range::parse(s);
    assert_eq!(got, want, "{s:?}");
    if let Some(r) = got {
        for text in [
            format!("{:x}-{:x}", r.start, r.end),
            format!("{:#x}-{:#X}", r.start, r.end),
            format!("0X{:X}-0x{:016x}", r.start, r.end),
        ] {
            assert_eq!(Range::parse(&text), Some(r), "{text}");
        }
    }
});
