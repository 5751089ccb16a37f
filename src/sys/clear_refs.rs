//! `/proc/PID/clear_refs`: reset the kernel's per-page "referenced" (1) or soft-dirty (4)
//! state of a process, so that the next look sees only what happened since.

use std::fs::File;
use std::io::Write;

use crate::error::Result;
use crate::sys::process::proc_error;
use crate::types::Pid;

/// What to clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearRefs {
    /// `1`: the accessed bits and referenced flags of every page (smaps `Referenced`).
    Referenced,
    /// `4`: the soft-dirty bits (pagemap bit 55), CONFIG_MEM_SOFT_DIRTY.
    SoftDirty,
}

/// An open `clear_refs` of one process, kept open so that a recycled pid is never hit.
#[derive(Debug)]
pub struct ClearRefsFile {
    pid: Pid,
    file: File,
}

impl ClearRefsFile {
    /// Open `/proc/PID/clear_refs` for writing; `NotFound` if there is no such process.
    pub fn open(pid: Pid) -> Result<ClearRefsFile> {
        let path = format!("/proc/{pid}/clear_refs");
        let file = File::options()
            .write(true)
            .open(&path)
            .map_err(|e| proc_error(pid, &path, e))?;
        Ok(ClearRefsFile { pid, file })
    }

    /// Reset `what` for every page of the process: the next look sees only what
    /// happened after this call.
    pub fn clear(&mut self, what: ClearRefs) -> Result<()> {
        let word: &[u8] = match what {
            ClearRefs::Referenced => b"1",
            ClearRefs::SoftDirty => b"4",
        };
        self.file
            .write_all(word)
            .map_err(|e| proc_error(self.pid, &format!("/proc/{}/clear_refs", self.pid), e))
    }
}
