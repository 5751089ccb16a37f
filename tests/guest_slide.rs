//! The slide engine inside the guest kernel (idle page tracking, zram): the same
//! end-to-end run as on the host, with the per-page `page_idle` backend.

mod common;
use common::daemon::{Daemon, Scratch};
use common::guest::{in_guest_or_rerun, zram_swap};
use common::workload::Workload;

use etmem::act::resident_bytes;
use etmem::types::Range;
use std::time::{Duration, Instant};

fn share(pid: i32, r: Range) -> f64 {
    resident_bytes(pid, &[r]).unwrap() as f64 / r.len() as f64
}

#[test]
fn slide_with_page_idle_in_guest() {
    if !in_guest_or_rerun("slide_with_page_idle_in_guest", 2048) {
        return;
    }
    zram_swap();
    let mut w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "48"]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let d = Daemon::start("guest-slide");
    let s = Scratch::new("guest-slide");
    let conf = format!(
        "[project]\nname=g\nloop=2\ninterval=1\nsleep=1\n[engine]\nname=slide\nproject=g\n\
         [task]\nproject=g\nengine=slide\nname=t\ntype=pid\nvalue={}\nT=2\nscan_backend=page_idle\n",
        w.pid
    );
    d.add(&s.conf("g.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "g"]).expect(0);
    let t0 = Instant::now();
    while share(w.pid, cold) > 0.10 && t0.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let show = d
        .run(&["project", "show", "-v", "-n", "g"])
        .expect(0)
        .stdout;
    println!("{show}");
    let (c, h) = (share(w.pid, cold), share(w.pid, hot));
    println!(
        "cold resident {:.1}%, hot resident {:.1}%",
        c * 100.0,
        h * 100.0
    );
    assert!(c <= 0.10, "cold region still {:.1}% resident", c * 100.0);
    assert!(h >= 0.95, "hot region only {:.1}% resident", h * 100.0);
    assert!(
        show.contains("backend: page_idle+process_madvise"),
        "{show}"
    );
    d.run(&["project", "stop", "-n", "g"]).expect(0);
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}

/// `pressure_limit` (ours) in the guest (cgroup v2): while the workload's own cgroup is
/// under memory pressure (memory.high below its hot set makes it thrash), slide asks
/// nothing of the kernel and says why; once the pressure is gone, it swaps again.
#[test]
fn slide_pauses_under_its_cgroups_memory_pressure_in_guest() {
    if !in_guest_or_rerun(
        "slide_pauses_under_its_cgroups_memory_pressure_in_guest",
        1024,
    ) {
        return;
    }
    zram_swap();
    let cg = common::cgroup::TestCgroup::new("etmem-slide-pressure");
    let mut w = common::cgroup::workload_in(&cg.0, &["--hot-mib", "16", "--cold-mib", "32"]);
    let high = cg.0.join("memory.high");
    std::fs::write(&high, (8u64 << 20).to_string()).unwrap();
    let d = Daemon::start("guest-slide-pressure");
    let s = Scratch::new("guest-slide-pressure");
    let conf = format!(
        "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\n[engine]\nname=slide\nproject=p\n\
         [task]\nproject=p\nengine=slide\nname=t\ntype=pid\nvalue={}\nT=1\npressure_limit=5\n",
        w.pid
    );
    d.add(&s.conf("p.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "p"]).expect(0);
    let task = || {
        let out = d
            .run(&["project", "show", "--json", "-n", "p"])
            .expect(0)
            .stdout;
        common::parse_json(&out)["projects"][0]["engines"][0]["tasks"][0].clone()
    };
    let paused = |t: &serde_json::Value| {
        t["skipped"][0]
            .as_str()
            .is_some_and(|s| s.contains("is above pressure_limit=5"))
    };
    let mut t = task();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !paused(&t) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        t = task();
    }
    println!("under pressure: {t}");
    assert!(paused(&t), "slide did not pause under pressure: {t}");
    let why = t["skipped"][0].as_str().unwrap();
    assert!(
        why.contains(&format!("{}/memory.pressure", cg.0.display())),
        "{why}"
    );
    assert_eq!(t["requested_bytes"], 0, "{t}");
    // The pressure goes (avg10 decays over tens of seconds): swapping resumes. The
    // kernel's own reclaim under memory.high took the cold region meanwhile: reading it
    // back makes it resident (and cold again) for slide to find.
    std::fs::write(&high, "max").unwrap();
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
    let resumed = |t: &serde_json::Value| t["requested_bytes"].as_u64().unwrap_or(0) > 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !resumed(&t) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        t = task();
    }
    println!("after the pressure: {t}");
    assert!(
        resumed(&t),
        "slide never swapped once the pressure was gone: {t}"
    );
}
