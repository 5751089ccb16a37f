//! `/proc/kpageflags`: per physical frame flags (root only). Used to tell a transparent
//! or hugetlb huge page from 512 unrelated base pages, so a huge page is tracked as one
//! unit (the page_idle bitmap only answers for a huge page's head frame).

use std::fs::File;

use crate::error::{Error, Result};
use crate::sys::pagemap::read_full;

/// KPF_COMPOUND_HEAD: first frame of a compound (huge or large) page.
pub const COMPOUND_HEAD: u64 = 1 << 15;
/// KPF_HUGE: a hugetlbfs page.
pub const HUGE: u64 = 1 << 17;
/// KPF_THP: a transparent huge page.
pub const THP: u64 = 1 << 22;

/// The open flags file.
#[derive(Debug)]
pub struct KpageFlags {
    file: File,
}

impl KpageFlags {
    /// Open `/proc/kpageflags` (root only: `Permission` otherwise).
    pub fn open() -> Result<KpageFlags> {
        let path = "/proc/kpageflags";
        let file = File::open(path).map_err(|e| Error::file(path, e))?;
        Ok(KpageFlags { file })
    }

    /// The flags of frame `pfn` (0 if the frame is beyond the end of memory).
    pub fn flags(&self, pfn: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        let got = read_full(&self.file, &mut b, pfn.saturating_mul(8))
            .map_err(|e| Error::file("/proc/kpageflags", e))?;
        Ok(if got == 8 { u64::from_ne_bytes(b) } else { 0 })
    }

    /// True when `pfn` heads a PMD-sized huge page (THP or hugetlb).
    pub fn is_huge_head(&self, pfn: u64) -> Result<bool> {
        let f = self.flags(pfn)?;
        Ok(f & COMPOUND_HEAD != 0 && f & (THP | HUGE) != 0)
    }
}
