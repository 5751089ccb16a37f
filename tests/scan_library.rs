//! `libetmemd_scan.so` from C: a program written against upstream's header
//! (`tests/c/scan_vmas.c`) checks the argument rules of spec §10, then lists the
//! workload's VMAs with the access counts of their pages, checked here against the
//! workload's layout; and the library exports upstream's six functions and nothing else.

mod common;

use std::process::Command;

use common::cc;
use common::daemon::Scratch;
use common::texts;
use common::workload::Workload;
use etmem::types::{page_size, Range};

/// A `vma START-END PERMS pages N min MIN max MAX` line: (range, pages, min, max).
fn vma_line(line: &str) -> Option<(Range, u64, i64, i64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.first() != Some(&"vma") || f.len() != 9 {
        return None;
    }
    let (a, b) = f[1].split_once('-')?;
    let hex = |s| u64::from_str_radix(s, 16).ok();
    let range = Range::new(hex(a)?, hex(b)?);
    Some((
        range,
        f[4].parse().ok()?,
        f[6].parse().ok()?,
        f[8].parse().ok()?,
    ))
}

#[test]
fn c_program_lists_vmas_and_page_access_counts() {
    if !cc::gcc_or_skip() {
        return;
    }
    let dir = Scratch::new("scanlib");
    let exe = dir.path("scan_vmas");
    let link = cc::scan_library_args();
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    cc::compile("tests/c/scan_vmas.c", &exe, &link);
    let w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "8"]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let o = Command::new(&exe)
        .args([&w.pid.to_string(), "2"])
        .output()
        .unwrap();
    let (out, err) = texts(&o);
    assert!(o.status.success(), "scan_vmas failed:\n{out}{err}");
    assert!(out.ends_with("ok\n"), "{out}");
    let vmas: Vec<_> = out.lines().filter_map(vma_line).collect();
    let pages = (8 << 20) / page_size();
    let find = |r: Range| {
        *vmas
            .iter()
            .find(|v| v.0 == r)
            .unwrap_or_else(|| panic!("no VMA {r} listed:\n{out}"))
    };
    // Every page of both regions is resident; the hot one's were accessed in each pass
    // (with the VMA-grained smaps backend all count the same), the cold ones' never.
    let (_, n, min, max) = find(hot);
    assert_eq!(n, pages, "hot region's pages:\n{out}");
    assert!(min > 0 && max <= 2 * 3, "hot counts {min}..{max}:\n{out}");
    let (_, n, min, max) = find(cold);
    assert_eq!((n, min, max), (pages, 0, 0), "cold region's pages:\n{out}");
    for r in [hot, cold] {
        assert!(
            out.contains(&format!("flagged {:x}-{:x}\n", r.start, r.end)),
            "{r} has VmFlags rd and wr:\n{out}"
        );
    }
}

#[test]
fn library_exports_upstreams_functions_only() {
    if !cc::gcc_or_skip() {
        return;
    }
    let lib = cc::scan_library_dir().join("libetmemd_scan.so");
    let o = Command::new("nm")
        .args(["-D", "--defined-only", "--format=just-symbols"])
        .arg(&lib)
        .output()
        .expect("nm (binutils, with gcc) runs");
    let (out, err) = texts(&o);
    assert!(o.status.success(), "nm failed: {err}");
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "etmemd_free_page_refs",
            "etmemd_free_vmas",
            "etmemd_get_page_refs",
            "etmemd_get_vmas",
            "etmemd_scan_exit",
            "etmemd_scan_init"
        ]
    );
}
