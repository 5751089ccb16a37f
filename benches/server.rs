//! The server benchmark: memory saved against slowdown on a real server, side by side
//! with what an operator could use instead.
//!
//! `cargo bench --bench server` starts `redis-server` (persistence off), loads a dataset
//! (`ETMEM_SERVER_MIB`, default 1024 MiB of 1 KiB values), and drives it with a pipelined
//! GET/SET load whose keys follow a Zipf distribution (θ = 0.99, 10 % SET) with the hot set
//! moving to the other half of the keys halfway (tests/common/redis_load.rs; every GET is
//! checked against the last value written). Each arm gets a fresh server, in one run, on
//! zram swap:
//!
//! - (a) nothing;
//! - (b) etmem slide with the best tracking backend the kernel has;
//! - (c) etmem damon (pageout of regions idle 2 s);
//! - (d) a senpai-style loop: the server in its own cgroup, `memory.reclaim` of 2 % of
//!   `memory.current` a second, scaled down as `memory.pressure` (some avg10) nears 0.1 %
//!   and stopped above it (cgroup v2);
//! - (e) the kernel's per-node proactive reclaim file (`/sys/devices/system/node/node0/
//!   reclaim`, Linux 6.17+): 2 % of the server's starting RSS a second;
//! - (a′) nothing again, last: the run's own noise.
//!
//! Per arm: the server's RSS and VmSwap over time and at the end, memory saved against
//! (a), throughput and batch p50/p99 against (a), swap-ins (`pswpin`) and the CPU time
//! of etmemd. It runs on this host (arms the kernel allows), then in the guest kernel
//! (`../shared/vm/run`: page_idle, DAMON vaddr, cgroup v2). Guest times are emulated:
//! compare ratios within one run only.

#[path = "../tests/common/redis_load.rs"]
mod redis_load;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_load::{drive, Dataset, Load, Measured, Redis};

/// The arms, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    Nothing,
    Slide,
    Damon,
    Senpai,
    NodeReclaim,
    /// (a) once more, last: how far two runs of the same thing differ in this run.
    Again,
}

impl Arm {
    const ALL: [Arm; 6] = [
        Arm::Nothing,
        Arm::Slide,
        Arm::Damon,
        Arm::Senpai,
        Arm::NodeReclaim,
        Arm::Again,
    ];

    fn name(self) -> &'static str {
        match self {
            Arm::Nothing => "(a) nothing",
            Arm::Slide => "(b) etmem slide",
            Arm::Damon => "(c) etmem damon",
            Arm::Senpai => "(d) senpai-style memory.reclaim",
            Arm::NodeReclaim => "(e) node reclaim file",
            Arm::Again => "(a′) nothing, again (the run's noise)",
        }
    }
}

const CGROUP: &str = "/sys/fs/cgroup/etmem-bench-server";
const NODE_RECLAIM: &str = "/sys/devices/system/node/node0/reclaim";

/// Why an arm cannot run on this machine, if it cannot.
fn unavailable(arm: Arm) -> Option<String> {
    match arm {
        Arm::Nothing | Arm::Slide | Arm::Again => None,
        Arm::Damon => {
            let kd = "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds";
            match std::fs::read_to_string(kd) {
                Err(_) => Some("no DAMON sysfs".into()),
                Ok(n) if n.trim() != "0" => {
                    Some("a kdamond etmemd did not set up is running (DAMON is busy)".into())
                }
                Ok(_) => None,
            }
        }
        Arm::Senpai => (!Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists())
            .then(|| "no cgroup v2 (memory.reclaim)".into()),
        Arm::NodeReclaim => {
            (!Path::new(NODE_RECLAIM).exists()).then(|| format!("no {NODE_RECLAIM} (Linux 6.17+)"))
        }
    }
}

fn etmem() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etmem"))
}

/// Bytes of a `/proc/PID/status` size field (`VmRSS`, `VmSwap`); 0 once the process is gone.
fn status_bytes(pid: i32, key: &str) -> u64 {
    etmem::sys::process::status_bytes(pid, key).unwrap_or(0)
}

fn vmstat(key: &str) -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) of process `pid` (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(rest) = text.rsplit_once(')').map(|r| r.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 are the 12th and 13th after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// An etmemd with one project for the server, stopped on drop.
struct Etmemd {
    child: Child,
    socket: String,
}

impl Etmemd {
    fn start(conf: &str, dir: &Path) -> Etmemd {
        let socket = format!("etmem-bench-server-{}", std::process::id());
        let child = Command::new(etmem())
            .args(["etmemd", "-l", "1", "-s", &socket])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etmemd starts");
        let d = Etmemd { child, socket };
        let client = |args: &[&str]| {
            Command::new(etmem())
                .args(args)
                .args(["-s", &d.socket])
                .output()
                .unwrap()
        };
        let t0 = Instant::now();
        while !client(&["project", "show"]).status.success() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "etmemd never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let file = dir.join("server.conf");
        std::fs::write(&file, conf).unwrap();
        // etmemd takes only config files no one else may write or read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = file.display().to_string();
        for args in [
            &["obj", "add", "-f", file.as_str()][..],
            &["project", "start", "-n", "server"],
        ] {
            let o = client(args);
            assert!(
                o.status.success(),
                "etmem {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        d
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.child.id())
    }
}

impl Drop for Etmemd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The slide arm's scan keys unless `ETMEM_SERVER_SLIDE` says otherwise: a page is cold
/// when untouched for 90 s (BENCH.md, "Server benchmark", has shorter windows: they save
/// more and cost far more).
const SLIDE_SCAN: &str = "loop=2 interval=45 sleep=1";
/// The slide arm's extra task keys unless `ETMEM_SERVER_SLIDE_TASK` says otherwise: what
/// came back after a swap-out stays in DRAM for 3 cycles.
const SLIDE_TASK: &str = "refault_hold=3";
/// Seconds of load in the guest unless `ETMEM_SERVER_SECS` says otherwise: long enough
/// for three 90 s windows, one and a half on each side of the hot set's move.
const GUEST_SECS: u64 = 360;

/// The slide arm's project: `ETMEM_SERVER_SLIDE` overrides its scan keys,
/// `ETMEM_SERVER_SLIDE_TASK` its extra task keys, both as `key=value` words separated by
/// spaces.
fn slide_conf(pid: i32) -> String {
    let lines = |var: &str, default: &str| {
        std::env::var(var)
            .unwrap_or_else(|_| default.to_string())
            .split_whitespace()
            .map(|w| format!("{w}\n"))
            .collect::<String>()
    };
    let scan = lines("ETMEM_SERVER_SLIDE", SLIDE_SCAN);
    let task = lines("ETMEM_SERVER_SLIDE_TASK", SLIDE_TASK);
    format!(
        "[project]\nname=server\n{scan}\
         [engine]\nname=slide\nproject=server\n\
         [task]\nproject=server\nengine=slide\nname=redis\ntype=pid\nvalue={pid}\nT=1\n{task}"
    )
}

fn damon_conf(pid: i32) -> String {
    format!(
        "[project]\nname=server\nscan_type=region\nsample_interval=5000\naggr_interval=100000\n\
         update_interval=1000000\nmin_nr_regions=10\nmax_nr_regions=1000\n\
         [engine]\nname=damon\nproject=server\nmin_size=4096\nmax_size=9223372036854775807\n\
         min_acc=0\nmax_acc=0\nmin_age=20\nmax_age=4294967295\naction=pageout\n\
         [task]\nproject=server\nengine=damon\nname=redis\ntype=pid\nvalue={pid}\n"
    )
}

/// The reclaim loop of arms (d) and (e), on its own thread until `stop`.
fn reclaim_loop(arm: Arm, pid: i32, stop: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let start_rss = status_bytes(pid, "VmRSS");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        match arm {
            Arm::Senpai => {
                let cg = Path::new(CGROUP);
                // Unreadable pressure counts as high: the loop then holds off.
                let pressure = std::fs::read_to_string(cg.join("memory.pressure"))
                    .ok()
                    .and_then(|t| etmem::sys::cgroup::parse_pressure(&t).ok())
                    .map_or(100.0, |p| p.avg10);
                let current: u64 = std::fs::read_to_string(cg.join("memory.current"))
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let target = 0.1;
                if pressure < target {
                    let bytes = (current as f64 * 0.02 * (1.0 - pressure / target)) as u64;
                    // EAGAIN when less could be reclaimed: the next second tries again.
                    let _ = std::fs::write(cg.join("memory.reclaim"), bytes.to_string());
                }
            }
            Arm::NodeReclaim => {
                let _ = std::fs::write(NODE_RECLAIM, (start_rss / 50).to_string());
            }
            _ => {}
        }
    }
}

/// Put `pid` in the benchmark's cgroup (made, with the memory controller).
fn into_cgroup(pid: i32) {
    let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    let _ = std::fs::create_dir(CGROUP);
    std::fs::write(Path::new(CGROUP).join("cgroup.procs"), pid.to_string())
        .expect("move redis into the benchmark's cgroup");
}

/// What one arm came to.
struct Result {
    arm: Arm,
    m: Measured,
    rss: u64,
    swap: u64,
    /// (seconds, RSS MiB) every 10 s.
    over_time: Vec<(u64, u64)>,
    swapins: u64,
    etmemd_cpu: Option<f64>,
}

fn run_arm(arm: Arm, data: Dataset, load: Load, dir: &Path) -> Result {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    let redis = Redis::start(&dir.join("redis")).expect("redis-server starts");
    let pid = redis.pid();
    if arm == Arm::Senpai {
        into_cgroup(pid);
    }
    let mut c = redis.connect();
    let t0 = Instant::now();
    data.load(&mut c);
    eprintln!(
        "{}: loaded {} items in {:.0} s, RSS {} MiB",
        arm.name(),
        data.items,
        t0.elapsed().as_secs_f64(),
        status_bytes(pid, "VmRSS") >> 20
    );
    // A short unmeasured run first, so no arm pays for a cold server or client. GETs
    // only: the measured run checks values against versions it counts from 0.
    let warm = Load {
        duration: Duration::from_secs(3),
        shift_at: Duration::from_secs(3),
        set_ratio: 0.0,
        ..load
    };
    drive(&mut c, data, warm, |_| {});
    let etmemd = match arm {
        Arm::Slide => Some(Etmemd::start(&slide_conf(pid), dir)),
        Arm::Damon => Some(Etmemd::start(&damon_conf(pid), dir)),
        _ => None,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let swapins0 = vmstat("pswpin");
    let mut over_time = Vec::new();
    let m = std::thread::scope(|s| {
        if matches!(arm, Arm::Senpai | Arm::NodeReclaim) {
            s.spawn(|| reclaim_loop(arm, pid, &stop));
        }
        let m = drive(&mut c, data, load, |t| {
            if t.as_secs() % 10 == 0 {
                over_time.push((t.as_secs(), status_bytes(pid, "VmRSS") >> 20));
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        m
    });
    let r = Result {
        arm,
        rss: status_bytes(pid, "VmRSS"),
        swap: status_bytes(pid, "VmSwap"),
        swapins: vmstat("pswpin") - swapins0,
        etmemd_cpu: etmemd.as_ref().map(Etmemd::cpu),
        m,
        over_time,
    };
    drop(etmemd);
    drop(redis);
    if arm == Arm::Senpai {
        let _ = std::fs::remove_dir(CGROUP);
    }
    assert_eq!(r.m.wrong, 0, "{}: {} wrong answers", arm.name(), r.m.wrong);
    r
}

/// What swapping costs on this machine, in µs per 4 KiB page: (one swap-in, to the
/// faulting thread; one page-out, to the thread that asks for it). A 64 MiB region of
/// this process is read a word a page while resident, paged out (process_madvise, as
/// etmem does) and read again; the swap-in is the difference over the swap-ins.
fn swap_costs_us() -> Option<(f64, f64)> {
    use etmem::sys::mman::{AnonRegion, Thp};
    let len = 64 << 20;
    let page = etmem::types::page_size();
    let region = AnonRegion::new(len, page as usize, Thp::NoHuge).ok()?;
    region.fill(7);
    let timed = || {
        let t = Instant::now();
        std::hint::black_box(region.read_pages());
        t.elapsed().as_secs_f64()
    };
    let resident = (0..3).map(|_| timed()).fold(f64::MAX, f64::min);
    let me = etmem::sys::pidfd::Pidfd::open(std::process::id() as i32).ok()?;
    let range = etmem::types::Range::new(region.addr(), region.addr() + len as u64);
    let mut swapper = etmem::act::open(None, &me).ok()?;
    let swap0 = status_bytes(me.pid(), "VmSwap");
    let t = Instant::now();
    swapper.swap_out(&me, &[range], &|| false).ok()?;
    let out = t.elapsed().as_secs_f64();
    let out_pages = (status_bytes(me.pid(), "VmSwap") - swap0) / page;
    let ins0 = vmstat("pswpin");
    let swapped = timed();
    let ins = vmstat("pswpin") - ins0;
    (ins > 0 && out_pages > 0).then(|| {
        (
            (swapped - resident) / ins as f64 * 1e6,
            out / out_pages as f64 * 1e6,
        )
    })
}

fn mib(b: u64) -> u64 {
    b >> 20
}

fn report(
    kernel: &str,
    data: Dataset,
    load: Load,
    results: &[Result],
    skipped: &[(Arm, String)],
    costs: Option<(f64, f64)>,
) {
    let fault_us = costs.map(|c| c.0);
    let base = &results[0];
    // Where the floor column comes from: saving a share of the server's memory means
    // keeping that many values out of DRAM; the fewest requests that then fault are the
    // ones for the coldest values (an oracle's choice), and each costs one swap-in.
    let zipf = redis_load::Zipf::new(data.items, load.theta, 1);
    let request_us = 1e6 / base.m.throughput();
    let floor = |saved: f64| {
        let items = ((saved.max(0.0) * data.items as f64) as usize).min(data.items);
        let share = zipf.tail_share(items);
        let loss = fault_us.map(|f| share * f / (request_us + share * f));
        (share, loss)
    };
    println!(
        "\n### {kernel}: redis-server, {} items of {} B, {} s of Zipf(θ={}) load, {}% SET, \
         pipeline {}, hot set moved at {} s\n",
        data.items,
        data.value_size,
        load.duration.as_secs(),
        load.theta,
        (load.set_ratio * 100.0) as u32,
        load.depth,
        load.shift_at.as_secs()
    );
    println!(
        "(a) answered {:.0} requests/s ({request_us:.1} µs each, client included); {}.\n",
        base.m.throughput(),
        costs.map_or("swapping's cost was not measured".into(), |(i, o)| format!(
            "one swap-in costs the faulting thread {i:.1} µs and one page-out the asking \
             thread {o:.1} µs here (a 64 MiB region paged out and read back)"
        ))
    );
    println!("| arm | RSS at end | VmSwap at end | memory saved vs (a) | throughput vs (a) | p50 batch | p99 batch vs (a) | swap-ins (pages) | etmemd CPU | floor at this saving: requests that fault, throughput lost |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let saved = 1.0 - r.rss as f64 / base.rss.max(1) as f64;
        let (share, loss) = floor(saved);
        println!(
            "| {} | {} MiB | {} MiB | {:.1} % | {:.3}× | {} µs | {} µs ({:.2}×) | {} | {} | {:.2} %, {} |",
            r.arm.name(),
            mib(r.rss),
            mib(r.swap),
            saved * 100.0,
            r.m.throughput() / base.m.throughput(),
            r.m.quantile_us(0.5),
            r.m.quantile_us(0.99),
            r.m.quantile_us(0.99) as f64 / base.m.quantile_us(0.99).max(1) as f64,
            r.swapins,
            r.etmemd_cpu.map_or("—".into(), |c| format!("{c:.2} s")),
            share * 100.0,
            loss.map_or("—".into(), |l| format!("{:.2} %", l * 100.0)),
        );
    }
    for (arm, why) in skipped {
        println!("| {} | not run here: {why} | | | | | | | | |", arm.name());
    }
    let (share, loss) = floor(0.4);
    println!(
        "\nThe issue's target, 40 % saved: even an oracle that swaps exactly the coldest \
         values makes {:.2} % of requests fault, {} of throughput at the swap-in cost \
         above; paging each one out again to keep the saving costs {} of a CPU besides.",
        share * 100.0,
        loss.map_or("an unknown share".into(), |l| format!("{:.2} %", l * 100.0)),
        costs.map_or("an unknown share".into(), |(_, o)| format!(
            "{:.1} %",
            share * base.m.throughput() * o / 1e4
        ))
    );
    println!("\nRSS over time (MiB, every 10 s of load):\n");
    for r in results {
        let series: Vec<String> = r
            .over_time
            .iter()
            .map(|(t, m)| format!("{t}s {m}"))
            .collect();
        println!("- {}: {}", r.arm.name(), series.join(", "));
    }
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_here(kernel: &str, secs: u64) {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    if swaps.lines().count() < 2 {
        eprintln!("no swap device: set one up (.ci/run does zram) and run again");
        std::process::exit(1);
    }
    let data = Dataset {
        items: (env_u64("ETMEM_SERVER_MIB", 1024) * 1024) as usize,
        value_size: 1024,
    };
    let load = Load {
        duration: Duration::from_secs(secs),
        shift_at: Duration::from_secs(secs / 2),
        theta: 0.99,
        set_ratio: 0.1,
        depth: 16,
    };
    let dir = std::env::temp_dir().join(format!("etmem-bench-server-{}", std::process::id()));
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    // ETMEM_SERVER_ARMS=a,b runs only those arms ((a) always runs: it is the baseline).
    let only = std::env::var("ETMEM_SERVER_ARMS").unwrap_or_default();
    let wanted = |arm: Arm| {
        only.is_empty()
            || matches!(arm, Arm::Nothing | Arm::Again)
            || only
                .split(',')
                .any(|w| arm.name().starts_with(&format!("({w})")))
    };
    for arm in Arm::ALL.into_iter().filter(|&a| wanted(a)) {
        match unavailable(arm) {
            Some(why) => skipped.push((arm, why)),
            None => results.push(run_arm(arm, data, load, &dir)),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(kernel, data, load, &results, &skipped, swap_costs_us());
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn main() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("installing redis-server (Debian package)");
        let ok = Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "redis-server",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot install redis-server");
    }
    if std::env::var("ETMEM_IN_GUEST").as_deref() == Ok("1") {
        run_here(
            &format!("guest, Linux {}", kernel()),
            env_u64("ETMEM_SERVER_SECS", GUEST_SECS),
        );
        return;
    }
    // Host: kept under a minute of load, so the host's own kdamond (pageout of memory
    // idle 60 s) does not act on the baseline's cold data meanwhile.
    if std::env::var("ETMEM_SERVER_WHERE").as_deref() != Ok("guest") {
        run_here(
            &format!("this host, Linux {}", kernel()),
            env_u64("ETMEM_SERVER_HOST_SECS", 45),
        );
    }
    if std::env::var("ETMEM_SERVER_WHERE").as_deref() == Ok("host") {
        return;
    }
    let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vm/run");
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(runner)
        .args(["--mem", "3072", "--timeout", "3600", "--"])
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "echo 2G > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && \
             swapon /dev/zram0 && ETMEM_IN_GUEST=1 ETMEM_SERVER_MIB={} ETMEM_SERVER_SECS={} \
             ETMEM_SERVER_ARMS='{}' ETMEM_SERVER_SLIDE='{}' ETMEM_SERVER_SLIDE_TASK='{}' {} --bench",
            env_u64("ETMEM_SERVER_MIB", 1024),
            env_u64("ETMEM_SERVER_SECS", GUEST_SECS),
            std::env::var("ETMEM_SERVER_ARMS").unwrap_or_default(),
            std::env::var("ETMEM_SERVER_SLIDE").unwrap_or_else(|_| SLIDE_SCAN.into()),
            std::env::var("ETMEM_SERVER_SLIDE_TASK").unwrap_or_else(|_| SLIDE_TASK.into()),
            exe.display()
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("vm/run starts");
    std::process::exit(status.code().unwrap_or(1));
}
