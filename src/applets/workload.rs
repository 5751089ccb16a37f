//! `etmem workload` (hidden, for tests and benchmarks): a process with known memory
//! behaviour. It maps a hot region it keeps reading, a cold region it never touches again
//! after filling it, and optionally a region it keeps writing; prints their addresses
//! (`hot 0xA-0xB`, `cold ...`, `write ...`, then `ready`), and runs until killed. On
//! SIGUSR1 it re-reads every page and prints `verify ok N pages` or
//! `verify FAILED ...`, so a swap test can prove that no byte was lost.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::getopt::{self, Opt};
use crate::sys::mman::{AnonRegion, Thp};

const OPTS: &[Opt] = &[
    Opt::value("hot-mib", None),
    Opt::value("cold-mib", None),
    Opt::value("write-mib", None),
    Opt::value("sparse-gib", None),
    Opt::flag("thp", None),
    Opt::flag("hugetlb", None),
    Opt::value("hot-node", None),
    Opt::value("cold-node", None),
    Opt::flag("mlock", None),
    Opt::value("name-vma", None),
    Opt::value("comm", None),
    Opt::value("children", None),
    Opt::value("exit-after", None),
    Opt::flag("help", Some('h')),
];

const USAGE: &str = "usage: etmem workload [--hot-mib N] [--cold-mib N] [--write-mib N]
                      [--sparse-gib N] [--thp | --hugetlb] [--hot-node N] [--cold-node N]
                      [--mlock] [--name-vma NAME] [--comm NAME] [--children N]
                      [--exit-after SECONDS]
A test process: maps and fills a hot region (read continuously), a cold region (never
touched again) and a write region (written continuously), prints `hot|cold|write
0xSTART-0xEND` lines and `ready`, then runs until killed or until --exit-after.
--thp asks for 2 MiB pages (MADV_HUGEPAGE), otherwise MADV_NOHUGEPAGE; --hugetlb maps the
hot, cold and write regions from the hugetlb pool (MAP_HUGETLB, 2 MiB pages);
--hot-node and --cold-node fill the hot and the cold region on that NUMA node (then the
regions return to the default policy, so the pages can be migrated);
--mlock locks all its memory once filled (mlockall(MCL_CURRENT)), so the kernel refuses
to page any of it out; --name-vma names
the cold region [anon:NAME], or where the kernel cannot name anonymous memory maps it
privately from a memfd called NAME (/memfd:NAME (deleted)); --comm sets the process name (as /proc/PID/comm shows it,
15 bytes at most), so tasks can find it with type=name; --children starts N copies of itself as child processes
(their pids are printed as `child PID`); --sparse-gib reserves N GiB (MAP_NORESERVE) and
touches one page per GiB of it, a `sparse` region of terabytes that costs nothing.
SIGUSR1 verifies every page's contents.
After each round over the hot and write regions their TLB entries are flushed, so that
accessed-bit trackers see every round even where the TLB holds the whole region.";

/// Set in the environment of the workload's own children, so they die with it.
const CHILD_ENV: &str = "ETMEM_WORKLOAD_CHILD";

/// A region, its role name and its fill pattern seed.
struct Role {
    name: &'static str,
    seed: u64,
    region: AnonRegion,
}

fn node_of(items: &[getopt::Item], key: &str) -> Result<Option<u32>, String> {
    getopt::last(items, key)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("--{key}: {v:?} is not a NUMA node number"))
        })
        .transpose()
}

fn mib(items: &[getopt::Item], key: &str) -> Result<usize, String> {
    match getopt::last(items, key) {
        None => Ok(0),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(1 << 20))
            .ok_or_else(|| format!("--{key}: {v:?} is not a number of MiB")),
    }
}

/// Mark the cold region as `NAME`: `[anon:NAME]` where the kernel can name anonymous
/// VMAs (CONFIG_ANON_VMA_NAME), else a private mapping of a memfd called NAME
/// (`/memfd:NAME (deleted)`), which etmem's swap_flag accepts as the same mark.
fn mark(region: &AnonRegion, name: &str) -> Result<(), String> {
    if region.set_name(name).is_ok() {
        return Ok(());
    }
    region
        .back_with_memfd(name)
        .map_err(|e| format!("--name-vma: {e}"))
}

/// Entry point of `etmem workload`.
pub fn main(args: &[String]) -> i32 {
    let items = match getopt::parse(args, OPTS) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("etmem workload: {e}\n{USAGE}");
            return 2;
        }
    };
    if getopt::has(&items, "help") {
        println!("{USAGE}");
        return 0;
    }
    match run(&items, args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("etmem workload: {e}");
            1
        }
    }
}

fn run(items: &[getopt::Item], args: &[String]) -> Result<(), String> {
    let thp = if getopt::has(items, "thp") {
        Thp::Huge
    } else {
        Thp::NoHuge
    };
    let align = 2 << 20;
    let children: usize = match getopt::last(items, "children") {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| format!("--children: {v:?} is not a number"))?,
    };
    // A child runs with the same arguments and starts no children of its own.
    let children = if std::env::var_os(CHILD_ENV).is_some() {
        0
    } else {
        children
    };
    let exit_after = match getopt::last(items, "exit-after") {
        None => None,
        Some(v) => Some(Duration::from_secs_f64(
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("--exit-after: {v:?} is not a number of seconds"))?,
        )),
    };
    if std::env::var_os(CHILD_ENV).is_some() {
        crate::sys::parent_death::kill_me_with_parent().map_err(|e| e.to_string())?;
    }
    if let Some(name) = getopt::last(items, "comm") {
        let c =
            std::ffi::CString::new(name).map_err(|_| "--comm: a name cannot hold a NUL byte")?;
        nix::sys::prctl::set_name(&c).map_err(|e| format!("--comm: {e}"))?;
    }
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1))
        .map_err(|e| format!("cannot handle SIGUSR1: {e}"))?;

    let mut roles = Vec::new();
    for (name, key, seed) in [
        ("hot", "hot-mib", 1),
        ("cold", "cold-mib", 2),
        ("write", "write-mib", 3),
    ] {
        let len = mib(items, key)?;
        if len == 0 {
            continue;
        }
        let region = if getopt::has(items, "hugetlb") {
            AnonRegion::new_hugetlb(len)
        } else {
            AnonRegion::new(len, align, thp)
        }
        .map_err(|e| e.to_string())?;
        let node = match name {
            "hot" => node_of(items, "hot-node")?,
            "cold" => node_of(items, "cold-node")?,
            _ => None,
        };
        if node.is_some() {
            region.bind_to_node(node).map_err(|e| e.to_string())?;
        }
        if name == "cold" {
            if let Some(n) = getopt::last(items, "name-vma") {
                mark(&region, n)?;
            }
        }
        region.fill(seed);
        if node.is_some() {
            region.bind_to_node(None).map_err(|e| e.to_string())?;
        }
        roles.push(Role { name, seed, region });
    }
    let sparse = match getopt::last(items, "sparse-gib") {
        None => None,
        Some(v) => {
            let gib = v
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_mul(1 << 30))
                .ok_or_else(|| format!("--sparse-gib: {v:?} is not a number of GiB"))?;
            let region = AnonRegion::new(gib, align, Thp::NoHuge).map_err(|e| e.to_string())?;
            region.touch_every(1 << 30);
            Some(region)
        }
    };
    // Put every page just faulted in on the LRU lists now (see lock_unlock), so trackers
    // see a settled process from `ready` on. Best effort: RLIMIT_MEMLOCK may forbid it.
    if let Ok(probe) = AnonRegion::new(crate::types::page_size() as usize, 0, Thp::NoHuge) {
        let _ = probe.lock_unlock();
    }
    if getopt::has(items, "mlock") {
        nix::sys::mman::mlockall(nix::sys::mman::MlockAllFlags::MCL_CURRENT)
            .map_err(|e| format!("--mlock: mlockall: {e}"))?;
    }
    let mut kids = Vec::new();
    if children > 0 {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        let child_args = std::iter::once("workload").chain(args.iter().map(String::as_str));
        for _ in 0..children {
            let kid = std::process::Command::new(&exe)
                .args(child_args.clone())
                .env(CHILD_ENV, "1")
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start a child: {e}"))?;
            kids.push(kid);
        }
    }
    let mut out = std::io::stdout().lock();
    for r in &roles {
        let a = r.region.addr();
        let _ = writeln!(out, "{} {:#x}-{:#x}", r.name, a, a + r.region.len() as u64);
    }
    if let Some(r) = &sparse {
        let a = r.addr();
        let _ = writeln!(out, "sparse {:#x}-{:#x}", a, a + r.len() as u64);
    }
    for k in &kids {
        let _ = writeln!(out, "child {}", k.id());
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);

    let started = Instant::now();
    let mut sink = 0u64;
    loop {
        for r in &roles {
            match r.name {
                "hot" => sink = sink.wrapping_add(r.region.read_pages()),
                "write" => r.region.write_pages(r.seed),
                _ => continue,
            }
            // Every access of the next round must reach the page table (see refresh_tlb).
            let _ = r.region.refresh_tlb();
        }
        // Reap children that exited, as a real parent does: their pids go back to the
        // kernel, which may give them to unrelated processes (tests/slide_engine.rs).
        kids.retain_mut(|k| !matches!(k.try_wait(), Ok(Some(_))));
        if usr1.swap(false, Ordering::Relaxed) {
            println!("{}", verify(&roles));
        }
        if exit_after.is_some_and(|d| started.elapsed() >= d) {
            for mut k in kids {
                let _ = k.kill();
                let _ = k.wait();
            }
            std::hint::black_box(sink);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Check every region's pattern; the line to print.
fn verify(roles: &[Role]) -> String {
    let page = crate::types::page_size() as usize;
    let mut pages = 0;
    for r in roles {
        if let Some(w) = r.region.verify(r.seed) {
            let addr = r.region.addr() + (w * 8) as u64;
            return format!("verify FAILED {} region at {addr:#x}", r.name);
        }
        pages += r.region.len() / page;
    }
    format!("verify ok {pages} pages")
}
