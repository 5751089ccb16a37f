//! `/sys/kernel/mm/page_idle/bitmap` (CONFIG_IDLE_PAGE_TRACKING): one bit per physical
//! frame, in 64-bit words. Writing a word marks the frames whose bits are set idle;
//! reading says which are still idle (not accessed since). Accesses are batched: callers
//! hand over a sorted list of word indexes and the runs of neighbouring words are each
//! read or written with one positioned call.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Kind, Result};
use crate::sys::pagemap::read_full;

/// The bitmap's path.
pub const PATH: &str = "/sys/kernel/mm/page_idle/bitmap";

/// Two runs closer than this many words are merged into one call (the zero words in
/// between are harmless to write and cheap to read).
const MERGE_GAP: u64 = 8;

/// The open bitmap.
#[derive(Debug)]
pub struct PageIdle {
    file: File,
    bytes: Vec<u8>,
}

impl PageIdle {
    /// Open the bitmap read-write; the error names the kernel option when it is missing.
    pub fn open() -> Result<PageIdle> {
        match File::options().read(true).write(true).open(PATH) {
            Ok(file) => Ok(PageIdle {
                file,
                bytes: Vec::new(),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Error::new(
                Kind::Unsupported,
                format!(
                    "{PATH} does not exist: the page_idle backend needs a kernel built with \
                     CONFIG_IDLE_PAGE_TRACKING"
                ),
            )),
            Err(e) => Err(Error::file(PATH, e)),
        }
    }

    /// Mark idle every frame whose bit is set in `words` (pairs of word index and mask,
    /// sorted by index, no index twice).
    pub fn mark_idle(&mut self, words: &[(u64, u64)]) -> Result<()> {
        for run in runs(words) {
            let (first, last) = (run[0].0, run[run.len() - 1].0);
            let n = (last - first + 1) as usize;
            self.bytes.clear();
            self.bytes.resize(n * 8, 0);
            for &(idx, mask) in run {
                let at = ((idx - first) * 8) as usize;
                self.bytes[at..at + 8].copy_from_slice(&mask.to_ne_bytes());
            }
            self.write_run(first * 8)?;
        }
        Ok(())
    }

    /// Write `self.bytes` at byte `at`. The kernel takes only whole words below the end
    /// of memory (`max_pfn`, seldom a multiple of 64): a write into the last, partial
    /// word takes nothing (returns 0) and one past it fails with ENXIO. The frames there
    /// cannot be marked, so they read as accessed; the rest of the run is written.
    fn write_run(&self, at: u64) -> Result<()> {
        let mut done = 0;
        while done < self.bytes.len() {
            match self.file.write_at(&self.bytes[done..], at + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
                Err(e) => return Err(Error::file(PATH, e)),
            }
        }
        Ok(())
    }

    /// Replace each mask in `words` by the idle bits of its word (sorted indexes, as for
    /// `mark_idle`). Frames beyond the end of memory, and those of its last partial word,
    /// read as not idle.
    pub fn read_idle(&mut self, words: &mut [(u64, u64)]) -> Result<()> {
        let mut i = 0;
        while i < words.len() {
            let len = run_len(&words[i..]);
            let first = words[i].0;
            let n = (words[i + len - 1].0 - first + 1) as usize;
            self.bytes.clear();
            self.bytes.resize(n * 8, 0);
            let got = read_full(&self.file, &mut self.bytes, first * 8)
                .map_err(|e| Error::file(PATH, e))?;
            self.bytes[got..].fill(0);
            for w in &mut words[i..i + len] {
                let at = ((w.0 - first) * 8) as usize;
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.bytes[at..at + 8]);
                w.1 &= u64::from_ne_bytes(b);
            }
            i += len;
        }
        Ok(())
    }
}

/// Length of the leading run of `words` whose indexes are at most `MERGE_GAP` apart.
fn run_len(words: &[(u64, u64)]) -> usize {
    let mut len = 1;
    while len < words.len() && words[len].0 <= words[len - 1].0 + MERGE_GAP {
        len += 1;
    }
    len.min(words.len())
}

/// Split sorted `words` into runs of near neighbours.
fn runs(words: &[(u64, u64)]) -> impl Iterator<Item = &[(u64, u64)]> {
    let mut rest = words;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (run, tail) = rest.split_at(run_len(rest));
        rest = tail;
        Some(run)
    })
}

/// Turn a list of frame numbers into sorted, merged (word index, mask) pairs, reusing
/// `out`. Zero frame numbers (hidden or absent) are skipped.
pub fn words_of(pfns: impl Iterator<Item = u64>, out: &mut Vec<(u64, u64)>) {
    out.clear();
    out.extend(pfns.filter(|&p| p != 0).map(|p| (p / 64, 1u64 << (p % 64))));
    // The one standard sort in the library: this runs for every resident page of every
    // scan, and frames mostly come ascending, which the standard sort finishes in one
    // pass where the small heapsort of `crate::sort` would not (3 KiB of code).
    #[allow(clippy::disallowed_methods)]
    out.sort_unstable_by_key(|w| w.0);
    out.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 |= b.1;
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_merge_and_runs_split() {
        let mut w = Vec::new();
        words_of([130u64, 0, 1, 3, 64, 10_000].into_iter(), &mut w);
        assert_eq!(w, vec![(0, 0b1010), (1, 1), (2, 4), (156, 1 << 16)]);
        let r: Vec<usize> = runs(&w).map(|r| r.len()).collect();
        assert_eq!(r, vec![3, 1]);
    }
}
