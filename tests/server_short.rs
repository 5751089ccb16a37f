//! The short form of the server benchmark (`benches/server.rs`), in the guest kernel
//! (idle page tracking, zram): redis-server with a small dataset under a Zipf load whose
//! hot set shifts, once alone and once with etmem's slide engine swapping it. It asserts
//! only what cannot be noise: every request answered with the right value in both arms,
//! and less resident memory with slide than without.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, Scratch};
use common::guest::{in_guest_or_rerun_with, zram_swap, GuestOpts};
use common::redis_load::{drive, Dataset, Load, Measured, Redis};

const DATA: Dataset = Dataset {
    items: 48 * 1024,
    value_size: 1024,
};

const LOAD: Load = Load {
    duration: Duration::from_secs(24),
    shift_at: Duration::from_secs(12),
    theta: 0.99,
    set_ratio: 0.1,
    depth: 16,
};

fn rss(pid: i32) -> u64 {
    etmem::sys::process::status_bytes(pid, "VmRSS").unwrap()
}

/// One arm: a fresh server, loaded, driven; with `slide`, an etmemd project swaps it
/// meanwhile. The measurements and the server's resident size at the end.
fn arm(tag: &str, slide: bool) -> (Measured, u64) {
    let s = Scratch::new(tag);
    let redis = Redis::start(std::path::Path::new(&s.path("redis"))).unwrap();
    let mut c = redis.connect();
    DATA.load(&mut c);
    let _d = slide.then(|| {
        let d = Daemon::start(tag);
        let conf = format!(
            "[project]\nname=r\nloop=2\ninterval=1\nsleep=1\n[engine]\nname=slide\nproject=r\n\
             [task]\nproject=r\nengine=slide\nname=redis\ntype=pid\nvalue={}\nT=1\n",
            redis.pid()
        );
        d.add(&s.conf("r.conf", &conf)).expect(0);
        d.run(&["project", "start", "-n", "r"]).expect(0);
        d
    });
    let m = drive(&mut c, DATA, LOAD, |_| {});
    (m, rss(redis.pid()))
}

#[test]
fn slide_shrinks_redis_and_every_answer_is_right_in_guest() {
    let opts = GuestOpts::mem(1024);
    if !in_guest_or_rerun_with(
        "slide_shrinks_redis_and_every_answer_is_right_in_guest",
        &opts,
    ) {
        return;
    }
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        return common::skip("redis-server is not installed (Debian package redis-server)");
    }
    zram_swap();
    let (base, base_rss) = arm("server-base", false);
    let (slid, slid_rss) = arm("server-slide", true);
    for (name, m, r) in [("baseline", &base, base_rss), ("slide", &slid, slid_rss)] {
        println!(
            "{name}: {} requests, {:.0}/s, p50 {} us, p99 {} us per batch of {}, VmRSS {} MiB",
            m.requests,
            m.throughput(),
            m.quantile_us(0.5),
            m.quantile_us(0.99),
            LOAD.depth,
            r >> 20
        );
        assert_eq!(m.wrong, 0, "{name}: {} wrong answers", m.wrong);
        assert!(m.requests > 0, "{name}: no request answered");
    }
    assert!(
        slid_rss < base_rss,
        "slide left redis at {} MiB, the baseline at {} MiB",
        slid_rss >> 20,
        base_rss >> 20
    );
}
