//! The text form of a scan, in one place because two programs speak it: `etmem-scan`
//! writes it (a header line per process, a `#` line naming what the backend sees, a `#`
//! column header, a line per VMA, with `--pages` the `  START-END SIZE COUNT` page lines,
//! and a `total` line) and `etmem-swap --stdin` reads it back, taking the page lines as
//! the ranges to swap.

use std::fmt::Write as _;
use std::io::BufRead;

use crate::act::swappable::Asked;
use crate::track::{Run, Summary};
use crate::types::{Pid, Range, ScanBackend, Vma};

/// The first lines of one process's scan: `pid P comm C backend B loop L interval S
/// threshold T`, what the backend sees, and the column header.
pub fn write_header(
    o: &mut String,
    pid: Pid,
    comm: &str,
    backend: ScanBackend,
    (loops, interval, threshold): (u32, &str, u16),
) {
    let _ = writeln!(
        o,
        "pid {pid} comm {comm} backend {} loop {loops} interval {interval} threshold {threshold}",
        backend.name(),
    );
    let _ = writeln!(o, "# {} sees {}", backend.name(), backend.sees());
    let _ = writeln!(
        o,
        "# {:<31} {:<5} {:>12} {:>12} {:>12} {:>12} mapping",
        "start-end", "perms", "resident", "hot", "warm", "cold"
    );
}

/// One VMA's line: `START-END PERMS RESIDENT HOT WARM COLD MAPPING`.
pub fn write_vma(o: &mut String, v: &Vma, sum: &Summary) {
    let _ = writeln!(
        o,
        "{:<33} {:<5} {:>12} {:>12} {:>12} {:>12} {}",
        format!("{:x}-{:x}", v.range.start, v.range.end),
        v.perms(),
        sum.resident,
        sum.hot,
        sum.warm,
        sum.cold,
        mapping(&v.path)
    );
}

/// One page line: `  START-END SIZE COUNT`.
pub fn write_page(o: &mut String, r: &Run) {
    let _ = writeln!(
        o,
        "  {:x}-{:x} {} {}",
        r.range.start,
        r.range.end,
        size_name(r.size.bytes()),
        r.count
    );
}

/// The last line of one process's scan: `total resident R hot H warm W cold C`.
pub fn write_total(o: &mut String, t: &Summary) {
    let _ = writeln!(
        o,
        "total resident {} hot {} warm {} cold {}",
        t.resident, t.hot, t.warm, t.cold
    );
}

/// The mapping column: the path, or `[anon]` for an unnamed anonymous mapping.
pub fn mapping(path: &str) -> &str {
    if path.is_empty() {
        "[anon]"
    } else {
        path
    }
}

/// `4096` -> `4K`, `2097152` -> `2M`, `1073741824` -> `1G`.
pub fn size_name(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % 1024 == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
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
pub fn parse_range(s: &str) -> Option<Range> {
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

/// The ranges in the text of `input`: `START-END` lines, this module's scan output
/// (its page lines are the ranges; header, `#`, VMA and `total` lines are skipped), or
/// `etmem-swap --dry-run` output; blank and `#` lines are skipped. Scan page lines need
/// a count below `threshold` when one is given; `pid P` header lines must name `pid`,
/// so ranges of another process are never applied to this one. Each range says which
/// line it came from; the error names the line.
pub fn read_ranges(
    input: impl BufRead,
    threshold: Option<u16>,
    pid: Pid,
) -> Result<Vec<Asked>, String> {
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
            out.push(Asked {
                range,
                origin: format!("stdin line {n}: range {range}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PageSize;

    fn read(text: &str, t: Option<u16>) -> Result<Vec<(Range, usize)>, String> {
        Ok(read_ranges(text.as_bytes(), t, 42)?
            .into_iter()
            .map(|a| {
                let n = a.origin["stdin line ".len()..].split(':').next().unwrap();
                assert_eq!(a.origin, format!("stdin line {n}: range {}", a.range));
                (a.range, n.parse().unwrap())
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

    #[test]
    fn size_names() {
        assert_eq!(size_name(4096), "4K");
        assert_eq!(size_name(2 << 20), "2M");
        assert_eq!(size_name(1 << 30), "1G");
    }

    #[test]
    fn what_is_written_reads_back() {
        let v = crate::sys::maps::parse_line("7f0000000000-7f0000400000 rw-p 0 00:00 0").unwrap();
        let runs = [
            Run {
                range: Range::new(0x7f0000000000, 0x7f0000200000),
                size: PageSize::Pmd,
                count: 0,
            },
            Run {
                range: Range::new(0x7f0000200000, 0x7f0000201000),
                size: PageSize::Base,
                count: 3,
            },
        ];
        let mut o = String::new();
        write_header(&mut o, 42, "app", ScanBackend::Smaps, (2, "1", 2));
        write_vma(&mut o, &v, &Summary::default());
        for r in &runs {
            write_page(&mut o, r);
        }
        write_total(&mut o, &Summary::default());
        let got: Vec<(Range, usize)> = read(&o, None).unwrap();
        assert_eq!(got, vec![(runs[0].range, 5), (runs[1].range, 6)]);
        assert_eq!(read(&o, Some(1)).unwrap(), vec![(runs[0].range, 5)]);
        assert!(read_ranges(o.as_bytes(), None, 43)
            .unwrap_err()
            .contains("about pid 42, but this swaps pid 43"));
    }
}
