//! C code built by the tests: programs and plug-ins compiled with gcc against the headers
//! in `include/`, and `libetmemd_scan.so`, built once per test binary by the cargo that
//! runs the tests (a cdylib is no dependency a test can name).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The project's directory.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// True when gcc runs here; otherwise skips, saying so.
pub fn gcc_or_skip() -> bool {
    let ok = Command::new("gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        super::skip("gcc is not installed (the tests build C programs and plug-ins)");
    }
    ok
}

/// Compile `src` (a path in the project, e.g. `tests/c/scan_vmas.c`; with `include/` on
/// the include path, warnings as errors) and `extra` arguments into `out`; a compiler
/// error fails the test, showing it.
pub fn compile(src: &str, out: &str, extra: &[&str]) {
    let src = root().join(src);
    let o = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root().join("include"))
        .arg(&src)
        .args(["-o", out])
        .args(extra)
        .output()
        .expect("gcc runs");
    assert!(
        o.status.success(),
        "gcc {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The directory holding `libetmemd_scan.so`, built (in this test's profile) on first use.
pub fn scan_library_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = std::env::current_exe()
            .unwrap()
            .components()
            .any(|c| c.as_os_str() == "release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "etmemd-scan", "--message-format=json"])
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .stderr(Stdio::inherit());
        if release {
            cmd.arg("--release");
        }
        let o = cmd.output().expect("cargo runs");
        assert!(o.status.success(), "cargo build -p etmemd-scan failed");
        // The artifact message of the library names the file it made.
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(super::parse_json)
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "etmemd_scan")
            .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f.as_str().map(PathBuf::from))
            .find(|f| f.extension().is_some_and(|x| x == "so"))
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .expect("cargo names libetmemd_scan.so")
    })
}

/// Linker arguments for a program or plug-in using `libetmemd_scan.so`.
pub fn scan_library_args() -> Vec<String> {
    let dir = scan_library_dir().display().to_string();
    vec![
        format!("-L{dir}"),
        "-letmemd_scan".into(),
        format!("-Wl,-rpath,{dir}"),
    ]
}
