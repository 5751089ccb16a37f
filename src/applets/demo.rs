//! `etmem scan --demo`: a built-in workload to try etmem on without choosing a process:
//! a child (`etmem workload`) with a 64 MiB region it keeps reading and a 192 MiB region
//! it never touches again. It is killed and reaped when the demo ends, however it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::error::{Error, Kind, Result};
use crate::types::Pid;

/// The demo workload: hot and cold region sizes in MiB.
pub const HOT_MIB: u32 = 64;
/// The demo workload's cold region, in MiB: filled once, never touched again.
pub const COLD_MIB: u32 = 192;

/// A running demo workload, killed on drop.
pub struct Demo {
    child: Child,
    /// The workload's own description of its regions (`hot 0x..-0x..`, `cold ...`).
    pub regions: Vec<String>,
}

impl Demo {
    /// Start the workload and wait until its memory is filled.
    pub fn start() -> Result<Demo> {
        let exe = std::env::current_exe().map_err(|e| Error::io("cannot find this binary", e))?;
        let mut child = Command::new(exe)
            .args([
                "workload",
                "--hot-mib",
                &HOT_MIB.to_string(),
                "--cold-mib",
                &COLD_MIB.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("cannot start the demo workload", e))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| Error::new(Kind::Io, "the demo workload has no output"))?;
        let mut demo = Demo {
            child,
            regions: Vec::new(),
        };
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| Error::io("reading the demo workload", e))?;
            if line == "ready" {
                return Ok(demo);
            }
            demo.regions.push(line);
        }
        Err(Error::new(
            Kind::Io,
            "the demo workload ended before it was ready",
        ))
    }

    /// The workload process, to scan or swap.
    pub fn pid(&self) -> Pid {
        self.child.id() as Pid
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
