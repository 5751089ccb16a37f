//! DAMON's scheme and context knobs beyond upstream's keys: quotas, quota goals,
//! watermarks, page filters and automatic interval tuning. Shared vocabulary: the config
//! reads them (`config::damon_tuning`), DAMON's sysfs writer sets them.

/// DAMON's scheme and context knobs the engine sets when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DamonTuning {
    /// `quota_ms`: time the scheme may spend per reset interval, ms (0: unlimited).
    pub quota_ms: Option<u64>,
    /// `quota_bytes`: bytes the scheme may act on per reset interval (0: unlimited).
    pub quota_bytes: Option<u64>,
    /// `quota_reset_interval_ms`: the quotas' charge window, ms.
    pub quota_reset_ms: Option<u64>,
    /// `quota_goal_*`, `quota_goal2_*`...: goals the kernel tunes the effective quota
    /// towards (the one furthest from being met leads).
    pub quota_goals: Vec<QuotaGoal>,
    /// `wmarks_*`: when the scheme is active, by free memory.
    pub wmarks: Option<Wmarks>,
    /// `filter_anon`, `filter_young`, `filter_memcg`: pages the scheme keeps to or skips.
    pub filters: Vec<Filter>,
    /// `intervals_goal_*`: automatic tuning of the sampling and aggregation intervals
    /// (Linux 6.15+).
    pub intervals_goal: Option<IntervalsGoal>,
}

/// A quota goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaGoal {
    /// `quota_goal_metric`: one of [`GOAL_METRICS`].
    pub metric: &'static str,
    /// `quota_goal_target`: the value to reach (µs of PSI stall per reset interval, or
    /// basis points of a node's memory, or the user's own unit).
    pub target: u64,
    /// `quota_goal_nid`: the node of `node_mem_used_bp`/`node_mem_free_bp`.
    pub nid: Option<u32>,
    /// `quota_goal_current`: the current value of a `user_input` goal, as the user
    /// measures it (the kernel cannot).
    pub current: Option<u64>,
}

/// The metrics of quota goals.
pub const GOAL_METRICS: [&str; 4] = [
    "some_mem_psi_us",
    "node_mem_used_bp",
    "node_mem_free_bp",
    "user_input",
];

/// Watermarks: the scheme runs while the metric is between `low` and `high`, from the
/// moment it falls below `mid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wmarks {
    /// `wmarks_metric`: `none` or `free_mem_rate` (per mille of free memory).
    pub metric: &'static str,
    /// `wmarks_interval_us`: how often the metric is checked.
    pub interval_us: u64,
    /// `wmarks_high`, per mille.
    pub high: u64,
    /// `wmarks_mid`, per mille.
    pub mid: u64,
    /// `wmarks_low`, per mille.
    pub low: u64,
}

/// A page filter of the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// DAMON's filter type: `anon`, `young` or `memcg`.
    pub kind: &'static str,
    /// The memory cgroup of a `memcg` filter, a path from the hierarchy's root.
    pub memcg_path: Option<String>,
    /// `only` (true: the scheme acts on matching pages only) or `exclude` (false).
    pub only: bool,
}

/// The automatic interval tuning's aim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalsGoal {
    /// `intervals_goal_access_bp`: accesses to observe per aggregation, basis points.
    pub access_bp: u64,
    /// `intervals_goal_aggrs`: aggregations over which to reach it.
    pub aggrs: u64,
    /// `intervals_goal_min_sample_us`: the sampling interval's lower bound.
    pub min_sample_us: u64,
    /// `intervals_goal_max_sample_us`: its upper bound.
    pub max_sample_us: u64,
}
