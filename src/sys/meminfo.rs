//! `/proc/meminfo`: the system's memory totals.

use crate::error::{Error, Result};
use crate::sys::process::{field, parse_kb};

/// The figures etmem decides with, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`: usable RAM.
    pub total: u64,
    /// `MemFree`: RAM not used at all.
    pub free: u64,
    /// `MemAvailable`: RAM that could be had without swapping (`MemFree` on kernels
    /// before 3.14).
    pub available: u64,
    /// `SwapCached`: memory that is both in swap and in RAM (0 if not reported).
    pub swap_cached: u64,
}

/// The text of `/proc/meminfo`.
fn text() -> Result<String> {
    std::fs::read_to_string("/proc/meminfo").map_err(|e| Error::file("/proc/meminfo", e))
}

/// Read `/proc/meminfo`.
pub fn read() -> Result<MemInfo> {
    parse(&text()?)
}

/// Parse meminfo text; MemAvailable falls back to MemFree on kernels older than 3.14.
pub fn parse(text: &str) -> Result<MemInfo> {
    let get = |key: &str| field(text, key).and_then(parse_kb);
    let total = get("MemTotal").ok_or_else(|| Error::invalid("/proc/meminfo: no MemTotal line"))?;
    let free = get("MemFree").ok_or_else(|| Error::invalid("/proc/meminfo: no MemFree line"))?;
    Ok(MemInfo {
        total,
        free,
        available: get("MemAvailable").unwrap_or(free),
        swap_cached: get("SwapCached").unwrap_or(0),
    })
}

/// The system's swap space, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapSpace {
    /// `SwapTotal`: all swap turned on (0 when none is).
    pub total: u64,
    /// `SwapFree`: swap not in use.
    pub free: u64,
}

/// Read the swap figures of `/proc/meminfo`.
pub fn swap_space() -> Result<SwapSpace> {
    parse_swap(&text()?)
}

/// Parse the `SwapTotal` and `SwapFree` lines of meminfo text.
pub fn parse_swap(text: &str) -> Result<SwapSpace> {
    let get = |key: &str| {
        field(text, key)
            .and_then(parse_kb)
            .ok_or_else(|| Error::invalid(format!("/proc/meminfo: no {key} line")))
    };
    Ok(SwapSpace {
        total: get("SwapTotal")?,
        free: get("SwapFree")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let m =
            parse("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\nSwapCached: 7 kB\n")
                .unwrap();
        assert_eq!(
            m,
            MemInfo {
                total: 1_024_000,
                free: 102_400,
                available: 512_000,
                swap_cached: 7168
            }
        );
        assert_eq!(
            parse("MemTotal: 10 kB\nMemFree: 5 kB\n").unwrap().available,
            5120
        );
        assert!(parse("MemFree: 5 kB\n").is_err());
        assert!(read().unwrap().total > 0);
    }

    #[test]
    fn parses_swap() {
        let text = "MemTotal: 1000 kB\nSwapCached: 7 kB\nSwapTotal: 2048 kB\nSwapFree: 1024 kB\n";
        assert_eq!(
            parse_swap(text).unwrap(),
            SwapSpace {
                total: 2 << 20,
                free: 1 << 20
            }
        );
        assert_eq!(
            parse_swap("SwapTotal: 0 kB\n").unwrap_err().msg,
            "/proc/meminfo: no SwapFree line"
        );
        let now = swap_space().unwrap();
        assert!(now.free <= now.total);
    }
}
