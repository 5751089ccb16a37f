//! Tiering benchmark: how fast cslide puts a workload's memory on the right NUMA tier,
//! and what it costs, beside the kernel's own NUMA balancing in the same run.
//!
//!     cargo bench --bench tiering
//!
//! It needs a machine with a slow memory node 1 (no CPUs); elsewhere it re-runs itself in
//! the guest kernel (`../shared/vm/run --tier 512`). A workload whose hot set (32 MiB,
//! read continuously) starts on the slow node and whose cold set (64 MiB, never touched
//! again) starts in DRAM, once under etmemd's cslide engine and once under the kernel's
//! NUMA balancing (`numa_balancing=2`, memory tiering, where the machine has memory tiers
//! that differ; otherwise mode 1, which promotes to the node of the accessing CPU and has
//! no demotion). Prints one Markdown table per run: per cycle, the hot bytes still on the
//! slow node, the cold bytes still in DRAM, the bytes moved against the quota, etmemd's CPU
//! time, and the workload's system time (where the kernel's NUMA hinting faults run; in the
//! cslide run it is the workload's own baseline).

// The tests' numa_maps parser; not every helper of it is used here.
#[allow(dead_code)]
#[path = "../tests/common/numa_maps.rs"]
mod numa_maps;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const HOT_MIB: u64 = 32;
const COLD_MIB: u64 = 64;
const QUOTA_MIB: u64 = 16;
const CYCLES: u64 = 10;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workload: (process, hot start, cold start).
fn workload() -> (Proc, u64, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_etmem"))
        .args([
            "workload",
            "--hot-mib",
            &HOT_MIB.to_string(),
            "--cold-mib",
            &COLD_MIB.to_string(),
        ])
        .args(["--hot-node", "1", "--cold-node", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("workload starts");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut hot, mut cold) = (0, 0);
    for line in out.lines() {
        let line = line.expect("workload output");
        let start = |l: &str| {
            u64::from_str_radix(
                l.split_whitespace()
                    .nth(1)
                    .unwrap()
                    .trim_start_matches("0x")
                    .split('-')
                    .next()
                    .unwrap(),
                16,
            )
            .unwrap()
        };
        if line.starts_with("hot ") {
            hot = start(&line);
        } else if line.starts_with("cold ") {
            cold = start(&line);
        } else if line == "ready" {
            break;
        }
    }
    (Proc(child), hot, cold)
}

/// Bytes of the mapping at `start` on `node`, per numa_maps (the tests' parser).
fn on(pid: u32, start: u64, node: u32) -> u64 {
    numa_maps::vma(pid as i32, start).bytes_on(node)
}

/// CPU time of `pid` in ms: (user + system, system).
fn cpu_ms(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let tick = 1000 / 100; // USER_HZ is 100 on Linux
    let (u, s) = (
        f.get(11).copied().unwrap_or(0),
        f.get(12).copied().unwrap_or(0),
    );
    ((u + s) * tick, s * tick)
}

fn etmem(socket: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_etmem"))
        .args(args)
        .args(["-s", socket])
        .output()
        .expect("etmem runs");
    assert!(
        out.status.success(),
        "etmem {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn number(json: &str, key: &str) -> u64 {
    json.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn header(title: &str) {
    println!("\n{title}\n");
    println!(
        "| cycle | s | hot on slow node | cold in DRAM | moved up | moved down | quota | etmemd CPU ms | workload sys ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
}

/// One row of a table.
struct Sample<'a> {
    cycle: u64,
    at: Duration,
    hot_on_slow: u64,
    cold_in_dram: u64,
    up: u64,
    down: u64,
    quota: &'a str,
    /// etmemd's CPU time over the cycle (user + system), if etmemd ran.
    etmemd_ms: Option<u64>,
    /// The workload's system time over the cycle: its own TLB flushes, plus the NUMA
    /// hinting faults where the kernel's balancing runs.
    workload_sys_ms: u64,
}

impl<'a> Sample<'a> {
    /// Row 0: where the workload's memory is before anything ran.
    fn start(pid: u32, hot: u64, cold: u64, quota: &'a str, etmemd_ms: Option<u64>) -> Self {
        Sample {
            cycle: 0,
            at: Duration::ZERO,
            hot_on_slow: on(pid, hot, 1),
            cold_in_dram: on(pid, cold, 0),
            up: 0,
            down: 0,
            quota,
            etmemd_ms,
            workload_sys_ms: 0,
        }
    }
}

fn row(r: Sample) {
    println!(
        "| {} | {:.0} | {} MiB | {} MiB | {} MiB | {} MiB | {} | {} | {} |",
        r.cycle,
        r.at.as_secs_f64(),
        r.hot_on_slow / MIB,
        r.cold_in_dram / MIB,
        r.up / MIB,
        r.down / MIB,
        r.quota,
        r.etmemd_ms.map_or("-".to_string(), |m| m.to_string()),
        r.workload_sys_ms
    );
}

fn cslide() -> Duration {
    std::fs::write("/proc/sys/kernel/numa_balancing", "0").expect("numa_balancing off");
    let (w, hot, cold) = workload();
    let pid = w.0.id();
    let socket = format!("bench-tiering-{}", std::process::id());
    let d = Proc(
        Command::new(env!("CARGO_BIN_EXE_etmem"))
            .args(["etmemd", "-l", "0", "-s", &socket])
            .stderr(Stdio::null())
            .spawn()
            .expect("etmemd starts"),
    );
    let t0 = Instant::now();
    while Command::new(env!("CARGO_BIN_EXE_etmem"))
        .args(["project", "show", "-s", &socket])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "etmemd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let conf = std::env::temp_dir().join(format!("bench-tiering-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        format!(
            "[project]\nname=b\nloop=2\ninterval=1\nsleep=1\n[engine]\nname=cslide\nproject=b\n\
             node_pair=1,0\nhot_threshold=1\nnode_mig_quota={QUOTA_MIB}\nnode_hot_reserve=65536\n\
             [task]\nproject=b\nengine=cslide\nname=w\ntype=pid\nvalue={pid}\nanon_only=yes\n"
        ),
    )
    .unwrap();
    // etmemd accepts only config files that nobody else can write (spec §4.1).
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    etmem(&socket, &["obj", "add", "-f", conf.to_str().unwrap()]);
    header(&format!(
        "cslide ({HOT_MIB} MiB hot on the slow node, {COLD_MIB} MiB cold in DRAM; quota {QUOTA_MIB} MiB per direction and cycle; loop=2 interval=1 sleep=1)"
    ));
    let quota = format!("{QUOTA_MIB} MiB");
    row(Sample::start(pid, hot, cold, &quota, Some(0)));
    let start = Instant::now();
    let mut cpu_before = cpu_ms(d.0.id()).0;
    let mut sys_before = cpu_ms(pid).1;
    etmem(&socket, &["project", "start", "-n", "b"]);
    let mut seen = 0;
    while seen < CYCLES && start.elapsed() < Duration::from_secs(600) {
        let json = etmem(&socket, &["project", "show", "-n", "b", "--json"]);
        let cycles = number(&json, "cycles");
        if cycles > seen {
            seen = cycles;
            let (cpu, sys) = (cpu_ms(d.0.id()).0, cpu_ms(pid).1);
            row(Sample {
                cycle: seen,
                at: start.elapsed(),
                hot_on_slow: on(pid, hot, 1),
                cold_in_dram: on(pid, cold, 0),
                up: number(&json, "moved_up_bytes"),
                down: number(&json, "moved_down_bytes"),
                quota: &quota,
                etmemd_ms: Some(cpu - cpu_before),
                workload_sys_ms: sys - sys_before,
            });
            (cpu_before, sys_before) = (cpu, sys);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    etmem(&socket, &["project", "stop", "-n", "b"]);
    let _ = std::fs::remove_file(conf);
    start.elapsed()
}

/// Whether the machine's memory tiers put node 1 below node 0.
fn tiers_differ() -> bool {
    let tiers = etmem::sys::numa::memory_tiers();
    let tier_of = |n: u32| tiers.iter().find(|t| t.nodes.contains(&n)).map(|t| t.id);
    matches!((tier_of(0), tier_of(1)), (Some(a), Some(b)) if a != b)
}

fn kernel(duration: Duration) {
    let mode = if tiers_differ() { "2" } else { "1" };
    let (w, hot, cold) = workload();
    let pid = w.0.id();
    let vmstat = || {
        let text = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("pgmigrate_success "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    header(&format!(
        "the kernel's NUMA balancing (numa_balancing={mode}{}), same workload, sampled every 3 s for as long as cslide ran",
        if mode == "1" {
            "; the guest's nodes share one memory tier, so mode 2 (tiering) cannot run"
        } else {
            ""
        }
    ));
    row(Sample::start(pid, hot, cold, "none", None));
    std::fs::write("/proc/sys/kernel/numa_balancing", mode).expect("numa_balancing on");
    let start = Instant::now();
    let (mut migrated, mut sys) = (vmstat(), cpu_ms(pid).1);
    let mut i = 0;
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(3));
        i += 1;
        let (m, s) = (vmstat(), cpu_ms(pid).1);
        let moved = (m - migrated) * 4096;
        // The kernel reports pages migrated, not their direction: all under "moved up".
        row(Sample {
            cycle: i,
            at: start.elapsed(),
            hot_on_slow: on(pid, hot, 1),
            cold_in_dram: on(pid, cold, 0),
            up: moved,
            down: 0,
            quota: "none",
            etmemd_ms: None,
            workload_sys_ms: s - sys,
        });
        (migrated, sys) = (m, s);
    }
    std::fs::write("/proc/sys/kernel/numa_balancing", "0").unwrap();
}

fn main() {
    let has_slow_node = std::fs::read_to_string("/sys/devices/system/node/node1/cpulist")
        .is_ok_and(|c| c.trim().is_empty());
    if !has_slow_node {
        let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vm/run");
        eprintln!("no CPU-less NUMA node 1 here: running in the guest ({runner} --tier 512)");
        let exe = std::env::current_exe().unwrap();
        let status = Command::new(runner)
            .args(["--mem", "1024", "--tier", "512", "--timeout", "900", "--"])
            .arg(exe)
            .arg("--bench")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("vm/run starts");
        std::process::exit(status.code().unwrap_or(1));
    }
    let ran = cslide();
    kernel(ran);
}
