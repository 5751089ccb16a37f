//! The damon engine's keys beyond upstream's (ours): DAMON's quotas, a quota goal,
//! watermarks, filters and the automatic tuning of the sampling interval. Each maps to
//! one part of DAMON's sysfs scheme or context; whether the running kernel has that part
//! is checked when the project starts, not here, so a file can be read anywhere.

use super::section::Section;

pub use crate::types::damon_tuning::*;

const MAX: i64 = i64::MAX;

/// How many quota goals one scheme may have: `quota_goal_*`, then `quota_goal2_*` to
/// `quota_goal4_*`. DAMON tunes the quota by the goal furthest from being met.
pub const MAX_GOALS: usize = 4;

/// The key prefix of goal `n` (1-based): `quota_goal`, `quota_goal2`, ...
pub fn goal_prefix(n: usize) -> String {
    if n == 1 {
        "quota_goal".to_string()
    } else {
        format!("quota_goal{n}")
    }
}

/// Goal `n`'s keys: `Ok(None)` when its metric is not given (and none of its other
/// keys is), `Err` when they are wrong (reported).
fn read_goal(s: &mut Section, n: usize) -> Result<Option<QuotaGoal>, ()> {
    let p = goal_prefix(n);
    let k = |what: &str| format!("{p}_{what}");
    let (metric_key, target_key, nid_key, current_key) =
        (k("metric"), k("target"), k("nid"), k("current"));
    match s.choice(&metric_key, &GOAL_METRICS, Some("")) {
        Some("") | None => {
            let ok = none_of(
                s,
                &[target_key.as_str(), nid_key.as_str(), current_key.as_str()],
                &metric_key,
            );
            if ok {
                Ok(None)
            } else {
                Err(())
            }
        }
        Some(metric) => {
            let mut ok = true;
            let target = s.int(&target_key, false, 0, MAX);
            let node_metric = metric.starts_with("node_mem_");
            let nid = s.int(&nid_key, false, 0, i64::from(i32::MAX));
            if target.is_none() {
                s.missing(&target_key, &format!("the value {metric_key} aims at"));
                ok = false;
            }
            if node_metric && nid.is_none() {
                s.missing(&nid_key, "the NUMA node of a node_mem_* goal");
                ok = false;
            }
            if !node_metric {
                ok &= none_of(s, &[nid_key.as_str()], &format!("{metric_key}=node_mem_*"));
            }
            let current = if metric == "user_input" {
                s.int(&current_key, false, 0, MAX)
            } else {
                ok &= none_of(
                    s,
                    &[current_key.as_str()],
                    &format!("{metric_key}=user_input"),
                );
                None
            };
            match (ok, target) {
                (true, Some(target)) => Ok(Some(QuotaGoal {
                    metric,
                    target,
                    nid,
                    current,
                })),
                _ => Err(()),
            }
        }
    }
}

/// Reads the tuning keys of an `[engine]` group of type damon; `None` when one is wrong
/// (reported).
pub fn read(s: &mut Section) -> Option<DamonTuning> {
    let mut ok = true;
    let quota_ms = s.int("quota_ms", false, 0, MAX);
    let quota_bytes = s.int("quota_bytes", false, 0, MAX);
    let quota_reset_ms = s.int("quota_reset_interval_ms", false, 0, MAX);
    let mut quota_goals = Vec::new();
    for n in 1..=MAX_GOALS {
        match read_goal(s, n) {
            Ok(Some(g)) => quota_goals.push(g),
            Ok(None) => {}
            Err(()) => ok = false,
        }
    }
    let wmarks = match s.choice("wmarks_metric", &["none", "free_mem_rate"], Some("")) {
        Some("") | None => {
            let keys = [
                "wmarks_interval_us",
                "wmarks_high",
                "wmarks_mid",
                "wmarks_low",
            ];
            ok &= none_of(s, &keys, "wmarks_metric");
            None
        }
        Some(metric) => {
            let mut get = |key: &str, max: i64| {
                let v = s.int::<u64>(key, false, 0, max);
                if v.is_none() && s.peek(key).is_none() {
                    s.missing(key, "a watermark (per mille) or its check interval (µs)");
                }
                v
            };
            let interval_us = get("wmarks_interval_us", MAX);
            let high = get("wmarks_high", 1000);
            let mid = get("wmarks_mid", 1000);
            let low = get("wmarks_low", 1000);
            match (interval_us, high, mid, low) {
                (Some(interval_us), Some(high), Some(mid), Some(low)) => {
                    if !(high >= mid && mid >= low) {
                        if let Some(e) = s.peek("wmarks_mid") {
                            s.error(e, &format!("wmarks_high={high} >= wmarks_mid >= wmarks_low={low} is needed"));
                        }
                        ok = false;
                    }
                    Some(Wmarks {
                        metric,
                        interval_us,
                        high,
                        mid,
                        low,
                    })
                }
                _ => {
                    ok = false;
                    None
                }
            }
        }
    };
    let mut filters = Vec::new();
    for (key, kind) in [("filter_anon", "anon"), ("filter_young", "young")] {
        match s.choice(key, &["only", "exclude"], Some("")) {
            Some("only") => filters.push(Filter {
                kind,
                memcg_path: None,
                only: true,
            }),
            Some("exclude") => filters.push(Filter {
                kind,
                memcg_path: None,
                only: false,
            }),
            _ => {}
        }
    }
    let memcg_rule = "an absolute memory cgroup path from the hierarchy's root, e.g. /workload";
    if let Some(path) = s.get("filter_memcg", None, true, |raw| {
        if raw.starts_with('/') && !raw.contains("/../") && !raw.ends_with("/..") {
            Ok(raw.to_string())
        } else {
            Err(memcg_rule.to_string())
        }
    }) {
        filters.push(Filter {
            kind: "memcg",
            memcg_path: Some(path),
            only: true,
        });
    }
    let goal_keys = [
        "intervals_goal_access_bp",
        "intervals_goal_aggrs",
        "intervals_goal_min_sample_us",
        "intervals_goal_max_sample_us",
    ];
    let given = goal_keys.iter().filter(|k| s.peek(k).is_some()).count();
    let intervals_goal = if given == 0 {
        None
    } else {
        let access_bp = s.int("intervals_goal_access_bp", true, 0, 10_000);
        let aggrs = s.int("intervals_goal_aggrs", true, 1, MAX);
        let min_sample_us = s.int("intervals_goal_min_sample_us", true, 1, MAX);
        let max_sample_us = s.int::<u64>("intervals_goal_max_sample_us", true, 1, MAX);
        match (access_bp, aggrs, min_sample_us, max_sample_us) {
            (Some(access_bp), Some(aggrs), Some(min_sample_us), Some(max_sample_us)) => {
                if min_sample_us > max_sample_us {
                    if let Some(e) = s.peek("intervals_goal_max_sample_us") {
                        s.error(
                            e,
                            &format!(
                                "must not be below intervals_goal_min_sample_us={min_sample_us}"
                            ),
                        );
                    }
                    ok = false;
                }
                Some(IntervalsGoal {
                    access_bp,
                    aggrs,
                    min_sample_us,
                    max_sample_us,
                })
            }
            _ => {
                ok = false;
                None
            }
        }
    };
    ok.then_some(DamonTuning {
        quota_ms,
        quota_bytes,
        quota_reset_ms,
        quota_goals,
        wmarks,
        filters,
        intervals_goal,
    })
}

/// False (each reported) when any of `keys` is given without `needs`.
fn none_of(s: &mut Section, keys: &[&str], needs: &str) -> bool {
    let mut ok = true;
    for key in keys {
        if let Some(e) = s.peek(key) {
            s.error(e, &format!("only means something with {needs}"));
            ok = false;
        }
    }
    ok
}
