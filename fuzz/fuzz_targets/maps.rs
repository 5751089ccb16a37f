//! `/proc/PID/maps` (spec §9.3): `maps::parse_maps` on any text and `maps::parse_line` on
//! each of its lines.
//!
//! Properties: never panics; `parse_maps` succeeds exactly when every non-empty line
//! parses, with one VMA per such line, in order; a parsed VMA has `start <= end`, the
//! bounds written in its first field, and prints back (as the kernel would) to a line that
//! parses to the same VMA.
#![no_main]

use etmem::sys::maps::{parse_line, parse_maps};
use etmem::types::Vma;
use libfuzzer_sys::fuzz_target;

/// The line as the kernel's `show_map_vma` prints it.
fn kernel_line(v: &Vma) -> String {
    let line = format!(
        "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {}",
        v.range.start,
        v.range.end,
        v.perms(),
        v.offset,
        v.major,
        v.minor,
        v.inode
    );
    if v.path.is_empty() {
        line
    } else {
        format!("{line:<72} {}", v.path)
    }
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap()
}

pub fn check_line(line: &str, v: &Vma) {
    assert!(v.range.start <= v.range.end, "{line:?}: {v:?}");
    let first = line.trim_start_matches(' ').split(' ').next().unwrap();
    let (a, b) = first.split_once('-').unwrap();
    assert_eq!((hex(a), hex(b)), (v.range.start, v.range.end), "{line:?}");
    assert!(!v.path.starts_with(' '));
    let again = kernel_line(v);
    assert_eq!(
        parse_line(&again).as_ref(),
        Some(v),
        "{line:?} -> {again:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // read_maps reads the file with read_to_string: text only
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let each: Vec<Option<Vma>> = lines.iter().map(|l| parse_line(l)).collect();
    for (l, v) in lines.iter().zip(&each) {
        if let Some(v) = v {
            check_line(l, v);
        }
    }
    match parse_maps(text) {
        Ok(all) => {
            let each: Vec<Vma> = each.into_iter().map(Option::unwrap).collect();
            assert_eq!(all, each);
        }
        Err(e) => {
            assert!(each.iter().any(Option::is_none));
            assert!(e.msg.starts_with("unparsable maps line"), "{e}");
        }
    }
});
