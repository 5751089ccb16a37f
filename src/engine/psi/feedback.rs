//! The psi engine's arithmetic (spec §8.4.5, the intended steps; upstream compared the
//! addresses of its two byte counts instead of the counts, so it never reclaimed): the
//! pressure gate, the floor a cgroup is never reclaimed below, the amount asked back in
//! a cycle, and how a cgroup's rate adapts. Pure functions, so every edge is tested.

use crate::config::PsiTask;
use crate::sys::cgroup::{Pressure, Usage};

/// Amounts are whole pages of this size.
pub const PAGE: u64 = 4096;

/// Above this a limit counts as none (upstream's `LONG_MAX / 2`: cgroup v1 writes
/// "unlimited" as 9223372036854771712, v2 as `max`).
const UNLIMITED: u64 = (i64::MAX / 2) as u64;

/// Steps of the rate, and how many events in a row make one (spec §8.4.5 step 8).
const STEP: f64 = 0.01;
const UP_AFTER: i32 = 5;
const DOWN_AFTER: i32 = 2;

/// The pressure figure the gate looks at: max(some avg10, some avg60).
pub fn pressure_of(p: Pressure) -> f64 {
    p.avg10.max(p.avg60)
}

/// Whether reclaim may go on: the pressure is strictly below the task's `pressure`.
pub fn allowed(p: Pressure, task: &PsiTask) -> bool {
    pressure_of(p) < task.pressure.get()
}

/// The floor: max(`limit_min_bytes` + what cannot be reclaimed, `memory.min`,
/// `memory.low`, limit x `limit_min_ratio`). What can be reclaimed is the page cache and
/// as much anonymous memory as there is swap for (`swap_room`: the cgroup's headroom,
/// at most the system's free swap).
pub fn floor(u: &Usage, swap_room: u64, task: &PsiTask) -> u64 {
    let reclaimable = u.file.saturating_add(u.anon.min(swap_room));
    let unreclaimable = u.current.saturating_sub(reclaimable);
    let ratio_floor = if u.limit > UNLIMITED {
        0
    } else {
        // `as` saturates; the product is finite (both factors are).
        (u.limit as f64 * task.limit_min_ratio.get()) as u64
    };
    task.limit_min_bytes
        .saturating_add(unreclaimable)
        .max(u.min)
        .max(u.low)
        .max(ratio_floor)
}

/// Bytes to ask back: `rate` of what is above the floor, at most that (a rate above 1
/// cannot go below the floor) and `max_bytes`, rounded down to whole pages; 0 at or
/// below the floor.
pub fn amount(current: u64, floor: u64, rate: f64, max_bytes: u64) -> u64 {
    let above = current.saturating_sub(floor);
    let share = (above as f64 * rate) as u64;
    let bytes = share.min(above).min(max_bytes);
    bytes - bytes % PAGE
}

/// What a cycle did to a cgroup, for the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A reclaim was asked.
    Reclaimed,
    /// The pressure gate refused.
    Refused,
}

/// A cgroup's rate and its streak (`gather`: positive for reclaims in a row, negative
/// for refusals) after `event`: 5 reclaims in a row raise the rate by 0.01, 2 refusals
/// in a row lower it by 0.01; the rate stays within `[min, max]`.
pub fn adapt(rate: f64, gather: i32, event: Event, min: f64, max: f64) -> (f64, i32) {
    let (mut rate, mut gather) = (rate, gather);
    match event {
        Event::Reclaimed => {
            gather = gather.max(0).saturating_add(1);
            if gather >= UP_AFTER {
                rate += STEP;
                gather = 0;
            }
        }
        Event::Refused => {
            gather = gather.min(0).saturating_sub(1);
            if gather <= -DOWN_AFTER {
                rate -= STEP;
                gather = 0;
            }
        }
    }
    // Six decimals: 0.05 + 0.01 shows as 0.06, not 0.060000000000000005.
    let rate = ((rate * 1e6).round() / 1e6).clamp(min, max);
    (rate, gather)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Positive;

    fn task(limit_min_bytes: u64, ratio: f64) -> PsiTask {
        let p = |v| Positive::new(v).unwrap();
        PsiTask {
            cg_dir: "x".into(),
            pressure: p(0.1),
            reclaim_rate: p(0.05),
            reclaim_rate_min: p(0.01),
            reclaim_rate_max: p(0.5),
            limit_min_ratio: p(ratio),
            limit_min_bytes,
            reclaim_max_bytes: 1 << 30,
        }
    }

    const MIB: u64 = 1 << 20;

    fn usage(current: u64, anon: u64, file: u64) -> Usage {
        Usage {
            current,
            anon,
            file,
            swap_headroom: u64::MAX,
            min: 0,
            low: 0,
            limit: u64::MAX,
        }
    }

    #[test]
    fn the_gate_is_strict_and_takes_the_larger_average() {
        let t = task(0, 0.1);
        let p = |avg10, avg60| Pressure { avg10, avg60 };
        assert!(allowed(p(0.0, 0.0), &t));
        assert!(allowed(p(0.09, 0.05), &t));
        assert!(!allowed(p(0.1, 0.0), &t));
        assert!(!allowed(p(0.0, 0.2), &t));
        assert_eq!(pressure_of(p(0.3, 1.5)), 1.5);
    }

    #[test]
    fn the_floor_is_the_largest_of_its_terms() {
        let t = task(10 * MIB, 0.1);
        // 100 MiB: 60 anon, 30 file, 10 neither (kernel memory): all anon can swap.
        let u = usage(100 * MIB, 60 * MIB, 30 * MIB);
        assert_eq!(floor(&u, u64::MAX, &t), 20 * MIB);
        // Only 20 MiB of swap: 40 MiB of anon stays.
        assert_eq!(floor(&u, 20 * MIB, &t), 60 * MIB);
        // No swap at all: all anon stays.
        assert_eq!(floor(&u, 0, &t), 80 * MIB);
        // memory.min and memory.low raise it.
        assert_eq!(floor(&Usage { min: 50 * MIB, ..u }, u64::MAX, &t), 50 * MIB);
        assert_eq!(floor(&Usage { low: 70 * MIB, ..u }, u64::MAX, &t), 70 * MIB);
        // A limit of 400 MiB with ratio 0.1 makes 40 MiB.
        assert_eq!(
            floor(
                &Usage {
                    limit: 400 * MIB,
                    ..u
                },
                u64::MAX,
                &t
            ),
            40 * MIB
        );
        // v1's "unlimited" and v2's max count as no limit.
        assert_eq!(
            floor(
                &Usage {
                    limit: 9223372036854771712,
                    ..u
                },
                u64::MAX,
                &t
            ),
            20 * MIB
        );
        // More reclaimable than charged (the counters race): nothing unreclaimable.
        assert_eq!(
            floor(&usage(MIB, 2 * MIB, 2 * MIB), u64::MAX, &task(0, 0.1)),
            0
        );
        // No overflow anywhere.
        let huge = Usage {
            limit: UNLIMITED,
            ..usage(u64::MAX, 0, 0)
        };
        assert_eq!(floor(&huge, 0, &task(u64::MAX, 1e300)), u64::MAX);
    }

    #[test]
    fn the_amount_is_a_rounded_capped_share_of_what_is_above_the_floor() {
        assert_eq!(amount(100 * MIB, 20 * MIB, 0.05, u64::MAX), 4 * MIB);
        // Rounded down to whole pages.
        assert_eq!(amount(20 * MIB + 10_000, 20 * MIB, 0.5, u64::MAX), 4096);
        assert_eq!(amount(20 * MIB + 8191, 20 * MIB, 1.0, u64::MAX), 4096);
        assert_eq!(amount(20 * MIB + 8191, 20 * MIB, 0.4, u64::MAX), 0);
        // Capped by reclaim_max_bytes, which is rounded too.
        assert_eq!(amount(100 * MIB, 0, 0.5, MIB + 5), MIB);
        assert_eq!(amount(100 * MIB, 0, 0.5, 0), 0);
        // At or below the floor: nothing.
        assert_eq!(amount(20 * MIB, 20 * MIB, 0.5, u64::MAX), 0);
        assert_eq!(amount(10 * MIB, 20 * MIB, 0.5, u64::MAX), 0);
        // A rate above 1 never asks for more than is above the floor.
        assert_eq!(amount(100 * MIB, 20 * MIB, 7.0, u64::MAX), 80 * MIB);
        assert_eq!(
            amount(u64::MAX, 0, 1e300, u64::MAX),
            u64::MAX - u64::MAX % PAGE
        );
    }

    #[test]
    fn the_rate_rises_after_five_reclaims_and_falls_after_two_refusals() {
        let (min, max) = (0.01, 0.5);
        let mut s = (0.05, 0);
        for i in 1..5 {
            s = adapt(s.0, s.1, Event::Reclaimed, min, max);
            assert_eq!(s, (0.05, i));
        }
        s = adapt(s.0, s.1, Event::Reclaimed, min, max);
        assert_eq!(s, (0.06, 0));
        // A refusal breaks the streak; the second in a row lowers the rate.
        s = adapt(s.0, 3, Event::Refused, min, max);
        assert_eq!(s, (0.06, -1));
        s = adapt(s.0, s.1, Event::Refused, min, max);
        assert_eq!(s, (0.05, 0));
        // A reclaim after refusals starts a new streak.
        assert_eq!(adapt(0.05, -1, Event::Reclaimed, min, max), (0.05, 1));
    }

    #[test]
    fn the_rate_stays_within_its_bounds() {
        assert_eq!(adapt(0.5, 4, Event::Reclaimed, 0.01, 0.5), (0.5, 0));
        assert_eq!(adapt(0.01, -1, Event::Refused, 0.01, 0.5), (0.01, 0));
        assert_eq!(adapt(0.015, -1, Event::Refused, 0.01, 0.5), (0.01, 0));
        // Out of bounds to begin with (not from a checked config): brought in at once.
        assert_eq!(adapt(10000.0, 0, Event::Reclaimed, 0.01, 0.5), (0.5, 1));
        assert_eq!(adapt(0.0, 0, Event::Refused, 0.01, 0.5), (0.01, -1));
        // Streaks do not overflow.
        assert_eq!(adapt(0.1, i32::MIN, Event::Refused, 0.01, 0.5).1, 0);
        assert_eq!(adapt(0.1, i32::MAX, Event::Reclaimed, 0.01, 0.5).1, 0);
    }
}
