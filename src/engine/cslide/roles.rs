//! Which node of a `node_pair` is DRAM and which is the slow tier. The guide writes pairs
//! as "AEP,DRAM" (`2,0;3,1`) while upstream's code and samples take the first as DRAM
//! (`0,2;1,3`), so a file says nothing reliable: the machine decides. A node in a lower
//! memory tier (a higher `memory_tierN` under `/sys/devices/virtual/memory_tiering/`),
//! or else the one of the two without CPUs, is the slow one; only when the machine cannot
//! tell them apart does the guide's order decide.

use std::fmt;

/// What the machine says about one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeFacts {
    /// The memory tier the node is in (a higher number is slower), if the kernel has
    /// memory tiering.
    pub tier: Option<u32>,
    /// Whether the node has CPUs, if known.
    pub has_cpus: Option<bool>,
}

/// A pair with its roles decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The fast node, where hot pages belong.
    pub dram: u32,
    /// The slow node (persistent memory, CXL), where cold pages belong.
    pub slow: u32,
    /// What decided.
    pub by: DecidedBy,
}

/// What decided a pair's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// The kernel's memory tiers: the slow node is in the lower (higher-numbered) tier.
    Tiers {
        /// The DRAM node's tier.
        dram: u32,
        /// The slow node's tier.
        slow: u32,
    },
    /// The slow node has no CPUs and the other has.
    Cpus,
    /// The machine cannot tell: the guide's "AEP,DRAM" order (the first is slow).
    GuideOrder,
}

/// The roles of the pair `(first, second)` as written in `node_pair`.
pub fn decide((first, second): (u32, u32), facts: impl Fn(u32) -> NodeFacts) -> Roles {
    let (a, b) = (facts(first), facts(second));
    let roles = |dram, slow, by| Roles { dram, slow, by };
    match (a.tier, b.tier) {
        (Some(ta), Some(tb)) if ta > tb => {
            return roles(second, first, DecidedBy::Tiers { dram: tb, slow: ta })
        }
        (Some(ta), Some(tb)) if tb > ta => {
            return roles(first, second, DecidedBy::Tiers { dram: ta, slow: tb })
        }
        _ => {}
    }
    match (a.has_cpus, b.has_cpus) {
        (Some(false), Some(true)) => roles(second, first, DecidedBy::Cpus),
        (Some(true), Some(false)) => roles(first, second, DecidedBy::Cpus),
        _ => roles(second, first, DecidedBy::GuideOrder),
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DRAM node {}, slow node {} (", self.dram, self.slow)?;
        match self.by {
            DecidedBy::Tiers { dram, slow } => {
                write!(f, "memory tier {slow} is below tier {dram}")
            }
            DecidedBy::Cpus => write!(f, "node {} has no CPUs", self.slow),
            DecidedBy::GuideOrder => write!(
                f,
                "the machine cannot tell them apart: the guide's order, slow node first"
            ),
        }?;
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(tiers: [Option<u32>; 4], cpus: [Option<bool>; 4]) -> impl Fn(u32) -> NodeFacts {
        move |n| NodeFacts {
            tier: tiers[n as usize],
            has_cpus: cpus[n as usize],
        }
    }

    #[test]
    fn tiers_decide_first() {
        // Node 2 is in a lower tier: slow, whichever way the pair is written, even
        // though it has CPUs.
        let f = facts(
            [Some(1), None, Some(4), None],
            [Some(false), None, Some(true), None],
        );
        for pair in [(0, 2), (2, 0)] {
            let r = decide(pair, &f);
            assert_eq!((r.dram, r.slow), (0, 2), "{pair:?}");
            assert_eq!(r.by, DecidedBy::Tiers { dram: 1, slow: 4 });
        }
    }

    #[test]
    fn then_the_node_without_cpus_is_slow() {
        let f = facts(
            [Some(4), Some(4), None, None],
            [Some(true), Some(false), None, None],
        );
        for pair in [(0, 1), (1, 0)] {
            let r = decide(pair, &f);
            assert_eq!((r.dram, r.slow, r.by), (0, 1, DecidedBy::Cpus));
        }
        assert_eq!(
            decide((1, 0), &f).to_string(),
            "DRAM node 0, slow node 1 (node 1 has no CPUs)"
        );
    }

    #[test]
    fn otherwise_the_guide_order() {
        let f = facts([None; 4], [Some(true), Some(true), None, None]);
        let r = decide((2, 0), &f);
        assert_eq!((r.dram, r.slow, r.by), (0, 2, DecidedBy::GuideOrder));
    }
}
