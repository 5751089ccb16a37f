//! `etmem-swap` (also `etmem swap`): swap memory of a live process out of DRAM now, for
//! scripts: the ranges given (`--range`, or `--stdin` with plain ranges or `etmem-scan
//! --pages` output), or the pages a scan finds cold (`--cold`). Every given range is
//! checked against the process's maps before anything moves, so one bad range moves
//! nothing; `--dry-run` shows what would go.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use super::getopt::{self, Opt};
use super::oneshot::{self, describe, ScanOptions, Target};
use super::scan_text;
use crate::act::coalesce::total_bytes;
use crate::act::{self, swappable, swappable::Asked};
use crate::engine::cold::{self, Plan, Swapped, Watch};
use crate::engine::targets::Held;
use crate::error::{Error, Kind, Result};
use crate::json;
use crate::sys::meminfo::{self, SwapSpace};
use crate::track::counts::MAX_COUNT;
use crate::types::{help_list, Family, PageSize, Pid, Range, ScanBackend, SwapBackend};

const OPTS: &[Opt] = &[
    Opt::value("pid", Some('p')),
    Opt::value("name", Some('n')),
    Opt::value("range", Some('r')),
    Opt::flag("stdin", None),
    Opt::flag("cold", None),
    Opt::flag("children", Some('c')),
    Opt::value("loop", Some('l')),
    Opt::value("interval", Some('i')),
    Opt::value("backend", Some('b')),
    Opt::value("threshold", Some('t')),
    Opt::value("swap-backend", Some('s')),
    Opt::flag("dry-run", None),
    Opt::flag("json", None),
    Opt::flag("help", Some('h')),
];

const HELP: &str = "\
usage: etmem-swap (--pid N | --name COMM) (--range START-END ... | --stdin | --cold) [options]
       etmem swap (--pid N | --name COMM) (--range START-END ... | --stdin | --cold) [options]

Swap memory of a live process out of DRAM now: the ranges given, or the pages that a
scan finds cold. Given ranges are all checked before anything moves: if one is bad,
nothing is swapped.

  -p, --pid N            the process
  -n, --name COMM        the process whose name (comm) is exactly COMM (the lowest pid)
  -r, --range START-END  swap out [START, END); repeatable (may be combined with --stdin)
      --stdin            read ranges from standard input, one per line: `START-END`
                         lines, or the output of `etmem-scan --pages` as it is (its
                         `  START-END SIZE COUNT` page lines are the ranges; its `pid`,
                         `#`, VMA and `total` lines are skipped), or the output of
                         `etmem-swap --dry-run`; blank lines and `#` lines are skipped
      --cold             scan the process now and swap out its cold pages: those whose
                         count is below the threshold (the daemon's slide rule), in the
                         VMAs the daemon swaps
  -c, --children         with --cold: also the process's direct children, one after
                         the other, each with its own output; one that fails (e.g.
                         exits) is reported on stderr and the others still go
  -t, --threshold T      with --cold: a page is cold when its count is < T (0..3*loop,
                         default: loop, i.e. cold unless accessed in every scan);
                         with --stdin: take only scan page lines whose COUNT is < T
                         (0..65534; plain START-END lines are always taken); without
                         it every line read is taken
  -l, --loop N           with --cold: number of scans (1..120, default 1)
  -i, --interval S       with --cold: seconds before each scan (0 < S <= 1200,
                         decimals allowed, default 1)
  -b, --backend B        with --cold: the scan backend (see etmem-scan --help):
                         {SCAN_BACKENDS}
                         (default: auto)
  -s, --swap-backend B   {SWAP_BACKENDS} (default: auto, the
                         first this kernel has, in this order):
{SWAP_BACKEND_LIST}
      --dry-run          print the ranges that would go and their total; move nothing
      --json             print one JSON object per process, one per line, instead
                         of text
  -h, --help             this text

Ranges: START and END are hex addresses, `0x` optional. Each range must have
START < END, both aligned to the base page size, and lie wholly in mapped memory of
the kind etmem swaps: private, readable and not executable, anonymous or a writable
private file mapping (not shared memory, program text or [vdso]/[vvar]/[vsyscall]).
Overlapping and adjacent ranges are merged.

Text output: `pid P requested R bytes swapped S bytes (VmSwap +D bytes) backend B`:
R is the bytes asked for (ranges merged), S the bytes the kernel accepted and D the
change of the process's VmSwap, i.e. what really left DRAM (other activity of the
process counts too). With --cold a `# scan ...` line comes first. Ranges the kernel
skipped (locked, gone...) are listed on stderr. With --dry-run: `pid P dry-run
requested R bytes in K ranges backend B`, then one `  START-END` line per range.

Exit status: 0 success, also when the kernel skipped some ranges or nothing was cold;
1 the process (or, with --children, any of them) does not exist or exited, the scan
failed, the kernel refused the swap-out (no permission, no backend) or skipped every
range, it took the ranges but nothing left DRAM because swap is full or none is on (VmSwap
did not grow), or a signal interrupted it; 2 bad usage, a bad range or unreadable input.";

/// The help text, its backend lists from the backend tables.
fn help() -> String {
    HELP.replace("{SCAN_BACKENDS}", &ScanBackend::choices())
        .replace("{SWAP_BACKENDS}", &SwapBackend::choices())
        .replace(
            "{SWAP_BACKEND_LIST}",
            &help_list::<SwapBackend>(25, |b| b.needs().to_string()),
        )
}

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    target: Target,
    source: Source,
    /// `--children` (with --cold only).
    children: bool,
    swap_backend: Option<SwapBackend>,
    dry_run: bool,
    json: bool,
}

/// Where the ranges to swap come from.
#[derive(Debug)]
enum Source {
    /// `--range` values and, with `stdin`, standard input; `threshold` filters scan
    /// page lines read from stdin.
    Given {
        ranges: Vec<Asked>,
        stdin: bool,
        threshold: Option<u16>,
    },
    /// `--cold`: scan now and take the pages whose count is below the threshold.
    Cold(ScanOptions),
}

/// What was done (or, with --dry-run, would be).
struct Done {
    pid: Pid,
    comm: String,
    backend: SwapBackend,
    /// With --cold: the scan backend.
    scanned: Option<ScanBackend>,
    ranges: Vec<Range>,
    /// `None` with --dry-run.
    swap: Option<Swapped>,
}

/// Entry point of `etmem-swap`.
pub fn main(args: &[String]) -> i32 {
    let a = match oneshot::args_or_exit("etmem-swap", &help(), parse(args)) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let stop = oneshot::stop_on_signals();
    let held = match oneshot::processes(&a.target, a.children) {
        Ok(p) => p,
        Err(e) => return oneshot::fail("etmem-swap", &e),
    };
    let mut status = 0;
    for one in &held {
        let this = match run(&a, one, &stop) {
            Ok(done) => {
                let out = if a.json {
                    json(&a, &done)
                } else {
                    text(&a, &done)
                };
                // The swap happened either way; an unwritable output still fails.
                let written = super::print_out("etmem-swap", &out);
                report(&done).max(if written { 0 } else { 1 })
            }
            Err(e) => oneshot::fail("etmem-swap", &e),
        };
        status = status.max(this);
        if stop.load(Ordering::Relaxed) {
            if this == 0 {
                eprintln!("etmem-swap: interrupted by a signal");
            }
            return status.max(1);
        }
    }
    status
}

/// Say on stderr what the kernel skipped or refused; the exit status for this process.
fn report(done: &Done) -> i32 {
    let Some(s) = &done.swap else { return 0 };
    let skipped = &s.report.skipped;
    for (r, why) in skipped.iter().take(10) {
        eprintln!(
            "etmem-swap: pid {}: the kernel skipped {r}: {why}",
            done.pid
        );
    }
    if skipped.len() > 10 {
        eprintln!(
            "etmem-swap: ... and {} more skipped ranges",
            skipped.len() - 10
        );
    }
    if s.report.stopped {
        eprintln!("etmem-swap: interrupted by a signal");
        return 1;
    }
    if s.report.requested_bytes > 0 && s.report.advised_bytes == 0 {
        eprintln!(
            "etmem-swap: pid {}: the kernel swapped none of the {} bytes requested",
            done.pid, s.report.requested_bytes
        );
        return 1;
    }
    let advised = s.report.advised_bytes;
    if let Some(why) = nothing_left(advised, s.vmswap_delta, || meminfo::swap_space().ok()) {
        eprintln!(
            "etmem-swap: pid {}: nothing left DRAM because {why}: the kernel took {advised} \
             bytes, but the process's VmSwap did not grow",
            done.pid
        );
        return 1;
    }
    0
}

/// Why nothing left DRAM although the kernel took `advised` bytes: the process's VmSwap
/// did not grow (`vmswap_delta` known and ≤ 0) and the system has no free swap (`swap`,
/// read only then; `None` when it cannot be read), less than a page. `None` when that is
/// not the case: the kernel counts pages it was advised to reclaim, not pages it could
/// write out, so with swap full it "takes" everything and moves nothing.
fn nothing_left(
    advised: u64,
    vmswap_delta: Option<i128>,
    swap: impl FnOnce() -> Option<SwapSpace>,
) -> Option<&'static str> {
    if advised == 0 || !vmswap_delta.is_some_and(|d| d <= 0) {
        return None;
    }
    match swap()? {
        SwapSpace { total: 0, .. } => Some("no swap is on"),
        s if s.free < PageSize::Base.bytes() => Some("swap is full"),
        _ => None,
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
    let target = oneshot::target_from_options(&items, "swap")?;
    let ranges = getopt::all(&items, "range")
        .into_iter()
        .map(|t| {
            Range::parse(t)
                .map(|range| Asked {
                    range,
                    origin: format!("--range {range}"),
                })
                .ok_or_else(|| {
                    format!("--range: {t:?} is not START-END (hex addresses, 0x optional)")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stdin = getopt::has(&items, "stdin");
    let children = getopt::has(&items, "children");
    let source = if getopt::has(&items, "cold") {
        if stdin || !ranges.is_empty() {
            return Err(
                "--cold finds the ranges itself: give it without --range or --stdin".into(),
            );
        }
        Source::Cold(ScanOptions::from_options(&items)?)
    } else {
        if let Some(o) = ["loop", "interval", "backend"]
            .into_iter()
            .find(|o| getopt::has(&items, o))
        {
            return Err(format!("--{o} applies to --cold only"));
        }
        if children {
            return Err(
                "--children applies to --cold only: given ranges are addresses in one process"
                    .into(),
            );
        }
        if !stdin && ranges.is_empty() {
            return Err("say what to swap: --range START-END, --stdin or --cold".into());
        }
        let threshold = match getopt::last(&items, "threshold") {
            None => None,
            Some(_) if !stdin => return Err("--threshold applies to --cold and --stdin".into()),
            Some(v) => Some(
                v.parse::<u16>()
                    .ok()
                    .filter(|t| *t <= MAX_COUNT)
                    .ok_or_else(|| {
                        format!("--threshold: {v:?} is not a number from 0 to {MAX_COUNT}")
                    })?,
            ),
        };
        Source::Given {
            ranges,
            stdin,
            threshold,
        }
    };
    let swap_backend = match getopt::last(&items, "swap-backend") {
        None => None,
        Some(b) => SwapBackend::choose(b).map_err(|e| format!("--swap-backend: {e}"))?,
    };
    Ok(Some(Args {
        target,
        source,
        children,
        swap_backend,
        dry_run: getopt::has(&items, "dry-run"),
        json: getopt::has(&items, "json"),
    }))
}

/// Swap out (or with --dry-run only find) what `a` asks for in process `held`.
fn run(a: &Args, held: &Held, stop: &AtomicBool) -> Result<Done> {
    let pid = held.pid();
    let in_pid = |mut e: Error| {
        e.msg = describe(pid, &e, "swapping");
        e
    };
    let stopped = || stop.load(Ordering::Relaxed);
    let (pidfd, comm) = oneshot::open_user_process(held, "swap").map_err(in_pid)?;
    let (plan, scanned) = match &a.source {
        Source::Given {
            ranges,
            stdin,
            threshold,
        } => {
            let given = ranges.iter().cloned().map(Ok);
            let from_stdin = stdin.then(|| {
                scan_text::read_ranges(std::io::stdin().lock(), *threshold, pid)
                    .map(|r| r.map_err(Error::usage))
            });
            let asked = given.chain(from_stdin.into_iter().flatten());
            let checked = swappable::checked(pidfd, asked).map_err(in_pid)?;
            (Plan::of_ranges(&checked), None)
        }
        Source::Cold(o) => {
            let spec = o.spec(Watch::Swappable { only_marked: false });
            let scan = cold::scan(pidfd, &spec, &stopped).map_err(|e| {
                if stopped() {
                    Error::new(Kind::Gone, "the scan was interrupted by a signal")
                } else {
                    in_pid(e)
                }
            })?;
            (Plan::of_runs(&scan.cold(o.threshold)), Some(scan.backend))
        }
    };
    let swap = if a.dry_run {
        None
    } else {
        // Reading standard input or scanning took a while: check again before swapping.
        let pidfd = held.check().map_err(in_pid)?;
        Some(cold::swap_out(pidfd, a.swap_backend, &plan.pages, &stopped).map_err(in_pid)?)
    };
    Ok(Done {
        pid,
        comm,
        backend: swap.as_ref().map_or_else(
            || a.swap_backend.unwrap_or_else(|| act::detect(pid)),
            |s| s.backend,
        ),
        scanned,
        ranges: plan.ranges,
        swap,
    })
}

/// `+N` or `-N`.
fn signed(n: i128) -> String {
    if n >= 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn text(a: &Args, d: &Done) -> String {
    let mut o = String::new();
    if let (Some(b), Source::Cold(s)) = (d.scanned, &a.source) {
        let _ = writeln!(
            o,
            "# scan backend {} loop {} interval {} threshold {}: {} bytes cold in {} ranges",
            b.name(),
            s.loops,
            s.interval_text,
            s.threshold,
            total_bytes(&d.ranges),
            d.ranges.len()
        );
    }
    let requested = total_bytes(&d.ranges);
    match &d.swap {
        None => {
            let _ = writeln!(
                o,
                "pid {} dry-run requested {requested} bytes in {} ranges backend {}",
                d.pid,
                d.ranges.len(),
                d.backend.name()
            );
            for r in &d.ranges {
                let _ = writeln!(o, "  {r}");
            }
        }
        Some(s) => {
            let delta = s.vmswap_delta.map_or("VmSwap unknown".into(), |n| {
                format!("VmSwap {} bytes", signed(n))
            });
            let _ = writeln!(
                o,
                "pid {} requested {} bytes swapped {} bytes ({delta}) backend {}",
                d.pid,
                s.report.requested_bytes,
                s.report.advised_bytes,
                d.backend.name()
            );
        }
    }
    o
}

fn json(a: &Args, d: &Done) -> String {
    let mut text = json::object(|o| {
        o.field("pid", d.pid)
            .field("comm", &d.comm)
            .field("backend", d.backend.name())
            .field("dry_run", d.swap.is_none());
        match (d.scanned, &a.source) {
            (Some(b), Source::Cold(s)) => o.object("scan", |o| {
                o.field("backend", b.name())
                    .field("loop", s.loops)
                    .field("interval", s.interval.as_secs_f64())
                    .field("threshold", s.threshold);
            }),
            _ => o.field("scan", json::Null),
        };
        o.field("requested_bytes", total_bytes(&d.ranges))
            .field(
                "swapped_bytes",
                d.swap.as_ref().map(|s| s.report.advised_bytes),
            )
            .field("vmswap_delta", d.swap.as_ref().and_then(|s| s.vmswap_delta));
        o.array("skipped", |a| {
            for (r, why) in d.swap.iter().flat_map(|s| &s.report.skipped) {
                a.object(|o| {
                    o.field("start", r.start)
                        .field("end", r.end)
                        .field("reason", why);
                });
            }
        });
        o.array("ranges", |a| {
            for r in &d.ranges {
                a.object(|o| {
                    o.field("start", r.start).field("end", r.end);
                });
            }
        });
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Option<Args>, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn err(a: &[&str]) -> String {
        args(a).unwrap_err()
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert!(err(&[]).contains("--pid N or --name COMM"));
        assert!(err(&["-p", "1"]).contains("--range START-END, --stdin or --cold"));
        assert!(err(&["-p", "1", "-r", "xyz"]).contains("--range: \"xyz\""));
        assert!(err(&["-p", "1", "-r", "1000-"]).contains("START-END"));
        assert!(err(&["-p", "1", "-r", "+1000-2000"]).contains("START-END"));
        assert!(err(&["-p", "1", "--cold", "--stdin"]).contains("without --range"));
        assert!(err(&["-p", "1", "-r", "0-1000", "-l", "2"]).contains("--loop applies"));
        assert!(err(&["-p", "1", "-r", "0-1000", "-t", "1"]).contains("--threshold applies"));
        assert!(err(&["-p", "1", "--stdin", "-t", "x"]).contains("0 to 65534"));
        assert!(err(&["-p", "1", "--cold", "-l", "2", "-t", "7"]).contains("0 to 6"));
        assert!(err(&["-p", "1", "--cold", "-s", "x"]).contains("--swap-backend"));
        assert!(err(&["-p", "1", "--cold", "x"]).contains("unexpected"));
        assert!(err(&["-p", "1", "-r", "0-1000", "-c"]).contains("--children applies"));
        assert!(args(&["-h"]).unwrap().is_none());
    }

    #[test]
    fn options_parse() {
        let a = args(&[
            "-p",
            "9",
            "-r",
            "0x1000-0x3000",
            "--range=4000-5000",
            "--dry-run",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.target, Target::Pid(9));
        assert!(a.dry_run && !a.json && a.swap_backend.is_none());
        let Source::Given { ranges, stdin, .. } = &a.source else {
            panic!("{a:?}")
        };
        assert!(!stdin);
        assert_eq!(ranges[0].range, Range::new(0x1000, 0x3000));
        assert_eq!(ranges[1].range, Range::new(0x4000, 0x5000));
        let a = args(&["-n", "x", "--cold", "-l", "3", "-s", "process_madvise"])
            .unwrap()
            .unwrap();
        let Source::Cold(s) = &a.source else {
            panic!("{a:?}")
        };
        assert_eq!((s.loops, s.threshold), (3, 3));
        assert_eq!(a.swap_backend, Some(SwapBackend::ProcessMadvise));
    }

    #[test]
    fn taken_but_not_gone_is_a_failure_only_when_swap_is_full_or_off() {
        let full = || {
            Some(SwapSpace {
                total: 1 << 30,
                free: 0,
            })
        };
        let off = || Some(SwapSpace::default());
        let room = || {
            Some(SwapSpace {
                total: 1 << 30,
                free: 1 << 29,
            })
        };
        assert_eq!(nothing_left(8192, Some(0), full), Some("swap is full"));
        assert_eq!(nothing_left(8192, Some(-4096), full), Some("swap is full"));
        assert_eq!(nothing_left(8192, Some(0), off), Some("no swap is on"));
        // Swap has room: something else kept the pages (a cgroup's swap limit, say), and
        // VmSwap already says so; not this failure.
        assert_eq!(nothing_left(8192, Some(0), room), None);
        // Something left, or nothing was taken, or it cannot be told: not this failure.
        assert_eq!(nothing_left(8192, Some(4096), full), None);
        assert_eq!(nothing_left(0, Some(0), full), None);
        assert_eq!(nothing_left(8192, None, full), None);
        assert_eq!(nothing_left(8192, Some(0), || None), None);
        // Swap is only read when the rest says nothing left.
        assert_eq!(
            nothing_left(8192, Some(4096), || panic!("read swap needlessly")),
            None
        );
    }

    #[test]
    fn signed_deltas() {
        assert_eq!(signed(0), "+0");
        assert_eq!(signed(4096), "+4096");
        assert_eq!(signed(-4096), "-4096");
    }

    /// The exact `--json` text: keys, order, nulls and escaping are what scripts read.
    #[test]
    fn json_text_is_pinned() {
        let report = act::SwapReport {
            requested_bytes: 8192,
            advised_bytes: 4096,
            skipped: vec![(Range::new(0x3000, 0x4000), "locked \"x\"".into())],
            calls: 2,
            stopped: false,
        };
        let done = Done {
            pid: 7,
            comm: "a\tb".into(),
            backend: SwapBackend::ProcessMadvise,
            scanned: Some(ScanBackend::Smaps),
            ranges: vec![Range::new(0x1000, 0x2000), Range::new(0x3000, 0x4000)],
            swap: Some(Swapped {
                backend: SwapBackend::ProcessMadvise,
                report,
                vmswap_delta: Some(-4096),
            }),
        };
        let cold = args(&["-p", "7", "--cold", "-l", "2", "-i", "0.5"])
            .unwrap()
            .unwrap();
        assert_eq!(
            json(&cold, &done),
            concat!(
                r#"{"pid":7,"comm":"a\tb","backend":"process_madvise","dry_run":false,"#,
                r#""scan":{"backend":"smaps","loop":2,"interval":0.5,"threshold":2},"#,
                r#""requested_bytes":8192,"swapped_bytes":4096,"vmswap_delta":-4096,"#,
                r#""skipped":[{"start":12288,"end":16384,"reason":"locked \"x\""}],"#,
                r#""ranges":[{"start":4096,"end":8192},{"start":12288,"end":16384}]}"#,
                "\n"
            )
        );
        let dry = Done {
            scanned: None,
            swap: None,
            ranges: Vec::new(),
            ..done
        };
        let given = args(&["-p", "7", "-r", "1000-2000", "--dry-run"])
            .unwrap()
            .unwrap();
        assert_eq!(
            json(&given, &dry),
            concat!(
                r#"{"pid":7,"comm":"a\tb","backend":"process_madvise","dry_run":true,"#,
                r#""scan":null,"requested_bytes":0,"swapped_bytes":null,"#,
                r#""vmswap_delta":null,"skipped":[],"ranges":[]}"#,
                "\n"
            )
        );
    }
}
