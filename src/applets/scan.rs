//! `etmem-scan` (also `etmem scan`): scan a live process now and print which of its
//! memory is hot, warm and cold, per VMA or per page range, as text or JSON, for scripts.

use std::sync::atomic::{AtomicBool, Ordering};

use std::path::Path;

use super::getopt::{self, Opt};
use super::heatmap::Heatmap;
use super::oneshot::{self, describe, ScanOptions, Target};
use super::scan_text::{self, mapping};
use crate::engine::cold::{self, Watch};
use crate::error::{Error, Result};
use crate::json;
use crate::sys::replace_file;
use crate::track::{Summary, VmaCounts};
use crate::types::{help_list, Family, Pid, ScanBackend};

const OPTS: &[Opt] = &[
    Opt::value("pid", Some('p')),
    Opt::value("name", Some('n')),
    Opt::value("loop", Some('l')),
    Opt::value("interval", Some('i')),
    Opt::value("backend", Some('b')),
    Opt::value("threshold", Some('t')),
    Opt::flag("children", Some('c')),
    Opt::flag("pages", None),
    Opt::flag("json", None),
    Opt::value("heatmap", None),
    Opt::flag("all", Some('a')),
    Opt::flag("demo", None),
    Opt::flag("help", Some('h')),
];

const HELP: &str = "\
usage: etmem-scan (--pid N | --name COMM | --demo) [options]
       etmem scan (--pid N | --name COMM | --demo) [options]

Measure how often a live process touches each page of its memory and print, per VMA,
how much of it is hot, warm and cold.

  -p, --pid N          the process to scan
  -n, --name COMM      the process whose name (comm) is exactly COMM (the lowest pid)
      --demo           start a demo process (64 MiB it keeps reading, 192 MiB it never
                       touches again), scan it (default here: --loop 2) and end it
  -c, --children       also scan the process's direct children, one after the other
  -l, --loop N         number of scans (1..120, default 1)
  -i, --interval S     seconds between the start and each scan, and between scans
                       (0 < S <= 1200, decimals allowed, default 1)
  -b, --backend B      {BACKENDS}
                       (default: auto)
  -t, --threshold T    a page is hot when its count is >= T (0..3*loop, default: loop,
                       i.e. accessed in every scan); cold when its count is 0; warm between
  -a, --all            every VMA (default: etmem's anonymous VMAs: private, not
                       executable, and not file backed or writable)
      --pages          also list the resident page ranges with their counts (adjacent
                       pages of one size with equal counts are merged)
      --json           print one JSON object instead of text
      --heatmap FILE   also draw the access heat over time as an SVG picture in FILE:
                       address down (each VMA labelled), one column per scan, colour =
                       the mean count a region's resident pages gained in that scan
  -h, --help           this text

Counts: each scan adds +1 to a page that was accessed since the previous one and +3 to
one that was written, where the backend can tell. Backends, in the order auto tries
them, what each needs and what it sees:
{BACKEND_LIST}

Text output: a line `pid P comm C backend B loop L interval S threshold T`, a `#` line
naming what the backend sees, a `#` column header, then one line per VMA:
`START-END PERMS RESIDENT HOT WARM COLD MAPPING` (bytes; addresses in hex), with
--pages followed by `  START-END SIZE COUNT` lines, and a `total` line.

Exit status: 0 success; 1 the process does not exist, exited during the scan, cannot
be read, or no backend works; 2 bad usage.";

/// The help text, its backend lists from the backend table.
fn help() -> String {
    HELP.replace("{BACKENDS}", &ScanBackend::choices()).replace(
        "{BACKEND_LIST}",
        &help_list::<ScanBackend>(2, |b| format!("{}: {}", b.needs(), b.sees())),
    )
}

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    target: Target,
    children: bool,
    scan: ScanOptions,
    pages: bool,
    json: bool,
    heatmap: Option<String>,
    all: bool,
    demo: bool,
}

/// The result for one process.
struct Scanned {
    pid: Pid,
    comm: String,
    backend: ScanBackend,
    counts: Vec<VmaCounts>,
}

/// Entry point of `etmem-scan`.
pub fn main(args: &[String]) -> i32 {
    let a = match oneshot::args_or_exit("etmem-scan", &help(), parse(args)) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let stop = oneshot::stop_on_signals();
    let (a, _demo) = if a.demo {
        match super::demo::Demo::start() {
            Ok(d) => {
                eprintln!(
                    "etmem-scan: demo process {}: {}",
                    d.pid(),
                    d.regions.join(", ")
                );
                (
                    Args {
                        target: Target::Pid(d.pid()),
                        ..a
                    },
                    Some(d),
                )
            }
            Err(e) => return oneshot::fail("etmem-scan", &e),
        }
    } else {
        (a, None)
    };
    match run(&a, &stop) {
        Ok(done) => {
            let text = if a.json {
                json(&a, &done)
            } else {
                text(&a, &done)
            };
            if super::print_out("etmem-scan", &text) {
                0
            } else {
                1
            }
        }
        Err(e) => oneshot::fail("etmem-scan", &e),
    }
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let items = getopt::parse(args, OPTS)?;
    if getopt::has(&items, "help") {
        return Ok(None);
    }
    if let Some(w) = getopt::words(&items).first() {
        return Err(format!("unexpected argument {w:?}"));
    }
    let demo = getopt::has(&items, "demo");
    let target = if demo {
        if getopt::has(&items, "pid") || getopt::has(&items, "name") {
            return Err("--demo scans its own process: give no --pid or --name".into());
        }
        Target::Pid(0)
    } else {
        oneshot::target_from_options(&items, "scan")?
    };
    // The demo's default is two scans: enough to tell "read every second" from "never
    // touched" on any backend.
    let scan = if demo && getopt::last(&items, "loop").is_none() {
        ScanOptions::from_options(&with_loop2(&items))?
    } else {
        ScanOptions::from_options(&items)?
    };
    Ok(Some(Args {
        target,
        children: getopt::has(&items, "children"),
        scan,
        pages: getopt::has(&items, "pages"),
        json: getopt::has(&items, "json"),
        heatmap: match getopt::last(&items, "heatmap") {
            Some("") => return Err("--heatmap: give the SVG file to write".into()),
            other => other.map(str::to_string),
        },
        all: getopt::has(&items, "all"),
        demo,
    }))
}

/// The command line's options with `--loop 2` added (the demo's default).
fn with_loop2(items: &[getopt::Item]) -> Vec<getopt::Item> {
    let mut v = items.to_vec();
    v.push(getopt::Item::Opt("loop", Some("2".into())));
    v
}

fn run(a: &Args, stop: &AtomicBool) -> Result<Vec<Scanned>> {
    let watch = if a.all { Watch::All } else { Watch::Anon };
    let spec = a.scan.spec(watch);
    let mut out = Vec::new();
    let mut heat = Heatmap::new(spec.interval.as_secs_f64());
    if let Some(file) = &a.heatmap {
        // Before the scan, not after it: a long scan should not end in "cannot write".
        let dir = match Path::new(file).parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Error::invalid(format!(
                "--heatmap {file}: {} is not a directory",
                dir.display()
            )));
        }
    }
    for held in oneshot::processes(&a.target, a.children)? {
        let pid = held.pid();
        let one = oneshot::open_user_process(&held, "scan").and_then(|(target, comm)| {
            heat.start_process(pid, &comm);
            let stopped = || stop.load(Ordering::Relaxed);
            let scan = if a.heatmap.is_some() {
                cold::scan_observed(target, &spec, &stopped, &mut |c| heat.observe(c))?
            } else {
                cold::scan(target, &spec, &stopped)?
            };
            heat.name_backend(scan.backend.name());
            Ok(Scanned {
                pid,
                comm,
                backend: scan.backend,
                counts: scan.counts,
            })
        });
        out.push(one.map_err(|mut e| {
            e.msg = if stop.load(Ordering::Relaxed) {
                "scan interrupted by a signal".to_string()
            } else {
                describe(pid, &e, "scanning")
            };
            e
        })?);
    }
    if let Some(file) = &a.heatmap {
        replace_file::replace(Path::new(file), heat.svg().as_bytes(), 0o644)
            .map_err(|e| Error::invalid(format!("writing the heat map: {e}")))?;
    }
    Ok(out)
}

fn text(a: &Args, done: &[Scanned]) -> String {
    let mut o = String::new();
    let scan = (
        a.scan.loops,
        a.scan.interval_text.as_str(),
        a.scan.threshold,
    );
    for s in done {
        scan_text::write_header(&mut o, s.pid, &s.comm, s.backend, scan);
        let mut total = Summary::default();
        for c in &s.counts {
            let sum = Summary::of(c, a.scan.threshold);
            total.add(&sum);
            scan_text::write_vma(&mut o, c.vma(), &sum);
            if a.pages {
                for r in c.runs() {
                    scan_text::write_page(&mut o, &r);
                }
            }
        }
        scan_text::write_total(&mut o, &total);
    }
    o
}

/// The four figures of a summary, as members of the enclosing object.
fn summary_fields(o: &mut json::Object, s: &Summary) {
    o.field("resident", s.resident)
        .field("hot", s.hot)
        .field("warm", s.warm)
        .field("cold", s.cold);
}

fn json(a: &Args, done: &[Scanned]) -> String {
    let mut o = json::object(|o| {
        o.field("loop", a.scan.loops)
            .field("interval", a.scan.interval.as_secs_f64())
            .field("threshold", a.scan.threshold);
        o.array("processes", |ps| {
            for s in done {
                ps.object(|p| process_json(p, a, s));
            }
        });
    });
    o.push('\n');
    o
}

fn process_json(o: &mut json::Object, a: &Args, s: &Scanned) {
    o.field("pid", s.pid)
        .field("comm", &s.comm)
        .field("backend", s.backend.name())
        .field("sees", s.backend.sees());
    let mut total = Summary::default();
    o.array("vmas", |vmas| {
        for c in &s.counts {
            let v = c.vma();
            let sum = Summary::of(c, a.scan.threshold);
            total.add(&sum);
            vmas.object(|o| {
                o.field("start", v.range.start)
                    .field("end", v.range.end)
                    .field("perms", v.perms())
                    .field("mapping", mapping(&v.path));
                summary_fields(o, &sum);
                if a.pages {
                    o.array("pages", |pages| {
                        for r in c.runs() {
                            pages.object(|o| {
                                o.field("start", r.range.start)
                                    .field("end", r.range.end)
                                    .field("page_size", r.size.bytes())
                                    .field("count", r.count);
                            });
                        }
                    });
                }
            });
        }
    });
    o.object("total", |o| summary_fields(o, &total));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PageSize;
    use std::time::Duration;

    fn args(a: &[&str]) -> Result<Option<Args>, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn usage_errors_name_the_option() {
        assert!(args(&[]).unwrap_err().contains("--pid"));
        assert!(args(&["--pid", "x"]).unwrap_err().contains("--pid: \"x\""));
        assert!(args(&["-p", "1", "-n", "a"])
            .unwrap_err()
            .contains("not both"));
        assert!(args(&["-p", "1", "-l", "0"])
            .unwrap_err()
            .contains("--loop"));
        assert!(args(&["-p", "1", "-i", "0"])
            .unwrap_err()
            .contains("--interval"));
        assert!(args(&["-p", "1", "-b", "x"])
            .unwrap_err()
            .contains("--backend"));
        assert!(args(&["-p", "1", "-l", "2", "-t", "7"])
            .unwrap_err()
            .contains("0 to 6"));
        assert!(args(&["-p", "1", "extra"]).unwrap_err().contains("extra"));
        assert!(args(&["--help"]).unwrap().is_none());
        let a = args(&["-p", "1", "-l", "3", "-i", "0.5"]).unwrap().unwrap();
        assert_eq!((a.scan.loops, a.scan.threshold), (3, 3));
        assert_eq!(a.scan.interval, Duration::from_millis(500));
    }

    /// The exact `--json` text: keys, order, numbers and escaping are what scripts read.
    #[test]
    fn json_text_is_pinned() {
        let vma = |line| crate::sys::maps::parse_line(line).unwrap();
        let mut heap = VmaCounts::new(vma("1000-4000 rw-p 00000000 00:00 0 [heap]"));
        heap.record(0x1000, PageSize::Base, 2);
        heap.record(0x2000, PageSize::Base, 0);
        let anon = VmaCounts::new(vma("10000-11000 r--s 00000000 00:00 0"));
        let done = [
            Scanned {
                pid: 7,
                comm: "a\"b\\c\u{1}".into(),
                backend: ScanBackend::Smaps,
                counts: vec![heap, anon],
            },
            Scanned {
                pid: 8,
                comm: String::new(),
                backend: ScanBackend::PageIdle,
                counts: Vec::new(),
            },
        ];
        let a = args(&["-p", "1", "-l", "2", "-i", "0.5", "-t", "1", "--pages"])
            .unwrap()
            .unwrap();
        let (smaps, idle) = (ScanBackend::Smaps.sees(), ScanBackend::PageIdle.sees());
        let second = format!(
            concat!(
                r#"{{"pid":8,"comm":"","backend":"page_idle","sees":"{}","vmas":[],"#,
                r#""total":{{"resident":0,"hot":0,"warm":0,"cold":0}}}}"#
            ),
            idle
        );
        let want = format!(
            concat!(
                r#"{{"loop":2,"interval":0.5,"threshold":1,"processes":["#,
                r#"{{"pid":7,"comm":"a\"b\\c\u0001","backend":"smaps","sees":"{}","vmas":["#,
                r#"{{"start":4096,"end":16384,"perms":"rw-p","mapping":"[heap]","#,
                r#""resident":8192,"hot":4096,"warm":0,"cold":4096,"pages":["#,
                r#"{{"start":4096,"end":8192,"page_size":4096,"count":2}},"#,
                r#"{{"start":8192,"end":12288,"page_size":4096,"count":0}}]}},"#,
                r#"{{"start":65536,"end":69632,"perms":"r--s","mapping":"[anon]","#,
                r#""resident":0,"hot":0,"warm":0,"cold":0,"pages":[]}}],"#,
                r#""total":{{"resident":8192,"hot":4096,"warm":0,"cold":4096}}}},{}]}}"#,
                "\n"
            ),
            smaps, second
        );
        assert_eq!(json(&a, &done), want);
        let b = args(&["-p", "1"]).unwrap().unwrap();
        let want = format!(
            "{}{second}]}}\n",
            r#"{"loop":1,"interval":1,"threshold":1,"processes":["#
        );
        assert_eq!(json(&b, &done[1..]), want);
    }
}
