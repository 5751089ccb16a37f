//! `etmem-swap --stdin`: `scan_text::read_ranges` on any input, the text `etmem-scan
//! --pages` writes or anything else a pipe brings.
//!
//! The input is `threshold (2 bytes, 0xffff: none) | pid (1) | read size (1) | text`.
//! Properties: never panics; an error ends the ranges; each range names its line, lines
//! come in order, and the range is the one written at the start of that line; the result
//! does not depend on how the input arrives (one slice, or reads of 1 to 256 bytes); a
//! line is refused when it is longer than `MAX_LINE`, so no line costs more memory.
#![no_main]

use std::io::{BufReader, Read};

use etmem::applets::scan_text::{read_ranges, MAX_LINE};
use etmem::types::Range;
use libfuzzer_sys::fuzz_target;

/// A reader that hands out at most `n` bytes per read, as a pipe may.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let t = u16::from_le_bytes([data[0], data[1]]);
    let threshold = (t != u16::MAX).then_some(t);
    let pid = i32::from(data[2]);
    let chunk = usize::from(data[3]) + 1;
    let input = &data[4..];
    let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();

    let all: Vec<Result<_, String>> = read_ranges(input, threshold, pid).collect();
    let errors = all.iter().filter(|r| r.is_err()).count();
    assert!(errors <= 1);
    if errors == 1 {
        assert!(all.last().unwrap().is_err(), "a range after an error");
    }
    let mut last_line = 0;
    for a in all.iter().filter_map(|r| r.as_ref().ok()) {
        let rest = a.origin.strip_prefix("stdin line ").unwrap();
        let (n, tail) = rest.split_once(':').unwrap();
        let n: usize = n.parse().unwrap();
        assert_eq!(tail, format!(" range {}", a.range));
        assert!(n > last_line, "{}", a.origin);
        last_line = n;
        let line = std::str::from_utf8(lines[n - 1]).unwrap();
        assert!(line.len() <= MAX_LINE);
        let first = line.split_whitespace().next().unwrap();
        assert_eq!(Range::parse(first), Some(a.range), "{line:?}");
    }
    if let Some(Err(e)) = all.last() {
        assert!(e.starts_with("stdin line "), "{e}");
        // The error names the line that follows the last range.
        let n: usize = e["stdin line ".len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n > last_line && n <= lines.len());
        if e.contains("longer than") {
            assert!(lines[n - 1].len() > MAX_LINE);
        }
    }

    let trickled: Vec<Result<_, String>> = read_ranges(
        BufReader::with_capacity(chunk, Trickle(input, chunk)),
        threshold,
        pid,
    )
    .collect();
    assert_eq!(trickled, all, "depends on how the input arrives");
});
