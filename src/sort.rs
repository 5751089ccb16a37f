//! Sorting in little code: one heapsort, instantiated per call site.
//!
//! The standard library's sorts (driftsort, ipnsort) are fast but large: each call site
//! with its own element type or key grows the binary by 2–4 KiB, 58 KiB over the 22 sorts
//! of etmem. The static binary's size is a target (BENCH.md, "Binary size") and none of
//! our sorts is hot (lists of ranges, pids, nodes, config lines: they run once a cycle or
//! once a command), so they use this heapsort instead: O(n log n) in every case, in place
//! (`stable_by_key` alone allocates, for the positions that break ties), a few hundred
//! bytes per call site. `clippy.toml` keeps the standard sorts
//! out of `src/`.

use std::cmp::Ordering;

/// Sorts `v` ascending (not stable; equal elements may be reordered).
pub fn unstable<T: Ord>(v: &mut [T]) {
    heapsort(v, &mut |a: &T, b: &T| a < b);
}

/// Sorts `v` ascending by `key` (not stable).
pub fn unstable_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    heapsort(v, &mut |a: &T, b: &T| key(a) < key(b));
}

/// Sorts `v` by the order `cmp` gives (not stable).
pub fn unstable_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    heapsort(v, &mut |a: &T, b: &T| cmp(a, b) == Ordering::Less);
}

/// Sorts `v` ascending by `key`; elements with equal keys keep their order.
pub fn stable_by_key<T, K: Ord>(v: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    let mut keyed: Vec<(K, usize, T)> = v
        .drain(..)
        .enumerate()
        .map(|(i, x)| (key(&x), i, x))
        .collect();
    // The position breaks ties, so no two elements compare equal and the order is unique.
    heapsort(&mut keyed, &mut |a: &(K, usize, T), b: &(K, usize, T)| {
        (&a.0, a.1) < (&b.0, b.1)
    });
    v.extend(keyed.into_iter().map(|(_, _, x)| x));
}

/// In-place heapsort: builds a max-heap, then moves the largest to the end until done.
fn heapsort<T>(v: &mut [T], is_less: &mut impl FnMut(&T, &T) -> bool) {
    let n = v.len();
    for start in (0..n / 2).rev() {
        sift_down(v, start, n, is_less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end, is_less);
    }
}

/// Restores the heap below `node` within `v[..end]`.
fn sift_down<T>(
    v: &mut [T],
    mut node: usize,
    end: usize,
    is_less: &mut impl FnMut(&T, &T) -> bool,
) {
    loop {
        let mut child = 2 * node + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && is_less(&v[child], &v[child + 1]) {
            child += 1;
        }
        if !is_less(&v[node], &v[child]) {
            return;
        }
        v.swap(node, child);
        node = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so a failure reproduces.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % modulo
            })
            .collect()
    }

    #[test]
    fn unstable_agrees_with_the_standard_sort() {
        for n in [0, 1, 2, 3, 7, 8, 64, 1000] {
            for modulo in [1, 3, 1 << 40] {
                let mut ours = numbers(n as u64 + modulo, n, modulo);
                let mut std = ours.clone();
                unstable(&mut ours);
                #[allow(clippy::disallowed_methods)]
                std.sort_unstable();
                assert_eq!(ours, std, "n={n} modulo={modulo}");
            }
        }
    }

    #[test]
    fn by_key_and_by_order_sort_descending_when_asked() {
        let mut v = numbers(5, 500, 97);
        unstable_by_key(&mut v, |&x| std::cmp::Reverse(x));
        assert!(v.windows(2).all(|w| w[0] >= w[1]));
        let mut w = numbers(6, 500, 97);
        unstable_by(&mut w, |a, b| b.cmp(a));
        assert!(w.windows(2).all(|p| p[0] >= p[1]));
    }

    #[test]
    fn stable_keeps_the_order_of_equal_keys() {
        let keys = numbers(9, 2000, 10);
        let mut v: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
        let mut std = v.clone();
        stable_by_key(&mut v, |&(k, _)| k);
        #[allow(clippy::disallowed_methods)]
        std.sort_by_key(|&(k, _)| k);
        assert_eq!(v, std);
    }
}
