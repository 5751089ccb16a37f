//! The text form of a scan, in one place because two programs speak it: `etmem-scan`
//! writes it (a header line per process, a `#` line naming what the backend sees, a `#`
//! column header, a line per VMA, with `--pages` the `  START-END SIZE COUNT` page lines,
//! and a `total` line) and `etmem-swap --stdin` reads it back, taking the page lines as
//! the ranges to swap.

use std::fmt::Write as _;
use std::io::BufRead;

use crate::act::swappable::Asked;
use crate::track::{Run, Summary};
use crate::types::{size_name, Pid, Range, ScanBackend, Vma};

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

/// The longest line [`read_ranges`] takes, in bytes: a scan's VMA line with the longest
/// path the kernel prints is well below it; anything longer is not our text.
pub const MAX_LINE: usize = 8192;

/// The ranges in the text of `input`: `START-END` lines, this module's scan output
/// (its page lines are the ranges; header, `#`, VMA and `total` lines are skipped), or
/// `etmem-swap --dry-run` output; blank and `#` lines are skipped. Scan page lines need
/// a count below `threshold` when one is given; `pid P` header lines must name `pid`,
/// so ranges of another process are never applied to this one. Each range says which
/// line it came from; an error names the line and ends the input.
///
/// The input is read a line at a time as the ranges are taken, and a line may be at most
/// [`MAX_LINE`] bytes, so an endless or huge input costs neither memory nor more than
/// one line of buffer.
pub fn read_ranges<R: BufRead>(input: R, threshold: Option<u16>, pid: Pid) -> Ranges<R> {
    Ranges {
        input,
        threshold,
        pid,
        line_no: 0,
        buf: Vec::new(),
        done: false,
    }
}

/// The ranges of a text as [`read_ranges`] reads them, one at a time.
pub struct Ranges<R> {
    input: R,
    threshold: Option<u16>,
    pid: Pid,
    line_no: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Iterator for Ranges<R> {
    type Item = Result<Asked, String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.next_line() {
                Ok(Some(asked)) => return Some(Ok(asked)),
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl<R: BufRead> Ranges<R> {
    /// Read one line: its range when it is one to take, `None` when it is skipped (or
    /// the input ended, which sets `done`).
    fn next_line(&mut self) -> Result<Option<Asked>, String> {
        self.buf.clear();
        let limit = MAX_LINE as u64 + 1;
        let got = std::io::Read::take(&mut self.input, limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        if got == 0 {
            self.done = true;
            return Ok(None);
        }
        self.line_no += 1;
        let n = self.line_no;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > MAX_LINE {
            return Err(format!("stdin line {n} is longer than {MAX_LINE} bytes"));
        }
        let line =
            std::str::from_utf8(&self.buf).map_err(|_| format!("stdin line {n} is not text"))?;
        let pid = self.pid;
        let f: Vec<&str> = line.split_whitespace().collect();
        let range = f.first().and_then(|w| Range::parse(w));
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
                self.threshold.map_or(true, |t| count < t)
            }
            ([_, perms, _, _, _, _, ..], Some(_)) if is_perms(perms) => false,
            _ => return Err(not_a_range_line(n, line)),
        };
        Ok(range.filter(|_| take).map(|range| Asked {
            range,
            origin: format!("stdin line {n}: range {range}"),
        }))
    }
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
        Ok(read_ranges(text.as_bytes(), t, 42)
            .collect::<Result<Vec<_>, _>>()?
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
        let e = read(std::str::from_utf8(b"1000-2000\n").unwrap(), None);
        assert!(e.is_ok());
        let mut r = read_ranges(&b"1000-2000\n\xff\xfe\n3000-4000\n"[..], None, 42);
        assert!(r.next().unwrap().is_ok());
        assert_eq!(r.next().unwrap().unwrap_err(), "stdin line 2 is not text");
        assert!(r.next().is_none(), "an error ends the input");
    }

    #[test]
    fn long_lines_end_the_input_and_endless_input_is_not_held() {
        let long = format!("1000-2000\n{}\n", "1".repeat(MAX_LINE + 1));
        assert_eq!(
            read(&long, None).unwrap_err(),
            format!("stdin line 2 is longer than {MAX_LINE} bytes")
        );
        let just = format!("{:<width$}\n", "1000-2000", width = MAX_LINE);
        assert_eq!(
            read(&just, None).unwrap(),
            vec![(Range::new(0x1000, 0x2000), 1)]
        );
        // An endless line without a newline: refused after one line's worth of bytes.
        let mut zeros = read_ranges(std::io::BufReader::new(std::io::repeat(b'0')), None, 42);
        assert!(zeros.next().unwrap().unwrap_err().contains("longer than"));
        // Endless valid lines are taken one at a time, as they come: a reader that never
        // ends still yields its first million ranges.
        struct Cycle(usize);
        impl std::io::Read for Cycle {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                const LINE: &[u8] = b"1000-2000\n";
                for b in out.iter_mut() {
                    *b = LINE[self.0 % LINE.len()];
                    self.0 += 1;
                }
                Ok(out.len())
            }
        }
        let endless = read_ranges(std::io::BufReader::new(Cycle(0)), None, 42);
        let taken = endless.take(1_000_000).filter(|r| r.is_ok()).count();
        assert_eq!(taken, 1_000_000);
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
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err()
            .contains("about pid 42, but this swaps pid 43"));
    }
}
