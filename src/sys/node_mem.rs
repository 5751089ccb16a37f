//! The memory of one NUMA node: its size and free bytes, and its hugetlb page pools, from
//! `/sys/devices/system/node/nodeN`. What a migration to that node has room for.

use std::path::Path;

use crate::error::{Error, Result};
use crate::sys::process::parse_kb;

/// Where the kernel lists the NUMA nodes.
const NODES: &str = "/sys/devices/system/node";

/// The memory of one node, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeMem {
    /// `MemTotal`: the node's usable RAM.
    pub total: u64,
    /// `MemFree`: the node's RAM not used at all.
    pub free: u64,
}

/// One hugetlb page pool of a node (one per huge page size), counted in pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HugePool {
    /// The size of one page of this pool in bytes (2 MiB, 1 GiB...).
    pub page_bytes: u64,
    /// `nr_hugepages`: pages the pool holds.
    pub total: u64,
    /// `free_hugepages`: pages of the pool not in use, what hugetlb pages moved to this
    /// node can land in.
    pub free: u64,
}

/// The size and free memory of `node`, from `/sys/devices/system/node/nodeN/meminfo`.
pub fn node_meminfo(node: u32) -> Result<NodeMem> {
    let path = format!("{NODES}/node{node}/meminfo");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    parse_node_meminfo(node, &text)
}

/// Parse the text of `nodeN/meminfo` (lines like `Node 0 MemTotal:  1004124 kB`); lines
/// of another node or that do not parse are ignored, a missing `MemTotal` or `MemFree`
/// is an error naming the file.
pub fn parse_node_meminfo(node: u32, text: &str) -> Result<NodeMem> {
    let prefix = format!("Node {node} ");
    let get = |key: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.strip_prefix(&prefix)?.split_once(':')?;
                (k.trim() == key).then(|| parse_kb(v.trim())).flatten()
            })
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{NODES}/node{node}/meminfo: no readable {key} line"
                ))
            })
    };
    Ok(NodeMem {
        total: get("MemTotal")?,
        free: get("MemFree")?,
    })
}

/// The hugetlb pools of `node`, smallest page size first, from
/// `nodeN/hugepages/hugepages-<K>kB/{nr_hugepages,free_hugepages}`. A node (or kernel)
/// without that directory has none: an empty list.
pub fn hugepage_pools(node: u32) -> Result<Vec<HugePool>> {
    pools_in(Path::new(&format!("{NODES}/node{node}/hugepages")))
}

/// The pools listed in `dir` (a `hugepages` directory of sysfs, or a copy in a test).
fn pools_in(dir: &Path) -> Result<Vec<HugePool>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::file(dir.display(), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(dir.display(), e))?;
        let Some(page_bytes) = entry.file_name().to_str().and_then(pool_page_bytes) else {
            continue;
        };
        let count = |name: &str| read_count(&entry.path().join(name));
        out.push(HugePool {
            page_bytes,
            total: count("nr_hugepages")?,
            free: count("free_hugepages")?,
        });
    }
    crate::sort::unstable_by_key(&mut out, |p| p.page_bytes);
    Ok(out)
}

/// The page size a pool directory is named for: `hugepages-2048kB` -> 2 MiB.
pub fn pool_page_bytes(name: &str) -> Option<u64> {
    let kb: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    kb.checked_mul(1024).filter(|&b| b > 0)
}

/// A file holding one decimal count; an error naming it when it does not.
fn read_count(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path.display(), e))?;
    parse_count(&path.display().to_string(), &text)
}

/// The count in `text` read from `path` (for the error message).
pub fn parse_count(path: &str, text: &str) -> Result<u64> {
    text.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("{path}: not a count: {:?}", text.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Node 1 MemTotal:        1004124 kB
Node 1 MemFree:          900000 kB
Node 1 MemUsed:          104124 kB
Node 1 HugePages_Total:     0
";

    #[test]
    fn parses_node_meminfo() {
        assert_eq!(
            parse_node_meminfo(1, SAMPLE).unwrap(),
            NodeMem {
                total: 1_004_124 * 1024,
                free: 900_000 * 1024
            }
        );
        let now = node_meminfo(0).unwrap();
        assert!(now.total > 0 && now.free <= now.total);
    }

    #[test]
    fn junk_node_meminfo_is_an_error_naming_the_file() {
        // Another node's lines, junk values, no colon, empty text, stray bytes.
        for junk in [
            SAMPLE,
            "Node 2 MemTotal: x kB\nNode 2 MemFree: 1 kB\n",
            "Node 2 MemTotal 5 kB\n",
            "",
            "Node 2\0\u{fffd}:::\nNode 2 MemTotal: 99999999999999999999 kB",
        ] {
            let e = parse_node_meminfo(2, junk).unwrap_err();
            assert!(
                e.msg
                    .starts_with("/sys/devices/system/node/node2/meminfo: no readable"),
                "{}",
                e.msg
            );
        }
    }

    #[test]
    fn pool_names_and_counts() {
        assert_eq!(pool_page_bytes("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(pool_page_bytes("hugepages-1048576kB"), Some(1 << 30));
        for junk in ["hugepages-kB", "hugepages-0kB", "hugepages-2048", "x", ""] {
            assert_eq!(pool_page_bytes(junk), None, "{junk}");
        }
        assert_eq!(
            pool_page_bytes("hugepages-99999999999999999999kB"),
            None,
            "overflow"
        );
        assert_eq!(parse_count("f", "12\n").unwrap(), 12);
        assert_eq!(
            parse_count("f", "-1").unwrap_err().msg,
            "f: not a count: \"-1\""
        );
    }

    #[test]
    fn pools_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("etmem-hugepools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, nr, free) in [
            ("hugepages-1048576kB", "1", "0"),
            ("hugepages-2048kB", "64", "60"),
        ] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("nr_hugepages"), nr).unwrap();
            std::fs::write(dir.join(name).join("free_hugepages"), free).unwrap();
        }
        std::fs::create_dir_all(dir.join("power")).unwrap();
        let pools = pools_in(&dir).unwrap();
        assert_eq!(
            pools,
            vec![
                HugePool {
                    page_bytes: 2 << 20,
                    total: 64,
                    free: 60
                },
                HugePool {
                    page_bytes: 1 << 30,
                    total: 1,
                    free: 0
                }
            ]
        );
        std::fs::write(dir.join("hugepages-2048kB/free_hugepages"), "junk").unwrap();
        let e = pools_in(&dir).unwrap_err();
        assert!(
            e.msg.contains("hugepages-2048kB/free_hugepages"),
            "{}",
            e.msg
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(pools_in(&dir).unwrap(), vec![]);
        assert!(hugepage_pools(0).is_ok());
        assert_eq!(hugepage_pools(100_000).unwrap(), vec![]);
    }
}
