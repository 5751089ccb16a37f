//! DAMON through sysfs (`/sys/kernel/mm/damon/admin`, Linux 5.18+): one kdamond that
//! monitors one process's virtual address space, with a `stat` scheme whose "tried
//! regions" list every monitored region with its access frequency. The monitor is turned
//! off and the kdamond count restored on `stop` and in `Drop`, so it never outlives us.

use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result};
use crate::types::{Pid, Range};

/// The DAMON sysfs root.
pub const ADMIN: &str = "/sys/kernel/mm/damon/admin";

/// Monitoring intervals and region limits.
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    /// Sampling interval (µs): how often DAMON checks one page of each region.
    pub sample_us: u64,
    /// Aggregation interval (µs): the window over which samples are counted into
    /// `nr_accesses`.
    pub aggr_us: u64,
    /// Regions update interval (µs): how often DAMON re-reads the address space layout.
    pub update_us: u64,
    /// The fewest regions DAMON splits the address space into.
    pub min_regions: u64,
    /// The most regions DAMON splits the address space into.
    pub max_regions: u64,
}

/// One monitored region, as the `stat` scheme reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First address of the region.
    pub start: u64,
    /// First address past the region.
    pub end: u64,
    /// Samples (out of aggr_us/sample_us) in which the region was seen accessed during
    /// the last aggregation interval.
    pub nr_accesses: u64,
    /// Aggregation intervals since the access frequency last changed noticeably.
    pub age: u64,
}

/// A running kdamond of ours.
#[derive(Debug)]
pub struct Monitor {
    kdamond: PathBuf,
    prior: u64,
    active: bool,
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| Error::io(format!("write {value:?} to {}", path.display()), e))
}

fn read_u64(path: &Path) -> Result<u64> {
    let t = std::fs::read_to_string(path).map_err(|e| Error::file(path.display(), e))?;
    t.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("{}: unparsable {:?}", path.display(), t.trim())))
}

fn needs(what: &str) -> Error {
    Error::new(
        Kind::Unsupported,
        format!(
            "{what}: the damon backend needs a kernel built with CONFIG_DAMON_VADDR and \
             CONFIG_DAMON_SYSFS (Linux 5.18+)"
        ),
    )
}

/// True if an operations list (`avail_operations`) offers virtual address monitoring.
fn offers_vaddr(list: &str) -> bool {
    list.split_ascii_whitespace().any(|w| w == "vaddr")
}

/// Can a kdamond of ours be set up? Returns the current kdamond count (0). Errors:
/// `Unsupported` naming the kernel options when DAMON sysfs or vaddr is missing; `Io` when
/// someone else's kdamonds exist (rewriting the count would destroy their setup).
pub fn check_available() -> Result<u64> {
    let kdamonds = Path::new(ADMIN).join("kdamonds");
    if !kdamonds.is_dir() {
        return Err(needs(&format!("{ADMIN} does not exist")));
    }
    let prior = read_u64(&kdamonds.join("nr_kdamonds"))?;
    if prior == 0 {
        return Ok(0);
    }
    // Learn what the kernel offers from an existing context, if there is one.
    let ops = kdamonds.join("0/contexts/0/avail_operations");
    if let Ok(list) = std::fs::read_to_string(ops) {
        if !offers_vaddr(&list) {
            return Err(needs(&format!(
                "DAMON offers only \"{}\", not vaddr",
                list.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
            )));
        }
    }
    Err(Error::new(
        Kind::Io,
        format!(
            "{ADMIN} already has {prior} kdamond(s) set up by someone else; the damon \
             backend will not reconfigure them (write 0 to {ADMIN}/kdamonds/nr_kdamonds \
             once they are off to free DAMON)"
        ),
    ))
}

impl Monitor {
    /// Configure and start monitoring `pid`, starting from `regions` (sorted, disjoint,
    /// page aligned; empty: DAMON's own split of the address space). Refuses to touch
    /// kdamonds someone else set up.
    pub fn start(pid: Pid, attrs: Attrs, regions: &[Range]) -> Result<Monitor> {
        let prior = check_available()?;
        let kdamonds = Path::new(ADMIN).join("kdamonds");
        write(&kdamonds.join("nr_kdamonds"), "1")?;
        let mut m = Monitor {
            kdamond: kdamonds.join("0"),
            prior,
            active: true,
        };
        if let Err(e) = m.configure(pid, attrs, regions) {
            m.stop();
            return Err(e);
        }
        Ok(m)
    }

    fn configure(&mut self, pid: Pid, a: Attrs, regions: &[Range]) -> Result<()> {
        let k = &self.kdamond;
        write(&k.join("contexts/nr_contexts"), "1")?;
        let c = k.join("contexts/0");
        let ops = std::fs::read_to_string(c.join("avail_operations")).unwrap_or_default();
        if !offers_vaddr(&ops) {
            return Err(needs("DAMON does not offer vaddr operations"));
        }
        write(&c.join("operations"), "vaddr")?;
        let at = c.join("monitoring_attrs");
        write(&at.join("intervals/sample_us"), &a.sample_us.to_string())?;
        write(&at.join("intervals/aggr_us"), &a.aggr_us.to_string())?;
        write(&at.join("intervals/update_us"), &a.update_us.to_string())?;
        // max before min: the kernel checks min <= max when the kdamond starts.
        write(&at.join("nr_regions/max"), &a.max_regions.to_string())?;
        write(&at.join("nr_regions/min"), &a.min_regions.to_string())?;
        write(&c.join("targets/nr_targets"), "1")?;
        write(&c.join("targets/0/pid_target"), &pid.to_string())?;
        // Initial regions: vaddr keeps what the user set instead of its own three-region
        // split, and later address-space updates only trim and extend them.
        let r = c.join("targets/0/regions");
        write(&r.join("nr_regions"), &regions.len().to_string())?;
        for (i, range) in regions.iter().enumerate() {
            write(&r.join(format!("{i}/start")), &range.start.to_string())?;
            write(&r.join(format!("{i}/end")), &range.end.to_string())?;
        }
        write(&c.join("schemes/nr_schemes"), "1")?;
        let s = c.join("schemes/0");
        write(&s.join("action"), "stat")?;
        let p = s.join("access_pattern");
        for (dir, max) in [
            ("sz", u64::MAX.to_string()),
            ("nr_accesses", u32::MAX.to_string()),
            ("age", u32::MAX.to_string()),
        ] {
            write(&p.join(dir).join("max"), &max)?;
            write(&p.join(dir).join("min"), "0")?;
        }
        // A target that exited makes this fail too; the scan loop tells the two apart by
        // the process's pidfd.
        write(&k.join("state"), "on").map_err(|e| e.context("starting the kdamond"))
    }

    /// The current regions, into `out` (reused). Waits for the kdamond's next
    /// aggregation (at most one aggregation interval). An error of kind `Gone` when the
    /// kdamond stopped because its target exited.
    pub fn regions(&mut self, out: &mut Vec<Region>) -> Result<()> {
        out.clear();
        let state = std::fs::read_to_string(self.kdamond.join("state")).unwrap_or_default();
        if state.trim() != "on" {
            return Err(Error::new(
                Kind::Gone,
                "the kdamond stopped (its target process exited)",
            ));
        }
        write(&self.kdamond.join("state"), "update_schemes_tried_regions")?;
        let dir = self.kdamond.join("contexts/0/schemes/0/tried_regions");
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::file(dir.display(), e))?;
        for ent in rd {
            let ent = ent.map_err(|e| Error::file(dir.display(), e))?;
            if ent
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
                .is_none()
            {
                continue;
            }
            let r = ent.path();
            out.push(Region {
                start: read_u64(&r.join("start"))?,
                end: read_u64(&r.join("end"))?,
                nr_accesses: read_u64(&r.join("nr_accesses"))?,
                age: read_u64(&r.join("age"))?,
            });
        }
        out.sort_unstable_by_key(|r| r.start);
        Ok(())
    }

    /// Turn the kdamond off and restore the kdamond count. Idempotent, never fails
    /// (teardown must not be skipped because of an earlier error).
    pub fn stop(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        let _ = write(&self.kdamond.join("state"), "off");
        let nr = self.kdamond.parent().map(|p| p.join("nr_kdamonds"));
        if let Some(nr) = nr {
            // The kernel refuses while the kdamond is still winding down; retry briefly.
            for _ in 0..100 {
                if write(&nr, &self.prior.to_string()).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaddr_detection() {
        assert!(offers_vaddr("vaddr\nfvaddr\npaddr\n"));
        assert!(!offers_vaddr("paddr\nfvaddr\n"));
    }
}
