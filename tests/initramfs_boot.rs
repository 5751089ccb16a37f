//! The embedded path end to end: `packaging/initramfs/boot` packs the static x86-64
//! binary and busybox into an initramfs, boots it with the test guest's kernel under QEMU
//! (no root file system), and its /init starts etmemd, adds a slide project for a workload
//! process and waits until the workload's cold memory is in zram.

mod common;

use std::process::Command;

fn have(program: &str, install: &str) -> bool {
    let found = common::on_path(program);
    if !found {
        common::skip(&format!(
            "{program} is not installed (apt-get install {install})"
        ));
    }
    found
}

#[test]
fn initramfs_swaps_a_workload_to_zram() {
    if !have("qemu-system-x86_64", "qemu-system-x86") || !have("cpio", "cpio") {
        return;
    }
    if !std::path::Path::new("/bin/busybox").exists() {
        common::skip("/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/initramfs/boot");
    let mut console = String::new();
    // 125: the guest did not come up (the emulated kernel now and then panics at boot).
    for _ in 0..2 {
        let out = Command::new(script).output().expect("the boot script runs");
        console = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        match out.status.code() {
            Some(0) => break,
            Some(125) => continue,
            _ => panic!("the initramfs run failed:\n{console}"),
        }
    }
    println!("{console}");
    assert!(
        console.lines().any(|l| l == "etmem-initramfs: ok"),
        "{console}"
    );
    // The workload's line after the run: most of its 64 MiB cold in swap.
    let after = console
        .lines()
        .find(|l| l.contains("etmem-initramfs: workload after"))
        .expect("the after line");
    let swap_kb: u64 = after
        .split("VmSwap ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("VmSwap in kB");
    assert!(swap_kb >= 48 * 1024, "{after}");
    assert!(console.contains("page_idle+process_madvise"), "{console}");
}
