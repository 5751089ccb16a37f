//! Migration to another NUMA node: the actuator that moves cold pages of a process to a
//! slower memory tier (and hot ones back), through `move_pages(2)` with
//! `MPOL_MF_MOVE_ALL`.
//!
//! The kernel reports per page: the node the page is on afterwards, or why it did not
//! move (busy, not present, no memory on the node, shared and not movable). Those are
//! counted, at each page's real size (a THP or hugetlb page counts its 2 MiB or 1 GiB),
//! and the rest of the pages go on. Since Linux 4.17 the kernel may also stop partway,
//! returning how many pages it did not migrate without writing their status; those pages
//! are asked about again (`move_pages` with no target nodes), so the report says where
//! they really are. Errors that concern the whole call (no permission, the process
//! exited, the node is not online or not allowed) fail the call with an [`Error`] saying
//! what to do about it.

use crate::error::{Error, Kind, Result};
use crate::sys::move_pages::{self, MPOL_MF_MOVE_ALL};
use crate::sys::pidfd::Pidfd;
use crate::sys::process::status_field;
use crate::types::{PageSize, Pid};

/// Pages per `move_pages` call at most: the kernel itself works in chunks of 16 pages,
/// so bigger calls save nothing, while a bound keeps the buffers small (48 KiB) and lets
/// a project stop be noticed between calls, within about a second even when each page
/// is copied to slow memory.
pub const BATCH: usize = 4096;

/// What `status[i]` holds before the call: a value the kernel never writes (a node
/// number or a negative errno), so an entry it left alone is told apart.
const UNSET: i32 = i32::MIN;

/// The capability bit (`CAP_SYS_NICE`) that `MPOL_MF_MOVE_ALL` and moving another user's
/// pages need.
const CAP_SYS_NICE: u32 = 23;

/// Where one page is, as [`Migrator::locate`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On this NUMA node.
    Node(u32),
    /// Not in memory: never touched or swapped out (`ENOENT`), or not mapped at all or
    /// the shared zero page (`EFAULT`).
    Absent,
    /// Another per-page error the kernel reported, as a positive errno.
    Error(i32),
}

impl Place {
    /// The place a `move_pages` status value stands for.
    pub fn from_status(status: i32) -> Place {
        match status {
            n if n >= 0 => Place::Node(n as u32),
            n if n == -libc::ENOENT || n == -libc::EFAULT => Place::Absent,
            n => Place::Error(n.saturating_neg()),
        }
    }
}

/// Pages and the bytes they span, at each page's real size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// How many pages (a huge page counts once).
    pub pages: u64,
    /// Their bytes (a huge page counts its whole size).
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.pages += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// What became of each page a move was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// On the target node now (moved, or it was there already).
    Moved,
    /// Busy (`EBUSY`: under I/O, pinned, or held by another part of the kernel), or not
    /// migrated this time for a reason the kernel did not say: try again later.
    Busy,
    /// Not in memory or not mapped (`ENOENT`, `EFAULT`): nothing to move.
    Absent,
    /// No free memory on the target node (`ENOMEM`).
    NoMemory,
    /// Not movable (`EACCES`: shared with other processes and not movable by us).
    Denied,
    /// Any other error, or on a node other than the target.
    Other,
}

/// Which outcome a `move_pages` status value means for a move to `node`.
pub fn classify(status: i32, node: u32) -> Outcome {
    match status {
        n if n >= 0 && n as u32 == node => Outcome::Moved,
        n if n == -libc::EBUSY => Outcome::Busy,
        n if n == -libc::ENOENT || n == -libc::EFAULT => Outcome::Absent,
        n if n == -libc::ENOMEM => Outcome::NoMemory,
        n if n == -libc::EACCES => Outcome::Denied,
        _ => Outcome::Other,
    }
}

/// What one [`Migrator::move_to`] did, in pages and bytes per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MoveReport {
    /// The pages asked for.
    pub asked: Tally,
    /// Pages on the target node afterwards.
    pub moved: Tally,
    /// Pages busy or not migrated this time ([`Outcome::Busy`]).
    pub busy: Tally,
    /// Pages not in memory or not mapped ([`Outcome::Absent`]).
    pub absent: Tally,
    /// Pages the target node had no memory for ([`Outcome::NoMemory`]).
    pub no_memory: Tally,
    /// Pages not movable ([`Outcome::Denied`]).
    pub denied: Tally,
    /// Pages that failed otherwise ([`Outcome::Other`]).
    pub other: Tally,
    /// The status value of the first page counted as [`Outcome::Other`], for the log.
    pub first_other: Option<i32>,
    /// `move_pages` calls made.
    pub calls: u64,
    /// True when `stop()` cut the move short: pages after that were not asked for.
    pub stopped: bool,
}

impl MoveReport {
    /// Count one page of `bytes` whose status after a move to `node` is `status`.
    pub fn count(&mut self, status: i32, node: u32, bytes: u64) {
        self.asked.add(bytes);
        let tally = match classify(status, node) {
            Outcome::Moved => &mut self.moved,
            Outcome::Busy => &mut self.busy,
            Outcome::Absent => &mut self.absent,
            Outcome::NoMemory => &mut self.no_memory,
            Outcome::Denied => &mut self.denied,
            Outcome::Other => {
                self.first_other.get_or_insert(status);
                &mut self.other
            }
        };
        tally.add(bytes);
    }

    /// Count pages whose statuses and sizes are given side by side (extra entries of
    /// the longer slice are ignored).
    pub fn count_all(&mut self, statuses: &[i32], sizes: &[u64], node: u32) {
        for (&s, &b) in statuses.iter().zip(sizes) {
            self.count(s, node, b);
        }
    }

    /// Each failure class that happened, named, with its pages and bytes.
    pub fn failures(&self) -> Vec<(&'static str, Tally)> {
        [
            ("busy", self.busy),
            ("absent", self.absent),
            ("no memory on node", self.no_memory),
            ("not movable", self.denied),
            ("failed", self.other),
        ]
        .into_iter()
        .filter(|(_, t)| t.pages > 0)
        .collect()
    }

    /// One line for the log and `project show`: pages and KiB asked and moved, and each
    /// failure class that happened.
    pub fn summary(&self) -> String {
        let part =
            |name: &str, t: Tally| format!("{name} {} pages ({} KiB)", t.pages, t.bytes >> 10);
        let mut out = format!(
            "{}, {}",
            part("asked", self.asked),
            part("moved", self.moved)
        );
        for (name, t) in self.failures() {
            out.push_str(", ");
            out.push_str(&part(name, t));
        }
        if let Some(s) = self.first_other {
            out.push_str(&format!(" (first failure status {s})"));
        }
        if self.stopped {
            out.push_str(", stopped early");
        }
        out
    }
}

/// The migration actuator. Holds only buffers reused from call to call (addresses,
/// target nodes, statuses, at most [`BATCH`] each); the process is the pidfd handed to
/// each call, so a recycled pid is never mistaken for it.
#[derive(Debug, Default)]
pub struct Migrator {
    addrs: Vec<u64>,
    sizes: Vec<u64>,
    nodes: Vec<i32>,
    status: Vec<i32>,
    again: Vec<u64>,
    again_status: Vec<i32>,
}

impl Migrator {
    /// A migrator with empty buffers (they grow to [`BATCH`] entries on first use).
    pub fn new() -> Migrator {
        Migrator::default()
    }

    /// Where each page of `pages` (addresses in `target`) is: `out[i]` for `pages[i]`
    /// (`out` is cleared first). Moves nothing and needs no CAP_SYS_NICE, only ptrace
    /// read access to the process. Fails with kind `Gone` when the process exits.
    pub fn locate(&mut self, target: &Pidfd, pages: &[u64], out: &mut Vec<Place>) -> Result<()> {
        out.clear();
        target.check_alive()?;
        for chunk in pages.chunks(BATCH) {
            self.status.clear();
            self.status.resize(chunk.len(), UNSET);
            move_pages::query(target.pid(), chunk, &mut self.status)
                .map_err(|e| whole_call_error(target.pid(), None, e))?;
            target.check_alive()?;
            out.extend(self.status.iter().map(|&s| Place::from_status(s)));
        }
        Ok(())
    }

    /// Move `pages` of `target` to `node`. Each page is the address of its first byte
    /// and its size class (4 KiB, THP or hugetlb); a huge page must be given once, by
    /// its head, and is counted at its whole size. Every page's status is counted in the
    /// report without stopping at the ones that fail. `stop` is asked before each call
    /// of at most [`BATCH`] pages; when it says stop, the report so far is returned with
    /// `stopped` set. Whole-call failures are errors: kind `Permission` without
    /// CAP_SYS_NICE (or when the node is outside the process's cpuset), `Gone` when the
    /// process exits, `Invalid` when the node is not online or has no memory.
    pub fn move_to(
        &mut self,
        target: &Pidfd,
        pages: &[(u64, PageSize)],
        node: u32,
        stop: &dyn Fn() -> bool,
    ) -> Result<MoveReport> {
        let pid = target.pid();
        let node_i32 = i32::try_from(node).map_err(|_| node_offline(node))?;
        let mut report = MoveReport::default();
        target.check_alive()?;
        for chunk in pages.chunks(BATCH) {
            if stop() {
                report.stopped = true;
                break;
            }
            self.addrs.clear();
            self.addrs.extend(chunk.iter().map(|&(a, _)| a));
            self.sizes.clear();
            self.sizes.extend(chunk.iter().map(|&(_, s)| s.bytes()));
            self.nodes.clear();
            self.nodes.resize(chunk.len(), node_i32);
            self.status.clear();
            self.status.resize(chunk.len(), UNSET);
            let r = move_pages::move_to(
                pid,
                &self.addrs,
                &self.nodes,
                &mut self.status,
                MPOL_MF_MOVE_ALL,
            );
            report.calls += 1;
            target.check_alive()?;
            // What a page the kernel did not write a status for gets, unless asking
            // again finds it elsewhere: busy after a short count, no memory after ENOMEM.
            let unset = match r {
                Ok(_) => -libc::EBUSY,
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => -libc::ENOMEM,
                Err(e) => return Err(whole_call_error(pid, Some(node), e)),
            };
            self.settle_unset(target, node_i32, unset)?;
            report.count_all(&self.status, &self.sizes, node);
        }
        Ok(report)
    }

    /// Replace each status the kernel left unwritten with what asking again finds: on
    /// `node` (it moved), or not in memory any more (absent); a page still elsewhere, or
    /// one the kernel will not say about, gets `fallback`.
    fn settle_unset(&mut self, target: &Pidfd, node: i32, fallback: i32) -> Result<()> {
        self.again.clear();
        self.again.extend(
            self.addrs
                .iter()
                .zip(&self.status)
                .filter(|&(_, &s)| s == UNSET)
                .map(|(&a, _)| a),
        );
        if self.again.is_empty() {
            return Ok(());
        }
        self.again_status.clear();
        self.again_status.resize(self.again.len(), UNSET);
        let asked = move_pages::query(target.pid(), &self.again, &mut self.again_status);
        target.check_alive()?;
        if asked.is_err() {
            self.again_status.fill(UNSET);
        }
        let unset = self.status.iter_mut().filter(|s| **s == UNSET);
        for (s, &now) in unset.zip(&self.again_status) {
            *s = match now {
                n if n == node || n == -libc::ENOENT || n == -libc::EFAULT => n,
                _ => fallback,
            };
        }
        Ok(())
    }
}

/// The error for a whole `move_pages` call on process `pid` that failed with `e`
/// (`node` is the target of a move, `None` for a query).
fn whole_call_error(pid: Pid, node: Option<u32>, e: std::io::Error) -> Error {
    let doing = match node {
        Some(n) => format!("moving pages of process {pid} to NUMA node {n}"),
        None => format!("finding the NUMA nodes of process {pid}'s pages"),
    };
    match (e.raw_os_error(), node) {
        (Some(libc::EPERM), _) => Error::new(
            Kind::Permission,
            format!(
                "{doing}: {e}: moving another process's pages needs CAP_SYS_NICE \
                 (run etmemd as root or give it CAP_SYS_NICE)"
            ),
        ),
        (Some(libc::ESRCH), _) => Error::new(Kind::Gone, format!("process {pid} exited")),
        (Some(libc::ENODEV), Some(n)) => node_offline(n),
        (Some(libc::EACCES), Some(n)) => Error::new(
            Kind::Permission,
            format!("{doing}: NUMA node {n} is not allowed by the process's cpuset (cpuset.mems)"),
        ),
        _ => Error::new(Kind::Io, format!("{doing}: move_pages: {e}")),
    }
}

fn node_offline(node: u32) -> Error {
    Error::invalid(format!("NUMA node {node} is not online (or has no memory)"))
}

/// Whether this process has CAP_SYS_NICE in its effective set (`CapEff` of
/// `/proc/self/status`), which moving another process's pages with `MPOL_MF_MOVE_ALL`
/// needs: so an engine can say at project start that migration will be refused.
pub fn can_move_others() -> bool {
    status_field(std::process::id() as Pid, "CapEff").is_ok_and(|v| has_cap(&v, CAP_SYS_NICE))
}

/// Whether the capability set `hex` (as `/proc/PID/status` shows it) holds `cap`.
fn has_cap(hex: &str, cap: u32) -> bool {
    u64::from_str_radix(hex.trim(), 16)
        .is_ok_and(|set| set.checked_shr(cap).is_some_and(|s| s & 1 == 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = 4096;
    const M2: u64 = 2 << 20;

    #[test]
    fn statuses_are_counted_at_real_size() {
        let mut r = MoveReport::default();
        let statuses = [
            1,
            1,
            -libc::EBUSY,
            -libc::ENOENT,
            -libc::EFAULT,
            -libc::ENOMEM,
            -libc::EACCES,
            -libc::EIO,
            0,
            -libc::EINVAL,
        ];
        let sizes = [M2, K4, K4, M2, K4, K4, M2, K4, K4, K4];
        r.count_all(&statuses, &sizes, 1);
        let t = |pages, bytes| Tally { pages, bytes };
        assert_eq!(r.asked, t(10, 3 * M2 + 7 * K4));
        assert_eq!(r.moved, t(2, M2 + K4));
        assert_eq!(r.busy, t(1, K4));
        assert_eq!(r.absent, t(2, M2 + K4));
        assert_eq!(r.no_memory, t(1, K4));
        assert_eq!(r.denied, t(1, M2));
        // EIO, a page left on node 0, EINVAL.
        assert_eq!(r.other, t(3, 3 * K4));
        assert_eq!(r.first_other, Some(-libc::EIO));
        let parts = [
            &r.moved,
            &r.busy,
            &r.absent,
            &r.no_memory,
            &r.denied,
            &r.other,
        ];
        assert_eq!(parts.iter().map(|t| t.pages).sum::<u64>(), r.asked.pages);
        assert_eq!(parts.iter().map(|t| t.bytes).sum::<u64>(), r.asked.bytes);
        let s = r.summary();
        assert!(
            s.starts_with(
                "asked 10 pages (6172 KiB), moved 2 pages (2052 KiB), busy 1 pages (4 KiB)"
            ),
            "{s}"
        );
        assert!(
            s.contains("not movable 1 pages (2048 KiB)") && s.contains("first failure status -5"),
            "{s}"
        );
    }

    #[test]
    fn odd_statuses_do_not_panic() {
        let mut r = MoveReport::default();
        r.count_all(
            &[i32::MIN, i32::MAX, -1, UNSET],
            &[u64::MAX, u64::MAX, 0, 1],
            u32::MAX,
        );
        assert_eq!(r.asked.pages, 4);
        assert_eq!(r.asked.bytes, u64::MAX);
        assert_eq!(r.other.pages, 4);
        assert_eq!(Place::from_status(i32::MIN), Place::Error(i32::MAX));
        assert_eq!(Place::from_status(-libc::EFAULT), Place::Absent);
        assert_eq!(Place::from_status(-libc::ENOENT), Place::Absent);
        assert_eq!(Place::from_status(3), Place::Node(3));
        assert_eq!(Place::from_status(-libc::EBUSY), Place::Error(libc::EBUSY));
        assert_eq!(
            MoveReport::default().summary(),
            "asked 0 pages (0 KiB), moved 0 pages (0 KiB)"
        );
    }

    #[test]
    fn whole_call_errors_say_what_to_do() {
        let e = |errno, node| whole_call_error(42, node, std::io::Error::from_raw_os_error(errno));
        let perm = e(libc::EPERM, Some(1));
        assert_eq!(perm.kind, Kind::Permission);
        assert!(
            perm.msg.contains("needs CAP_SYS_NICE (run etmemd as root"),
            "{}",
            perm.msg
        );
        assert_eq!(e(libc::ESRCH, Some(1)).kind, Kind::Gone);
        assert_eq!(e(libc::ESRCH, None).msg, "process 42 exited");
        let dev = e(libc::ENODEV, Some(99));
        assert_eq!(
            (dev.kind, dev.msg.as_str()),
            (
                Kind::Invalid,
                "NUMA node 99 is not online (or has no memory)"
            )
        );
        let acc = e(libc::EACCES, Some(1));
        assert!(
            acc.kind == Kind::Permission && acc.msg.contains("cpuset"),
            "{}",
            acc.msg
        );
        let other = e(libc::EFAULT, Some(1));
        assert_eq!(other.kind, Kind::Io);
        assert!(other
            .msg
            .starts_with("moving pages of process 42 to NUMA node 1: move_pages: "));
    }

    #[test]
    fn capability_sets() {
        assert!(has_cap("0000000000800000", CAP_SYS_NICE));
        assert!(has_cap("000001ffffffffff", CAP_SYS_NICE));
        assert!(!has_cap("00000000007fffff", CAP_SYS_NICE));
        for junk in ["", "xyz", "-1", "1ffffffffffffffffffff"] {
            assert!(!has_cap(junk, CAP_SYS_NICE), "{junk}");
        }
        assert!(!has_cap("ffffffffffffffff", 64));
    }

    #[test]
    fn own_pages_are_located_and_moved_in_place() {
        let me = Pidfd::open(std::process::id() as Pid).unwrap();
        let page = crate::types::page_size();
        let buf = vec![7u8; 3 * page as usize];
        let first = (buf.as_ptr() as u64 + page - 1) & !(page - 1);
        let mut m = Migrator::new();
        let mut out = Vec::new();
        m.locate(&me, &[first, first + page, 4096], &mut out)
            .unwrap();
        let Place::Node(node) = out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(out[1], Place::Node(node));
        assert_eq!(out[2], Place::Absent);
        if !can_move_others() {
            return;
        }
        let pages = [
            (first, PageSize::Base),
            (first + page, PageSize::Base),
            (4096, PageSize::Base),
        ];
        let r = m.move_to(&me, &pages, node, &|| false).unwrap();
        assert_eq!(r.moved.pages, 2, "{}", r.summary());
        assert_eq!(r.absent.pages, 1, "{}", r.summary());
        let r = m.move_to(&me, &pages, node, &|| true).unwrap();
        assert!(r.stopped && r.asked.pages == 0 && r.calls == 0);
        let e = m.move_to(&me, &pages, u32::MAX, &|| false).unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        assert_eq!(buf[0], 7);
    }
}
