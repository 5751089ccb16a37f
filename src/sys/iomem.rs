//! `/proc/iomem`: the machine's physical address map, for the ranges of RAM that DAMON's
//! physical-address monitoring should watch.

use crate::error::{Error, Result};
use crate::types::Range;

/// The top-level `System RAM` ranges, ascending (end exclusive). Needs root: others see
/// zeros, which are refused.
pub fn system_ram() -> Result<Vec<Range>> {
    let text = std::fs::read_to_string("/proc/iomem").map_err(|e| Error::file("/proc/iomem", e))?;
    let ram = parse_system_ram(&text);
    if ram.is_empty() {
        return Err(Error::invalid(
            "/proc/iomem lists no System RAM (reading the addresses needs root)",
        ));
    }
    Ok(ram)
}

/// The top-level (unindented) `START-END : System RAM` lines of `text`, as ranges with
/// an exclusive end; all-zero ranges (what non-root readers see) and junk are skipped.
pub fn parse_system_ram(text: &str) -> Vec<Range> {
    let mut out: Vec<Range> = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| {
            let (span, name) = l.split_once(" : ")?;
            if name.trim() != "System RAM" {
                return None;
            }
            let (a, b) = span.trim().split_once('-')?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            (b > a).then(|| Range::new(a, b.saturating_add(1)))
        })
        .collect();
    crate::sort::unstable_by_key(&mut out, |r| r.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_ranges() {
        let text = "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n\
                    00100000-3ffdffff : System RAM\n  01000000-01ffffff : Kernel code\n\
                    100000000-13fffffff : System RAM\n00000000-00000000 : System RAM\nx\n";
        assert_eq!(
            parse_system_ram(text),
            vec![
                Range::new(0x1000, 0x9fc00),
                Range::new(0x100000, 0x3ffe0000),
                Range::new(0x1_0000_0000, 0x1_4000_0000),
            ]
        );
    }
}
