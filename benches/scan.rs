//! Scan speed and memory of each tracking backend available here, against a workload of
//! touched memory, compared with the floor: a minimal loop reading and writing the same
//! kernel files the same way (same chunk sizes, same calls), without the tracker's work.
//!
//!     cargo bench --bench scan                       # 1, 4 and 16 GiB
//!     ETMEM_BENCH_MIB=256,1024 cargo bench --bench scan
//!
//! Prints a Markdown table: per backend and size, the mean time of one pass, the floor's
//! time, their ratio, the scanner's peak RSS growth per GiB scanned (VmHWM of a fresh
//! process per backend, less its RSS before the tracker was opened: counters plus fixed
//! read buffers) and the counters' size per GiB.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etmem::sys::clear_refs::{ClearRefs, ClearRefsFile};
use etmem::sys::page_idle::{words_of, PageIdle};
use etmem::sys::pagemap::{self, Pagemap, CHUNK_ENTRIES};
use etmem::sys::pidfd::Pidfd;
use etmem::track::{self, Tracker};
use etmem::types::{Family, ScanBackend};
use etmem::types::{PageSize, Pid, Vma};

const ROUNDS: usize = 3;

struct Workload {
    child: Child,
    pid: Pid,
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workload(mib: u64) -> Workload {
    let mut child = Command::new(env!("CARGO_BIN_EXE_etmem"))
        .args(["workload", "--cold-mib", &mib.to_string(), "--hot-mib", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("workload starts");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    for line in out.lines() {
        if line.expect("workload output") == "ready" {
            break;
        }
    }
    Workload {
        pid: child.id() as Pid,
        child,
    }
}

/// A `kB` line of this process's status, in KiB.
fn status_kb(key: &str) -> u64 {
    let me = std::process::id() as Pid;
    etmem::sys::process::status_bytes(me, key).unwrap_or(0) / 1024
}

/// The floor for `backend`: the same kernel reads and writes as one pass, nothing else.
/// The pagemap chunks the trackers read, as (address, entries).
fn chunks(vmas: &[Vma], mut each: impl FnMut(u64, usize)) {
    let base = PageSize::Base.bytes();
    let chunk = CHUNK_ENTRIES as u64 * base;
    for v in vmas {
        let mut a = v.range.start;
        while a < v.range.end {
            let end = ((a / chunk + 1) * chunk).min(v.range.end);
            each(a, ((end - a) / base) as usize);
            a = end;
        }
    }
}

struct Floor {
    pid: Pid,
    backend: ScanBackend,
    vmas: Vec<Vma>,
    entries: Vec<u64>,
    words: Vec<Vec<(u64, u64)>>,
}

impl Floor {
    fn new(backend: ScanBackend, pid: Pid, vmas: &[Vma]) -> Floor {
        let mut f = Floor {
            pid,
            backend,
            vmas: vmas.iter().filter(|v| !v.is_special()).cloned().collect(),
            entries: Vec::new(),
            words: Vec::new(),
        };
        if backend == ScanBackend::PageIdle {
            // The bitmap words of every chunk, computed once outside the timing.
            let mut pm = Pagemap::open(pid).unwrap();
            let mut words = Vec::new();
            chunks(&f.vmas, |addr, n| {
                let mut e = vec![0u64; n];
                pm.read(addr, &mut e).unwrap();
                words_of(e.iter().map(|&x| pagemap::pfn(x)), &mut words);
                f.words.push(words.clone());
            });
        }
        f
    }

    fn run(&mut self) -> Duration {
        let t = Instant::now();
        let mut pm = Pagemap::open(self.pid).unwrap();
        let mut entries = std::mem::take(&mut self.entries);
        let mut bitmap = (self.backend == ScanBackend::PageIdle).then(|| PageIdle::open().unwrap());
        let mut k = 0;
        let words = std::mem::take(&mut self.words);
        let mut scratch = Vec::new();
        if self.backend == ScanBackend::Smaps {
            let _ = std::fs::read_to_string(format!("/proc/{}/smaps", self.pid)).unwrap();
        }
        chunks(&self.vmas, |addr, n| {
            entries.resize(n, 0);
            pm.read(addr, &mut entries).unwrap();
            if let Some(b) = bitmap.as_mut() {
                scratch.clone_from(&words[k]);
                b.read_idle(&mut scratch).unwrap();
                b.mark_idle(&words[k]).unwrap();
                k += 1;
            }
        });
        let clear = match self.backend {
            ScanBackend::Smaps => Some(ClearRefs::Referenced),
            ScanBackend::SoftDirty => Some(ClearRefs::SoftDirty),
            _ => None,
        };
        if let Some(c) = clear {
            ClearRefsFile::open(self.pid).unwrap().clear(c).unwrap();
        }
        let d = t.elapsed();
        self.entries = entries;
        self.words = words;
        d
    }
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / v.len().max(1) as u32
}

/// Environment of the per-backend child runs: `BACKEND,MIB,PID`.
const CHILD: &str = "ETMEM_BENCH_ONE";

fn main() {
    if let Ok(one) = std::env::var(CHILD) {
        let f: Vec<&str> = one.split(',').collect();
        let backend = ScanBackend::choose(f[0]).unwrap().unwrap();
        measure(backend, f[1].parse().unwrap(), f[2].parse().unwrap());
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is expected.
    let sizes: Vec<u64> = std::env::var("ETMEM_BENCH_MIB")
        .unwrap_or_else(|_| "1024,4096,16384".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("| backend | touched | pass (mean of {ROUNDS}) | floor | ratio | peak RSS growth per GiB | counters per GiB |");
    println!("|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    for &mib in &sizes {
        let w = workload(mib);
        // Each backend is measured in a fresh process, so its peak RSS is its own.
        for backend in ScanBackend::ALL {
            let _ = Command::new(&me)
                .env(CHILD, format!("{},{mib},{}", backend.name(), w.pid))
                .status();
        }
    }
}

/// One row: `backend` scanning the workload `pid` of `mib` MiB.
fn measure(backend: ScanBackend, mib: u64, pid: Pid) {
    let target = Pidfd::open(pid).unwrap();
    let vmas = etmem::sys::maps::read_maps(pid).unwrap();
    let rss0 = status_kb("VmRSS");
    let mut tr: Box<dyn Tracker> = match track::open(Some(backend), &target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: not available: {}", backend.name(), e);
            return;
        }
    };
    tr.begin(&target, &vmas, &|| false).unwrap();
    tr.pass(&target, &|| false).unwrap();
    let peak = status_kb("VmHWM").saturating_sub(rss0);
    let mut floor = Floor::new(backend, pid, &vmas);
    let (mut passes, mut floors) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        if backend == ScanBackend::Damon {
            std::thread::sleep(Duration::from_millis(300));
        } else {
            floors.push(floor.run());
        }
        let t = Instant::now();
        tr.pass(&target, &|| false).unwrap();
        passes.push(t.elapsed());
    }
    let counters: usize = tr.counts().iter().map(|c| c.footprint()).sum();
    tr.finish();
    let gib = mib as f64 / 1024.0;
    let (p, f) = (mean(&passes), mean(&floors));
    let (floor_s, ratio) = if floors.is_empty() {
        ("n/a".to_string(), "n/a".to_string())
    } else {
        (
            format!("{:.1} ms", f.as_secs_f64() * 1e3),
            format!("{:.2}×", p.as_secs_f64() / f.as_secs_f64()),
        )
    };
    println!(
        "| {} | {} MiB | {:.1} ms | {} | {} | {:.0} KiB | {:.0} KiB |",
        backend.name(),
        mib,
        p.as_secs_f64() * 1e3,
        floor_s,
        ratio,
        peak as f64 / gib,
        counters as f64 / 1024.0 / gib
    );
}
