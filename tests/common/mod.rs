//! Helpers shared by the integration tests: running the `etmem` binary, skipping with a
//! reason (a failure under `ETMEM_REQUIRE_ALL=1`), and reading its JSON back.
#![allow(dead_code)]

pub mod daemon;
pub mod guest;
pub mod workload;

use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn etmem() -> &'static str {
    env!("CARGO_BIN_EXE_etmem")
}

/// Run `etmem ARGS...` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(etmem())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the etmem binary runs")
}

/// Poll `cond` every 100 ms for at most `limit`; true once it holds.
pub fn wait_for(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// stdout and stderr of an output as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Say why a test does not run here. Returns normally (the caller returns) unless
/// `ETMEM_REQUIRE_ALL=1`, where a skip is a failure.
pub fn skip(reason: &str) {
    if std::env::var("ETMEM_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("test cannot run (ETMEM_REQUIRE_ALL=1): {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// True when running as root; otherwise skips with a reason.
pub fn require_root() -> bool {
    root_or_skip("this test")
}

/// True when running as root; otherwise skips, saying what needs root.
pub fn root_or_skip(why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(&format!("needs root: {why}"));
    false
}

/// `text` parsed as JSON; a text that is not JSON fails the test, showing the text.
pub fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}
