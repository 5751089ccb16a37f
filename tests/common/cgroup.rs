//! A memory cgroup of the test's own (cgroup v2, as the guest kernel mounts it), and a
//! workload charged to it.

use super::workload::Workload;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the guest mounts cgroup v2.
pub const ROOT: &str = "/sys/fs/cgroup";

/// The test's cgroup, removed at the end (its processes first).
pub struct TestCgroup(pub PathBuf);

impl TestCgroup {
    /// A new cgroup `NAME-PID` under the root, with the memory controller enabled for
    /// the root's children.
    pub fn new(name: &str) -> TestCgroup {
        let _ = std::fs::write(Path::new(ROOT).join("cgroup.subtree_control"), "+memory");
        let dir = Path::new(ROOT).join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("make the test cgroup");
        TestCgroup(dir)
    }

    /// The cgroup's path as `/proc/PID/cgroup` shows it.
    pub fn path(&self) -> String {
        format!("/{}", self.0.strip_prefix(ROOT).unwrap().display())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The workload, started inside `cg`: the test process joins the cgroup for the spawn
/// and leaves again, so every page the workload allocates is charged to `cg` (cgroup v2
/// does not move charges with a process written to cgroup.procs later).
pub fn workload_in(cg: &Path, args: &[&str]) -> Workload {
    let me = std::process::id().to_string();
    std::fs::write(cg.join("cgroup.procs"), &me).expect("join the test cgroup");
    let w = Workload::spawn(args);
    std::fs::write(Path::new(ROOT).join("cgroup.procs"), &me).expect("leave the test cgroup");
    let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
    assert_eq!(
        procs.trim(),
        w.pid.to_string(),
        "the workload alone is in the cgroup"
    );
    w
}
