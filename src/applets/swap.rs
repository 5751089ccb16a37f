//! `etmem-swap` (also `etmem swap`): swap memory of a live process out of DRAM now, for
//! scripts: the ranges given (`--range`, or `--stdin` with plain ranges or `etmem-scan
//! --pages` output), or the pages a scan finds cold (`--cold`). Every given range is
//! checked against the process's maps before anything moves, so one bad range moves
//! nothing; `--dry-run` shows what would go.

use std::fmt::Write as _;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};

use super::getopt::{self, Opt};
use super::oneshot::{self, describe, Target};
use super::scan::ScanOptions;
use crate::act::coalesce::{coalesce, total_bytes};
use crate::act::{self, SwapBackend, SwapReport};
use crate::engine::slide::swappable_vmas;
use crate::error::Error;
use crate::json;
use crate::sys::maps::read_maps;
use crate::sys::pidfd::Pidfd;
use crate::track::{self, counts::sized, counts::MAX_COUNT, Run};
use crate::types::{PageSize, Pid, Range, Vma};

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
  -b, --backend B        with --cold: scan backend auto (default), idle_pages,
                         page_idle, damon, softdirty or smaps (see etmem-scan --help)
  -s, --swap-backend B   auto (default: swap_pages where /proc/PID/swap_pages exists,
                         else process_madvise), swap_pages or process_madvise
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
range, or a signal interrupted it; 2 bad usage, a bad range or unreadable input.";

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
        ranges: Vec<Given>,
        stdin: bool,
        threshold: Option<u16>,
    },
    /// `--cold`: scan now and take the pages whose count is below the threshold.
    Cold(ScanOptions),
}

/// A range the user gave, and where, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Given {
    range: Range,
    origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Option,
    StdinLine(usize),
}

impl Given {
    /// The start of a message about this range: `--range 1000-2000` or
    /// `stdin line 3: range 1000-2000`.
    fn what(&self) -> String {
        match self.origin {
            Origin::Option => format!("--range {}", self.range),
            Origin::StdinLine(n) => format!("stdin line {n}: range {}", self.range),
        }
    }
}

/// How a run failed: bad input (exit 2) or the process or kernel (exit 1).
#[derive(Debug, PartialEq, Eq)]
enum Fail {
    Usage(String),
    Run(String),
}

/// What was done (or, with --dry-run, would be).
struct Done {
    pid: Pid,
    comm: String,
    backend: SwapBackend,
    /// With --cold: the scan backend.
    scanned: Option<track::Backend>,
    ranges: Vec<Range>,
    /// `None` with --dry-run.
    swap: Option<Swapped>,
}

struct Swapped {
    report: SwapReport,
    /// VmSwap after minus before, when both could be read.
    vmswap_delta: Option<i128>,
}

/// Entry point of `etmem-swap`.
pub fn main(args: &[String]) -> i32 {
    let a = match oneshot::args_or_exit("etmem-swap", HELP, parse(args)) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let stop = oneshot::stop_on_signals();
    let pids = match oneshot::pids(&a.target, a.children) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("etmem-swap: {e}");
            return 1;
        }
    };
    let mut status = 0;
    for pid in pids {
        let this = match run(&a, pid, &stop) {
            Ok(done) => {
                print!(
                    "{}",
                    if a.json {
                        json(&a, &done)
                    } else {
                        text(&a, &done)
                    }
                );
                report(&done)
            }
            Err(Fail::Usage(e)) => {
                eprintln!("etmem-swap: {e}");
                2
            }
            Err(Fail::Run(e)) => {
                eprintln!("etmem-swap: {e}");
                1
            }
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
    0
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
            parse_range(t)
                .map(|range| Given {
                    range,
                    origin: Origin::Option,
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
        None | Some("auto") => None,
        Some(b) => Some(SwapBackend::from_name(b).ok_or_else(|| {
            format!("--swap-backend: {b:?} is not auto, swap_pages or process_madvise")
        })?),
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

/// A hex address with or without `0x`, digits only (no sign, no spaces).
fn parse_addr(s: &str) -> Option<u64> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// `START-END` in hex; a reversed range parses (and is refused later, by name).
fn parse_range(s: &str) -> Option<Range> {
    let (a, b) = s.split_once('-')?;
    Some(Range::new(parse_addr(a)?, parse_addr(b)?))
}

/// True for `etmem-scan`'s page size column: `4K`, `2M`, `1G` or bytes.
fn is_size(s: &str) -> bool {
    let digits = s.strip_suffix(['K', 'M', 'G']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// True for `etmem-scan`'s VMA perms column, e.g. `rw-p`.
fn is_perms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4
        && matches!(b[0], b'r' | b'-')
        && matches!(b[1], b'w' | b'-')
        && matches!(b[2], b'x' | b'-')
        && matches!(b[3], b'p' | b's')
}

/// The ranges in the text of `input` (see HELP for the forms). Scan page lines need
/// a count below `threshold` when one is given; `pid P` header lines must name `pid`,
/// so ranges of another process are never applied to this one.
fn read_ranges(
    input: impl BufRead,
    threshold: Option<u16>,
    pid: Pid,
) -> Result<Vec<Given>, String> {
    let mut out = Vec::new();
    for (i, line) in input.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| format!("cannot read stdin: {e}"))?;
        let line = std::str::from_utf8(&line).map_err(|_| format!("stdin line {n} is not text"))?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let range = f.first().and_then(|w| parse_range(w));
        let take = match (f.as_slice(), range) {
            ([], _) => false,
            ([w, ..], _) if w.starts_with('#') => false,
            (["total", ..], _) => false,
            (["pid", p, ..], _) => match p.parse::<Pid>() {
                Ok(p) if p == pid => false,
                Ok(p) => {
                    return Err(format!(
                        "stdin line {n}: the input is about pid {p}, but this swaps pid {pid}"
                    ))
                }
                Err(_) => return Err(not_a_range_line(n, line)),
            },
            ([_], Some(_)) => true,
            ([_, size, count], Some(_)) if is_size(size) => {
                let count = count
                    .parse::<u16>()
                    .map_err(|_| not_a_range_line(n, line))?;
                threshold.map_or(true, |t| count < t)
            }
            ([_, perms, _, _, _, _, ..], Some(_)) if is_perms(perms) => false,
            _ => return Err(not_a_range_line(n, line)),
        };
        if let (true, Some(range)) = (take, range) {
            out.push(Given {
                range,
                origin: Origin::StdinLine(n),
            });
        }
    }
    Ok(out)
}

fn not_a_range_line(n: usize, line: &str) -> String {
    let shown: String = line.chars().take(80).collect();
    format!(
        "stdin line {n}: {shown:?} is neither START-END nor a line of etmem-scan --pages output"
    )
}

/// The first part of `r` that `vmas` (sorted, disjoint) do not cover.
fn first_gap(r: Range, vmas: &[Vma]) -> Option<Range> {
    let mut at = r.start;
    let mut i = vmas.partition_point(|v| v.range.end <= at);
    while at < r.end {
        match vmas.get(i) {
            Some(v) if v.range.start <= at => {
                at = v.range.end;
                i += 1;
            }
            Some(v) => return Some(Range::new(at, v.range.start.min(r.end))),
            None => return Some(Range::new(at, r.end)),
        }
    }
    None
}

/// Check every given range against `vmas` (all of the process's, sorted): START < END,
/// both page aligned, wholly mapped, and only in VMAs of the kind etmem swaps. The
/// error names the range, where it came from, and what is wrong with it.
fn check_ranges(given: &[Given], vmas: &[Vma], page: u64, pid: Pid) -> Result<(), String> {
    let swappable = swappable_vmas(vmas, false);
    for g in given {
        let r = g.range;
        let what = g.what();
        if r.start > r.end {
            return Err(format!("{what}: the start is above the end"));
        }
        if r.is_empty() {
            return Err(format!("{what}: the range is empty"));
        }
        for (name, addr) in [("start", r.start), ("end", r.end)] {
            if addr % page != 0 {
                return Err(format!(
                    "{what}: the {name} {addr:#x} is not aligned to the page size ({page} bytes)"
                ));
            }
        }
        if let Some(gap) = first_gap(r, vmas) {
            return Err(format!(
                "{what}: {:#x}-{:#x} is not mapped in process {pid}",
                gap.start, gap.end
            ));
        }
        if let Some(gap) = first_gap(r, &swappable) {
            let v = vmas.iter().find(|v| v.range.contains(gap.start));
            let (end, kind) = v.map_or((gap.end, String::new()), |v| {
                let kind = format!("{} {}", v.perms(), v.path);
                (gap.end.min(v.range.end), format!(" ({})", kind.trim_end()))
            });
            return Err(format!(
                "{what}: {:#x}-{end:#x} is in a mapping etmem does not swap{kind}: only \
                 private, readable, non-executable memory that is anonymous or a writable \
                 private file mapping goes to swap",
                gap.start
            ));
        }
    }
    Ok(())
}

fn run(a: &Args, pid: Pid, stop: &AtomicBool) -> Result<Done, Fail> {
    let gone = |e: Error| Fail::Run(describe(pid, e, "swapping"));
    let (pidfd, comm) = oneshot::open_user_process(pid, "swap").map_err(gone)?;
    let page = crate::types::page_size();
    // `ranges` merged, for the output; `wanted` the same memory as ranges of whole pages
    // of a size class, for the swapper: given ranges are base pages, while a scan may find
    // cold huge pages (which swap_pages takes as one head address each).
    let (ranges, wanted, scanned): (Vec<Range>, Vec<(Range, PageSize)>, _) = match &a.source {
        Source::Given {
            ranges,
            stdin,
            threshold,
        } => {
            let mut given = ranges.clone();
            if *stdin {
                let more = read_ranges(std::io::stdin().lock(), *threshold, pid);
                given.extend(more.map_err(Fail::Usage)?);
            }
            let vmas = read_maps(pid).map_err(gone)?;
            check_ranges(&given, &vmas, page, pid).map_err(Fail::Usage)?;
            let plain: Vec<Range> = given.into_iter().map(|g| g.range).collect();
            let ranges = coalesce(&plain, page);
            let wanted = ranges.iter().map(|&r| (r, PageSize::Base)).collect();
            (ranges, wanted, None)
        }
        Source::Cold(o) => {
            let (runs, backend) = cold_runs(o, &pidfd, stop).map_err(|e| {
                if stop.load(Ordering::Relaxed) {
                    Fail::Run("the scan was interrupted by a signal".into())
                } else {
                    gone(e)
                }
            })?;
            let plain: Vec<Range> = runs.iter().map(|r| r.range).collect();
            (coalesce(&plain, page), sized(&runs), Some(backend))
        }
    };
    if a.dry_run {
        return Ok(Done {
            pid,
            comm,
            backend: a.swap_backend.unwrap_or_else(|| act::detect(pid)),
            scanned,
            ranges,
            swap: None,
        });
    }
    let mut swapper = act::open(a.swap_backend, pid).map_err(gone)?;
    let before = act::swapped_bytes(pid).ok();
    let report = swapper
        .swap_out_sized(&pidfd, &wanted, &|| stop.load(Ordering::Relaxed))
        .map_err(gone)?;
    let after = act::swapped_bytes(pid).ok();
    Ok(Done {
        pid,
        comm,
        backend: swapper.backend(),
        scanned,
        ranges,
        swap: Some(Swapped {
            report,
            vmswap_delta: before
                .zip(after)
                .map(|(b, a)| i128::from(a) - i128::from(b)),
        }),
    })
}

/// Scan `target` as `o` says over the VMAs the daemon swaps and return the runs whose
/// count is below the threshold (slide's rule), with the backend that scanned.
fn cold_runs(
    o: &ScanOptions,
    target: &Pidfd,
    stop: &AtomicBool,
) -> crate::error::Result<(Vec<Run>, track::Backend)> {
    let pid = target.pid();
    let vmas = swappable_vmas(&read_maps(pid)?, false);
    let mut tr = track::open(o.backend, pid)?;
    let res = track::scan(tr.as_mut(), target, &vmas, o.loops, o.interval, &|| {
        stop.load(Ordering::Relaxed)
    });
    let runs = tr
        .counts()
        .iter()
        .flat_map(|c| c.runs())
        .filter(|r| r.count < o.threshold)
        .collect();
    tr.finish();
    res.map(|()| (runs, tr.backend()))
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
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\"pid\":{},\"comm\":{},\"backend\":{},\"dry_run\":{},",
        d.pid,
        json::string(&d.comm),
        json::string(d.backend.name()),
        d.swap.is_none()
    );
    match (d.scanned, &a.source) {
        (Some(b), Source::Cold(s)) => {
            let _ = write!(
                o,
                "\"scan\":{{\"backend\":{},\"loop\":{},\"interval\":{},\"threshold\":{}}},",
                json::string(b.name()),
                s.loops,
                s.interval.as_secs_f64(),
                s.threshold
            );
        }
        _ => o.push_str("\"scan\":null,"),
    }
    let _ = write!(o, "\"requested_bytes\":{},", total_bytes(&d.ranges));
    match &d.swap {
        None => o.push_str("\"swapped_bytes\":null,\"vmswap_delta\":null,\"skipped\":[],"),
        Some(s) => {
            let delta = s.vmswap_delta.map_or("null".into(), |n| n.to_string());
            let _ = write!(
                o,
                "\"swapped_bytes\":{},\"vmswap_delta\":{delta},\"skipped\":[",
                s.report.advised_bytes
            );
            for (i, (r, why)) in s.report.skipped.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                let _ = write!(
                    o,
                    "{{\"start\":{},\"end\":{},\"reason\":{}}}",
                    r.start,
                    r.end,
                    json::string(why)
                );
            }
            o.push_str("],");
        }
    }
    o.push_str("\"ranges\":[");
    for (i, r) in d.ranges.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{{\"start\":{},\"end\":{}}}", r.start, r.end);
    }
    o.push_str("]}\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::maps::parse_line;

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

    fn read(text: &str, t: Option<u16>) -> Result<Vec<(Range, usize)>, String> {
        Ok(read_ranges(text.as_bytes(), t, 42)?
            .into_iter()
            .map(|g| match g.origin {
                Origin::StdinLine(n) => (g.range, n),
                Origin::Option => panic!("stdin range without a line"),
            })
            .collect())
    }

    const SCAN: &str = "\
pid 42 comm etmem backend smaps loop 2 interval 1 threshold 2
# smaps sees per-VMA references only
# start-end                       perms     resident          hot         warm         cold mapping
7f0000000000-7f0000004000         rw-p          16384            0            0        16384 [anon]
  7f0000000000-7f0000004000 4K 0
7f0000200000-7f0000600000         rw-p        4194304      4194304            0            0 [anon]
  7f0000200000-7f0000400000 2M 2
  7f0000400000-7f0000600000 4K 1
7f0000700000-7f0000701000         ---p              0            0            0            0 [anon]
total resident 4210688 hot 4194304 warm 0 cold 16384
";

    #[test]
    fn stdin_takes_scan_output_as_is() {
        let r = |a, b| Range::new(a, b);
        assert_eq!(
            read(SCAN, None).unwrap(),
            vec![
                (r(0x7f0000000000, 0x7f0000004000), 5),
                (r(0x7f0000200000, 0x7f0000400000), 7),
                (r(0x7f0000400000, 0x7f0000600000), 8),
            ]
        );
        assert_eq!(
            read(SCAN, Some(2)).unwrap(),
            vec![
                (r(0x7f0000000000, 0x7f0000004000), 5),
                (r(0x7f0000400000, 0x7f0000600000), 8)
            ]
        );
        assert_eq!(read(SCAN, Some(0)).unwrap(), vec![]);
    }

    #[test]
    fn stdin_takes_plain_and_dry_run_lines() {
        let text = "# mine\n\n0x1000-0x3000\n  4000-5000\npid 42 dry-run requested 1\n";
        let got = read(text, Some(0)).unwrap();
        assert_eq!(
            got,
            vec![
                (Range::new(0x1000, 0x3000), 3),
                (Range::new(0x4000, 0x5000), 4)
            ]
        );
        // Reversed ranges parse; the check refuses them by name.
        assert_eq!(
            read("3000-1000", None).unwrap()[0].0,
            Range::new(0x3000, 0x1000)
        );
    }

    #[test]
    fn stdin_garbage_names_the_line() {
        for (text, needle) in [
            ("1000-2000\nhello\n", "stdin line 2: \"hello\" is neither"),
            ("1000-2000 x", "stdin line 1"),
            ("  1000-2000 4K many", "stdin line 1"),
            ("{\"loop\":1}", "stdin line 1"),
            ("pid x comm", "stdin line 1"),
            (
                "pid 7 comm a backend smaps",
                "about pid 7, but this swaps pid 42",
            ),
        ] {
            let e = read(text, None).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let e = read_ranges(&b"1000-2000\n\xff\xfe\n"[..], None, 42).unwrap_err();
        assert_eq!(e, "stdin line 2 is not text");
    }

    fn vmas() -> Vec<Vma> {
        [
            "10000-20000 rw-p 0 00:00 0 [heap]",
            "20000-30000 rw-p 0 00:00 0",
            "40000-50000 r-xp 0 fd:01 7 /bin/x",
            "50000-60000 rw-p 0 00:00 0",
        ]
        .iter()
        .map(|l| parse_line(l).unwrap())
        .collect()
    }

    fn check(start: u64, end: u64) -> Result<(), String> {
        let g = Given {
            range: Range::new(start, end),
            origin: Origin::StdinLine(3),
        };
        check_ranges(&[g], &vmas(), 0x1000, 42)
    }

    #[test]
    fn ranges_are_checked_and_the_error_says_why() {
        check(0x10000, 0x30000).unwrap();
        check(0x51000, 0x52000).unwrap();
        let cases = [
            (
                (0x20000, 0x10000),
                "stdin line 3: range 20000-10000: the start is above",
            ),
            ((0x10000, 0x10000), "the range is empty"),
            (
                (0x10010, 0x20000),
                "the start 0x10010 is not aligned to the page size (4096",
            ),
            ((0x10000, 0x10fff), "the end 0x10fff is not aligned"),
            (
                (0x20000, 0x41000),
                "0x30000-0x40000 is not mapped in process 42",
            ),
            ((0x0, 0x1000), "0x0-0x1000 is not mapped"),
            ((0x5f000, 0x61000), "0x60000-0x61000 is not mapped"),
            (
                (0x41000, 0x58000),
                "0x41000-0x50000 is in a mapping etmem does not swap (r-xp /bin/x)",
            ),
        ];
        for ((s, e), needle) in cases {
            let err = check(s, e).unwrap_err();
            assert!(err.contains(needle), "{s:x}-{e:x}: {err}");
        }
    }

    #[test]
    fn gaps_are_found_at_either_end_and_inside() {
        let v = vmas();
        assert_eq!(first_gap(Range::new(0x10000, 0x30000), &v), None);
        assert_eq!(
            first_gap(Range::new(0x8000, 0x12000), &v),
            Some(Range::new(0x8000, 0x10000))
        );
        assert_eq!(
            first_gap(Range::new(0x2f000, 0x70000), &v),
            Some(Range::new(0x30000, 0x40000))
        );
        assert_eq!(
            first_gap(Range::new(0x70000, 0x71000), &v),
            Some(Range::new(0x70000, 0x71000))
        );
    }

    #[test]
    fn signed_deltas() {
        assert_eq!(signed(0), "+0");
        assert_eq!(signed(4096), "+4096");
        assert_eq!(signed(-4096), "-4096");
    }
}
