//! `/proc/PID/numa_maps`: the kernel's own count of a mapping's pages per NUMA node, an
//! independent reading to check what `move_pages` reported against.

use std::collections::BTreeMap;

/// One mapping's line: pages per node, and the page size they are counted in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumaVma {
    /// `N<node>=<pages>` fields, in units of `page_bytes`.
    pub pages: BTreeMap<u32, u64>,
    /// `kernelpagesize_kB` in bytes (4 KiB for THP too: a THP counts as 512 pages).
    pub page_bytes: u64,
}

impl NumaVma {
    /// Pages on `node`.
    pub fn on(&self, node: u32) -> u64 {
        self.pages.get(&node).copied().unwrap_or(0)
    }

    /// Bytes on `node`.
    pub fn bytes_on(&self, node: u32) -> u64 {
        self.on(node) * self.page_bytes
    }

    /// Pages on any node.
    pub fn total(&self) -> u64 {
        self.pages.values().sum()
    }
}

/// Parse the line of the mapping that starts at `start` out of numa_maps `text` (lines
/// such as `7f0000000000 default anon=2048 dirty=2048 N0=2048 kernelpagesize_kB=4`).
pub fn parse_vma(text: &str, start: u64) -> Option<NumaVma> {
    let line = text.lines().find(|l| {
        l.split_whitespace()
            .next()
            .and_then(|a| u64::from_str_radix(a, 16).ok())
            == Some(start)
    })?;
    let mut out = NumaVma {
        page_bytes: 4096,
        ..NumaVma::default()
    };
    for word in line.split_whitespace().skip(2) {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        if key == "kernelpagesize_kB" {
            out.page_bytes = value.parse::<u64>().ok()? * 1024;
        } else if let Some(node) = key.strip_prefix('N') {
            out.pages.insert(node.parse().ok()?, value.parse().ok()?);
        }
    }
    Some(out)
}

/// The mapping of process `pid` that starts at `start`, read now.
pub fn vma(pid: i32, start: u64) -> NumaVma {
    let path = format!("/proc/{pid}/numa_maps");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_vma(&text, start).unwrap_or_else(|| panic!("{path}: no mapping at {start:#x}:\n{text}"))
}
