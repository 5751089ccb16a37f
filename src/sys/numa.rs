//! NUMA nodes of this machine, from `/sys/devices/system/node`.

/// The online NUMA nodes, ascending. A machine without the sysfs directory (a kernel
/// without CONFIG_NUMA) has node 0 only.
pub fn online_nodes() -> Vec<u32> {
    match std::fs::read_to_string("/sys/devices/system/node/online") {
        Ok(text) => parse_list(text.trim()).unwrap_or_else(|| vec![0]),
        Err(_) => vec![0],
    }
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
}
