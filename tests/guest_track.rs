//! The kernel backends this machine may lack, inside the guest kernel (`../shared/vm/run`):
//! page_idle, DAMON and soft-dirty against the workload. Each test re-runs itself in the
//! guest (one boot per test) and asserts there.

mod common;

use std::time::{Duration, Instant};

use common::guest::in_guest_or_rerun;
use common::workload::Workload;
use common::{run, texts};
use etmem::sys::pidfd::Pidfd;
use etmem::track::{self, Tracker, VmaCounts};
use etmem::types::ScanBackend;
use etmem::types::{PageSize, Range};

/// Scan the whole workload with `backend`; returns the tracker (counts inside).
fn scan(w: &Workload, backend: ScanBackend, loops: u32, interval: Duration) -> Box<dyn Tracker> {
    let target = Pidfd::open(w.pid).unwrap();
    let vmas = etmem::sys::maps::read_maps(w.pid).unwrap();
    let mut tr = track::open(Some(backend), &target).unwrap();
    track::scan(tr.as_mut(), &target, &vmas, loops, interval, &|| false).unwrap();
    tr.finish();
    tr
}

fn vma(tr: &dyn Tracker, r: Range) -> &VmaCounts {
    tr.counts()
        .iter()
        .find(|c| c.vma().range == r)
        .expect("region VMA scanned")
}

/// Share of the region's bytes whose count satisfies `pred` (of the whole region: a
/// page not resident counts against it).
fn share(c: &VmaCounts, pred: impl Fn(u16) -> bool) -> f64 {
    c.bytes_where(pred) as f64 / c.vma().range.len() as f64
}

/// Print what `etmem-scan` says about the workload (for the closing note).
fn show(w: &Workload, backend: &str, extra: &[&str]) {
    let pid = w.pid.to_string();
    let mut args = vec!["scan", "--pid", &pid, "--backend", backend];
    args.extend_from_slice(extra);
    let o = run(&args);
    let (out, err) = texts(&o);
    println!("$ etmem-scan {}\n{out}{err}", args[1..].join(" "));
    assert!(o.status.success(), "{err}");
}

#[test]
fn page_idle_in_guest() {
    if !in_guest_or_rerun("page_idle_in_guest", 1024) {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "32", "--cold-mib", "32"]);
    let tr = scan(&w, ScanBackend::PageIdle, 2, Duration::from_secs(1));
    let hot = share(vma(tr.as_ref(), w.hot.unwrap()), |n| n == 2);
    let cold = share(vma(tr.as_ref(), w.cold.unwrap()), |n| n == 0);
    println!(
        "page_idle: hot region {:.2}% hot, cold region {:.2}% cold",
        hot * 100.0,
        cold * 100.0
    );
    assert!(hot >= 0.99 && cold >= 0.99);
    show(&w, "page_idle", &["--loop", "2", "--interval", "1"]);
    drop(w);

    // Transparent huge pages: one 2 MiB unit each, counted as such.
    let w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "16", "--thp"]);
    let tr = scan(&w, ScanBackend::PageIdle, 2, Duration::from_secs(1));
    for (r, want) in [(w.hot.unwrap(), 2), (w.cold.unwrap(), 0)] {
        let c = vma(tr.as_ref(), r);
        let huge: Vec<_> = c.pages().filter(|p| p.size == PageSize::Pmd).collect();
        let huge_bytes = huge.len() as u64 * PageSize::Pmd.bytes();
        println!(
            "THP region {r}: {} huge pages, counts {:?}",
            huge.len(),
            huge.iter().map(|p| p.count).collect::<Vec<_>>()
        );
        assert!(
            huge_bytes * 2 >= r.len(),
            "most of {r} should be THP-backed"
        );
        assert!(huge
            .iter()
            .all(|p| p.count == want && p.addr % PageSize::Pmd.bytes() == 0));
        assert!(share(c, |n| n == want) >= 0.99);
    }
    show(
        &w,
        "page_idle",
        &["--loop", "2", "--interval", "1", "--pages"],
    );
}

const KDAMONDS: &str = "/sys/kernel/mm/damon/admin/kdamonds";

fn nr_kdamonds() -> String {
    std::fs::read_to_string(format!("{KDAMONDS}/nr_kdamonds"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn damon_in_guest() {
    if !in_guest_or_rerun("damon_in_guest", 1024) {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "32", "--cold-mib", "32"]);
    let tr = scan(&w, ScanBackend::Damon, 3, Duration::from_secs(2));
    assert_eq!(nr_kdamonds(), "0", "the kdamond is gone after finish");
    let hot = share(vma(tr.as_ref(), w.hot.unwrap()), |n| n == 3);
    let cold = share(vma(tr.as_ref(), w.cold.unwrap()), |n| n == 0);
    println!(
        "damon: hot region {:.2}% hot, cold region {:.2}% cold",
        hot * 100.0,
        cold * 100.0
    );
    assert!(
        hot >= 0.8 && cold >= 0.8,
        "DAMON must put the bulk of each region on the right side"
    );
    show(&w, "damon", &["--loop", "3", "--interval", "2"]);
    assert_eq!(nr_kdamonds(), "0");

    // A signal during the scan still tears the monitor down.
    let scan = std::process::Command::new(common::etmem())
        .args(["scan", "-p", &w.pid.to_string(), "-b", "damon", "-i", "60"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while nr_kdamonds() != "1" && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(nr_kdamonds(), "1", "the scan started a kdamond");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(scan.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = scan.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(nr_kdamonds(), "0", "the kdamond is torn down on a signal");

    // A kdamond that stops while its process lives (here: turned off from outside
    // before the first pass) is started again, and the scan still tells hot from cold.
    let scan = std::process::Command::new(common::etmem())
        .args(["scan", "-p", &w.pid.to_string(), "-b", "damon", "-l", "2"])
        .args(["-i", "4", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = format!("{KDAMONDS}/0/state");
    let read_state = || std::fs::read_to_string(&state).unwrap_or_default();
    assert!(
        common::wait_for(Duration::from_secs(20), || read_state().trim() == "on"),
        "the scan started a kdamond"
    );
    std::fs::write(&state, "off").unwrap();
    assert!(
        common::wait_for(Duration::from_secs(30), || read_state().trim() == "on"),
        "the kdamond was started again"
    );
    let out = scan.wait_with_output().unwrap();
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{err}");
    let j = common::parse_json(&stdout);
    let vmas = j["processes"][0]["vmas"].as_array().unwrap();
    let find = |r: Range| {
        vmas.iter()
            .find(|v| {
                v["start"].as_u64().unwrap() == r.start && v["end"].as_u64().unwrap() == r.end
            })
            .expect("VMA in JSON")
    };
    let (hot, cold) = (find(w.hot.unwrap()), find(w.cold.unwrap()));
    println!("damon after a restart: hot region {hot}, cold region {cold}\nscan log: {err}");
    assert!(hot["hot"].as_u64().unwrap() * 10 >= hot["resident"].as_u64().unwrap() * 8);
    assert!(cold["cold"].as_u64().unwrap() * 10 >= cold["resident"].as_u64().unwrap() * 8);
    assert_eq!(nr_kdamonds(), "0");
}

#[test]
fn softdirty_in_guest() {
    if !in_guest_or_rerun("softdirty_in_guest", 1024) {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "16", "--write-mib", "16"]);
    let tr = scan(&w, ScanBackend::SoftDirty, 2, Duration::from_secs(1));
    let written = share(vma(tr.as_ref(), w.write.unwrap()), |n| n == 6);
    let cold = share(vma(tr.as_ref(), w.cold.unwrap()), |n| n == 0);
    let read = share(vma(tr.as_ref(), w.hot.unwrap()), |n| n == 0);
    println!(
        "softdirty: written region {:.2}% at 6, cold {:.2}% at 0, read-only hot {:.2}% at 0 (reads are invisible)",
        written * 100.0,
        cold * 100.0,
        read * 100.0
    );
    assert!(written >= 0.99 && cold >= 0.99 && read >= 0.99);
    show(
        &w,
        "softdirty",
        &["--loop", "2", "--interval", "1", "--threshold", "3"],
    );
}
