//! `etmem-swap` against the real kernel and the test workload: explicit ranges, scan
//! output on stdin, `--cold`, `--dry-run`, and the refusals (bad ranges, bad input, no
//! such process) that must move nothing. Swapping needs root (CAP_SYS_NICE over the
//! workload) and an active swap device; without them those tests say why they skipped
//! (a failure under ETMEM_REQUIRE_ALL=1).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::workload::Workload;
use common::{can_swap, etmem, parse_json, run, texts, wait_for};
use etmem::act::{resident_bytes, swapped_bytes};
use etmem::types::Range;

fn vmswap(w: &Workload) -> u64 {
    swapped_bytes(w.pid).expect("VmSwap of the workload")
}

fn resident(w: &Workload, r: Range) -> u64 {
    resident_bytes(w.pid, &[r]).expect("pagemap of the workload")
}

/// `START-END` as etmem prints it.
fn hex(r: Range) -> String {
    format!("{:x}-{:x}", r.start, r.end)
}

/// The numbers of the text summary line `pid P requested R bytes swapped S bytes
/// (VmSwap +D bytes) backend B`: (R, S, D).
fn summary(out: &str, pid: i32) -> (u64, u64, i64) {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("pid {pid} requested ")))
        .unwrap_or_else(|| panic!("no summary line in {out:?}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (f[4], f[5], f[7], f[8], f[10], f[11]),
        ("bytes", "swapped", "bytes", "(VmSwap", "bytes)", "backend"),
        "{line}"
    );
    let d = f[9].trim_start_matches('+').parse().expect("VmSwap delta");
    (f[3].parse().unwrap(), f[6].parse().unwrap(), d)
}

/// The cold region went to swap (≥ 90 % by VmSwap and by residency) and the hot one
/// stayed (≥ 95 % resident).
fn assert_cold_out_hot_in(w: &Workload, before: u64, what: &str) {
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let grown = vmswap(w).saturating_sub(before);
    println!(
        "{what}: VmSwap +{grown} of cold {}; cold resident {}; hot resident {} of {}",
        cold.len(),
        resident(w, cold),
        resident(w, hot),
        hot.len()
    );
    assert!(grown >= cold.len() / 10 * 9, "{what}: VmSwap +{grown}");
    assert!(
        resident(w, cold) <= cold.len() / 10,
        "{what}: cold still in DRAM"
    );
    assert!(
        resident(w, hot) >= hot.len() / 100 * 95,
        "{what}: hot region swapped too"
    );
}

#[test]
fn a_range_goes_to_swap_and_comes_back_intact() {
    if !can_swap("process_madvise over the workload needs CAP_SYS_NICE") {
        return;
    }
    let mut w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "64"]);
    let cold = w.cold.unwrap();
    let before = vmswap(&w);
    let o = run(&["swap", "--pid", &w.pid.to_string(), "--range", &hex(cold)]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let (requested, swapped, delta) = summary(&out, w.pid);
    println!("requested {requested} swapped {swapped} VmSwap delta {delta}");
    assert_eq!(requested, cold.len());
    assert_eq!(swapped, cold.len());
    assert!(delta >= (cold.len() / 10 * 9) as i64, "{out}");
    assert!(vmswap(&w) - before >= cold.len() / 10 * 9);
    assert!(out.trim_end().ends_with("backend process_madvise"), "{out}");
    assert!(
        w.verify().starts_with("verify ok "),
        "bytes lost after swap-in"
    );
}

#[test]
fn stdin_takes_the_output_of_etmem_scan_pages() {
    if !can_swap("process_madvise over the workload needs CAP_SYS_NICE") {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "64"]);
    let pid = w.pid.to_string();
    let before = vmswap(&w);
    let mut scan = Command::new(common::etmem())
        .args(["scan", "--pid", &pid, "--pages", "--loop", "2"])
        .args(["--interval", "0.5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("etmem scan runs");
    let scan_out = scan.stdout.take().expect("piped scan output");
    // Pages accessed in both scans (count 2) stay; the never-touched ones (0) go.
    let swap = Command::new(common::etmem())
        .args(["swap", "--pid", &pid, "--stdin", "--threshold", "1"])
        .stdin(Stdio::from(scan_out))
        .output()
        .expect("etmem swap runs");
    assert!(scan.wait().unwrap().success(), "the scan failed");
    let (out, err) = texts(&swap);
    assert!(swap.status.success(), "{err}");
    let (requested, swapped, delta) = summary(&out, w.pid);
    println!("requested {requested} swapped {swapped} VmSwap delta {delta}");
    assert!(requested >= w.cold.unwrap().len(), "{out}");
    assert_cold_out_hot_in(&w, before, "--stdin");
}

#[test]
fn cold_scans_and_swaps_only_what_is_cold() {
    if !can_swap("process_madvise over the workload needs CAP_SYS_NICE") {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "64"]);
    let before = vmswap(&w);
    let o = run(&[
        "swap",
        "--pid",
        &w.pid.to_string(),
        "--cold",
        "--loop",
        "2",
        "--interval",
        "1",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("# scan backend "), "{out}");
    assert!(out.contains(" loop 2 interval 1 threshold 2: "), "{out}");
    let (requested, swapped, delta) = summary(&out, w.pid);
    println!("requested {requested} swapped {swapped} VmSwap delta {delta}");
    assert_cold_out_hot_in(&w, before, "--cold");
}

#[test]
fn cold_with_children_swaps_each_process() {
    if !can_swap("process_madvise over the workload needs CAP_SYS_NICE") {
        return;
    }
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "32", "--children", "2"]);
    assert_eq!(w.children.len(), 2);
    let all: Vec<i32> = std::iter::once(w.pid).chain(w.children.clone()).collect();
    let before: Vec<u64> = all.iter().map(|&p| swapped_bytes(p).unwrap()).collect();
    let o = run(&[
        "swap",
        "-p",
        &w.pid.to_string(),
        "--cold",
        "--children",
        "-b",
        "smaps",
        "--json",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "one JSON line per process: {out}");
    let cold = w.cold.unwrap().len();
    for ((line, &pid), b) in lines.iter().zip(&all).zip(&before) {
        let j = parse_json(line);
        assert_eq!(
            j["pid"].as_u64().unwrap(),
            pid as u64,
            "processes in order: {out}"
        );
        let grown = swapped_bytes(pid).unwrap() - b;
        println!("pid {pid}: VmSwap +{grown}");
        assert!(
            grown >= cold / 10 * 9,
            "pid {pid}: VmSwap +{grown} of {cold}"
        );
    }
    // Ranges name addresses of one process: --children with them is a usage error.
    let o = run(&["swap", "-p", &w.pid.to_string(), "-r", "0-1000", "-c"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn dry_run_prints_the_ranges_and_moves_nothing() {
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "8"]);
    let (pid, cold) = (w.pid.to_string(), w.cold.unwrap());
    let before = vmswap(&w);
    let half = Range::new(cold.start, cold.start + cold.len() / 2);
    let rest = Range::new(half.end, cold.end);
    let o = run(&[
        "swap",
        "-p",
        &pid,
        "-r",
        &format!("0x{:x}-0x{:x}", rest.start, rest.end),
        "-r",
        &hex(half),
        "--dry-run",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "pid {pid} dry-run requested {} bytes in 1 ranges backend ",
            cold.len()
        )),
        "{out}"
    );
    assert_eq!(
        lines[1],
        format!("  {}", hex(cold)),
        "merged into one range"
    );
    // --cold --dry-run scans but moves nothing either; its output is JSON here.
    let o = run(&[
        "swap",
        "-p",
        &pid,
        "--cold",
        "-i",
        "0.3",
        "--dry-run",
        "--json",
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let j = parse_json(&out);
    assert_eq!(j["dry_run"], true);
    assert_eq!(j.get("swapped_bytes"), Some(&serde_json::Value::Null));
    let covered = j["ranges"].as_array().unwrap().iter().any(|r| {
        r["start"].as_u64().unwrap() <= cold.start && cold.end <= r["end"].as_u64().unwrap()
    });
    assert!(covered, "the cold region is among the cold ranges: {out}");
    assert_eq!(vmswap(&w), before, "VmSwap changed in a dry run");
    assert_eq!(resident(&w, cold), cold.len(), "cold pages left DRAM");
}

#[test]
fn json_output_parses_back() {
    if !can_swap("process_madvise over the workload needs CAP_SYS_NICE") {
        return;
    }
    let w = Workload::spawn(&["--cold-mib", "8"]);
    let cold = w.cold.unwrap();
    let o = run(&["swap", "-p", &w.pid.to_string(), "-r", &hex(cold), "--json"]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let j = parse_json(&out);
    assert_eq!(j["pid"].as_u64().unwrap(), w.pid as u64);
    assert_eq!(j["backend"].as_str().unwrap(), "process_madvise");
    assert_eq!(j["requested_bytes"].as_u64().unwrap(), cold.len());
    assert_eq!(j["swapped_bytes"].as_u64().unwrap(), cold.len());
    match j["vmswap_delta"].as_f64() {
        Some(n) => assert!(n >= (cold.len() / 10 * 9) as f64, "{out}"),
        None => panic!("vmswap_delta {}", j["vmswap_delta"]),
    }
    assert!(j["skipped"].as_array().unwrap().is_empty());
    let r = &j["ranges"][0];
    assert_eq!(
        (r["start"].as_u64().unwrap(), r["end"].as_u64().unwrap()),
        (cold.start, cold.end)
    );
}

/// Run `etmem swap -p PID ARGS...` with `stdin` as its input.
fn swap_with_input(pid: i32, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = Command::new(common::etmem())
        .args(["swap", "-p", &pid.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etmem swap runs");
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    c.wait_with_output().unwrap()
}

#[test]
fn bad_ranges_are_refused_and_nothing_moves() {
    let w = Workload::spawn(&["--hot-mib", "4", "--cold-mib", "8"]);
    let cold = w.cold.unwrap();
    let before = vmswap(&w);
    let page = etmem::types::page_size();
    let good = hex(cold);
    let unaligned = hex(Range::new(cold.start + 16, cold.end));
    let reversed = hex(Range::new(cold.end, cold.start));
    // The cold region sits between PROT_NONE guard pages that are not swappable, but
    // the far side of the address space is surely unmapped.
    let outside = Range::new(0x1000_0000_0000 - 4 * page, 0x1000_0000_0000);
    let exec = etmem::sys::maps::read_maps(w.pid)
        .unwrap()
        .into_iter()
        .find(|v| v.exec)
        .expect("an executable mapping")
        .range;
    let exec = Range::new(exec.start, exec.start + page);
    let text = hex(exec);
    let outside_text = hex(outside);
    let none = String::new();
    let cases: Vec<(Vec<&str>, String, String)> = vec![
        (
            vec!["-r", &good, "-r", &unaligned],
            none.clone(),
            format!(
                "--range {unaligned}: the start {:#x} is not aligned to the page size \
                 ({page} bytes)",
                cold.start + 16
            ),
        ),
        (
            vec!["-r", &reversed],
            none.clone(),
            format!("--range {reversed}: the start is above the end"),
        ),
        (
            vec!["-r", &good, "-r", &outside_text],
            none.clone(),
            format!(
                "--range {outside_text}: {:#x}-{:#x} is not mapped in process {}",
                outside.start, outside.end, w.pid
            ),
        ),
        (
            vec!["-r", &text],
            none.clone(),
            format!(
                "--range {text}: {:#x}-{:#x} is in a mapping etmem does not swap (r-xp ",
                exec.start, exec.end
            ),
        ),
        (
            vec!["--stdin"],
            format!("# ranges\n{good}\nnot a range\n"),
            "stdin line 3: \"not a range\" is neither START-END nor a line of etmem-scan \
             --pages output"
                .to_string(),
        ),
        (
            vec!["--stdin"],
            format!("{good}\n{unaligned}\n"),
            format!("stdin line 2: range {unaligned}: the start"),
        ),
    ];
    for (args, input, needle) in cases {
        let o = swap_with_input(w.pid, &args, &input);
        let (out, err) = texts(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(&needle), "{args:?}: {err:?} lacks {needle:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    assert_eq!(vmswap(&w), before, "a refused request moved pages");
    assert_eq!(
        resident(&w, cold),
        cold.len(),
        "a refused request moved pages"
    );
    // Scan output about another process is refused too.
    let other = format!("pid {} comm x backend smaps\n  {good} 4K 0\n", w.pid + 1);
    let o = swap_with_input(w.pid, &["--stdin"], &other);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        texts(&o).1.contains("the input is about pid"),
        "{:?}",
        texts(&o)
    );
}

#[test]
fn a_missing_process_is_exit_1() {
    let o = run(&["swap", "-p", "999999999", "-r", "1000-2000"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        texts(&o).1.trim(),
        "etmem-swap: no process with pid 999999999"
    );
    let o = run(&["swap", "--name", "no-such-comm-x", "--cold"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(texts(&o).1.contains("no process named \"no-such-comm-x\""));
}

#[test]
fn usage_and_help() {
    for (args, needle) in [
        (
            vec!["swap"],
            "give the process to swap with --pid N or --name COMM",
        ),
        (
            vec!["swap", "-p", "1"],
            "--range START-END, --stdin or --cold",
        ),
        (vec!["swap", "-p", "1", "--cold", "-r", "0-1000"], "--cold"),
        (vec!["swap", "-p", "1", "-r", "0-1000", "-l", "2"], "--loop"),
        (vec!["swap", "-p", "1", "-r", "zz"], "--range: \"zz\""),
        (
            vec!["swap", "-p", "1", "--cold", "-s", "x"],
            "--swap-backend",
        ),
        (
            vec!["swap", "-p", "1", "--bogus"],
            "unrecognized option '--bogus'",
        ),
    ] {
        let o = run(&args);
        let (_, err) = texts(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("Try 'etmem-swap --help'."), "{err}");
    }
    let o = run(&["swap", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let (out, _) = texts(&o);
    for opt in [
        "--pid",
        "--name",
        "--range",
        "--stdin",
        "--cold",
        "--threshold",
        "--loop",
        "--interval",
        "--backend",
        "--swap-backend",
        "--dry-run",
        "--json",
        "Exit status",
    ] {
        assert!(out.contains(opt), "help lacks {opt}");
    }
}

#[test]
fn a_signal_ends_the_cold_scan_promptly() {
    let w = Workload::spawn(&["--cold-mib", "4"]);
    let mut c = Command::new(common::etmem())
        .args([
            "swap",
            "-p",
            &w.pid.to_string(),
            "--cold",
            "-l",
            "20",
            "-i",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = c.wait().unwrap();
    let waited = t.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    assert!(waited < Duration::from_secs(3), "took {waited:?} to stop");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted by a signal"), "{err}");
}

/// `--stdin` streams its input and bounds a line: `< /dev/zero` (one endless line) is
/// refused after one line's worth of bytes instead of growing to gigabytes (it reached
/// 2 GiB in 4.5 s), and nothing is swapped.
#[test]
fn endless_stdin_is_refused_not_held() {
    let me = std::process::id().to_string();
    let mut child = Command::new(etmem())
        .args(["swap", "--pid", &me, "--stdin", "--dry-run"])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("etmem-swap --stdin < /dev/zero still ran after 30 s");
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = texts(&o).1;
    assert!(
        err.contains("stdin line 1 is longer than 8192 bytes"),
        "{err}"
    );
}
