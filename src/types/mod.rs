//! The shared vocabulary: process ids, address ranges, VMAs and page size classes.
//! Every layer speaks in these types, so they live in one small module; the names of the
//! kernel backends are vocabulary too ([`ScanBackend`], [`SwapBackend`], [`Family`]).

mod backends;
pub mod damon_tuning;

pub use backends::{help_list, Family, ScanBackend, SwapBackend};

use std::fmt;
use std::sync::OnceLock;

/// A process id as the kernel numbers it.
pub type Pid = i32;

/// A half-open virtual address range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    /// The first address in the range.
    pub start: u64,
    /// The first address past the range.
    pub end: u64,
}

impl Range {
    /// The range `[start, end)`; with `end <= start` it is empty.
    pub fn new(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    /// Length in bytes (0 for an empty or reversed range).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no address (`end <= start`).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True when `addr` lies in `[start, end)`.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// True when `other` lies wholly inside this range.
    pub fn covers(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// `START-END` in hex, each side with or without `0x`: what [`Range`]'s `Display`
    /// writes and what people, scripts and plug-ins write back. A reversed range parses
    /// as written (the checks on asked ranges refuse it later, by name).
    pub fn parse(s: &str) -> Option<Range> {
        let (a, b) = s.split_once('-')?;
        Some(Range::new(parse_addr(a)?, parse_addr(b)?))
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

/// A page size as scans print it: `4096` -> `4K`, `2097152` -> `2M`, `1073741824` ->
/// `1G` (bytes when no unit divides it).
pub fn size_name(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % 1024 == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{:x}", self.start, self.end)
    }
}

/// The size classes a page can be mapped with (upstream's PTE / PMD / PUD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// The base page (4 KiB on x86-64).
    Base,
    /// A PMD-mapped page: THP or hugetlb (2 MiB with 4 KiB base pages).
    Pmd,
    /// A PUD-mapped page (1 GiB with 4 KiB base pages).
    Pud,
}

impl PageSize {
    /// Size in bytes, derived from the base page size as upstream does (§9.6 of the spec):
    /// base = 2^s, PMD = 2^((s-3)*2+3), PUD = 2^((s-3)*3+3).
    pub fn bytes(self) -> u64 {
        let s = base_page_shift();
        match self {
            PageSize::Base => 1 << s,
            PageSize::Pmd => 1 << ((s - 3) * 2 + 3),
            PageSize::Pud => 1u64.checked_shl((s - 3) * 3 + 3).unwrap_or(u64::MAX),
        }
    }
}

/// log2 of the base page size of this machine.
pub fn base_page_shift() -> u32 {
    page_size().trailing_zeros()
}

/// The base page size (`sysconf(_SC_PAGESIZE)`), 4096 when the call fails. It is asked
/// once; every size class, alignment check and counter layout derives from it.
pub fn page_size() -> u64 {
    static SIZE: OnceLock<u64> = OnceLock::new();
    *SIZE.get_or_init(
        || match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
            Ok(Some(n)) if n > 0 => n as u64,
            _ => 4096,
        },
    )
}

/// One mapping of a process, as `/proc/PID/maps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    /// The addresses the mapping spans.
    pub range: Range,
    /// Readable (`r` in the permission column).
    pub read: bool,
    /// Writable (`w`).
    pub write: bool,
    /// Executable (`x`); etmem never counts such a VMA as anonymous.
    pub exec: bool,
    /// Not private (`s` in the fourth permission column).
    pub shared: bool,
    /// Offset in the mapped file, in bytes (0 when not file backed).
    pub offset: u64,
    /// Major number of the mapped file's device (0 when not file backed).
    pub major: u32,
    /// Minor number of the mapped file's device (0 when not file backed).
    pub minor: u32,
    /// Inode of the mapped file; 0 when the mapping is not file backed.
    pub inode: u64,
    /// The mapping's name: a path, `[heap]`, `[stack]`, `[anon:NAME]`, or empty.
    pub path: String,
}

impl Vma {
    /// Upstream etmem's notion of an anonymous VMA (spec §9.3): private, not executable,
    /// and either not file backed or writable.
    pub fn is_etmem_anon(&self) -> bool {
        !self.shared && !self.exec && (self.inode == 0 || self.write)
    }

    /// Kernel-special mappings that cannot be scanned or swapped.
    pub fn is_special(&self) -> bool {
        matches!(
            self.path.as_str(),
            "[vsyscall]" | "[vdso]" | "[vvar]" | "[vvar_vclock]"
        )
    }

    /// The permission column as the kernel prints it, e.g. `rw-p`.
    pub fn perms(&self) -> String {
        let mut s = String::with_capacity(4);
        s.push(if self.read { 'r' } else { '-' });
        s.push(if self.write { 'w' } else { '-' });
        s.push(if self.exec { 'x' } else { '-' });
        s.push(if self.shared { 's' } else { 'p' });
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_for_4k_pages() {
        if page_size() == 4096 {
            assert_eq!(PageSize::Base.bytes(), 4096);
            assert_eq!(PageSize::Pmd.bytes(), 2 << 20);
            assert_eq!(PageSize::Pud.bytes(), 1 << 30);
        }
    }

    #[test]
    fn range_arithmetic() {
        let r = Range::new(0x1000, 0x3000);
        assert_eq!(r.len(), 0x2000);
        assert!(r.contains(0x1000) && !r.contains(0x3000));
        assert!(r.covers(&Range::new(0x2000, 0x3000)));
        assert!(!r.covers(&Range::new(0x2000, 0x4000)));
        assert!(Range::new(5, 4).is_empty());
        assert_eq!(r.to_string(), "1000-3000");
        assert_eq!(Range::parse("1000-0x3000"), Some(r));
        assert_eq!(
            Range::parse("0X3000-1000"),
            Some(Range::new(0x3000, 0x1000))
        );
        for bad in ["", "1000", "-1000", "1000-", "+1-2", "1 -2", "g-1"] {
            assert_eq!(Range::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn size_names() {
        assert_eq!(size_name(4096), "4K");
        assert_eq!(size_name(2 << 20), "2M");
        assert_eq!(size_name(1 << 30), "1G");
        assert_eq!(size_name(1000), "1000");
    }
}
