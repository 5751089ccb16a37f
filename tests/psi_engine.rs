//! The psi engine on this host: its config files load (the shipped sample, upstream's
//! README example without type/value), bad values are refused with their file and line,
//! and on a kernel whose memory cgroups lack what psi needs (mainline cgroup v1: no
//! memory.min, memory.low, memory.reclaim, memory.pressure) `project start` fails naming
//! the missing file and changes nothing. The reclaim itself runs in tests/guest_psi.rs.

mod common;
use common::daemon::{Daemon, Scratch};

use etmem::sys::cgroup::{self, Layout};

fn shipped(name: &str) -> String {
    std::fs::read_to_string(format!("{}/conf/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

const README: &str = "[project]\nname=test\nscan_type=psi\ninterval=6\n\
    [engine]\nname=psi\nproject=test\n\
    [task]\nproject=test\nengine=psi\nname=psi_task\ncg_dir=isulad/*\npressure=0.1\nlimit_min_bytes=209715200\n";

#[test]
fn psi_samples_load_and_bad_values_are_named() {
    let d = Daemon::start("psi-conf");
    let s = Scratch::new("psi-conf");
    let sample = s.conf("psi_conf.yaml", &shipped("psi_conf.yaml"));
    d.add(&sample).expect(0);
    assert!(
        d.show().contains(
            "1        name     cgroup_v1        psi_task         psi              false   \n"
        ),
        "{}",
        d.show()
    );
    d.run(&["obj", "del", "-f", &sample]).expect(0);
    // Upstream's README example has no type and value: accepted, shown as its cgroups.
    d.add(&s.conf("readme.conf", README)).expect(0);
    assert!(
        d.show().contains(
            "1        cgroup   isulad/*         psi_task         psi              false   \n"
        ),
        "{}",
        d.show()
    );
    let json = common::parse_json(&d.run(&["project", "show", "--json"]).expect(0).stdout);
    let task = &json["projects"][0]["engines"][0]["tasks"][0];
    assert_eq!(task["type"], "cgroup");
    assert_eq!(task["psi"], serde_json::json!([]));
    // NaN (which upstream let through), infinity, 0 and rates out of order are refused
    // with the file, line, key, value and what is allowed.
    for (line, want) in [
        (
            "pressure=nan",
            "pressure=nan: must be a finite number above 0",
        ),
        (
            "reclaim_rate=inf",
            "reclaim_rate=inf: must be a finite number above 0",
        ),
        (
            "limit_min_ratio=0",
            "limit_min_ratio=0: must be a finite number above 0",
        ),
        (
            "reclaim_rate=0.9",
            "reclaim_rate=0.9: must keep reclaim_rate_min <= reclaim_rate <= reclaim_rate_max",
        ),
    ] {
        let text = format!("{}{line}\n", README.replace("name=test", "name=bad"))
            .replace("project=test", "project=bad");
        let f = s.conf("bad.conf", &text);
        d.add(&f)
            .expect(1)
            .err_has(&[&format!("{f}:15: [task] {want}")]);
    }
    // A psi engine wants a psi project.
    let f = s.conf(
        "mixed.conf",
        "[project]\nname=m\nloop=1\ninterval=1\nsleep=1\n[engine]\nname=psi\nproject=m\n",
    );
    d.add(&f)
        .expect(1)
        .err_has(&["the psi engine needs a project with scan_type=psi"]);
}

/// The memory cgroup the test makes, removed at the end.
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn psi_start_fails_naming_the_file_this_kernel_lacks() {
    if !common::root_or_skip("making a memory cgroup") {
        return;
    }
    let Ok(Layout::V1 { memory, .. }) = cgroup::layout() else {
        common::skip("this host's memory cgroups are not v1 (the guest test covers v2)");
        return;
    };
    if memory.join("memory.reclaim").exists() {
        common::skip("this host's cgroup v1 has memory.reclaim (openEuler): nothing lacks");
        return;
    }
    let name = format!("etmem-psi-{}", std::process::id());
    let dir = memory.join(&name);
    std::fs::create_dir(&dir).expect("make a memory cgroup");
    let _cg = TestCgroup(dir.clone());
    let snapshot = || {
        [
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.soft_limit_in_bytes",
        ]
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
    };
    let before = snapshot();
    let d = Daemon::start("psi-v1");
    let s = Scratch::new("psi-v1");
    let conf = README.replace("cg_dir=isulad/*", &format!("cg_dir={name}"));
    d.add(&s.conf("p.conf", &conf)).expect(0);
    let missing = dir.join("memory.min");
    let r = d.run(&["project", "start", "-n", "test"]).expect(1);
    r.err_has(&[
        "project test engine psi",
        &format!("{} is missing", missing.display()),
        "memory.low",
        "memory.reclaim",
        "memory.pressure",
        "cgroup v1",
    ]);
    println!("{}", r.stderr);
    // Nothing changed: not started, the cgroup as it was.
    assert!(
        d.show().ends_with("psi              false   \n"),
        "{}",
        d.show()
    );
    assert_eq!(snapshot(), before);
}
