//! cslide's migration policy (spec §7.3): per node pair and cycle, which pages go up to
//! DRAM and which go down to the slow node, within the pair's quota. Pure arithmetic
//! over what the cycle measured, so every budget rule is tested without a NUMA machine.
//!
//! Three phases run in order, each with a budget in bytes; pages are taken whole, in
//! candidate order, while they fit, and the first page that does not fit ends the phase:
//!
//! 1. **promote** hot pages (count ≥ `hot_threshold`, hottest first) from the slow node.
//!    Budget: the quota when it is below DRAM's free space; otherwise the free space plus
//!    half the rest (the other half pays for demoting the cold pages they displace),
//!    capped at what both nodes have free, and at DRAM's free space plus its cold bytes.
//! 2. **prefetch** colder pages (count below `hot_threshold`, warmest first) from the
//!    slow node while DRAM has more free than `node_hot_reserve`.
//! 3. **demote** cold pages (coldest first) from DRAM until it has `node_hot_reserve`
//!    free, within what is left of the quota and of the slow node's free space, plus
//!    whatever promotion displaced.
//!
//! Each direction moves at most the quota per cycle.

/// Adjacent pages of one size with the same access count on the same node, as a scan
/// found and located them: the unit the policy works in (a process's memory is mostly
/// long such extents, so a cycle's bookkeeping is far smaller than one entry per page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Bytes of one page (its real size: 4 KiB, a THP or a hugetlb page).
    pub page_bytes: u64,
    /// How many pages.
    pub pages: u64,
    /// Access count over the cycle's scans.
    pub count: u16,
    /// The NUMA node the pages are on.
    pub node: u32,
}

impl Extent {
    /// Bytes of all its pages.
    pub fn bytes(&self) -> u64 {
        self.page_bytes.saturating_mul(self.pages)
    }
}

/// The first `pages` pages of extent number `extent`: what the policy chose to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// Index into the extent list.
    pub extent: usize,
    /// Pages from the extent's start.
    pub pages: u64,
}

/// One node pair at the start of the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The fast (DRAM) node.
    pub dram: u32,
    /// The slow node.
    pub slow: u32,
    /// Bytes free on the DRAM node.
    pub dram_free: u64,
    /// Bytes free on the slow node.
    pub slow_free: u64,
}

/// The engine's settings, in bytes and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `node_mig_quota`: bytes per pair and direction per cycle.
    pub quota: u64,
    /// `node_hot_reserve`: bytes of DRAM kept free for hot pages.
    pub reserve: u64,
    /// `hot_threshold`: a page with this count or more is hot.
    pub hot_threshold: u32,
}

/// What one pair's cycle decided, in moving order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairPlan {
    /// Pages to move to the DRAM node: promoted first, then prefetched.
    pub to_dram: Vec<Take>,
    /// Pages to move to the slow node.
    pub to_slow: Vec<Take>,
    /// Bytes promoted (hot pages up).
    pub promoted: u64,
    /// Bytes prefetched (colder pages up while DRAM has room).
    pub prefetched: u64,
    /// Bytes demoted (cold pages down).
    pub demoted: u64,
}

impl Limits {
    /// Whether a page with `count` is hot.
    pub fn is_hot(&self, count: u16) -> bool {
        u32::from(count) >= self.hot_threshold
    }
}

/// The plan of every pair, in `pairs` order.
pub fn plan(pairs: &[Pair], pages: &[Extent], limits: &Limits) -> Vec<PairPlan> {
    pairs.iter().map(|p| plan_pair(p, pages, limits)).collect()
}

fn plan_pair(pair: &Pair, pages: &[Extent], limits: &Limits) -> PairPlan {
    let on = |node: u32| -> Vec<usize> {
        (0..pages.len())
            .filter(|&i| pages[i].node == node)
            .collect()
    };
    let mut on_slow = on(pair.slow);
    let mut on_dram = on(pair.dram);
    // Hottest first for the way up, coldest first for the way down; ties keep address
    // order (the sort is stable).
    crate::sort::stable_by_key(&mut on_slow, |&i| std::cmp::Reverse(pages[i].count));
    crate::sort::stable_by_key(&mut on_dram, |&i| pages[i].count);
    let (hot_up, warm_up): (Vec<usize>, Vec<usize>) = on_slow
        .into_iter()
        .partition(|&i| limits.is_hot(pages[i].count));
    let cold_down: Vec<usize> = on_dram
        .into_iter()
        .filter(|&i| !limits.is_hot(pages[i].count))
        .collect();
    let cold_on_dram: u64 = cold_down.iter().map(|&i| pages[i].bytes()).sum();

    let mut free = pair.dram_free;
    let mut slow_free = pair.slow_free;
    let mut quota = limits.quota;
    let mut plan = PairPlan::default();

    // 1. Promote.
    let budget = if quota < free {
        quota
    } else {
        (free + (quota - free) / 2).min(free.saturating_add(slow_free))
    }
    .min(cold_on_dram.saturating_add(free));
    let (taken, used) = take(&hot_up, pages, budget);
    plan.to_dram.extend(taken);
    plan.promoted = used;
    let mut displaced = 0;
    if used > free {
        displaced = used - free;
        quota = quota.saturating_sub(free + 2 * displaced);
        slow_free = slow_free.saturating_add(free);
        free = 0;
    } else {
        free -= used;
        quota -= used;
        slow_free = slow_free.saturating_add(used);
    }

    // 2. Prefetch.
    let budget = if free <= limits.reserve {
        0
    } else {
        (free - limits.reserve).min(quota)
    };
    let (taken, used) = take(&warm_up, pages, budget);
    plan.to_dram.extend(taken);
    plan.prefetched = used;
    free -= used;
    quota -= used;
    slow_free = slow_free.saturating_add(used);

    // 3. Demote.
    let budget = quota
        .min(limits.reserve.saturating_sub(free))
        .min(slow_free)
        .saturating_add(displaced);
    let (taken, used) = take(&cold_down, pages, budget);
    plan.to_slow = taken;
    plan.demoted = used;
    plan
}

/// Whole pages of `candidates`, in order, while they fit in `budget`: what to take and
/// its bytes. The first page that does not fit ends it.
fn take(candidates: &[usize], pages: &[Extent], budget: u64) -> (Vec<Take>, u64) {
    let mut used = 0u64;
    let mut out = Vec::new();
    for &i in candidates {
        let e = &pages[i];
        let fit = ((budget - used) / e.page_bytes.max(1)).min(e.pages);
        if fit > 0 {
            used += fit * e.page_bytes;
            out.push(Take {
                extent: i,
                pages: fit,
            });
        }
        if fit < e.pages {
            break;
        }
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// One extent per page, so the tests read page by page.
    fn pages(spec: &[(u64, u16, u32, usize)]) -> Vec<Extent> {
        spec.iter()
            .flat_map(|&(page_bytes, count, node, n)| {
                std::iter::repeat(Extent {
                    page_bytes,
                    pages: 1,
                    count,
                    node,
                })
                .take(n)
            })
            .collect()
    }

    fn indexes(takes: &[Take]) -> Vec<usize> {
        takes.iter().map(|t| t.extent).collect()
    }

    fn pair(dram_free: u64, slow_free: u64) -> Pair {
        Pair {
            dram: 0,
            slow: 1,
            dram_free,
            slow_free,
        }
    }

    fn limits(quota: u64, reserve: u64) -> Limits {
        Limits {
            quota: quota * MIB,
            reserve: reserve * MIB,
            hot_threshold: 2,
        }
    }

    #[test]
    fn hot_pages_go_up_and_cold_pages_down_within_the_quota() {
        // 10 hot MiB on the slow node, 10 cold MiB in DRAM; DRAM has 100 MiB free and
        // must keep 200 MiB free: the reserve asks for demotion, the quota limits both.
        let p = pages(&[(MIB, 3, 1, 10), (MIB, 0, 0, 10)]);
        let got = &plan(&[pair(100 * MIB, 500 * MIB)], &p, &limits(4, 200))[0];
        // Promotion comes first and spends the quota (spec §7.3): nothing is left to
        // demote with, as upstream.
        assert_eq!((got.promoted, got.prefetched, got.demoted), (4 * MIB, 0, 0));
        assert!(indexes(&got.to_dram)
            .iter()
            .all(|&i| p[i].node == 1 && p[i].count == 3));
        // Once the hot pages are up, the quota goes to demotion.
        let p = pages(&[(MIB, 3, 0, 10), (MIB, 0, 0, 10)]);
        let got = &plan(&[pair(100 * MIB, 500 * MIB)], &p, &limits(4, 200))[0];
        assert_eq!((got.promoted, got.prefetched, got.demoted), (0, 0, 4 * MIB));
        assert!(indexes(&got.to_slow)
            .iter()
            .all(|&i| p[i].node == 0 && p[i].count == 0));
    }

    #[test]
    fn the_hottest_go_first_and_the_coldest_first_down() {
        let p = pages(&[
            (MIB, 2, 1, 1),
            (MIB, 6, 1, 1),
            (MIB, 1, 0, 1),
            (MIB, 0, 0, 1),
        ]);
        let got = &plan(&[pair(0, 100 * MIB)], &p, &limits(2, 10))[0];
        // DRAM is full: promoting 1 MiB (half of what exceeds free) displaces 1 MiB.
        assert_eq!(indexes(&got.to_dram), vec![1]);
        assert_eq!(indexes(&got.to_slow), vec![3]);
    }

    #[test]
    fn no_direction_exceeds_the_quota() {
        for (free, slow_free, quota, reserve) in [
            (0, 0, 8, 0),
            (2, 100, 8, 50),
            (100, 100, 8, 200),
            (6, 6, 8, 0),
            (1000, 1000, 64, 999),
        ] {
            let p = pages(&[
                (MIB, 5, 1, 50),
                (MIB, 1, 1, 50),
                (MIB, 0, 0, 50),
                (2 * MIB, 0, 0, 10),
            ]);
            let l = limits(quota, reserve);
            let got = &plan(&[pair(free * MIB, slow_free * MIB)], &p, &l)[0];
            assert!(got.promoted + got.prefetched <= l.quota, "{got:?}");
            assert!(got.demoted <= l.quota, "{got:?}");
        }
    }

    #[test]
    fn a_zero_quota_moves_nothing() {
        let p = pages(&[(MIB, 5, 1, 5), (MIB, 0, 0, 5)]);
        let got = &plan(&[pair(0, 100 * MIB)], &p, &limits(0, 100))[0];
        assert_eq!(got, &PairPlan::default());
    }

    #[test]
    fn prefetch_only_above_the_reserve() {
        let p = pages(&[(MIB, 1, 1, 20)]);
        let got = &plan(&[pair(12 * MIB, 100 * MIB)], &p, &limits(100, 10))[0];
        assert_eq!(got.prefetched, 2 * MIB);
        let got = &plan(&[pair(10 * MIB, 100 * MIB)], &p, &limits(100, 10))[0];
        assert_eq!(got.prefetched, 0);
    }

    #[test]
    fn demotion_stops_once_the_reserve_is_free() {
        let p = pages(&[(MIB, 0, 0, 50)]);
        let got = &plan(&[pair(90 * MIB, 1000 * MIB)], &p, &limits(1000, 100))[0];
        assert_eq!(got.demoted, 10 * MIB);
        // ...and to the slow node's free space.
        let got = &plan(&[pair(0, 3 * MIB)], &p, &limits(1000, 100))[0];
        assert_eq!(got.demoted, 3 * MIB);
    }

    #[test]
    fn a_page_that_does_not_fit_ends_the_phase() {
        let p = pages(&[(2 * MIB, 0, 0, 1), (4096, 0, 0, 1)]);
        let got = &plan(&[pair(0, 1000 * MIB)], &p, &limits(1, 100))[0];
        assert_eq!(got.demoted, 0);
    }

    #[test]
    fn an_extent_is_taken_in_part_when_the_budget_ends_inside_it() {
        let p = [Extent {
            page_bytes: 4096,
            pages: 1000,
            count: 0,
            node: 0,
        }];
        let got = &plan(&[pair(0, 1000 * MIB)], &p, &limits(1, 100))[0];
        assert_eq!(
            got.to_slow,
            vec![Take {
                extent: 0,
                pages: 256
            }]
        );
        assert_eq!(got.demoted, MIB);
    }
}
