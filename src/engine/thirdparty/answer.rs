//! What a policy process's answer to a scan must be before etmemd acts on any of it, and
//! what it then acts on. Every range must be non-empty, aligned to the base page, inside
//! the VMAs that scan covered, overlap no other range of the answer, and not cut a huge
//! page in two; a move must name an online NUMA node. One bad line refuses the whole
//! answer. The pages acted on are the resident pages of the scan inside the ranges, each
//! at its own size (a range over pages that are not resident asks nothing of them).

use crate::act::swappable::first_gap;
use crate::engine::cold::Scanned;
use crate::track::Run;
use crate::types::{size_name, PageSize, Range, Vma};

use super::protocol::Action;

/// What an accepted answer asks, as resident pages of the scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Ranges of whole pages of their size class to swap out, by address.
    pub swap: Vec<(Range, PageSize)>,
    /// Ranges of whole pages to move, each with its target node, by address.
    pub moves: Vec<(u32, Range, PageSize)>,
}

impl Plan {
    /// Bytes to swap out.
    pub fn swap_bytes(&self) -> u64 {
        self.swap.iter().map(|(r, _)| r.len()).sum()
    }
}

/// The plan for `answer` (each action with its line in the answer, from 1) to the scan
/// `scanned`, with `nodes` the online NUMA nodes; or why it is refused, naming the line.
pub fn plan(answer: &[(usize, Action)], scanned: &Scanned, nodes: &[u32]) -> Result<Plan, String> {
    let vmas: Vec<Vma> = scanned.counts.iter().map(|c| c.vma().clone()).collect();
    let runs: Vec<Run> = scanned.runs().collect();
    let page = PageSize::Base.bytes();
    for &(line, a) in answer {
        let (r, node) = parts(a);
        let fail = |why: String| Err(format!("answer line {line}: {}: {why}", said(a)));
        if r.start >= r.end {
            return fail("the range is empty or reversed".into());
        }
        if r.start % page != 0 || r.end % page != 0 {
            return fail(format!("not aligned to the page size ({page} bytes)"));
        }
        if let Some(gap) = first_gap(r, &vmas) {
            return fail(format!(
                "{gap} is outside the VMAs this scan covered (etmemd acts only on the VMAs it \
                 sent)"
            ));
        }
        for addr in [r.start, r.end] {
            if let Some(cut) = huge_page_cut(&runs, addr) {
                return fail(format!(
                    "{addr:x} cuts the {} page at {:x} in two",
                    size_name(cut.size.bytes()),
                    addr - addr % cut.size.bytes()
                ));
            }
        }
        if let Some(n) = node.filter(|n| !nodes.contains(n)) {
            let online: Vec<String> = nodes.iter().map(u32::to_string).collect();
            return fail(format!(
                "node {n} is not an online NUMA node (online: {})",
                online.join(", ")
            ));
        }
    }
    let mut order: Vec<&(usize, Action)> = answer.iter().collect();
    crate::sort::stable_by_key(&mut order, |(_, a)| parts(*a).0.start);
    for w in order.windows(2) {
        let (first, second) = (w[0], w[1]);
        if parts(first.1).0.end > parts(second.1).0.start {
            return Err(format!(
                "answer line {}: {}: overlaps line {} ({})",
                second.0,
                said(second.1),
                first.0,
                said(first.1)
            ));
        }
    }
    let mut plan = Plan::default();
    for &(_, a) in order {
        let (r, node) = parts(a);
        let from = runs.partition_point(|run| run.range.end <= r.start);
        for run in runs[from..]
            .iter()
            .take_while(|run| run.range.start < r.end)
        {
            let part = Range::new(run.range.start.max(r.start), run.range.end.min(r.end));
            match node {
                None => plan.swap.push((part, run.size)),
                Some(n) => plan.moves.push((n, part, run.size)),
            }
        }
    }
    Ok(plan)
}

/// The range and, for a move, the node.
fn parts(a: Action) -> (Range, Option<u32>) {
    match a {
        Action::Swap(r) => (r, None),
        Action::Move(r, n) => (r, Some(n)),
    }
}

/// The action as the plug-in wrote it (in etmemd's spelling).
fn said(a: Action) -> String {
    match a {
        Action::Swap(r) => format!("swap {r}"),
        Action::Move(r, n) => format!("move {r} {n}"),
    }
}

/// The run of huge pages `addr` falls inside of, not on a page boundary, if any.
fn huge_page_cut(runs: &[Run], addr: u64) -> Option<Run> {
    let i = runs.partition_point(|run| run.range.end <= addr);
    runs.get(i)
        .filter(|run| {
            run.size != PageSize::Base && run.range.contains(addr) && addr % run.size.bytes() != 0
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::VmaCounts;
    use crate::types::ScanBackend;

    fn vma(start: u64, end: u64) -> Vma {
        crate::sys::maps::parse_line(&format!("{start:x}-{end:x} rw-p 0 00:00 0")).unwrap()
    }

    /// Two VMAs: [1M, 5M) holding a THP at 2M and base pages 1M..1M+8 pages, and
    /// [8M, 9M) with nothing resident.
    fn scanned() -> Scanned {
        let b = PageSize::Base.bytes();
        let m = 1 << 20;
        let mut a = VmaCounts::new(vma(m, 5 * m));
        a.set_present(0, 8);
        a.add(4, 4, 3);
        a.record(2 * m, PageSize::Pmd, 0);
        let c = VmaCounts::new(vma(8 * m, 9 * m));
        assert_eq!(a.runs().count(), 3, "{:?}", a.runs().collect::<Vec<_>>());
        assert_eq!(b, 4096, "the cases below assume 4 KiB pages");
        Scanned {
            backend: ScanBackend::PageIdle,
            counts: vec![a, c],
        }
    }

    fn swap(s: u64, e: u64) -> Action {
        Action::Swap(Range::new(s, e))
    }

    fn numbered(a: &[Action]) -> Vec<(usize, Action)> {
        a.iter().enumerate().map(|(i, a)| (i + 1, *a)).collect()
    }

    #[test]
    fn ranges_become_the_resident_pages_inside_them() {
        if PageSize::Base.bytes() != 4096 {
            return;
        }
        let m = 1 << 20;
        let s = scanned();
        // All of the first VMA: the 8 base pages in two runs, and the THP whole.
        let p = plan(&numbered(&[swap(m, 5 * m)]), &s, &[0]).unwrap();
        assert_eq!(
            p.swap,
            vec![
                (Range::new(m, m + 0x4000), PageSize::Base),
                (Range::new(m + 0x4000, m + 0x8000), PageSize::Base),
                (Range::new(2 * m, 4 * m), PageSize::Pmd),
            ]
        );
        assert_eq!(p.swap_bytes(), 0x8000 + 2 * m);
        // Part of a run, and a move of the THP; the empty VMA asks nothing.
        let p = plan(
            &numbered(&[
                Action::Move(Range::new(2 * m, 4 * m), 0),
                swap(m + 0x1000, m + 0x2000),
                swap(8 * m, 9 * m),
            ]),
            &s,
            &[0],
        )
        .unwrap();
        assert_eq!(
            p.swap,
            vec![(Range::new(m + 0x1000, m + 0x2000), PageSize::Base)]
        );
        assert_eq!(p.moves, vec![(0, Range::new(2 * m, 4 * m), PageSize::Pmd)]);
        assert_eq!(plan(&[], &s, &[0]), Ok(Plan::default()));
    }

    #[test]
    fn one_bad_line_refuses_the_answer_and_says_why() {
        if PageSize::Base.bytes() != 4096 {
            return;
        }
        let m: u64 = 1 << 20;
        let s = scanned();
        let good = swap(m, m + 0x1000);
        for (bad, why) in [
            (
                swap(m + 0x2000, m + 0x1000),
                "line 2: swap 102000-101000: the range is empty or reversed",
            ),
            (swap(m, m), "the range is empty or reversed"),
            (
                swap(m + 1, m + 0x1000),
                "not aligned to the page size (4096 bytes)",
            ),
            (
                swap(0x1000, 0x2000),
                "line 2: swap 1000-2000: 1000-2000 is outside the VMAs this scan covered",
            ),
            (swap(4 * m, 9 * m), "500000-800000 is outside the VMAs"),
            (
                swap(3 * m, 4 * m),
                "300000 cuts the 2M page at 200000 in two",
            ),
            (
                Action::Move(Range::new(2 * m, 4 * m), 3),
                "line 2: move 200000-400000 3: node 3 is not an online NUMA node (online: 0, 1)",
            ),
            (
                swap(m, m + 0x4000),
                "line 2: swap 100000-104000: overlaps line 1 (swap 100000-101000)",
            ),
        ] {
            let e = plan(&numbered(&[good, bad]), &s, &[0, 1]).unwrap_err();
            assert!(e.contains(why), "{e}\nwanted: {why}");
        }
    }
}
