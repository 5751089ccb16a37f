//! The slide engine on this machine's kernel with real swap (zram in CI): a started
//! project swaps a workload's cold memory out, keeps its hot memory, loses nothing, and
//! honours every slide key.

mod common;
use common::daemon::{wait_exit, Daemon, Scratch};
use common::workload::Workload;
use common::{can_swap, parse_json, skip, wait_for};

use std::time::{Duration, Instant};

fn project(name: &str, extra: &str) -> String {
    format!("[project]\nname={name}\nloop=1\ninterval=1\nsleep=1\n{extra}[engine]\nname=slide\nproject={name}\n")
}

fn task(project: &str, ty: &str, value: &str, extra: &str) -> String {
    format!("[task]\nproject={project}\nengine=slide\nname=t\ntype={ty}\nvalue={value}\n{extra}")
}

/// The JSON status of task `t` of project `p`.
fn status(d: &Daemon, p: &str) -> serde_json::Value {
    let out = d
        .run(&["project", "show", "--json", "-n", p])
        .expect(0)
        .stdout;
    parse_json(&out)["projects"][0]["engines"][0]["tasks"][0].clone()
}

fn cycles(d: &Daemon, p: &str) -> u64 {
    status(d, p)["cycles"].as_u64().unwrap()
}

#[test]
fn cold_memory_leaves_hot_stays_nothing_is_lost() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let mut w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "64"]);
    let cold = w.cold.unwrap();
    let d = Daemon::start("slide-e2e");
    let s = Scratch::new("slide-e2e");
    let pid = w.pid.to_string();
    d.add(&s.conf(
        "e2e.conf",
        &format!(
            "{}{}",
            project("e2e", ""),
            task("e2e", "pid", &pid, "T=1\n")
        ),
    ))
    .expect(0);
    d.run(&["project", "start", "-n", "e2e"]).expect(0);
    let swapped = wait_for(Duration::from_secs(60), || w.resident_share(cold) <= 0.10);
    w.assert_cold_out_hot_in(swapped, &format!("after {} cycles", cycles(&d, "e2e")));
    let st = status(&d, "e2e");
    assert!(
        st["swapped_total"].as_u64().unwrap() >= cold.len() * 9 / 10,
        "{st}"
    );
    assert!(
        st["backend"]
            .as_str()
            .unwrap()
            .ends_with("+process_madvise"),
        "{st}"
    );
    let verbose = d
        .run(&["project", "show", "-v", "-n", "e2e"])
        .expect(0)
        .stdout;
    assert!(verbose.contains("total swapped: "), "{verbose}");
    d.run(&["project", "stop", "-n", "e2e"]).expect(0);
    // Every page of both regions reads back as written.
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
}

/// Run a project on a fresh workload for a few cycles and return the cold region's
/// resident share and the task's status.
fn run_gated(
    tag: &str,
    project_extra: &str,
    task_extra: &str,
    cycles_wanted: u64,
) -> (f64, serde_json::Value) {
    let w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "32"]);
    let d = Daemon::start(tag);
    let s = Scratch::new(tag);
    let pid = w.pid.to_string();
    let conf = format!(
        "{}{}",
        project("g", project_extra),
        task("g", "pid", &pid, &format!("T=1\n{task_extra}"))
    );
    d.add(&s.conf("g.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "g"]).expect(0);
    assert!(
        wait_for(Duration::from_secs(60), || cycles(&d, "g") >= cycles_wanted),
        "no cycles ran"
    );
    (w.resident_share(w.cold.unwrap()), status(&d, "g"))
}

#[test]
fn sysmem_threshold_gates_on_available_memory() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    // Available memory is never below 1% of total on a test machine: nothing moves.
    let (left, st) = run_gated("sysmem-closed", "sysmem_threshold=1\n", "", 3);
    assert!(left >= 0.99, "swapped while the gate was closed: {left}");
    assert_eq!(st["swapped_total"].as_u64().unwrap(), 0);
    let why = st["skipped"][0].as_str().unwrap().to_string();
    assert!(why.contains("not below sysmem_threshold=1%"), "{why}");
    // 100: available memory is always below all of it: the gate is open.
    let (left, _) = run_gated("sysmem-open", "sysmem_threshold=100\n", "", 3);
    assert!(left <= 0.10, "gate open but cold still {left} resident");
}

#[test]
fn swap_threshold_gates_on_resident_memory() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let (left, st) = run_gated("swapthr", "", "swap_threshold=1g\n", 3);
    assert!(left >= 0.99, "swapped below swap_threshold: {left}");
    assert!(
        st["skipped"][0]
            .as_str()
            .unwrap()
            .contains("not above swap_threshold 1024 MiB"),
        "{st}"
    );
}

#[test]
fn swap_flag_swaps_only_the_named_vma() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let w = Workload::spawn(&[
        "--hot-mib",
        "16",
        "--cold-mib",
        "32",
        "--name-vma",
        "etmem_swap",
    ]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    // Marked either way the workload could: [anon:etmem_swap] or /memfd:etmem_swap.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", w.pid)).unwrap();
    assert!(maps.contains("etmem_swap"), "{maps}");
    let d = Daemon::start("swapflag");
    let s = Scratch::new("swapflag");
    // T=3 with loop=1: every page counts as cold, so only swap_flag protects the hot region.
    let t = task("f", "pid", &w.pid.to_string(), "T=3\nswap_flag=yes\n");
    d.add(&s.conf("f.conf", &format!("{}{t}", project("f", ""))))
        .expect(0);
    d.run(&["project", "start", "-n", "f"]).expect(0);
    assert!(wait_for(Duration::from_secs(60), || w.resident_share(cold) <= 0.10));
    assert!(wait_for(Duration::from_secs(30), || cycles(&d, "f") >= 3));
    let hot_left = w.resident_share(hot);
    assert!(
        hot_left >= 0.95,
        "an unflagged VMA was swapped: hot {hot_left}"
    );
}

#[test]
fn type_name_works_on_the_process_and_its_children_with_max_threads() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let comm = format!("wln{}", std::process::id() % 1_000_000);
    let w = Workload::spawn(&[
        "--hot-mib",
        "4",
        "--cold-mib",
        "16",
        "--comm",
        &comm,
        "--children",
        "2",
    ]);
    assert_eq!(w.children.len(), 2);
    let d = Daemon::start("byname");
    let s = Scratch::new("byname");
    d.add(&s.conf(
        "n.conf",
        &format!(
            "{}{}",
            project("n", ""),
            task("n", "name", &comm, "T=1\nmax_threads=3\n")
        ),
    ))
    .expect(0);
    d.run(&["project", "start", "-n", "n"]).expect(0);
    let all: Vec<i32> = std::iter::once(w.pid)
        .chain(w.children.iter().copied())
        .collect();
    // Every process of the family has its cold 16 MiB swapped out.
    let swapped = |pid: i32| etmem::act::swapped_bytes(pid).unwrap_or(0) >= 14 << 20;
    assert!(
        wait_for(Duration::from_secs(90), || all.iter().all(|&p| swapped(p))),
        "not every process was swapped"
    );
    let st = status(&d, "n");
    let pids: Vec<u64> = st["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{st}");
    for p in &all {
        assert!(pids.contains(&(*p as u64)), "pid {p} not worked on: {st}");
    }
    assert_eq!(st["workers"].as_u64().unwrap(), 3, "{st}");
}

#[test]
fn a_target_that_exits_mid_cycle_is_an_error_not_the_end() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let mut w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "8"]);
    let pid = w.pid;
    let d = Daemon::start("exits");
    let s = Scratch::new("exits");
    // Two scans three seconds apart: plenty of time to exit in the middle.
    let conf = format!(
        "[project]\nname=x\nloop=2\ninterval=3\nsleep=1\n[engine]\nname=slide\nproject=x\n{}",
        task("x", "pid", &pid.to_string(), "T=1\n")
    );
    d.add(&s.conf("x.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "x"]).expect(0);
    let one_pid = || status(&d, "x")["pids"].as_array().unwrap().len() == 1;
    assert!(wait_for(Duration::from_secs(10), one_pid));
    std::thread::sleep(Duration::from_millis(500));
    w.child.kill().unwrap();
    w.child.wait().unwrap();
    let mut last = String::new();
    let seen = wait_for(Duration::from_secs(30), || {
        last = d
            .run(&["project", "show", "-v", "-n", "x"])
            .expect(0)
            .stdout;
        last.contains(&format!("error: process {pid} exited\n"))
    });
    assert!(seen, "{last}");
    assert!(last.contains("true    \n"), "the project stopped: {last}");
    let before = cycles(&d, "x");
    assert!(
        wait_for(Duration::from_secs(30), || cycles(&d, "x") > before),
        "no cycle after the error"
    );
}

#[test]
fn project_stop_mid_scan_is_prompt() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "8"]);
    let d = Daemon::start("stopmid");
    let s = Scratch::new("stopmid");
    let conf = format!(
        "[project]\nname=m\nloop=3\ninterval=600\nsleep=600\n[engine]\nname=slide\nproject=m\n{}",
        task("m", "pid", &w.pid.to_string(), "T=1\n")
    );
    d.add(&s.conf("m.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "m"]).expect(0);
    let one_pid = || status(&d, "m")["pids"].as_array().unwrap().len() == 1;
    assert!(wait_for(Duration::from_secs(10), one_pid));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    d.run(&["project", "stop", "-n", "m"]).expect(0);
    // Reported, not asserted tightly: a stop that waited for the 600 s pause would never
    // get here within the suite's time.
    eprintln!("project stop mid-scan took {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(10));
    // And the daemon shuts down promptly too while another scan runs.
    d.run(&["project", "start", "-n", "m"]).expect(0);
    std::thread::sleep(Duration::from_millis(300));
    let mut d = d;
    let mut child = d.child.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let (took, st) = wait_exit(&mut child, Duration::from_secs(10)).expect("etmemd did not exit");
    eprintln!("etmemd exited after {took:?} mid-scan");
    assert_eq!(st.code(), Some(0));
}

#[test]
fn two_tasks_never_scan_one_process_at_once() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "8"]);
    let d = Daemon::start("claim");
    let s = Scratch::new("claim");
    // Each scan takes two passes three seconds apart; the two projects overlap.
    for name in ["c1", "c2"] {
        let conf = format!(
            "[project]\nname={name}\nloop=2\ninterval=3\nsleep=1\n[engine]\nname=slide\nproject={name}\n{}",
            task(name, "pid", &w.pid.to_string(), "T=1\n")
        );
        d.add(&s.conf(&format!("{name}.conf"), &conf)).expect(0);
    }
    d.run(&["project", "start", "-n", "c1"]).expect(0);
    d.run(&["project", "start", "-n", "c2"]).expect(0);
    let mut seen = String::new();
    let found = wait_for(Duration::from_secs(30), || {
        seen = d.run(&["project", "show", "-v"]).expect(0).stdout;
        seen.contains("skipped: pid") && seen.contains("another task is scanning it")
    });
    assert!(found, "{seen}");
}

/// Root may set the kernel's last pid (ns_last_pid) to make it hand out a given pid next:
/// the pid reuse that happens by itself once pids wrap around, made to happen now.
fn can_reuse_pids() -> bool {
    if std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/kernel/ns_last_pid")
        .is_err()
    {
        skip("/proc/sys/kernel/ns_last_pid is not writable here: cannot make a pid be reused");
        return false;
    }
    true
}

#[test]
fn a_type_pid_task_does_not_follow_a_process_that_reuses_the_pid() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") || !can_reuse_pids() {
        return;
    }
    let first = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "16"]);
    let pid = first.pid;
    let d = Daemon::start("pidreuse");
    let s = Scratch::new("pidreuse");
    d.add(&s.conf(
        "r.conf",
        &format!(
            "{}{}",
            project("r", ""),
            task("r", "pid", &pid.to_string(), "T=1\n")
        ),
    ))
    .expect(0);
    d.run(&["project", "start", "-n", "r"]).expect(0);
    assert!(wait_for(Duration::from_secs(30), || cycles(&d, "r") >= 1));
    drop(first); // killed and reaped: the pid is free
    let seen = d.verbose_until(&format!("error: process {pid} exited\n"));
    assert!(
        seen.contains(&format!("error: process {pid} exited\n")),
        "{seen}"
    );

    // An unrelated process gets the pid. The task must not take it for its process.
    let other = Workload::spawn_at_pid(pid, &["--hot-mib", "4", "--cold-mib", "16"])
        .expect("ns_last_pid was writable");
    let before = cycles(&d, "r");
    assert!(
        wait_for(Duration::from_secs(30), || cycles(&d, "r") >= before + 3),
        "cycles stopped"
    );
    let cold_left = other.resident_share(other.cold.unwrap());
    let swapped = etmem::act::swapped_bytes(other.pid).unwrap_or(0);
    assert!(
        cold_left >= 0.99 && swapped < 1 << 20,
        "the process that took pid {pid} was swapped: cold {:.1}% resident, VmSwap {swapped}",
        cold_left * 100.0
    );
    let v = d
        .run(&["project", "show", "-v", "-n", "r"])
        .expect(0)
        .stdout;
    assert!(
        v.contains(&format!(
            "error: process {pid} exited, and pid {pid} now names another process"
        )),
        "{v}"
    );
}

#[test]
fn a_child_that_exits_mid_cycle_is_not_replaced_by_whoever_takes_its_pid() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") || !can_reuse_pids() {
        return;
    }
    let parent = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "8", "--children", "1"]);
    let child = parent.children[0];
    let d = Daemon::start("childreuse");
    let s = Scratch::new("childreuse");
    // One worker, two scans three seconds apart: the parent is scanned first, for six
    // seconds, while the child waits its turn, listed but not yet worked on.
    let conf = format!(
        "[project]\nname=c\nloop=2\ninterval=3\nsleep=1\n[engine]\nname=slide\nproject=c\n{}",
        task("c", "pid", &parent.pid.to_string(), "T=1\nmax_threads=1\n")
    );
    d.add(&s.conf("c.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "c"]).expect(0);
    let listed = || {
        let st = status(&d, "c");
        st["cycles"] == 0 && st["pids"].as_array().unwrap().len() == 2
    };
    assert!(
        wait_for(Duration::from_secs(10), listed),
        "{}",
        status(&d, "c")
    );
    // The child exits (its parent reaps it) and an unrelated process gets its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), nix::sys::signal::SIGKILL).unwrap();
    let other = Workload::spawn_at_pid(child, &["--hot-mib", "1", "--cold-mib", "16"])
        .expect("ns_last_pid was writable");
    assert_eq!(
        cycles(&d, "c"),
        0,
        "the first cycle ended before the pid was reused"
    );
    assert!(
        wait_for(Duration::from_secs(60), || cycles(&d, "c") >= 2),
        "cycles stopped"
    );
    let cold_left = other.resident_share(other.cold.unwrap());
    let swapped = etmem::act::swapped_bytes(other.pid).unwrap_or(0);
    assert!(
        cold_left >= 0.99 && swapped < 1 << 20,
        "the process that took the child's pid {child} was swapped: cold {:.1}% resident, \
         VmSwap {swapped}",
        cold_left * 100.0
    );
    // The parent itself was worked on as usual.
    assert!(etmem::act::swapped_bytes(parent.pid).unwrap_or(0) >= 6 << 20);
}

#[test]
fn show_says_why_the_kernel_kept_what_was_asked() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    // All of it locked: the kernel refuses to page any of it out.
    let w = Workload::spawn(&["--hot-mib", "1", "--cold-mib", "8", "--mlock"]);
    let cold = w.cold.unwrap();
    let d = Daemon::start("kept");
    let s = Scratch::new("kept");
    let t = task("k", "pid", &w.pid.to_string(), "T=1\n");
    d.add(&s.conf("k.conf", &format!("{}{t}", project("k", ""))))
        .expect(0);
    d.run(&["project", "start", "-n", "k"]).expect(0);
    let mut st = serde_json::Value::Null;
    let asked = wait_for(Duration::from_secs(60), || {
        st = status(&d, "k");
        st["requested_bytes"].as_u64().unwrap_or(0) >= cold.len()
    });
    assert!(asked, "the cold region was never asked to leave: {st}");
    assert_eq!(st["vmswap_growth"].as_u64(), Some(0), "{st}");
    let kept = &st["kept"][0];
    assert!(
        kept["reason"].as_str().unwrap_or("").contains("locked"),
        "{st}"
    );
    assert!(kept["bytes"].as_u64().unwrap_or(0) >= cold.len(), "{st}");
    assert!(kept["ranges"].as_u64().unwrap_or(0) >= 1, "{st}");
    let verbose = d
        .run(&["project", "show", "-v", "-n", "k"])
        .expect(0)
        .stdout;
    let line = verbose
        .lines()
        .find(|l| l.trim_start().starts_with("kernel kept "))
        .unwrap_or_else(|| panic!("no `kernel kept` line: {verbose}"));
    assert!(line.contains("locked") && line.contains(" range"), "{line}");
}

/// `resident_floor` (ours): the process is never swapped below it; with a floor 16 MiB
/// under its resident size, about half of its 32 MiB of cold memory goes.
#[test]
fn resident_floor_is_never_crossed() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "32"]);
    let rss = || etmem::sys::process::status_bytes(w.pid, "VmRSS").unwrap();
    let floor = rss() - (16 << 20);
    let d = Daemon::start("slide-floor");
    let s = Scratch::new("slide-floor");
    let conf = format!(
        "{}{}",
        project("f", ""),
        task(
            "f",
            "pid",
            &w.pid.to_string(),
            &format!("T=1\nresident_floor={floor}\n")
        )
    );
    d.add(&s.conf("f.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "f"]).expect(0);
    assert!(wait_for(Duration::from_secs(60), || cycles(&d, "f") >= 4));
    let (left, now) = (w.resident_share(w.cold.unwrap()), rss());
    println!(
        "floor {floor}, VmRSS {now}, cold resident {:.1}%",
        left * 100.0
    );
    assert!(now >= floor, "VmRSS {now} below resident_floor={floor}");
    assert!(
        (0.3..=0.7).contains(&left),
        "cold region {:.1}% resident: the floor should stop the swap-out about halfway",
        left * 100.0
    );
}

/// Refaults: memory swapped out and read back is counted at the next cycle, and with
/// `refault_hold=N` (ours) it stays in DRAM for N cycles before it may go again.
#[test]
fn refaulted_memory_is_counted_and_held() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    let mut w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "32"]);
    let cold = w.cold.unwrap();
    let d = Daemon::start("slide-refault");
    let s = Scratch::new("slide-refault");
    let conf = format!(
        "{}{}",
        project("r", ""),
        task("r", "pid", &w.pid.to_string(), "T=1\nrefault_hold=4\n")
    );
    d.add(&s.conf("r.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "r"]).expect(0);
    assert!(wait_for(Duration::from_secs(60), || w.resident_share(cold) <= 0.1));
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
    assert!(
        w.resident_share(cold) >= 0.9,
        "verify did not read the cold region back"
    );
    let refaults = || status(&d, "r")["refaults_total"].as_u64().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || refaults() >= (24 << 20) / 4096),
        "refaults not counted: {}",
        status(&d, "r")
    );
    // Held: two more cycles and the cold region is still in DRAM.
    let c0 = cycles(&d, "r");
    assert!(wait_for(Duration::from_secs(30), || cycles(&d, "r") >= c0 + 2));
    let held = w.resident_share(cold);
    assert!(
        held >= 0.9,
        "held memory swapped again: {:.1}% resident",
        held * 100.0
    );
    // Then the hold ends and the still-cold memory goes again.
    assert!(
        wait_for(Duration::from_secs(60), || w.resident_share(cold) <= 0.1),
        "the hold never ended"
    );
}
