//! The arm64 static binary, the form embedded ARM images ship, run on this x86-64 machine
//! under `qemu-aarch64-static` (user-mode emulation, Debian `qemu-user-static`): every
//! program's `--help`, every `conf/` example added through an emulated daemon by an
//! emulated client, and `etmem-scan` of a live process with the smaps backend. The
//! emulated runs must print what the native binary prints.
//!
//! The binary is built here (`cargo build --release --target aarch64-unknown-linux-musl`,
//! linked by rust-lld as `.cargo/config.toml` says); CI builds it before the tests, so
//! this is then a no-op.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::daemon::{unique, Daemon, Run, Scratch};
use common::workload::Workload;

const TARGET: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "qemu-aarch64-static";

/// The arm64 binary, built once per test process; None (after `skip`) when the target or
/// the emulator is missing.
fn arm_binary() -> Option<&'static PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if !common::on_path(QEMU) {
            common::skip("qemu-aarch64-static is not installed (apt-get install qemu-user-static)");
            return None;
        }
        let root = env!("CARGO_MANIFEST_DIR");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(root)
            .args(["build", "--release", "--target", TARGET])
            .stdin(Stdio::null())
            .output()
            .expect("cargo runs");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("target may not be installed") {
                common::skip(&format!("rustup target add {TARGET} first"));
                return None;
            }
            panic!("the arm64 build failed:\n{err}");
        }
        let target_dir = std::env::var("CARGO_TARGET_DIR").unwrap_or(format!("{root}/target"));
        Some(PathBuf::from(format!(
            "{target_dir}/{TARGET}/release/etmem"
        )))
    })
    .as_ref()
}

/// `program ARGS` run by the arm64 binary under the emulator, named `program` (argv[0],
/// as its installed link would name it).
fn arm(bin: &PathBuf, program: &str) -> Command {
    let mut c = Command::new(QEMU);
    c.args(["-0", program]).arg(bin).stdin(Stdio::null());
    c
}

/// The same program run by the native binary of this build.
fn native(program: &str) -> Command {
    let mut c = Command::new(common::etmem());
    c.arg0(program).stdin(Stdio::null());
    c
}

fn run(mut c: Command, args: &[&str]) -> Run {
    Run::from(c.args(args).output().expect("the program starts"))
}

#[test]
fn the_binary_is_static_arm64() {
    let Some(bin) = arm_binary() else { return };
    let head = std::fs::read(bin).unwrap();
    // ELF, 64-bit, little-endian, e_machine 183 (EM_AARCH64), no program interpreter.
    assert_eq!(&head[..6], b"\x7fELF\x02\x01");
    assert_eq!(u16::from_le_bytes([head[18], head[19]]), 183);
    assert!(
        !head.windows(b"/lib/ld-".len()).any(|w| w == b"/lib/ld-"),
        "a static binary names no dynamic loader"
    );
}

#[test]
fn every_program_helps_as_the_native_one() {
    let Some(bin) = arm_binary() else { return };
    for (program, args) in [
        ("etmemd", &["--help"][..]),
        ("etmem", &["--help"]),
        ("etmem", &["--list"]),
        ("etmem-scan", &["--help"]),
        ("etmem-swap", &["--help"]),
        ("etmem", &["scan", "--help"]),
        ("etmem", &["swap", "--help"]),
        ("etmem", &["project", "help"]),
    ] {
        let a = run(arm(bin, program), args);
        let n = run(native(program), args);
        assert_eq!(
            (a.code, &a.stdout, &a.stderr),
            (n.code, &n.stdout, &n.stderr),
            "{program} {args:?} under emulation"
        );
        assert!(
            !(a.stdout.trim().is_empty() && a.stderr.trim().is_empty()),
            "{program} {args:?} printed nothing"
        );
    }
}

#[test]
fn every_conf_example_is_judged_as_natively() {
    let Some(bin) = arm_binary() else { return };
    let s = Scratch::new("arm64-conf");
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    let mut files: Vec<(String, String)> = std::fs::read_dir(conf)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| {
            let text = std::fs::read_to_string(format!("{conf}/{n}")).unwrap();
            (s.conf(&n, &text), n)
        })
        .collect();
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let base = s.conf(
        "slide_conf.yaml",
        &std::fs::read_to_string(format!("{conf}/slide_conf.yaml")).unwrap(),
    );
    let arm_sock = unique("arm64-d");
    let _a = Daemon::spawn(
        &arm_sock,
        arm(bin, "etmemd").args(["-l", "0", "-s", &arm_sock]),
    );
    let n = Daemon::start("native-d");
    let native_sock = n.socket.clone();
    // Both clients against their own daemon: the same code, output and errors.
    let both = |step: &[&str]| -> Run {
        let a = run(arm(bin, "etmem"), &[step, &["-s", &arm_sock]].concat());
        let n = run(native("etmem"), &[step, &["-s", &native_sock]].concat());
        assert_eq!(
            (a.code, &a.stdout, &a.stderr),
            (n.code, &n.stdout, &n.stderr),
            "etmem {step:?} under emulation, against the emulated daemon"
        );
        a
    };
    let mut accepted = Vec::new();
    for (path, name) in &files {
        // A file without a [project] adds engines and tasks to slide_conf.yaml's project.
        let own_project = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .any(|l| l.trim() == "[project]");
        if !own_project {
            both(&["obj", "add", "-f", &base]).expect(0);
        }
        if both(&["obj", "add", "-f", path]).code == 0 {
            accepted.push(name.as_str());
        }
        both(&["project", "show"]);
        both(&["project", "show", "--json"]);
        both(&["obj", "del", "-f", path]);
        if !own_project {
            both(&["obj", "del", "-f", &base]);
        }
        assert_eq!(both(&["project", "show"]).stdout, "no project exists\n\n");
    }
    // Refused here for want of the machine, not of the file: the .so plug-in
    // (thirdparty_conf, example_config) and the policy script not installed
    // (thirdparty_exec_conf).
    for want in [
        "cslide_conf.yaml",
        "damon_conf.yaml",
        "psi_conf.yaml",
        "slide_conf.yaml",
    ] {
        assert!(accepted.contains(&want), "{want} accepted: {accepted:?}");
    }
}

fn json_of(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::parse_json(&String::from_utf8_lossy(&o.stdout))
}

#[test]
fn etmem_scan_tells_hot_from_cold_under_emulation() {
    let Some(bin) = arm_binary() else { return };
    let w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "16"]);
    let pid = w.pid.to_string();
    let out = arm(bin, "etmem-scan")
        .args(["--pid", &pid, "--backend", "smaps", "--loop", "2"])
        .args(["--interval", "1", "--json"])
        .output()
        .unwrap();
    let j = json_of(&out);
    let vmas = j["processes"][0]["vmas"].as_array().expect("VMAs");
    let find = |r: etmem::types::Range| {
        vmas.iter()
            .find(|v| v["start"].as_u64() == Some(r.start) && v["end"].as_u64() == Some(r.end))
            .unwrap_or_else(|| panic!("no VMA {r:?} in {j}"))
    };
    let (hot, cold) = (find(w.hot.unwrap()), find(w.cold.unwrap()));
    assert_eq!(hot["resident"].as_u64(), Some(16 << 20), "{hot}");
    assert_eq!(hot["hot"].as_u64(), Some(16 << 20), "{hot}");
    assert_eq!(cold["resident"].as_u64(), Some(16 << 20), "{cold}");
    assert_eq!(cold["cold"].as_u64(), Some(16 << 20), "{cold}");
}
