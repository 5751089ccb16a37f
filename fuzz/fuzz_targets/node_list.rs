//! A sysfs cpu/node list (`/sys/devices/system/node/online`, e.g. `0-3,5`):
//! `numa::parse_list` on any text. (There is no `numa_maps` parser in the crate.)
//!
//! Properties: never panics; holds at most 4097 nodes per comma-separated part (so a
//! short text cannot ask for 2^32 of them); the list is the parts' numbers and ranges
//! in order; printed back part by part it parses to the same list.
#![no_main]

use etmem::sys::numa::parse_list;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(v) = parse_list(text) else {
        return;
    };
    let parts: Vec<&str> = text.split(',').filter(|p| !p.is_empty()).collect();
    assert!(v.len() <= parts.len() * 4097);
    let mut want = Vec::new();
    let mut printed = Vec::new();
    for p in &parts {
        let (a, b) = match p.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()),
            None => {
                let n = p.parse::<u32>().unwrap();
                (n, n)
            }
        };
        assert!(a <= b && b - a <= 4096, "{p:?}");
        want.extend(a..=b);
        printed.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    }
    assert_eq!(v, want);
    assert_eq!(parse_list(&printed.join(",")), Some(v));
});
