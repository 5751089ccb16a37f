//! The `[project]` group (spec §4.4, §8.4.2): a project's name, how its processes are
//! scanned (page scans for slide/cslide/memdcd/thirdparty, DAMON regions for damon, a
//! plain period for psi) and the system-wide swap gates of the slide engine.

use super::section::Section;
use super::Origin;

/// One project: the unit that is started and stopped; engines and tasks hang off it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConf {
    /// The project's name, unique among projects: an object name (see
    /// [`NAME_RULE`](super::NAME_RULE)).
    pub name: String,
    /// How its processes are scanned (`scan_type` and that type's keys).
    pub scan: ScanConf,
    /// Swap only while free memory is below this % of the total (slide); `None` = always.
    pub sysmem_threshold: Option<u32>,
    /// Keys `swapcache_high_wmark` and `swapcache_low_wmark`; `None` when neither is given.
    pub swapcache_wmark: Option<Wmark>,
    /// Where the `[project]` group starts.
    pub origin: Origin,
}

/// Swapcache watermarks, % of system memory: reclaim from `high` down to `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wmark {
    /// Key `swapcache_high_wmark`, 1 to 100: reclaim starts above it.
    pub high: u32,
    /// Key `swapcache_low_wmark`, 1 to 100 and below `high`: reclaim stops at it.
    pub low: u32,
}

/// How the project's processes are scanned, chosen by `scan_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanConf {
    /// `scan_type=page` (the default): idle-page scans, for every engine but damon.
    Page(PageScan),
    /// `scan_type=region`: DAMON monitoring, for the damon engine.
    Region(RegionScan),
    /// `scan_type=psi`: the psi engine's feedback loop over memory cgroups.
    Psi(PsiScan),
}

impl ScanConf {
    /// The `scan_type` word: `page` or `region`.
    pub fn type_word(&self) -> &'static str {
        match self {
            ScanConf::Page(_) => "page",
            ScanConf::Region(_) => "region",
            ScanConf::Psi(_) => "psi",
        }
    }
}

/// Page scans: `loops` scans `interval` seconds apart per cycle, `sleep` seconds between
/// cycles (the user guide's meaning; see DESIGN "Decisions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageScan {
    /// Key `loop`: scans per cycle, 1 to 120.
    pub loops: u32,
    /// Seconds between two scans of a cycle, 1 to 1200.
    pub interval: u32,
    /// Seconds between two cycles, 1 to 1200.
    pub sleep: u32,
}

/// DAMON monitoring attributes, in DAMON's units (µs for the intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionScan {
    /// DAMON's sampling interval, µs, 1 or more.
    pub sample_interval: u64,
    /// DAMON's aggregation interval, µs, 1 or more: access counts are summed over it.
    pub aggr_interval: u64,
    /// DAMON's regions update interval, µs, 1 or more.
    pub update_interval: u64,
    /// Fewest regions DAMON splits the address space into, 3 or more.
    pub min_nr_regions: u64,
    /// Most regions DAMON splits the address space into, above `min_nr_regions`.
    pub max_nr_regions: u64,
}

/// psi projects: one engine cycle every `interval` seconds (the only scan key psi reads;
/// `loop` and `sleep` are not read, as upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsiScan {
    /// Key `interval`: seconds between two cycles, 1 to 1200 (required).
    pub interval: u32,
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
    let scan_type = s.choice("scan_type", &["page", "region", "psi"], Some("page"));
    let sysmem_threshold = s.int("sysmem_threshold", false, 0, 100);
    let swapcache_wmark = read_wmark(s);
    let scan = match scan_type {
        Some("page") => read_page(s).map(ScanConf::Page),
        Some("region") => read_region(s).map(ScanConf::Region),
        Some(_) => s
            .int("interval", true, 1, 1200)
            .map(|interval| ScanConf::Psi(PsiScan { interval })),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::{value::NAME_RULE, ConfigFile};

    const PAGE: &str = "[project]\nname=test\nloop=1\ninterval=1\nsleep=1\n";
    const REGION: &str = "[project]\nname=r\nscan_type=region\nsample_interval=5000\naggr_interval=100000\nupdate_interval=1000000\nmin_nr_regions=10\nmax_nr_regions=1000\n";

    fn page(c: &ConfigFile) -> PageScan {
        match c.projects[0].scan {
            ScanConf::Page(p) => p,
            _ => panic!("not page"),
        }
    }

    fn region(c: &ConfigFile) -> RegionScan {
        match c.projects[0].scan {
            ScanConf::Region(r) => r,
            _ => panic!("not region"),
        }
    }

    #[test]
    fn defaults() {
        let c = ok(PAGE);
        let p = &c.projects[0];
        assert_eq!(p.name, "test");
        assert_eq!(
            p.scan,
            ScanConf::Page(PageScan {
                loops: 1,
                interval: 1,
                sleep: 1
            })
        );
        assert_eq!(p.sysmem_threshold, None);
        assert_eq!(p.swapcache_wmark, None);
        assert_eq!(
            p.origin,
            Origin {
                file: F.into(),
                line: 1
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        accepts(PAGE, "scan_type", "page", "page", |c| {
            c.projects[0].scan.type_word()
        });
    }

    #[test]
    fn name_rules() {
        err_has(
            &unset(PAGE, "name"),
            &format!("{F}:1: [project] name is missing (required: {NAME_RULE})"),
        );
        let long = "n".repeat(64);
        accepts(PAGE, "name", &long, long.clone(), |c| {
            c.projects[0].name.clone()
        });
        accepts(PAGE, "name", "a.b_c-9", "a.b_c-9".into(), |c| {
            c.projects[0].name.clone()
        });
        // Any UTF-8 works, as upstream; the limit counts bytes.
        for utf8 in ["é", "проект", &"я".repeat(32)] {
            accepts(PAGE, "name", utf8, utf8.to_string(), |c| {
                c.projects[0].name.clone()
            });
        }
        let too_long = "я".repeat(33);
        for bad in [
            "",
            "-x",
            "a b",
            "a\u{3000}b",
            &"n".repeat(65),
            &too_long,
            r"a\sb",
        ] {
            rejects(PAGE, "project", "name", bad, NAME_RULE);
        }
        rejects(PAGE, "project", "name", r"a\q", "a string whose escapes");
    }

    #[test]
    fn scan_type() {
        let c = ok(REGION);
        assert_eq!(
            region(&c),
            RegionScan {
                sample_interval: 5000,
                aggr_interval: 100000,
                update_interval: 1000000,
                min_nr_regions: 10,
                max_nr_regions: 1000
            }
        );
        for bad in ["Page", "", "pages"] {
            rejects(
                PAGE,
                "project",
                "scan_type",
                bad,
                "one of page, region, psi",
            );
        }
        // A bad scan_type does not also call the scan keys unknown or missing.
        let msg = err(&set(PAGE, "scan_type", "x").0);
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }

    #[test]
    fn sysmem_threshold() {
        int_edges(PAGE, "project", "sysmem_threshold", (0, 100), |c| {
            i64::from(c.projects[0].sysmem_threshold.unwrap())
        });
    }

    #[test]
    fn page_keys() {
        int_edges(PAGE, "project", "loop", (1, 120), |c| {
            i64::from(page(c).loops)
        });
        int_edges(PAGE, "project", "interval", (1, 1200), |c| {
            i64::from(page(c).interval)
        });
        int_edges(PAGE, "project", "sleep", (1, 1200), |c| {
            i64::from(page(c).sleep)
        });
        // No 32-bit truncation: 2^32 + 1 is not 1.
        rejects(
            PAGE,
            "project",
            "loop",
            "4294967297",
            "an integer from 1 to 120",
        );
        for key in ["loop", "interval", "sleep"] {
            err_has(
                &unset(PAGE, key),
                &format!("{F}:1: [project] {key} is missing (required: an integer from 1 to"),
            );
        }
        // Page keys are not region keys.
        let (text, line) = set(PAGE, "sample_interval", "5");
        let c = ok(&text);
        assert_eq!(
            c.warnings,
            vec![format!(
                "{F}:{line}: [project] sample_interval=5: unknown key in [project], ignored"
            )]
        );
    }

    #[test]
    fn region_keys() {
        for key in ["sample_interval", "aggr_interval", "update_interval"] {
            int_edges(REGION, "project", key, (1, i64::MAX), |c| {
                let r = region(c);
                let v = match key {
                    "sample_interval" => r.sample_interval,
                    "aggr_interval" => r.aggr_interval,
                    _ => r.update_interval,
                };
                i64::try_from(v).unwrap()
            });
            err_has(
                &unset(REGION, key),
                &format!("{F}:1: [project] {key} is missing"),
            );
        }
        accepts(REGION, "min_nr_regions", "3", 3, |c| {
            region(c).min_nr_regions
        });
        accepts(REGION, "max_nr_regions", "11", 11, |c| {
            region(c).max_nr_regions
        });
        let max = i64::MAX.to_string();
        accepts(REGION, "max_nr_regions", &max, i64::MAX as u64, |c| {
            region(c).max_nr_regions
        });
        for key in ["min_nr_regions", "max_nr_regions"] {
            for bad in ["2", "-1", "x", "", "0x10", "99999999999999999999"] {
                rejects(REGION, "project", key, bad, "an integer of 3 or more");
            }
        }
        rejects(
            REGION,
            "project",
            "max_nr_regions",
            "10",
            "greater than min_nr_regions=10",
        );
    }

    #[test]
    fn watermarks() {
        let both = format!("{PAGE}swapcache_high_wmark=10\nswapcache_low_wmark=6\n");
        assert_eq!(
            ok(&both).projects[0].swapcache_wmark,
            Some(Wmark { high: 10, low: 6 })
        );
        let with_low = format!("{PAGE}swapcache_low_wmark=1\n");
        for v in [2, 100] {
            accepts(&with_low, "swapcache_high_wmark", &v.to_string(), v, |c| {
                c.projects[0].swapcache_wmark.unwrap().high
            });
        }
        for bad in ["0", "101", "x", "", "0x10", "99999999999999999999"] {
            rejects(
                &with_low,
                "project",
                "swapcache_high_wmark",
                bad,
                "an integer from 1 to 100",
            );
        }
        let with_high = format!("{PAGE}swapcache_high_wmark=100\n");
        accepts(&with_high, "swapcache_low_wmark", "1", 1, |c| {
            c.projects[0].swapcache_wmark.unwrap().low
        });
        accepts(&with_high, "swapcache_low_wmark", "99", 99, |c| {
            c.projects[0].swapcache_wmark.unwrap().low
        });
        rejects(
            &with_high,
            "project",
            "swapcache_low_wmark",
            "0",
            "an integer from 1 to 100",
        );
        rejects(
            &with_high,
            "project",
            "swapcache_low_wmark",
            "x",
            "an integer from 1 to 100",
        );
        err_has(
            &format!("{PAGE}swapcache_high_wmark=5\nswapcache_low_wmark=5\n"),
            &format!(
                "{F}:7: [project] swapcache_low_wmark=5: must be below swapcache_high_wmark=5"
            ),
        );
        err_has(
            &format!("{PAGE}swapcache_high_wmark=5\n"),
            &format!(
                "{F}:6: [project] swapcache_high_wmark=5: swapcache_low_wmark must be given too"
            ),
        );
        err_has(
            &format!("{PAGE}swapcache_low_wmark=5\n"),
            &format!(
                "{F}:6: [project] swapcache_low_wmark=5: swapcache_high_wmark must be given too"
            ),
        );
    }

    #[test]
    fn psi_keys() {
        const PSI: &str = "[project]\nname=test\nscan_type=psi\ninterval=6\n";
        let c = ok(PSI);
        assert_eq!(c.projects[0].scan, ScanConf::Psi(PsiScan { interval: 6 }));
        assert_eq!(c.projects[0].scan.type_word(), "psi");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        int_edges(PSI, "project", "interval", (1, 1200), |c| {
            match c.projects[0].scan {
                ScanConf::Psi(p) => i64::from(p.interval),
                _ => panic!("not psi"),
            }
        });
        err_has(
            &unset(PSI, "interval"),
            &format!("{F}:1: [project] interval is missing (required: an integer from 1 to 1200)"),
        );
        // loop and sleep are not psi keys: read, they would be unknown.
        let (text, line) = set(PSI, "loop", "3");
        assert_eq!(
            ok(&text).warnings,
            vec![format!(
                "{F}:{line}: [project] loop=3: unknown key in [project], ignored"
            )]
        );
        // The swap gates are still validated, as upstream.
        rejects(
            PSI,
            "project",
            "sysmem_threshold",
            "101",
            "an integer from 0 to 100",
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let msg = err("[project]\nname=test\nloop=0\ninterval=x\nsleep=1201\n");
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(
            lines,
            vec![
                format!("{F}:3: [project] loop=0: must be an integer from 1 to 120"),
                format!("{F}:4: [project] interval=x: must be an integer from 1 to 1200"),
                format!("{F}:5: [project] sleep=1201: must be an integer from 1 to 1200"),
            ]
        );
    }
}
