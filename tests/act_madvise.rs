//! The process_madvise swapper against the real kernel: a child's anonymous memory goes
//! to swap (zram here) and comes back intact. Needs root (CAP_SYS_NICE over the child)
//! and active swap; without them a test says why it skipped, or fails when
//! ETMEM_REQUIRE_ALL=1.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};

use etmem::act;
use etmem::error::Kind;
use etmem::sys::pidfd::Pidfd;
use etmem::types::SwapBackend;
use etmem::types::{Pid, Range};

const CHILD_ENV: &str = "ETMEM_ACT_MADVISE_CHILD";
const MIB: u64 = 1 << 20;
const SIZE: u64 = 64 * MIB;

/// Whether the test may go on; prints why not, or panics under ETMEM_REQUIRE_ALL=1.
fn need(ok: bool, why: &str) -> bool {
    if !ok {
        if std::env::var("ETMEM_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("cannot run (ETMEM_REQUIRE_ALL=1): {why}");
        }
        eprintln!("skipped: {why}");
    }
    ok
}

fn is_root() -> bool {
    need(
        nix::unistd::geteuid().is_root(),
        "needs root (CAP_SYS_NICE over the child)",
    )
}

fn has_swap() -> bool {
    let active = std::fs::read_to_string("/proc/swaps")
        .map(|t| t.lines().count() > 1)
        .unwrap_or(false);
    need(active, "no active swap device in /proc/swaps")
}

fn pattern(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xa5a5_5a5a_0f0f_f0f0
}

/// The workload, when this binary runs as the child: 64 MiB of private anonymous memory
/// (THP off, so every page is a base page) filled with a pattern; prints `READY start len`,
/// then on `check` re-reads every word and exits 0 only if all are intact.
#[test]
fn child_workload() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let _ = nix::sys::prctl::set_thp_disable(true);
    let page = etmem::types::page_size() as usize;
    let mut v = vec![0u8; SIZE as usize + page];
    let skew = (v.as_ptr() as usize).next_multiple_of(page) - v.as_ptr() as usize;
    let mem = &mut v[skew..skew + SIZE as usize];
    for (i, w) in mem.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&pattern(i).to_ne_bytes());
    }
    println!("READY {:x} {:x}", mem.as_ptr() as u64, SIZE);
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let bad = mem
        .chunks_exact(8)
        .enumerate()
        .filter(|(i, w)| *w != pattern(*i).to_ne_bytes())
        .count();
    println!("CHECKED {bad}");
    std::io::stdout().flush().unwrap();
    std::process::exit(if bad == 0 { 0 } else { 1 });
}

struct Workload {
    child: Child,
    out: BufReader<ChildStdout>,
    range: Range,
}

impl Workload {
    fn spawn() -> Workload {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_workload",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let range = loop {
            let line = read_line(&mut out);
            // libtest may have printed `test child_workload ... ` before it on the line.
            if let Some((_, rest)) = line.split_once("READY ") {
                let (a, l) = rest.trim().split_once(' ').unwrap();
                let start = u64::from_str_radix(a, 16).unwrap();
                break Range::new(start, start + u64::from_str_radix(l, 16).unwrap());
            }
        };
        Workload { child, out, range }
    }

    fn pid(&self) -> Pid {
        self.child.id() as Pid
    }

    /// Ask the child to verify its memory; returns the number of bad words and its status.
    fn check(mut self) -> (u64, bool) {
        writeln!(self.child.stdin.as_mut().unwrap(), "check").unwrap();
        let bad = loop {
            let line = read_line(&mut self.out);
            if let Some((_, n)) = line.split_once("CHECKED ") {
                break n.trim().parse().unwrap();
            }
        };
        (bad, self.child.wait().unwrap().success())
    }
}

fn read_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    assert!(
        out.read_line(&mut line).unwrap() > 0,
        "child closed its stdout"
    );
    line
}

#[test]
fn pageout_of_64_mib_reaches_swap_and_comes_back_intact() {
    if !is_root() || !has_swap() {
        return;
    }
    let w = Workload::spawn();
    let pid = w.pid();
    let swap_before = act::swapped_bytes(pid).unwrap();
    let resident_before = act::resident_bytes(pid, &[w.range]).unwrap();

    let target = Pidfd::open(pid).unwrap();
    let mut swapper = act::open(Some(SwapBackend::ProcessMadvise), &target).unwrap();
    assert_eq!(swapper.backend(), SwapBackend::ProcessMadvise);
    let t = std::time::Instant::now();
    let report = swapper.swap_out(&target, &[w.range], &|| false).unwrap();
    let took = t.elapsed();

    let swap_after = act::swapped_bytes(pid).unwrap();
    let resident_after = act::resident_bytes(pid, &[w.range]).unwrap();
    eprintln!(
        "requested {} advised {} calls {} skipped {:?} in {took:?}; VmSwap {} -> {} \
         (+{}); resident {} -> {}",
        report.requested_bytes,
        report.advised_bytes,
        report.calls,
        report.skipped,
        swap_before,
        swap_after,
        swap_after.saturating_sub(swap_before),
        resident_before,
        resident_after
    );
    assert_eq!(report.requested_bytes, SIZE);
    assert_eq!(report.advised_bytes, SIZE);
    assert!(report.skipped.is_empty());
    assert!(
        resident_before >= SIZE * 9 / 10,
        "child memory not resident before"
    );
    assert!(
        swap_after.saturating_sub(swap_before) >= SIZE * 9 / 10,
        "VmSwap grew by only {} bytes",
        swap_after.saturating_sub(swap_before)
    );
    assert!(resident_after <= resident_before - SIZE * 9 / 10);

    let (bad, ok) = w.check();
    assert_eq!(bad, 0, "words lost after swap-in");
    assert!(ok, "child failed");
}

#[test]
fn refused_and_unmapped_ranges_are_skipped_with_the_reason() {
    // Our own process: process_madvise on oneself needs no privilege.
    let me = std::process::id() as Pid;
    let target = Pidfd::open(me).unwrap();
    let swapper = act::open(Some(SwapBackend::ProcessMadvise), &target);
    if !need(swapper.is_ok(), "process_madvise(MADV_PAGEOUT) unavailable") {
        return;
    }
    let mut swapper = swapper.unwrap();
    let page = etmem::types::page_size();
    let nowhere = Range::new(page, 3 * page); // below mmap_min_addr: never mapped
    let r = swapper.swap_out(&target, &[nowhere], &|| false).unwrap();
    assert_eq!(r.requested_bytes, 2 * page);
    assert_eq!(r.advised_bytes, 0);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].0, nowhere);
    assert!(r.skipped[0].1.contains("not mapped"), "{}", r.skipped[0].1);
}

/// A `sleep 30` child (exec done), its pidfd and a process_madvise swapper for it.
fn sleeper() -> (Child, Pid, Pidfd, Box<dyn act::Swapper>) {
    let child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as Pid;
    std::thread::sleep(std::time::Duration::from_millis(50)); // let exec finish
    let target = Pidfd::open(pid).unwrap();
    let swapper = act::open(Some(SwapBackend::ProcessMadvise), &target).unwrap();
    (child, pid, target, swapper)
}

#[test]
fn every_vma_of_a_process_swaps_or_is_skipped_and_it_lives_on() {
    if !is_root() {
        return;
    }
    let (mut child, pid, target, mut swapper) = sleeper();
    let vmas = etmem::sys::maps::read_maps(pid).unwrap();
    let ranges: Vec<Range> = vmas.iter().map(|v| v.range).collect();
    let r = swapper.swap_out(&target, &ranges, &|| false).unwrap();
    eprintln!("sleep child: {r:?}");
    assert!(
        r.advised_bytes + r.skipped.iter().map(|s| s.0.len()).sum::<u64>() >= r.requested_bytes
    );
    // Adjacent VMAs were merged into one range; only the kernel-special ones may be lost.
    for (range, why) in &r.skipped {
        assert!(!why.is_empty());
        let special = vmas.iter().any(|v| v.range.covers(range) && v.is_special());
        let user = range.start < 1 << 63;
        assert!(
            special || !user,
            "skipped {range} ({why}) is not a special mapping"
        );
    }
    assert!(target.is_alive());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_exited_process_is_gone() {
    if !is_root() {
        return;
    }
    let (mut child, pid, target, mut swapper) = sleeper();
    child.kill().unwrap();
    child.wait().unwrap();
    let e = swapper
        .swap_out(&target, &[Range::new(0x10_0000, 0x20_0000)], &|| false)
        .unwrap_err();
    assert_eq!(e.kind, Kind::Gone, "{e}");
    assert!(e.msg.contains(&format!("process {pid} exited")), "{e}");
    // A swapper is made from a pidfd, and none can be had for the exited process.
    let e = Pidfd::open(pid)
        .and_then(|t| act::open(None, &t))
        .err()
        .unwrap();
    assert_eq!(e.kind, Kind::NotFound, "{e}");
}

#[test]
fn auto_detect_picks_process_madvise_and_swap_pages_names_the_module() {
    let me = std::process::id() as Pid;
    let openeuler = std::path::Path::new("/proc/self/swap_pages").exists();
    if !need(
        !openeuler,
        "this kernel has /proc/PID/swap_pages (etmem_swap)",
    ) {
        assert_eq!(act::detect(me), SwapBackend::SwapPages);
        return;
    }
    assert_eq!(act::detect(me), SwapBackend::ProcessMadvise);
    let target = Pidfd::open(me).unwrap();
    if let Ok(s) = act::open(None, &target) {
        assert_eq!(s.backend(), SwapBackend::ProcessMadvise);
    }
    let e = act::open(Some(SwapBackend::SwapPages), &target)
        .err()
        .unwrap();
    assert_eq!(e.kind, Kind::Unsupported, "{e}");
    assert!(e.msg.contains("etmem_swap"), "{e}");
    assert!(e.msg.contains("modprobe etmem_swap"), "{e}");
}
