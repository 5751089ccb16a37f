//! One binary, four programs: chosen by the name it is called under or by its first word,
//! and `etmem --install` making the links.

mod common;
use common::daemon::{Run, Scratch};
use common::run;

#[test]
fn install_makes_links_and_refuses_to_overwrite() {
    let s = Scratch::new("install");
    let dir = s.0.to_string_lossy().into_owned();
    let r = Run::from(run(&["--install", &dir])).expect(0);
    for name in ["etmemd", "etmem", "etmem-scan", "etmem-swap"] {
        let link = s.0.join(name);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::fs::canonicalize(common::etmem()).unwrap(),
            "{name}: {}",
            r.stdout
        );
    }
    // Called through its links, the binary is that program.
    let d = Run::from(
        std::process::Command::new(s.0.join("etmemd"))
            .arg("--help")
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(d.stdout.contains("usage of etmemd:"));
    let c = Run::from(
        std::process::Command::new(s.0.join("etmem"))
            .arg("help")
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(c.stdout.contains("etmem OBJECT COMMAND"));
    // Installing again over the same links is a no-op; a foreign file is not replaced.
    Run::from(run(&["--install", &dir])).expect(0);
    std::fs::remove_file(s.0.join("etmem-scan")).unwrap();
    std::fs::write(s.0.join("etmem-scan"), "not ours").unwrap();
    Run::from(run(&["--install", &dir]))
        .expect(1)
        .err_has(&["etmem-scan exists", "--force"]);
    assert_eq!(
        std::fs::read_to_string(s.0.join("etmem-scan")).unwrap(),
        "not ours"
    );
    Run::from(run(&["--install", "--force", &dir])).expect(0);
    assert!(std::fs::read_link(s.0.join("etmem-scan")).is_ok());
    Run::from(run(&["--install"])).expect(2);
    Run::from(run(&["--install", &s.path("nodir")]))
        .expect(1)
        .err_has(&["not a directory"]);
}

#[test]
fn list_and_first_word_dispatch() {
    let l = Run::from(run(&["--list"])).expect(0);
    for name in ["etmemd", "etmem ", "etmem-scan", "etmem-swap"] {
        assert!(l.stdout.contains(name), "{}", l.stdout);
    }
    assert!(Run::from(run(&["etmemd", "-h"]))
        .expect(0)
        .stdout
        .contains("usage of etmemd:"));
    assert!(Run::from(run(&["--version"]))
        .expect(0)
        .stdout
        .starts_with("etmem "));
}

/// Every program's output may go to a reader that has gone (`... | head -1`): the program
/// ends quietly, where `print!` panicked with a backtrace (exit 101 or 134).
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    let me = std::process::id().to_string();
    for args in [
        vec!["--list"],
        vec!["--version"],
        vec!["scan", "--help"],
        vec!["swap", "--help"],
        vec!["etmemd", "-h"],
        vec![
            "scan",
            "--pid",
            &me,
            "--backend",
            "smaps",
            "--interval",
            "0.1",
        ],
    ] {
        let mut c = std::process::Command::new(common::etmem())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(c.stdout.take()); // the reader goes away before anything is written
        let o = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{args:?}: {:?} {err}",
            o.status
        );
    }
}
