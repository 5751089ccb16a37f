//! What cslide's last cycle found, and its two engine commands' answers (spec §7.5,
//! §11.2): `showhostpages` (per node: its memory, the tasks' hot and cold bytes) and
//! `showtaskpages` (per node: one task's hot and cold bytes), in upstream's layout and
//! kB, or as JSON with bytes. Pages count at their real size (upstream counted every page
//! as 2 MiB).

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::roles::Roles;
use crate::json;
use crate::sys::local_time::local_time;
use crate::types::Pid;

/// One node's share of some memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodePages {
    /// The node.
    pub node: u32,
    /// Bytes of hot pages on it.
    pub hot: u64,
    /// Bytes of cold pages on it.
    pub cold: u64,
}

/// One node of the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostNode {
    /// The node and the tasks' pages on it.
    pub pages: NodePages,
    /// The node's memory the policy counts with: its hugetlb pool when the tasks' memory
    /// is hugetlb, else all of it (bytes).
    pub total: u64,
    /// Of which free (bytes).
    pub free: u64,
}

/// One task's pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPages {
    /// The task's name.
    pub name: String,
    /// Its process.
    pub pid: Pid,
    /// Per node, ascending.
    pub nodes: Vec<NodePages>,
}

/// What one pair's migrations did in the last cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairMoves {
    /// Bytes the policy chose to move up (promote and prefetch).
    pub up_planned: u64,
    /// Bytes that reached the DRAM node.
    pub up_moved: u64,
    /// Bytes the policy chose to move down.
    pub down_planned: u64,
    /// Bytes that reached the slow node.
    pub down_moved: u64,
}

/// The last completed statistics of a cslide engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When they were computed (the epoch before the first cycle, as upstream).
    pub time: SystemTime,
    /// Per node in the pairs, ascending.
    pub host: Vec<HostNode>,
    /// Per task that was scanned.
    pub tasks: Vec<TaskPages>,
    /// The pairs' roles and what their migrations did, in `node_pair` order.
    pub pairs: Vec<(Roles, PairMoves)>,
    /// Whether free and total memory are the hugetlb pools'.
    pub hugetlb: bool,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            time: UNIX_EPOCH,
            host: Vec::new(),
            tasks: Vec::new(),
            pairs: Vec::new(),
            hugetlb: false,
        }
    }
}

fn kb(bytes: u64) -> u64 {
    bytes / 1024
}

/// `[<asctime>] `, or nothing when the time cannot be converted (as upstream).
fn stamp(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => i64::try_from(e.duration().as_secs()).ok().map(|s| -s),
    };
    secs.and_then(local_time)
        .and_then(|t| t.asctime())
        .map(|s| format!("[{s}] "))
        .unwrap_or_default()
}

impl Snapshot {
    /// `showhostpages`: upstream's table, then one line per pair with its roles and the
    /// last cycle's moves.
    pub fn host_text(&self) -> String {
        let mut out = format!("{}host pages info (KB):\n", stamp(self.time));
        let _ = writeln!(
            out,
            "{:>5} {:>10} {:>10} {:>10} {:>10}",
            "node", "total", "used", "hot", "cold"
        );
        for n in &self.host {
            let p = n.pages;
            let _ = writeln!(
                out,
                "{:>5} {:>10} {:>10} {:>10} {:>10}",
                p.node,
                kb(n.total),
                kb(p.hot + p.cold),
                kb(p.hot),
                kb(p.cold)
            );
        }
        for (r, m) in &self.pairs {
            let _ = writeln!(
                out,
                "pair: {r}; last cycle moved {} of {} KB up, {} of {} KB down",
                kb(m.up_moved),
                kb(m.up_planned),
                kb(m.down_moved),
                kb(m.down_planned)
            );
        }
        out
    }

    /// `showtaskpages` for task `name`: upstream's table; `None` when the last cycle did
    /// not scan the task.
    pub fn task_text(&self, name: &str) -> Option<String> {
        let t = self.tasks.iter().find(|t| t.name == name)?;
        let mut out = format!("{}task {} pages info (KB):\n", stamp(self.time), t.pid);
        let _ = writeln!(
            out,
            "{:>5} {:>10} {:>10} {:>10}",
            "node", "used", "hot", "cold"
        );
        for p in &t.nodes {
            let _ = writeln!(
                out,
                "{:>5} {:>10} {:>10} {:>10}",
                p.node,
                kb(p.hot + p.cold),
                kb(p.hot),
                kb(p.cold)
            );
        }
        Some(out)
    }

    fn secs(&self) -> u64 {
        self.time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// `showhostpages` as JSON, in bytes.
    pub fn host_json(&self) -> String {
        let mut out = json::object(|o| {
            o.field("time", self.secs()).field("hugetlb", self.hugetlb);
            o.array("nodes", |a| {
                for n in &self.host {
                    a.object(|o| {
                        o.field("node", n.pages.node)
                            .field("total_bytes", n.total)
                            .field("free_bytes", n.free)
                            .field("used_bytes", n.pages.hot + n.pages.cold)
                            .field("hot_bytes", n.pages.hot)
                            .field("cold_bytes", n.pages.cold);
                    });
                }
            });
            o.array("pairs", |a| {
                for (r, m) in &self.pairs {
                    a.object(|o| {
                        o.field("dram_node", r.dram)
                            .field("slow_node", r.slow)
                            .field("decided_by", r.to_string())
                            .field("up_planned_bytes", m.up_planned)
                            .field("up_moved_bytes", m.up_moved)
                            .field("down_planned_bytes", m.down_planned)
                            .field("down_moved_bytes", m.down_moved);
                    });
                }
            });
        });
        out.push('\n');
        out
    }

    /// `showtaskpages` as JSON, in bytes.
    pub fn task_json(&self, name: &str) -> Option<String> {
        let t = self.tasks.iter().find(|t| t.name == name)?;
        let mut out = json::object(|o| {
            o.field("time", self.secs())
                .field("task", &t.name)
                .field("pid", t.pid);
            o.array("nodes", |a| {
                for p in &t.nodes {
                    a.object(|o| {
                        o.field("node", p.node)
                            .field("used_bytes", p.hot + p.cold)
                            .field("hot_bytes", p.hot)
                            .field("cold_bytes", p.cold);
                    });
                }
            });
        });
        out.push('\n');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cslide::roles::DecidedBy;

    fn snap() -> Snapshot {
        let p = NodePages {
            node: 0,
            hot: 2 << 20,
            cold: 2 << 20,
        };
        Snapshot {
            time: UNIX_EPOCH,
            host: vec![HostNode {
                pages: p,
                total: 20_480_000 << 10,
                free: 0,
            }],
            tasks: vec![TaskPages {
                name: "vm1".into(),
                pid: 42,
                nodes: vec![p],
            }],
            pairs: vec![(
                Roles {
                    dram: 0,
                    slow: 1,
                    by: DecidedBy::Cpus,
                },
                PairMoves {
                    up_planned: 4096,
                    up_moved: 4096,
                    ..PairMoves::default()
                },
            )],
            hugetlb: true,
        }
    }

    #[test]
    fn tables_match_upstream_printf() {
        let s = snap();
        let host = s.host_text();
        let body: Vec<&str> = host.lines().skip(1).collect();
        assert_eq!(body[0], " node      total       used        hot       cold");
        assert_eq!(body[1], "    0   20480000       4096       2048       2048");
        assert_eq!(
            body[2],
            "pair: DRAM node 0, slow node 1 (node 1 has no CPUs); last cycle moved 4 of 4 KB up, 0 of 0 KB down"
        );
        assert!(host
            .lines()
            .next()
            .unwrap()
            .ends_with("] host pages info (KB):"));
        let task = s.task_text("vm1").unwrap();
        let lines: Vec<&str> = task.lines().collect();
        assert!(lines[0].ends_with("] task 42 pages info (KB):"), "{task}");
        assert_eq!(lines[1], " node       used        hot       cold");
        assert_eq!(lines[2], "    0       4096       2048       2048");
        assert_eq!(s.task_text("nope"), None);
        let j: serde_json::Value = serde_json::from_str(&s.task_json("vm1").unwrap()).unwrap();
        assert_eq!(j["nodes"][0]["hot_bytes"], 2 << 20);
        let j: serde_json::Value = serde_json::from_str(&s.host_json()).unwrap();
        assert_eq!(j["pairs"][0]["slow_node"], 1);
    }
}
