//! Tests that need the guest kernel (`../shared/vm/run`): a test that is not inside the
//! guest re-runs itself there (same binary, same test name, `ETMEM_IN_GUEST=1`) and
//! passes when the guest run passes. Reusable: call [`in_guest_or_rerun`] first thing.

use std::path::PathBuf;
use std::process::Command;

/// `vm/run`'s exit status when the guest, not the command, failed.
const GUEST_FAILED: i32 = 125;

/// True inside the guest.
pub fn in_guest() -> bool {
    std::env::var("ETMEM_IN_GUEST").as_deref() == Ok("1")
}

/// The guest runner script.
pub fn runner() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vm/run")
}

/// How to boot the guest a test re-runs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestOpts<'a> {
    /// Memory of node 0 (with the CPUs), MiB.
    pub mem_mib: u32,
    /// Memory of a CPU-less node 1 (a slow tier), MiB; 0 for none (`--tier`).
    pub tier_mib: u32,
    /// Extra kernel command line words, such as `hugepages=64` (`--append`).
    pub append: Option<&'a str>,
}

impl GuestOpts<'static> {
    /// A guest with `mem_mib` of memory on one node.
    pub const fn mem(mem_mib: u32) -> Self {
        GuestOpts::tier(mem_mib, 0)
    }

    /// A guest with `mem_mib` on node 0 and a CPU-less node 1 of `tier_mib`.
    pub const fn tier(mem_mib: u32, tier_mib: u32) -> Self {
        GuestOpts {
            mem_mib,
            tier_mib,
            append: None,
        }
    }
}

/// Inside the guest: returns true (run the assertions). Outside: re-runs test `name`
/// inside the guest with `mem_mib` of memory, asserts it passed, prints its output, and
/// returns false (the caller returns). Skips (see `skip`) without qemu or the runner.
pub fn in_guest_or_rerun(name: &str, mem_mib: u32) -> bool {
    in_guest_or_rerun_with(
        name,
        &GuestOpts {
            mem_mib,
            ..GuestOpts::default()
        },
    )
}

/// [`in_guest_or_rerun`] with a guest booted as `opts` says: a slow NUMA node 1, extra
/// kernel command line words.
pub fn in_guest_or_rerun_with(name: &str, opts: &GuestOpts) -> bool {
    if in_guest() {
        return true;
    }
    if !runner().is_file() {
        super::skip(&format!("{} is missing", runner().display()));
        return false;
    }
    if !super::on_path("qemu-system-x86_64") {
        super::skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        return false;
    }
    // One guest at a time: each is a 2-vCPU machine emulated in software, and two of them
    // on a 2-core host starve each other's kernels (DAMON's kdamond in particular), which
    // makes timing-based tracking measure the host's load instead of the workload.
    static ONE_GUEST: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_GUEST.lock().unwrap_or_else(|p| p.into_inner());
    let exe = std::env::current_exe().expect("test binary path");
    let mut vm_args = vec![
        "--mem".to_string(),
        opts.mem_mib.to_string(),
        "--timeout".to_string(),
        "400".to_string(),
    ];
    if opts.tier_mib > 0 {
        vm_args.extend(["--tier".to_string(), opts.tier_mib.to_string()]);
    }
    if let Some(words) = opts.append {
        vm_args.extend(["--append".to_string(), words.to_string()]);
    }
    let boot = || {
        Command::new(runner())
            .args(&vm_args)
            .arg("--")
            .arg("env")
            .arg("ETMEM_IN_GUEST=1")
            .arg(format!(
                "ETMEM_REQUIRE_ALL={}",
                std::env::var("ETMEM_REQUIRE_ALL").unwrap_or_default()
            ))
            .arg(&exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("vm/run starts")
    };
    // Exit 125 is the runner's "the guest itself failed" (its kernel crashed while
    // booting, rarely, under emulation) before the test ran: boot again, at most twice.
    // A failure of the test itself has the test binary's own status and is not retried.
    let mut out = boot();
    for _ in 0..2 {
        if out.status.code() != Some(GUEST_FAILED) {
            break;
        }
        println!("--- the guest failed before running {name}; booting it again ---");
        out = boot();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- guest output of {name} ---\n{stdout}\n{stderr}--- end of guest output ---");
    assert!(
        out.status.success(),
        "{name} failed inside the guest ({})",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run inside the guest (wrong name?)"
    );
    false
}

/// Swap on the guest's zram device (the guest starts without swap); once per boot.
pub fn zram_swap() {
    if std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .contains("zram0")
    {
        return;
    }
    std::fs::write("/sys/block/zram0/disksize", "512M").expect("zram0 disksize");
    for cmd in ["mkswap", "swapon"] {
        assert!(
            Command::new(cmd)
                .arg("/dev/zram0")
                .status()
                .unwrap()
                .success(),
            "{cmd} /dev/zram0"
        );
    }
}
