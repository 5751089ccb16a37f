//! NUMA nodes of this machine, from `/sys/devices/system/node`: which are online, which
//! CPUs each has, and the memory tiers the kernel groups them into.

use std::path::Path;

/// Where the kernel lists the memory tiers (Linux 6.1+, CONFIG_NUMA).
const TIERS: &str = "/sys/devices/virtual/memory_tiering";

/// The online NUMA nodes, ascending. A machine without the sysfs directory (a kernel
/// without CONFIG_NUMA) has node 0 only.
pub fn online_nodes() -> Vec<u32> {
    match std::fs::read_to_string("/sys/devices/system/node/online") {
        Ok(text) => parse_list(text.trim()).unwrap_or_else(|| vec![0]),
        Err(_) => vec![0],
    }
}

/// The CPUs of `node`, ascending, from `nodeN/cpulist`: an empty list for a CPU-less
/// node (a slow memory tier such as CXL or persistent memory), `None` when the node does
/// not exist or its list does not parse.
pub fn node_cpus(node: u32) -> Option<Vec<u32>> {
    let text =
        std::fs::read_to_string(format!("/sys/devices/system/node/node{node}/cpulist")).ok()?;
    parse_list(text.trim())
}

/// One memory tier: nodes of about the same speed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryTier {
    /// The tier's id (`memory_tierN`); a higher id is a slower tier.
    pub id: u32,
    /// The nodes in it, ascending.
    pub nodes: Vec<u32>,
}

/// The memory tiers, fastest (lowest id) first, from
/// `/sys/devices/virtual/memory_tiering/memory_tierN/nodelist`: where cold pages may be
/// demoted to. Empty on kernels without memory tiering; a tier whose list does not
/// parse is left out.
pub fn memory_tiers() -> Vec<MemoryTier> {
    tiers_in(Path::new(TIERS))
}

/// The tiers listed in `dir` (sysfs, or a copy in a test).
fn tiers_in(dir: &Path) -> Vec<MemoryTier> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<MemoryTier> = entries
        .flatten()
        .filter_map(|e| {
            let id = tier_id(e.file_name().to_str()?)?;
            let text = std::fs::read_to_string(e.path().join("nodelist")).ok()?;
            Some(MemoryTier {
                id,
                nodes: parse_list(text.trim())?,
            })
        })
        .collect();
    crate::sort::unstable_by_key(&mut out, |t| t.id);
    out
}

/// The id a tier directory is named for: `memory_tier4` -> 4.
pub fn tier_id(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("memory_tier")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Parse a kernel cpu/node list such as `0-3,5,7-8`.
pub fn parse_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0"), Some(vec![0]));
        assert_eq!(parse_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_list("2-1"), None);
        assert_eq!(parse_list("x"), None);
        assert!(online_nodes().contains(&0));
    }

    #[test]
    fn malformed_lists() {
        for junk in [
            "0-",
            "-1",
            "1--2",
            "0-99999",
            "4294967296",
            "1,,x",
            " 1",
            "\0",
        ] {
            assert_eq!(parse_list(junk), None, "{junk:?}");
        }
        assert_eq!(parse_list(""), Some(vec![]));
    }

    #[test]
    fn cpus_of_nodes() {
        assert!(node_cpus(0).is_some_and(|c| !c.is_empty()));
        assert_eq!(node_cpus(100_000), None);
    }

    #[test]
    fn tier_names() {
        assert_eq!(tier_id("memory_tier4"), Some(4));
        assert_eq!(tier_id("memory_tier22"), Some(22));
        for junk in [
            "memory_tier",
            "memory_tier-1",
            "memory_tier+1",
            "power",
            "uevent",
            "",
        ] {
            assert_eq!(tier_id(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn tiers_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("etmem-tiers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, list) in [
            ("memory_tier22", "1\n"),
            ("memory_tier4", "0\n"),
            ("memory_tier9", "junk"),
        ] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("nodelist"), list).unwrap();
        }
        std::fs::create_dir_all(dir.join("memory_tier5")).unwrap();
        std::fs::create_dir_all(dir.join("power")).unwrap();
        assert_eq!(
            tiers_in(&dir),
            vec![
                MemoryTier {
                    id: 4,
                    nodes: vec![0]
                },
                MemoryTier {
                    id: 22,
                    nodes: vec![1]
                }
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(tiers_in(&dir), vec![]);
        // This machine's: node 0 is in some tier, when the kernel has tiers at all.
        let tiers = memory_tiers();
        assert!(tiers.is_empty() || tiers.iter().any(|t| t.nodes.contains(&0)));
    }
}
