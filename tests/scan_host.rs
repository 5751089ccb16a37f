//! `etmem-scan` and the trackers on this machine's kernel: the smaps backend against the
//! workload, the errors of the backends this kernel lacks, output parsed back, and the
//! messages for each way a scan can fail.

mod common;

use std::time::Duration;

use common::workload::Workload;
use common::{parse_json, run, texts};
use etmem::sys::pidfd::Pidfd;
use etmem::track;
use etmem::types::Range;
use etmem::types::ScanBackend;

fn mib(n: u64) -> u64 {
    n << 20
}

/// The per-VMA lines of text output: (range, perms, resident, hot, warm, cold).
fn vma_lines(text: &str) -> Vec<(Range, String, [u64; 4])> {
    text.lines()
        .filter(|l| !l.starts_with(['#', ' ']) && !l.starts_with("pid ") && !l.starts_with("total"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (a, b) = f[0].split_once('-').unwrap();
            let r = Range::new(
                u64::from_str_radix(a, 16).unwrap(),
                u64::from_str_radix(b, 16).unwrap(),
            );
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (r, f[1].to_string(), [n(2), n(3), n(4), n(5)])
        })
        .collect()
}

#[test]
fn smaps_backend_sees_hot_and_cold_vmas() {
    let w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "8"]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let target = Pidfd::open(w.pid).unwrap();
    let vmas: Vec<_> = etmem::sys::maps::read_maps(w.pid).unwrap();
    let mut tr = track::open(Some(ScanBackend::Smaps), &target).unwrap();
    track::scan(
        tr.as_mut(),
        &target,
        &vmas,
        2,
        Duration::from_millis(300),
        &|| false,
    )
    .unwrap();
    let c = tr.counts();
    let h = c.iter().find(|c| c.vma().range == hot).expect("hot VMA");
    let k = c.iter().find(|c| c.vma().range == cold).expect("cold VMA");
    assert_eq!(h.resident_bytes(), mib(8));
    assert_eq!(
        h.bytes_where(|n| n == 2),
        mib(8),
        "every hot page referenced in both passes"
    );
    assert_eq!(k.resident_bytes(), mib(8));
    assert_eq!(k.bytes_where(|n| n == 0), mib(8), "no cold page referenced");
    tr.finish();
}

#[test]
fn text_output_parses_back() {
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "4"]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let pid = w.pid.to_string();
    let o = run(&[
        "scan",
        "--pid",
        &pid,
        "-b",
        "smaps",
        "--loop",
        "2",
        "--interval",
        "0.2",
        "--pages",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let head = out.lines().next().unwrap();
    assert_eq!(
        head,
        format!("pid {pid} comm etmem backend smaps loop 2 interval 0.2 threshold 2")
    );
    let lines = vma_lines(&out);
    let h = lines.iter().find(|l| l.0 == hot).expect("hot line");
    assert_eq!(h.1, "rw-p");
    assert_eq!(h.2, [mib(4), mib(4), 0, 0]);
    let k = lines.iter().find(|l| l.0 == cold).expect("cold line");
    assert_eq!(k.2, [mib(4), 0, 0, mib(4)]);
    // --pages: the hot VMA is one run of 4K pages with count 2.
    let run_line = format!("  {:x}-{:x} 4K 2", hot.start, hot.end);
    assert!(out.lines().any(|l| l == run_line), "{out}");
    let total = out.lines().last().unwrap();
    assert!(total.starts_with("total resident "), "{total}");
}

#[test]
fn json_output_parses_back() {
    let w = Workload::spawn(&[
        "--hot-mib",
        "4",
        "--cold-mib",
        "4",
        "--name-vma",
        "etmem-cold",
    ]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let pid = w.pid.to_string();
    let o = run(&[
        "scan", "-p", &pid, "-b", "smaps", "-l", "1", "-i", "0.2", "--json", "--pages",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let j = parse_json(&out);
    assert_eq!(j["loop"].as_u64().unwrap(), 1);
    assert_eq!(j["threshold"].as_u64().unwrap(), 1);
    let p = &j["processes"][0];
    assert_eq!(p["pid"].as_u64().unwrap(), w.pid as u64);
    assert_eq!(p["backend"].as_str().unwrap(), "smaps");
    let vmas = p["vmas"].as_array().unwrap();
    let find = |r: Range| {
        vmas.iter()
            .find(|v| {
                v["start"].as_u64().unwrap() == r.start && v["end"].as_u64().unwrap() == r.end
            })
            .expect("VMA in JSON")
    };
    let h = find(hot);
    assert_eq!(
        (h["hot"].as_u64().unwrap(), h["cold"].as_u64().unwrap()),
        (mib(4), 0)
    );
    let pages = h["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["page_size"].as_u64().unwrap(), 4096);
    assert_eq!(pages[0]["count"].as_u64().unwrap(), 1);
    let k = find(cold);
    assert_eq!(
        (k["hot"].as_u64().unwrap(), k["cold"].as_u64().unwrap()),
        (0, mib(4))
    );
    // Named [anon:NAME] where the kernel has CONFIG_ANON_VMA_NAME, else memfd-backed.
    let mapping = k["mapping"].as_str().unwrap();
    assert!(
        ["[anon:etmem-cold]", "/memfd:etmem-cold (deleted)"].contains(&mapping),
        "{mapping}"
    );
    let t = &p["total"];
    assert_eq!(
        t["resident"].as_u64().unwrap(),
        t["hot"].as_u64().unwrap() + t["warm"].as_u64().unwrap() + t["cold"].as_u64().unwrap()
    );
}

#[test]
fn missing_backends_name_what_they_need() {
    let w = Workload::spawn(&["--hot-mib", "1"]);
    let pid = w.pid.to_string();
    let needs = [
        ("idle_pages", "etmem_scan"),
        ("page_idle", "CONFIG_IDLE_PAGE_TRACKING"),
        ("damon", "CONFIG_DAMON_VADDR"),
        ("softdirty", "CONFIG_MEM_SOFT_DIRTY"),
    ];
    let mut checked = 0;
    for (b, needle) in needs {
        let o = run(&["scan", "-p", &pid, "-b", b, "-i", "0.1"]);
        let (_, err) = texts(&o);
        if o.status.success() {
            println!("{b}: available on this kernel");
            continue;
        }
        assert_eq!(o.status.code(), Some(1), "{b}: {err}");
        if err.contains("kdamond(s) set up by someone else") {
            println!("{b}: busy: {err}");
            continue;
        }
        assert!(
            err.contains(needle),
            "{b}: message should name {needle}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        println!("{b}: {}", err.trim());
        checked += 1;
    }
    println!("{checked} unavailable backends checked");
}

#[test]
fn auto_picks_a_working_backend() {
    let w = Workload::spawn(&["--hot-mib", "1"]);
    let o = run(&["scan", "-p", &w.pid.to_string(), "-i", "0.1"]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.lines().next().unwrap().contains(" backend "), "{out}");
}

#[test]
fn pid_exiting_mid_scan_is_reported() {
    let w = Workload::spawn(&["--hot-mib", "1", "--exit-after", "0.6"]);
    let o = run(&[
        "scan",
        "-p",
        &w.pid.to_string(),
        "-b",
        "smaps",
        "-l",
        "10",
        "-i",
        "0.3",
    ]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("process {} exited during the scan", w.pid)),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_pid_and_name() {
    let o = run(&["scan", "-p", "999999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        texts(&o).1.trim(),
        "etmem-scan: no process with pid 999999999"
    );
    let o = run(&["scan", "--name", "no-such-comm-x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(texts(&o).1.contains("no process named \"no-such-comm-x\""));
}

#[test]
fn kernel_thread_has_no_memory() {
    let kthread = etmem::sys::process::all_pids()
        .find(|&p| etmem::sys::process::is_kernel_thread(p).unwrap_or(false) && p > 1);
    let Some(k) = kthread else {
        common::skip("no kernel thread visible in this pid namespace");
        return;
    };
    let comm = etmem::sys::process::comm(k).unwrap();
    let o = run(&["scan", "-p", &k.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        texts(&o).1.trim(),
        format!("etmem-scan: pid {k} ({comm}) is a kernel thread: it has no user memory to scan")
    );
}

#[test]
fn another_users_process_needs_root() {
    if !common::require_root() {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "1"]);
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::etmem(),
        ])
        .args(["scan", "-p", &w.pid.to_string(), "-b", "smaps"])
        .output();
    let Ok(o) = o else {
        common::skip("setpriv is not installed");
        return;
    };
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("permission denied reading /proc/{}/", w.pid))
            && err.contains("scanning another user's process needs root"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for (args, needle) in [
        (vec!["scan"], "--pid N or --name COMM"),
        (vec!["scan", "-p", "abc"], "--pid: \"abc\""),
        (vec!["scan", "-p", "1", "--loop", "121"], "--loop"),
        (vec!["scan", "-p", "1", "--interval", "-1"], "--interval"),
        (
            vec!["scan", "-p", "1", "--backend", "magic"],
            "--backend: unknown scan backend \"magic\"",
        ),
        (
            vec!["scan", "-p", "1", "--bogus"],
            "unrecognized option '--bogus'",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(texts(&o).1.contains(needle), "{args:?}: {}", texts(&o).1);
    }
    let o = run(&["scan", "--help"]);
    assert!(o.status.success());
    let (out, _) = texts(&o);
    for opt in [
        "--pid",
        "--name",
        "--children",
        "--loop",
        "--interval",
        "--backend",
        "--threshold",
        "--pages",
        "--json",
        "--all",
    ] {
        assert!(out.contains(opt), "help lacks {opt}");
    }
}

#[test]
fn children_are_scanned_too() {
    let w = Workload::spawn(&["--hot-mib", "1", "--children", "2"]);
    assert_eq!(w.children.len(), 2);
    let o = run(&[
        "scan",
        "-p",
        &w.pid.to_string(),
        "-c",
        "-b",
        "smaps",
        "-i",
        "0.1",
        "--json",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let j = parse_json(&out);
    let pids: Vec<u64> = j["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    for c in &w.children {
        assert!(pids.contains(&(*c as u64)));
    }
}

#[test]
fn workload_verifies_its_memory() {
    let mut w = Workload::spawn(&["--hot-mib", "1", "--cold-mib", "1", "--write-mib", "1"]);
    assert_eq!(w.verify(), "verify ok 768 pages");
}

#[test]
fn demo_scans_a_built_in_workload_and_ends_it() {
    let out = common::run(&["scan", "--demo", "--json"]);
    let (stdout, stderr) = common::texts(&out);
    assert!(out.status.success(), "{stderr}");
    let pid: i32 = stderr
        .split_whitespace()
        .nth(3)
        .and_then(|w| w.trim_end_matches(':').parse().ok())
        .unwrap_or_else(|| panic!("no demo pid in {stderr:?}"));
    let j = common::parse_json(&stdout);
    let vmas = j["processes"][0]["vmas"].as_array().unwrap();
    let hot = 64u64 << 20;
    let cold = 192u64 << 20;
    // Within 5%: a per-page backend may see a few pages differently than smaps does.
    assert!(
        vmas.iter()
            .any(|v| v["hot"].as_u64().unwrap() >= hot / 20 * 19),
        "{stdout}"
    );
    assert!(
        vmas.iter()
            .any(|v| v["cold"].as_u64().unwrap() >= cold / 20 * 19),
        "{stdout}"
    );
    // The demo process is gone once the scan has printed.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

/// Tracking memory follows what is resident, not a mapping's size: a 1 TiB reservation
/// with one page touched per GiB took 512 MiB of counters (a `u16` per page; 4 TiB got
/// the daemon killed at a 2 GiB cap). Under a 256 MiB data limit the scan must work.
#[test]
fn a_terabyte_reservation_is_scanned_within_a_small_memory_limit() {
    let w = Workload::spawn(&["--sparse-gib", "1024"]);
    let sparse = w.sparse.expect("sparse region");
    let o = std::process::Command::new("prlimit")
        .args(["--data=268435456", "--"])
        .arg(common::etmem())
        .args([
            "scan",
            "--pid",
            &w.pid.to_string(),
            "--backend",
            "smaps",
            "--json",
        ])
        .output()
        .unwrap();
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j = parse_json(&out);
    let vma = j["processes"][0]["vmas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["start"].as_u64() == Some(sparse.start) || v["end"].as_u64() == Some(sparse.end)
        })
        .unwrap_or_else(|| panic!("no VMA of the sparse region {sparse} in {out}"))
        .clone();
    let page = etmem::types::page_size();
    assert!(vma["resident"].as_u64().unwrap() >= 1024 * page, "{vma}");
}

/// A signal ends a scan inside a long walk: walking a 4 TiB reservation takes seconds
/// per pass, and the walk did not look at the stop flag, so `project stop` waited 2 to
/// 4.5 s for it.
#[test]
fn a_signal_ends_a_long_walk_promptly() {
    let w = Workload::spawn(&["--sparse-gib", "4096"]);
    let mut c = std::process::Command::new(common::etmem())
        .args(["scan", "--pid", &w.pid.to_string(), "--backend", "smaps"])
        .args(["--loop", "3", "--interval", "0.1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = c.wait().unwrap();
    let waited = t.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        waited < Duration::from_millis(1500),
        "took {waited:?} to stop: {err}"
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted by a signal"), "{err}");
}
