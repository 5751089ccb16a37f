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
