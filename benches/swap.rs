//! Swap-out: throughput of our process_madvise swapper against the floor, and how well a
//! slide project separates a workload's cold memory from its hot memory on this host's swap.
//!
//!     cargo bench --bench swap
//!
//! 1. **Throughput.** A workload with N MiB of cold anonymous memory (base pages; default
//!    sizes 256 and 1024 MiB, `ETMEM_BENCH_SWAP_MIB=...` for others). Two range lists over
//!    its cold region: the whole region as one range, and every other 64 KiB chunk of it
//!    (many ranges, as fragmented cold runs give). For each, alternating pairs (order
//!    swapped every pair, `ETMEM_BENCH_PAIRS`, default 7, after one untimed warm-up pair):
//!    - **ours**: `act::open(Some(ProcessMadvise), &pidfd)` + `swap_out(ranges)`, as the
//!      daemon does each cycle (pidfd, probe, coalescing, chunking, short-count handling);
//!    - **floor**: open a pidfd and call the raw `process_madvise(MADV_PAGEOUT)` over the
//!      same ranges in chunks of at most 1024 iovecs (`UIO_MAXIOV`), nothing else.
//!
//!    Before every run the workload re-reads and checks every page (SIGUSR1, `verify ok`),
//!    which brings the memory back into DRAM and proves nothing was lost; the bench checks
//!    that the ranges are fully resident again. Reported: MiB/s of each (bytes asked / wall
//!    time, median), the median of the per-pair ratios ours/floor, and the VmSwap growth of
//!    the workload per run as a share of the bytes asked (what really left DRAM).
//!
//! 2. **Effectiveness.** A real daemon (the `etmem` binary built with this bench, run as
//!    `etmem etmemd`) and a workload of 1024 MiB cold + 256 MiB hot memory (read
//!    continuously; `ETMEM_BENCH_COLD_MIB` / `ETMEM_BENCH_HOT_MIB` override), one slide
//!    project `loop=1 interval=1 sleep=1`, task `T=1` on the workload's pid, default
//!    backends. After each of the first 5 cycles (`ETMEM_BENCH_CYCLES`), seen through
//!    `etmem project show --json`, the bench reads the workload's page residency
//!    (pagemap), major faults and the daemon's CPU time and RSS. At the end the workload
//!    verifies every page.
//!
//! `ETMEM_BENCH_SWAP_ONLY=throughput` or `=effectiveness` runs one part. Needs root
//! (process_madvise on another process needs CAP_SYS_NICE) and active swap; the bench
//! says so and measures nothing otherwise.

use std::time::{Duration, Instant};

use etmem::act;
use etmem::sys::pidfd::Pidfd;
use etmem::sys::process_madvise::{process_madvise, MAX_IOVECS};
use etmem::types::SwapBackend;
use etmem::types::{Pid, Range};

/// The workload, daemon and JSON helpers of the integration tests, shared.
#[path = "../tests/common/mod.rs"]
mod common;
use common::daemon::{Daemon, Scratch};
use common::parse_json;
use common::workload::Workload;
const MIB: u64 = 1 << 20;
/// How often the effectiveness run asks the daemon whether a cycle ended.
const POLL: Duration = Duration::from_millis(100);

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// /proc readings.

/// Fields of `/proc/PID/stat` after the `(comm)`, numbered as in proc(5) (3 = state).
fn stat_field(pid: Pid, n: usize) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .nth(n - 3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system, all threads) the process has used.
fn cpu_secs(pid: Pid) -> f64 {
    let ticks = stat_field(pid, 14) + stat_field(pid, 15);
    ticks as f64 / clk_tck() as f64
}

/// Clock ticks per second of /proc/PID/stat times (`sysconf(_SC_CLK_TCK)`).
fn clk_tck() -> i64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&h| h > 0)
        .unwrap_or(100)
}

/// Major page faults of the process so far (a swap-in from zram is one).
fn majflt(pid: Pid) -> u64 {
    stat_field(pid, 12)
}

fn status_bytes(pid: Pid, key: &str) -> u64 {
    etmem::sys::process::status_bytes(pid, key).unwrap_or(0)
}

fn resident(pid: Pid, r: Range) -> u64 {
    act::resident_bytes(pid, &[r]).expect("pagemap")
}

/// The active swap devices (`/proc/swaps`), described, and the free swap in bytes.
fn swap_devices() -> (Vec<String>, u64) {
    let text = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut devs = Vec::new();
    let mut free = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let (size, used): (u64, u64) = (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0));
        free += size.saturating_sub(used) * 1024;
        let mut d = format!("{} ({}, {} MiB)", f[0], f[1], size / 1024);
        if let Some(name) = f[0].strip_prefix("/dev/") {
            let algo = std::fs::read_to_string(format!("/sys/block/{name}/comp_algorithm"))
                .ok()
                .and_then(|a| {
                    a.split_whitespace()
                        .find(|w| w.starts_with('['))
                        .map(|w| w.trim_matches(['[', ']']).to_string())
                });
            if let Some(a) = algo {
                d = format!("{} ({}, {} MiB, {a})", f[0], f[1], size / 1024);
            }
        }
        devs.push(d);
    }
    (devs, free)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn pct(part: f64, whole: f64) -> String {
    format!("{:.1} %", 100.0 * part / whole.max(1.0))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem = etmem::sys::meminfo::read().map(|m| m.total).unwrap_or(0);
    let (devs, free) = swap_devices();
    println!(
        "Host: Linux {}, {} CPUs, {} MiB RAM; swap: {}",
        host.trim(),
        etmem::sys::online_cpus(),
        mem / MIB,
        if devs.is_empty() {
            "none".to_string()
        } else {
            devs.join(", ")
        }
    );
    if devs.is_empty() {
        println!(
            "NO SWAP IS CONFIGURED (/proc/swaps lists no device): MADV_PAGEOUT cannot move \
             anonymous memory anywhere, so there is nothing to measure. Set up swap, e.g. \
             zram: `modprobe zram && zramctl -f -s 4G -a lzo-rle` then `mkswap` and \
             `swapon` the device."
        );
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!(
            "NOT ROOT: process_madvise(MADV_PAGEOUT) on another process needs CAP_SYS_NICE \
             over it; run the bench as root. Nothing measured."
        );
        return;
    }
    let only = std::env::var("ETMEM_BENCH_SWAP_ONLY").unwrap_or_default();
    if only.is_empty() || only == "throughput" {
        let sizes: Vec<u64> = std::env::var("ETMEM_BENCH_SWAP_MIB")
            .unwrap_or_else(|_| "256,1024".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        throughput(&sizes, env_or("ETMEM_BENCH_PAIRS", 7), free);
    }
    if only.is_empty() || only == "effectiveness" {
        effectiveness(
            env_or("ETMEM_BENCH_COLD_MIB", 1024),
            env_or("ETMEM_BENCH_HOT_MIB", 256),
            env_or("ETMEM_BENCH_CYCLES", 5),
        );
    }
}

// ---------------------------------------------------------------------------------------
// 1. Throughput.

/// Every other `chunk` bytes of `r`: the first, third, fifth... chunk.
fn every_other(r: Range, chunk: u64) -> Vec<Range> {
    (r.start..r.end)
        .step_by(2 * chunk as usize)
        .map(|a| Range::new(a, (a + chunk).min(r.end)))
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Ours,
    Floor,
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`): the
/// swap-out's own work, user and kernel (zram compresses in the caller), without the time
/// other processes held the CPU.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One swap-out of `ranges` by `side`: its wall time, CPU time of this thread and the
/// bytes the kernel advised.
fn run_once(side: Side, pid: Pid, ranges: &[Range]) -> (Duration, Duration, u64) {
    let cpu0 = thread_cpu_ns();
    let (wall, advised) = match side {
        Side::Ours => {
            let t = Instant::now();
            let target = Pidfd::open(pid).expect("pidfd");
            let mut s = act::open(Some(SwapBackend::ProcessMadvise), &target).expect("swapper");
            let r = s.swap_out(&target, ranges, &|| false).expect("swap_out");
            let d = t.elapsed();
            if !r.skipped.is_empty() {
                eprintln!("ours: the kernel skipped {:?}", r.skipped.first());
            }
            (d, r.advised_bytes)
        }
        Side::Floor => {
            let t = Instant::now();
            let target = Pidfd::open(pid).expect("pidfd");
            let mut done = 0;
            for chunk in ranges.chunks(MAX_IOVECS) {
                done += process_madvise(&target, chunk, libc::MADV_PAGEOUT).expect("pageout");
            }
            (t.elapsed(), done)
        }
    };
    let cpu = Duration::from_nanos(thread_cpu_ns().saturating_sub(cpu0));
    (wall, cpu, advised)
}

fn throughput(sizes: &[u64], pairs: usize, swap_free: u64) {
    println!();
    println!("## Throughput: swap-out of a workload's cold memory (medians of {pairs} pairs)");
    println!();
    println!("| cold memory | ranges | bytes asked | ours | floor | ours/floor (min–max) | ours/floor by CPU time | left DRAM (VmSwap growth) ours / floor |");
    println!("|---|---|---|---|---|---|---|---|");
    for &mib in sizes {
        if mib * MIB > swap_free {
            println!(
                "| {mib} MiB | skipped: only {} MiB of swap free | | | | | | |",
                swap_free / MIB
            );
            continue;
        }
        let mut w = Workload::spawn(&["--cold-mib", &mib.to_string()]);
        let cold = w.cold.expect("cold region");
        let lists = [("1 (whole region)".to_string(), vec![cold]), {
            let l = every_other(cold, 64 << 10);
            (format!("{} (every other 64 KiB)", l.len()), l)
        }];
        for (label, ranges) in &lists {
            let asked: u64 = ranges.iter().map(Range::len).sum();
            let (mut ours, mut floor, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            let mut cpu_ratios = Vec::new();
            let (mut left_ours, mut left_floor) = (Vec::new(), Vec::new());
            for pair in 0..=pairs {
                let order = if pair % 2 == 0 {
                    [Side::Ours, Side::Floor]
                } else {
                    [Side::Floor, Side::Ours]
                };
                let (mut secs, mut cpus) = ([0.0; 2], [0.0; 2]);
                for side in order {
                    // Back into DRAM, every byte checked.
                    let v = w.verify();
                    assert!(v.starts_with("verify ok"), "workload: {v}");
                    let res: u64 = act::resident_bytes(w.pid, ranges).expect("pagemap");
                    if res != asked {
                        eprintln!("note: {} of {} bytes resident before a run", res, asked);
                    }
                    let swap0 = status_bytes(w.pid, "VmSwap");
                    let (d, cpu, advised) = run_once(side, w.pid, ranges);
                    let left = status_bytes(w.pid, "VmSwap").saturating_sub(swap0) as f64;
                    if advised != asked {
                        eprintln!("note: advised {advised} of {asked} bytes");
                    }
                    if pair == 0 {
                        continue; // warm-up
                    }
                    let mibs = asked as f64 / MIB as f64 / d.as_secs_f64();
                    match side {
                        Side::Ours => {
                            secs[0] = d.as_secs_f64();
                            cpus[0] = cpu.as_secs_f64();
                            ours.push(mibs);
                            left_ours.push(left);
                        }
                        Side::Floor => {
                            secs[1] = d.as_secs_f64();
                            cpus[1] = cpu.as_secs_f64();
                            floor.push(mibs);
                            left_floor.push(left);
                        }
                    }
                }
                if pair > 0 {
                    // Throughput ratio ours/floor = floor time / our time.
                    ratios.push(secs[1] / secs[0]);
                    cpu_ratios.push(cpus[1] / cpus[0]);
                }
            }
            let r = median(&mut ratios);
            println!(
                "| {mib} MiB | {label} | {} MiB | {:.0} MiB/s | {:.0} MiB/s | {r:.3}× ({:.2}–{:.2}) | {:.3}× | {} / {} |",
                asked / MIB,
                median(&mut ours),
                median(&mut floor),
                ratios[0],
                ratios[ratios.len() - 1],
                median(&mut cpu_ratios),
                pct(median(&mut left_ours), asked as f64),
                pct(median(&mut left_floor), asked as f64),
            );
        }
        let v = w.verify();
        assert!(v.starts_with("verify ok"), "workload: {v}");
    }
    println!();
    println!("Target: ours/floor ≥ 0.95×.");
}

// ---------------------------------------------------------------------------------------
// 2. Effectiveness.

/// The JSON status of the bench project's one task.
fn task_status(d: &Daemon) -> serde_json::Value {
    let out = d
        .run(&["project", "show", "--json", "-n", "bench"])
        .expect(0)
        .stdout;
    parse_json(&out)["projects"][0]["engines"][0]["tasks"][0].clone()
}

fn daemon_pid(d: &Daemon) -> Pid {
    d.pid() as Pid
}

/// What is measured at the end of a cycle.
struct Sample {
    cold_out: u64,
    hot_out: u64,
    majflt: u64,
    cpu: f64,
    at: Instant,
}

fn sample(w: &Workload, d: &Daemon, cold: Range, hot: Range) -> Sample {
    Sample {
        cold_out: cold.len() - resident(w.pid, cold),
        hot_out: hot.len() - resident(w.pid, hot),
        majflt: majflt(w.pid),
        cpu: cpu_secs(daemon_pid(d)),
        at: Instant::now(),
    }
}

fn effectiveness(cold_mib: u64, hot_mib: u64, cycles: u64) {
    println!();
    println!(
        "## Effectiveness: slide project (loop=1 interval=1 sleep=1, T=1) on a workload of \
         {cold_mib} MiB cold + {hot_mib} MiB read-hot memory"
    );
    println!();
    let mut w = Workload::spawn(&[
        "--cold-mib",
        &cold_mib.to_string(),
        "--hot-mib",
        &hot_mib.to_string(),
    ]);
    let (cold, hot) = (w.cold.expect("cold"), w.hot.expect("hot"));
    let d = Daemon::start("bench-swap");
    let scratch = Scratch::new("bench-swap");
    let conf = format!(
        "[project]\nname=bench\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=slide\nproject=bench\n\
         [task]\nproject=bench\nengine=slide\nname=workload\ntype=pid\nvalue={}\nT=1\n",
        w.pid
    );
    d.add(&scratch.conf("bench.conf", &conf)).expect(0);
    let dpid = daemon_pid(&d);
    let rss0 = status_bytes(dpid, "VmRSS");
    let page = etmem::types::page_size();
    // The bench polls `project show` every POLL; what answering costs the daemon, measured
    // before the project starts, so the per-cycle CPU below can be read net of it.
    let polls = 20;
    let cpu0 = cpu_secs(dpid);
    let t = Instant::now();
    for _ in 0..polls {
        task_status(&d);
        std::thread::sleep(POLL);
    }
    let poll_cpu = cpu_secs(dpid) - cpu0;
    let poll_rate = polls as f64 / t.elapsed().as_secs_f64();

    let mut prev = sample(&w, &d, cold, hot);
    let t0 = prev.at;
    d.run(&["project", "start", "-n", "bench"]).expect(0);
    println!(
        "Daemon RSS before the project started: {} KiB. Answering {polls} of the bench's \
         `project show` polls ({poll_rate:.1} a second, as during the run) cost it {:.2} CPU s \
         (/proc/PID/stat counts in {:.2} s ticks).",
        rss0 / 1024,
        poll_cpu,
        1.0 / clk_tck() as f64
    );
    println!();
    println!("| cycle | ended at | cold swapped out | hot evicted in the cycle | hot not resident now | daemon CPU in the cycle | daemon VmRSS / VmHWM | daemon: cold pages / swapped |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut backend = String::new();
    for k in 1..=cycles {
        let deadline = Instant::now() + Duration::from_secs(120);
        let json = loop {
            let j = task_status(&d);
            if j["cycles"].as_u64().unwrap() >= k {
                break j;
            }
            assert!(Instant::now() < deadline, "cycle {k} never ended: {j}");
            std::thread::sleep(POLL);
        };
        let s = sample(&w, &d, cold, hot);
        let faults = s.majflt - prev.majflt;
        // Evicted during the cycle: what is out now and was not before, plus what was
        // taken out and read back in since (each a major fault; the cold region is never
        // touched, so the workload's major faults are its hot pages and a few pages of its
        // stack and heap).
        let evicted = (s.hot_out as i64 - prev.hot_out as i64 + (faults * page) as i64).max(0);
        let cold_share = s.cold_out as f64 / cold.len() as f64;
        let hot_share = evicted as f64 / hot.len() as f64;
        if let Some(b) = json["backend"].as_str() {
            backend = b.to_string();
        }
        if let Some(e) = json["last_error"].as_str() {
            eprintln!("cycle {k}: last_error {e}");
        }
        println!(
            "| {k} | {:.1} s | {} | {} ({} swap-ins) | {} | {:.3} s | {} / {} KiB | {} / {} MiB |",
            (s.at - t0).as_secs_f64(),
            pct(s.cold_out as f64, cold.len() as f64),
            pct(evicted as f64, hot.len() as f64),
            faults,
            pct(s.hot_out as f64, hot.len() as f64),
            s.cpu - prev.cpu,
            status_bytes(dpid, "VmRSS") / 1024,
            status_bytes(dpid, "VmHWM") / 1024,
            json["cold_pages"].as_u64().unwrap(),
            json["swapped_bytes"].as_u64().unwrap() / MIB,
        );
        rows.push((cold_share, hot_share));
        prev = s;
    }
    d.run(&["project", "stop", "-n", "bench"]).expect(0);
    let v = w.verify();
    println!();
    println!("Backends: {backend}. Workload after the run: {v}.");
    if rows.len() >= 3 {
        let ok = |from: usize| rows[from..].iter().all(|&(c, h)| c >= 0.95 && h <= 0.01);
        println!(
            "Targets (≥ 95 % of cold swapped and ≤ 1 % of hot evicted by cycle 3): cycle 3 \
             {:.1} % / {:.1} %: {}; held through cycle {}: {}.",
            100.0 * rows[2].0,
            100.0 * rows[2].1,
            if rows[2].0 >= 0.95 && rows[2].1 <= 0.01 {
                "met"
            } else {
                "NOT met"
            },
            rows.len(),
            if ok(2) { "yes" } else { "no" }
        );
    }
    assert!(v.starts_with("verify ok"), "the workload lost data: {v}");
}
