//! `/proc/meminfo`: `meminfo::parse` on any text.
//!
//! Properties: never panics; it fails exactly when `MemTotal` or `MemFree` is missing or
//! not a size; otherwise each figure is its first line's value in bytes (whole KiB), with
//! `MemAvailable` falling back to `MemFree` and `SwapCached` to 0.
#![no_main]

use etmem::sys::meminfo::parse;
use libfuzzer_sys::fuzz_target;

/// The first `KEY: N kB` line's value in bytes, by a model of the kernel's format.
fn size(text: &str, key: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.split_once(':').is_some_and(|(k, _)| k == key))?;
    let v = line.split_once(':').unwrap().1.trim();
    let n = v.strip_suffix("kB").unwrap_or(v).trim();
    n.parse::<u64>().ok()?.checked_mul(1024)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // meminfo is read with read_to_string: text only
    };
    let (total, free) = (size(text, "MemTotal"), size(text, "MemFree"));
    match parse(text) {
        Ok(m) => {
            assert_eq!(Some(m.total), total);
            assert_eq!(Some(m.free), free);
            assert_eq!(m.available, size(text, "MemAvailable").unwrap_or(m.free));
            assert_eq!(m.swap_cached, size(text, "SwapCached").unwrap_or(0));
            for n in [m.total, m.free, m.available, m.swap_cached] {
                assert_eq!(n % 1024, 0);
            }
        }
        Err(e) => {
            assert!(total.is_none() || free.is_none(), "{e}");
            assert!(e.msg.starts_with("/proc/meminfo: no Mem"), "{e}");
        }
    }
});
