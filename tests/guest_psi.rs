//! The psi engine inside the guest kernel (cgroup v2, PSI, memory.reclaim, zram swap): a
//! cgroup holding the test workload shrinks toward its floor while its pressure stays
//! under the task's limit, never below the floor; when the test makes the workload
//! thrash (memory.high below its hot set) the pressure gate refuses and the cgroup's
//! rate goes down; the workload's data is intact at the end.

mod common;
use common::cgroup::{workload_in, TestCgroup};
use common::daemon::{Daemon, Scratch};
use common::guest::{in_guest_or_rerun, zram_swap};

use std::path::Path;
use std::time::Duration;

const MIB: u64 = 1 << 20;

fn number(dir: &Path, file: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{file}: {text:?}"))
}

/// The task in `project show --json`.
fn task_state(d: &Daemon) -> serde_json::Value {
    let out = d
        .run(&["project", "show", "-n", "g", "--json"])
        .expect(0)
        .stdout;
    let json = common::parse_json(&out);
    json["projects"][0]["engines"][0]["tasks"][0].clone()
}

/// The workload's cgroup in `project show --json` (the first, in path order).
fn psi_state(d: &Daemon) -> serde_json::Value {
    task_state(d)["psi"][0].clone()
}

#[test]
fn psi_reclaims_to_the_floor_and_backs_off_under_pressure_in_guest() {
    if !in_guest_or_rerun(
        "psi_reclaims_to_the_floor_and_backs_off_under_pressure_in_guest",
        1024,
    ) {
        return;
    }
    zram_swap();
    if !Path::new("/proc/pressure/memory").exists() {
        common::skip("the guest kernel has no PSI");
        return;
    }
    let cg = TestCgroup::new("etmem-psi");
    let dir = cg.0.clone();
    let name = cg.path().trim_start_matches('/').to_string();
    for f in ["memory.reclaim", "memory.pressure", "memory.current"] {
        assert!(dir.join(f).exists(), "{f} missing in the guest's cgroup");
    }
    let d = Daemon::start("guest-psi");
    let mut w = workload_in(&dir, &["--hot-mib", "16", "--cold-mib", "64"]);
    let start = number(&dir, "memory.current");
    println!("memory.current with the workload: {} MiB", start / MIB);
    assert!(
        start >= 80 * MIB,
        "the workload's memory is not charged to the cgroup"
    );

    let limit_min = 40 * MIB;
    let s = Scratch::new("guest-psi");
    let conf = format!(
        "[project]\nname=g\nscan_type=psi\ninterval=1\n[engine]\nname=psi\nproject=g\n\
         [task]\nproject=g\nengine=psi\nname=t\ncg_dir={{{name},{name}/*}}\npressure=5\nreclaim_rate=0.3\n\
         reclaim_rate_min=0.01\nreclaim_rate_max=0.5\nlimit_min_bytes={limit_min}\n"
    );
    d.add(&s.conf("g.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "g"]).expect(0);
    // A second match without the memory controller (its parent does not enable it for
    // children): that cgroup's error, not the task's nor the other cgroup's.
    let bad = dir.join("bad");
    std::fs::create_dir(&bad).expect("make a cgroup without memory files");

    // 1. Low pressure: the cgroup shrinks toward its floor, never below it.
    let mut lowest = u64::MAX;
    let mut state = serde_json::Value::Null;
    common::wait_for(Duration::from_secs(150), || {
        let current = number(&dir, "memory.current");
        lowest = lowest.min(current);
        assert!(
            current >= limit_min,
            "memory.current {current} fell below limit_min_bytes {limit_min}"
        );
        state = psi_state(&d);
        let floor = state["floor_bytes"].as_u64().unwrap_or(0);
        // The kernel reclaims in batches of 32 pages: allow one batch or so.
        assert!(
            floor == 0 || current + MIB >= floor,
            "memory.current {current} below the floor {floor}: {state}"
        );
        floor > 0 && current <= floor + 4 * MIB
    });
    let show = d
        .run(&["project", "show", "-v", "-n", "g"])
        .expect(0)
        .stdout;
    println!("after shrinking:\n{show}\n{state}");
    let floor = state["floor_bytes"].as_u64().unwrap();
    let current = number(&dir, "memory.current");
    assert!(
        floor >= limit_min && floor < limit_min + 16 * MIB,
        "{state}"
    );
    assert!(
        current <= floor + 4 * MIB,
        "memory.current {current} did not come near the floor {floor}: {state}"
    );
    assert!(
        state["reclaimed_total_bytes"].as_u64().unwrap() >= 30 * MIB,
        "{state}"
    );
    assert!(state["pressure"].as_f64().unwrap() < 5.0, "{state}");
    assert!(show.contains(&format!("cgroup {name}: ")), "{show}");
    let rate_before = state["rate"].as_f64().unwrap();
    let task = task_state(&d);
    let other = &task["psi"][1];
    assert_eq!(other["cgroup"], format!("{name}/bad"), "{task}");
    assert_eq!(other["action"], "error", "{task}");
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .contains("bad/memory.stat: No such file"),
        "{task}"
    );
    assert_eq!(task["last_error"], serde_json::Value::Null, "{task}");
    std::fs::remove_dir(&bad).unwrap();

    // 2. Pressure: memory.high below the hot set makes the workload thrash; the gate
    // refuses, nothing is asked, and the rate steps down.
    std::fs::write(dir.join("memory.high"), (8 * MIB).to_string()).unwrap();
    common::wait_for(Duration::from_secs(120), || {
        state = psi_state(&d);
        state["action"] == "pressure high" && state["rate"].as_f64().unwrap() < rate_before
    });
    let show = d
        .run(&["project", "show", "-v", "-n", "g"])
        .expect(0)
        .stdout;
    println!("under pressure:\n{show}\n{state}");
    assert_eq!(state["action"], "pressure high", "{state}");
    assert!(state["pressure"].as_f64().unwrap() >= 5.0, "{state}");
    assert_eq!(state["asked_bytes"], 0, "{state}");
    let rate = state["rate"].as_f64().unwrap();
    assert!(
        rate < rate_before,
        "the rate did not go down under pressure: {rate_before} -> {rate}"
    );
    assert!(rate >= 0.01, "{state}");

    // The data survived.
    std::fs::write(dir.join("memory.high"), "max").unwrap();
    d.run(&["project", "stop", "-n", "g"]).expect(0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
    println!("lowest memory.current seen: {} MiB", lowest / MIB);
}
