//! `/sys/devices/system/node/nodeN/meminfo`: `node_mem::parse_node_meminfo` on any text,
//! for node 0 (cslide's free and total memory per node come from it).
//!
//! Properties: never panics; each figure is the value of the first `Node 0 KEY:` line
//! that parses as `N kB`, in bytes (whole KiB); it fails exactly when `MemTotal` or
//! `MemFree` has no such line, with a message naming the file.
#![no_main]

use etmem::sys::node_mem::parse_node_meminfo;
use libfuzzer_sys::fuzz_target;

/// The first parsable `Node 0 KEY: N kB` line's value in bytes, by a model of the format.
fn size(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.strip_prefix("Node 0 ")?.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let v = v.trim();
        let n = v.strip_suffix("kB").unwrap_or(v).trim();
        n.parse::<u64>().ok()?.checked_mul(1024)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the file is read with read_to_string: text only
    };
    let (total, free) = (size(text, "MemTotal"), size(text, "MemFree"));
    match parse_node_meminfo(0, text) {
        Ok(m) => {
            assert_eq!((Some(m.total), Some(m.free)), (total, free));
        }
        Err(e) => {
            assert!(total.is_none() || free.is_none(), "{e}");
            assert!(e.msg.starts_with("/sys/devices/system/node/node0/meminfo: "), "{e}");
        }
    }
});
