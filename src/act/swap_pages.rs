//! Swap-out on openEuler kernels: write cold page addresses to `/proc/PID/swap_pages`
//! (module `etmem_swap`, spec §6.7 and §9.2).
//!
//! The kernel parses each `write(2)` on its own, splitting it at newlines, so a line cut
//! across two writes becomes two bogus addresses. Upstream's stdio buffering did exactly
//! that (§13 item 9). Here every batch of at most [`SWAP_LIMIT`] lines is one `write(2)`
//! of whole lines, straight from our buffer, never through a `BufWriter`.

use std::fs::File;
use std::io::{self, Write};

use crate::act::coalesce::coalesce;
use crate::act::{page_range, SwapBackend, SwapReport, Swapper};
use crate::error::{Error, Kind, Result};
use crate::sys::pidfd::Pidfd;
use crate::types::{PageSize, Pid, Range};

/// Addresses per write (upstream's `SWAP_LIMIT`): 200 lines of at most 19 bytes fit the
/// kernel's 4 KiB buffer.
pub const SWAP_LIMIT: usize = 200;

/// The longest line: `0x` + 16 hex digits + newline.
const LINE_MAX: usize = 19;

/// How often in a row the kernel may take only part of a line before we give up.
const MAX_STALLS: u32 = 3;

/// `/proc/PID/swap_pages`.
pub fn path(pid: Pid) -> String {
    format!("/proc/{pid}/swap_pages")
}

/// The swap_pages swapper: the file opened once for the process, and a reused batch buffer.
/// The file stays bound to the address space it was opened for, so after the process
/// exits writes fail (ESRCH) instead of reaching a process that reused its pid.
#[derive(Debug)]
pub struct SwapPages {
    pid: Pid,
    file: File,
    buf: Vec<u8>,
}

impl SwapPages {
    /// Open `/proc/PID/swap_pages` of `target`; `Unsupported` without the etmem_swap
    /// module, `Gone` if the process has exited.
    pub fn open(target: &Pidfd) -> Result<SwapPages> {
        Ok(SwapPages {
            pid: target.pid(),
            file: open_file(target)?,
            buf: Vec::with_capacity(SWAP_LIMIT * LINE_MAX),
        })
    }

    /// Write `pages` (address, bytes) and fill in a report.
    fn write(
        &mut self,
        target: &Pidfd,
        requested_bytes: u64,
        pages: impl Iterator<Item = (u64, u64)>,
        stop: &dyn Fn() -> bool,
    ) -> Result<SwapReport> {
        if target.pid() != self.pid {
            return Err(Error::invalid(format!(
                "swap_pages swapper opened for process {} asked to swap process {}",
                self.pid,
                target.pid()
            )));
        }
        let w = write_batches(&mut self.file, pages, &mut self.buf, stop)
            .map_err(|e| write_error(self.pid, e))?;
        Ok(SwapReport {
            requested_bytes,
            advised_bytes: w.bytes,
            skipped: Vec::new(),
            calls: w.calls,
            stopped: w.stopped,
        })
    }
}

impl Swapper for SwapPages {
    fn backend(&self) -> SwapBackend {
        SwapBackend::SwapPages
    }

    /// Every base page of the ranges, one address each.
    fn swap_out(
        &mut self,
        target: &Pidfd,
        ranges: &[Range],
        stop: &dyn Fn() -> bool,
    ) -> Result<SwapReport> {
        let sized: Vec<(Range, PageSize)> = coalesce(ranges, PageSize::Base.bytes())
            .into_iter()
            .map(|r| (r, PageSize::Base))
            .collect();
        self.swap_out_sized(target, &sized, stop)
    }

    /// One address per page of each range's size class: a huge page once, by its head.
    fn swap_out_sized(
        &mut self,
        target: &Pidfd,
        ranges: &[(Range, PageSize)],
        stop: &dyn Fn() -> bool,
    ) -> Result<SwapReport> {
        let requested = ranges
            .iter()
            .fold(0u64, |t, (r, _)| t.saturating_add(r.len()));
        self.write(target, requested, page_heads(ranges), stop)
    }
}

/// (address, bytes) of every page of `ranges`, each page of its range's size class and
/// named by its head address.
fn page_heads(ranges: &[(Range, PageSize)]) -> impl Iterator<Item = (u64, u64)> + '_ {
    ranges.iter().flat_map(|&(r, size)| {
        (r.start..r.end)
            .step_by(size.bytes() as usize)
            .map(move |a| {
                let p = page_range(a, size);
                (p.start, p.len())
            })
    })
}

/// Open `/proc/PID/swap_pages` read-write (upstream's `"r+"`), saying what is missing when
/// it cannot be: the process, or the etmem_swap module.
pub fn open_file(target: &Pidfd) -> Result<File> {
    let pid = target.pid();
    let path = path(pid);
    let file = File::options().read(true).write(true).open(&path);
    // Alive after the open: the file belongs to this process, not to a recycled pid.
    target
        .check_alive()
        .map_err(|_| Error::new(Kind::Gone, format!("process {pid} exited")))?;
    file.map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => Error::new(
            Kind::Unsupported,
            format!(
                "{path} does not exist: the swap_pages backend needs the openEuler \
                 etmem_swap module (modprobe etmem_swap); stock kernels use process_madvise"
            ),
        ),
        Some(libc::ESRCH) => Error::new(Kind::Gone, format!("process {pid} exited")),
        _ => Error::file(&path, e),
    })
}

fn write_error(pid: Pid, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::ENOENT) => {
            Error::new(Kind::Gone, format!("process {pid} exited"))
        }
        _ => Error::file(path(pid), e),
    }
}

/// What [`write_batches`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes of the pages whose addresses the kernel took.
    pub bytes: u64,
    /// `write` calls made.
    pub calls: u64,
    /// Lines sent again because the kernel took only their first part (see below).
    pub resent_lines: u64,
    /// `stop()` said stop before everything was written.
    pub stopped: bool,
}

/// Write `pages` (address, page bytes) as `0x%lx\n` lines, [`SWAP_LIMIT`] per `write`
/// call, each call whole lines; `buf` is reused between batches and calls. `stop` is
/// checked before each batch.
///
/// A short write (the etmem_swap module never does one, but a writer may) is continued
/// from where it stopped when that is a line end. When it stopped inside a line, that
/// line is sent again whole in the next call: the piece the kernel took may have parsed
/// as a wrong (and most likely unmapped) address, which costs nothing but that page,
/// while writing the rest of the line alone would certainly do so. These resends are
/// counted; a writer that takes only part of one line `MAX_STALLS` times in a row is
/// an error rather than a loop.
pub fn write_batches<W: Write + ?Sized>(
    out: &mut W,
    pages: impl Iterator<Item = (u64, u64)>,
    buf: &mut Vec<u8>,
    stop: &dyn Fn() -> bool,
) -> io::Result<Written> {
    let mut w = Written::default();
    let mut pages = pages.peekable();
    while pages.peek().is_some() {
        if stop() {
            w.stopped = true;
            break;
        }
        buf.clear();
        let mut bytes = 0u64;
        for (addr, len) in pages.by_ref().take(SWAP_LIMIT) {
            // Writing into a Vec cannot fail.
            let _ = writeln!(buf, "{addr:#x}");
            bytes = bytes.saturating_add(len);
        }
        write_lines(out, buf, &mut w)?;
        w.bytes = w.bytes.saturating_add(bytes);
    }
    Ok(w)
}

/// One batch of whole lines, as few `write` calls as the writer allows (one, normally).
fn write_lines<W: Write + ?Sized>(out: &mut W, batch: &[u8], w: &mut Written) -> io::Result<()> {
    let mut off = 0;
    let mut stalls = 0;
    while off < batch.len() {
        let n = match out.write(&batch[off..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) => n.min(batch.len() - off),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.calls += 1;
        let end = off + n;
        if end == batch.len() || batch[end - 1] == b'\n' {
            off = end;
            stalls = 0;
            continue;
        }
        // Cut inside a line: resume at that line's start (`off` is always a line start).
        let line = batch[off..end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(off, |p| off + p + 1);
        w.resent_lines += 1;
        stalls = if line == off { stalls + 1 } else { 0 };
        if stalls >= MAX_STALLS {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the kernel keeps taking only part of an address line",
            ));
        }
        off = line;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that records every call's bytes and takes at most what `take` allows.
    struct Recorder {
        calls: Vec<Vec<u8>>,
        accepted: Vec<u8>,
        take: Box<dyn FnMut(usize, usize) -> usize>,
    }

    impl Recorder {
        fn new(take: impl FnMut(usize, usize) -> usize + 'static) -> Recorder {
            Recorder {
                calls: Vec::new(),
                accepted: Vec::new(),
                take: Box::new(take),
            }
        }
    }

    impl Write for Recorder {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = (self.take)(self.calls.len(), b.len()).min(b.len());
            self.calls.push(b.to_vec());
            self.accepted.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn pages(n: u64) -> impl Iterator<Item = (u64, u64)> {
        (0..n).map(|i| (0x7f00_0000_0000 + i * 4096, 4096))
    }

    fn assert_whole_lines(call: &[u8]) {
        let text = std::str::from_utf8(call).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() <= SWAP_LIMIT);
        for l in lines {
            let hex = l.strip_prefix("0x").unwrap();
            assert!(
                !hex.is_empty() && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{l:?}"
            );
        }
    }

    #[test]
    fn batches_of_200_whole_lines_one_write_each() {
        let mut r = Recorder::new(|_, len| len);
        let w = write_batches(&mut r, pages(1001), &mut Vec::new(), &|| false).unwrap();
        assert_eq!(w.calls, 6);
        assert_eq!(r.calls.len(), 6);
        r.calls.iter().for_each(|c| assert_whole_lines(c));
        assert_eq!(r.calls[0].iter().filter(|&&b| b == b'\n').count(), 200);
        assert_eq!(r.calls[5].iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(w.bytes, 1001 * 4096);
        let text = String::from_utf8(r.accepted).unwrap();
        assert!(text.starts_with("0x7f0000000000\n0x7f0000001000\n"));
        assert_eq!(text.lines().count(), 1001);
    }

    #[test]
    fn a_huge_page_is_one_address_a_base_run_one_per_page() {
        let pmd = PageSize::Pmd.bytes();
        let huge = (Range::new(2 * pmd, 4 * pmd), PageSize::Pmd);
        assert_eq!(
            page_heads(&[huge]).collect::<Vec<_>>(),
            vec![(2 * pmd, pmd), (3 * pmd, pmd)]
        );
        let base = (Range::new(0x1000, 0x3000), PageSize::Base);
        assert_eq!(page_heads(&[base]).count(), 2);
    }

    #[test]
    fn formats_like_c_lx() {
        let mut r = Recorder::new(|_, len| len);
        let p = [(0u64, 1u64), (0xABCDEF, 1), (u64::MAX, 1)];
        write_batches(&mut r, p.into_iter(), &mut Vec::new(), &|| false).unwrap();
        assert_eq!(r.accepted, b"0x0\n0xabcdef\n0xffffffffffffffff\n");
    }

    #[test]
    fn a_short_write_at_a_line_end_continues_there() {
        // First call takes 3 lines only.
        let mut r = Recorder::new(|i, len| if i == 0 { 3 * 15 } else { len });
        let w = write_batches(&mut r, pages(10), &mut Vec::new(), &|| false).unwrap();
        assert_eq!(w.calls, 2);
        assert_eq!(w.resent_lines, 0);
        r.calls.iter().for_each(|c| assert_whole_lines(c));
        assert_eq!(String::from_utf8(r.accepted).unwrap().lines().count(), 10);
    }

    #[test]
    fn a_short_write_inside_a_line_resends_the_line_whole() {
        // Takes 2.5 lines, then everything.
        let mut r = Recorder::new(|i, len| if i == 0 { 2 * 15 + 7 } else { len });
        let w = write_batches(&mut r, pages(5), &mut Vec::new(), &|| false).unwrap();
        assert_eq!(w.calls, 2);
        assert_eq!(w.resent_lines, 1);
        r.calls.iter().for_each(|c| assert_whole_lines(c));
        assert!(r.calls[1].starts_with(b"0x7f0000002000\n"));
        assert_eq!(w.bytes, 5 * 4096);
    }

    #[test]
    fn a_writer_that_never_takes_a_whole_line_is_an_error() {
        let mut r = Recorder::new(|_, _| 4);
        let e = write_batches(&mut r, pages(5), &mut Vec::new(), &|| false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        let mut r = Recorder::new(|_, _| 0);
        assert!(write_batches(&mut r, pages(5), &mut Vec::new(), &|| false).is_err());
    }

    #[test]
    fn stop_is_checked_between_batches() {
        let mut r = Recorder::new(|_, len| len);
        let n = std::cell::Cell::new(0);
        let stop = || {
            n.set(n.get() + 1);
            n.get() > 2
        };
        let w = write_batches(&mut r, pages(1000), &mut Vec::new(), &stop).unwrap();
        assert!(w.stopped);
        assert_eq!(w.calls, 2);
        assert_eq!(w.bytes, 400 * 4096);
    }

    #[test]
    fn through_a_pipe_every_line_arrives_whole() {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            io::Read::read_to_string(&mut File::from(rd), &mut s).unwrap();
            s
        });
        let mut wr = File::from(wr);
        let w = write_batches(&mut wr, pages(450), &mut Vec::new(), &|| false).unwrap();
        drop(wr);
        assert_eq!(w.calls, 3);
        let text = reader.join().unwrap();
        assert_eq!(text.lines().count(), 450);
        assert!(text.lines().all(|l| l.starts_with("0x7f")));
    }
}
