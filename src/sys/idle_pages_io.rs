//! `/proc/PID/idle_pages` of openEuler's `etmem_scan` module (spec §9.1): the file whose
//! offset is a virtual address and whose bytes describe the pages from there on, plus its
//! flag ioctls. Only the I/O lives here; the byte stream is parsed in `track`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::error::{Error, Kind, Result};
use crate::sys::process::proc_error;
use crate::types::Pid;

/// `_IOW(0x66, 0, unsigned int)`: add scan flags (`SCAN_AS_HUGE`, `SCAN_IGN_HOST`, ...).
pub const IDLE_SCAN_ADD_FLAGS: u32 = 0x4004_6600;
/// `_IOW(0x66, 2, unsigned int)`: add VMA flags (`VMA_SCAN_FLAG`).
pub const VMA_SCAN_ADD_FLAGS: u32 = 0x4004_6602;

/// Report VM memory at 2 MiB granularity (octal 0100000000).
pub const SCAN_AS_HUGE: u32 = 0o100000000;
/// Ignore host page-table accessed bits for VMs (octal 0200000000).
pub const SCAN_IGN_HOST: u32 = 0o200000000;
/// Only VMAs marked with `MADV_SWAPFLAG`.
pub const VMA_SCAN_FLAG: u32 = 0x1000;
/// Every flag etmemd knows.
pub const ALL_SCAN_FLAGS: u32 = SCAN_AS_HUGE | SCAN_IGN_HOST | VMA_SCAN_FLAG;

/// The kernel's smallest accepted read (`EPT_IDLE_BUF_MIN` = (8+2)*2).
pub const MIN_READ: usize = 20;

/// An open `idle_pages` file.
#[derive(Debug)]
pub struct IdlePagesFile {
    pid: Pid,
    file: File,
}

impl IdlePagesFile {
    /// Open read-only with no file flags (etmemd's way). The error names the module when
    /// the file does not exist.
    pub fn open(pid: Pid) -> Result<IdlePagesFile> {
        let path = format!("/proc/{pid}/idle_pages");
        match File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => Ok(IdlePagesFile { pid, file }),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && super::process::exists(pid) => {
                Err(Error::new(
                    Kind::Unsupported,
                    format!(
                        "{path} does not exist: the idle_pages backend needs openEuler's \
                     etmem_scan kernel module (modprobe etmem_scan)"
                    ),
                ))
            }
            Err(e) => Err(proc_error(pid, &path, e)),
        }
    }

    /// Issue one of the flag ioctls with a 32-bit argument.
    pub fn ioctl(&self, request: u32, arg: u32) -> Result<()> {
        let mut v: libc::c_uint = arg;
        // SAFETY: the request numbers are _IOW(.., unsigned int): the kernel reads one
        // c_uint through the pointer, which points at a live local for the whole call.
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                request as libc::Ioctl,
                &mut v as *mut libc::c_uint,
            )
        };
        if r < 0 {
            return Err(Error::io(
                format!("ioctl {request:#x} on /proc/{}/idle_pages", self.pid),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// One positioned read at virtual address `addr` (page aligned): the kernel walks
    /// `[addr, addr + buf.len()*8 pages)` and returns how many bytes it wrote. Done as
    /// `lseek` + `read`, exactly as etmemd does, since the module is only known to
    /// implement those.
    pub fn read_at(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let path = || format!("/proc/{}/idle_pages", self.pid);
        self.file
            .seek(SeekFrom::Start(addr))
            .map_err(|e| proc_error(self.pid, &path(), e))?;
        loop {
            match self.file.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(proc_error(self.pid, &path(), e)),
            }
        }
    }
}
