//! The `[project]` group (spec §4.4): a project's name, how its processes are scanned
//! (page scans for slide/cslide/memdcd/thirdparty, DAMON regions for damon) and the
//! system-wide swap gates of the slide engine.

use super::section::Section;
use super::Origin;

/// One project: the unit that is started and stopped; engines and tasks hang off it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConf {
    pub name: String,
    pub scan: ScanConf,
    /// Swap only while free memory is below this % of the total (slide); `None` = always.
    pub sysmem_threshold: Option<u32>,
    pub swapcache_wmark: Option<Wmark>,
    pub origin: Origin,
}

/// Swapcache watermarks, % of system memory: reclaim from `high` down to `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wmark {
    pub high: u32,
    pub low: u32,
}

/// How the project's processes are scanned, chosen by `scan_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanConf {
    Page(PageScan),
    Region(RegionScan),
}

impl ScanConf {
    /// The `scan_type` word: `page` or `region`.
    pub fn type_word(&self) -> &'static str {
        match self {
            ScanConf::Page(_) => "page",
            ScanConf::Region(_) => "region",
        }
    }
}

/// Page scans: `loops` scans `interval` seconds apart per cycle, `sleep` seconds between
/// cycles (the user guide's meaning; see DESIGN "Decisions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageScan {
    /// Key `loop`.
    pub loops: u32,
    pub interval: u32,
    pub sleep: u32,
}

/// DAMON monitoring attributes, in DAMON's units (µs for the intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionScan {
    pub sample_interval: u64,
    pub aggr_interval: u64,
    pub update_interval: u64,
    pub min_nr_regions: u64,
    pub max_nr_regions: u64,
}

const PAGE_KEYS: &[&str] = &["loop", "interval", "sleep"];
const REGION_KEYS: &[&str] = &[
    "sample_interval",
    "aggr_interval",
    "update_interval",
    "min_nr_regions",
    "max_nr_regions",
];

/// Reads a `[project]` group; `None` when it has errors (all reported).
pub fn read(s: &mut Section) -> Option<ProjectConf> {
    let name = s.name("name");
    let scan_type = s.choice("scan_type", &["page", "region"], Some("page"));
    let sysmem_threshold = s.int("sysmem_threshold", false, 0, 100);
    let swapcache_wmark = read_wmark(s);
    let scan = match scan_type {
        Some("page") => read_page(s).map(ScanConf::Page),
        Some(_) => read_region(s).map(ScanConf::Region),
        None => {
            s.skip(PAGE_KEYS);
            s.skip(REGION_KEYS);
            None
        }
    };
    Some(ProjectConf {
        name: name?,
        scan: scan?,
        sysmem_threshold,
        swapcache_wmark: swapcache_wmark?,
        origin: s.origin(),
    })
}

/// Both watermarks or neither, high above low. `Some(None)` = neither given.
fn read_wmark(s: &mut Section) -> Option<Option<Wmark>> {
    const HIGH: &str = "swapcache_high_wmark";
    const LOW: &str = "swapcache_low_wmark";
    let high: Option<u32> = s.int(HIGH, false, 1, 100);
    let low: Option<u32> = s.int(LOW, false, 1, 100);
    match (s.peek(HIGH), s.peek(LOW)) {
        (None, None) => Some(None),
        (Some(e), None) => {
            s.error(e, &format!("{LOW} must be given too (both or neither)"));
            None
        }
        (None, Some(e)) => {
            s.error(e, &format!("{HIGH} must be given too (both or neither)"));
            None
        }
        (Some(_), Some(low_entry)) => {
            let (high, low) = (high?, low?);
            if high <= low {
                s.error(
                    low_entry,
                    &format!("must be below {HIGH}={high} (reclaim goes from high down to low)"),
                );
                return None;
            }
            Some(Some(Wmark { high, low }))
        }
    }
}

fn read_page(s: &mut Section) -> Option<PageScan> {
    let loops = s.int("loop", true, 1, 120);
    let interval = s.int("interval", true, 1, 1200);
    let sleep = s.int("sleep", true, 1, 1200);
    Some(PageScan {
        loops: loops?,
        interval: interval?,
        sleep: sleep?,
    })
}

fn read_region(s: &mut Section) -> Option<RegionScan> {
    let sample_interval = s.int("sample_interval", true, 1, i64::MAX);
    let aggr_interval = s.int("aggr_interval", true, 1, i64::MAX);
    let update_interval = s.int("update_interval", true, 1, i64::MAX);
    let min_nr_regions: Option<u64> = s.int("min_nr_regions", true, 3, i64::MAX);
    let max_nr_regions: Option<u64> = s.int("max_nr_regions", true, 3, i64::MAX);
    let (min, max) = (min_nr_regions?, max_nr_regions?);
    if max <= min {
        if let Some(e) = s.peek("max_nr_regions") {
            s.error(e, &format!("must be greater than min_nr_regions={min}"));
        }
        return None;
    }
    Some(RegionScan {
        sample_interval: sample_interval?,
        aggr_interval: aggr_interval?,
        update_interval: update_interval?,
        min_nr_regions: min,
        max_nr_regions: max,
    })
}
