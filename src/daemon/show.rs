//! `project show`: upstream's table, byte for byte (spec §11.1), so scripts that parse it
//! keep working; and, when the client asks for them, the tasks' live status (`verbose`)
//! or everything as JSON (`json`).

use std::fmt::Write;
use std::time::SystemTime;

use super::registry::{Project, Registry, TaskSlot};
use crate::config::TaskParams;
use crate::engine::task_status::{PsiCgroup, TaskStatus};
use crate::json;

/// Which view of the projects was asked for (the client sends it in `eng_cmd`, a field
/// upstream ignores for this command, so the upstream daemon just prints its table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Upstream's table, byte for byte (no `eng_cmd`).
    Table,
    /// The table with each task's processes, cycles, figures and errors under its row
    /// (`etmem project show -v`, `eng_cmd verbose`).
    Verbose,
    /// Everything as one JSON object (`--json`, `eng_cmd json`).
    Json,
    /// The metrics in Prometheus' text format (`--prometheus`, `eng_cmd prometheus`).
    Prometheus,
}

impl View {
    /// The view the request's `eng_cmd` word asks for; `None` for a word we do not know.
    pub fn from_word(w: Option<&str>) -> Option<View> {
        match w {
            None => Some(View::Table),
            Some("verbose") => Some(View::Verbose),
            Some("json") => Some(View::Json),
            Some("prometheus") => Some(View::Prometheus),
            Some(_) => None,
        }
    }
}

/// The text of `project show` for one project (`name`) or all.
pub fn show(reg: &Registry, name: Option<&str>, view: View) -> String {
    let projects: Vec<&Project> = match name {
        Some(n) => reg.project(n).into_iter().collect(),
        None => reg.projects.iter().collect(),
    };
    if view == View::Json {
        return show_json(&projects);
    }
    if view == View::Prometheus {
        return super::prometheus::render(reg, name);
    }
    if projects.is_empty() {
        return match name {
            Some(n) => format!("project: project {n} is not existed\n\n"),
            None => "no project exists\n\n".into(),
        };
    }
    let mut out = String::new();
    for p in projects {
        let _ = writeln!(out, "project: {}", p.conf.name);
        row(
            &mut out,
            ["number", "type", "value", "name", "engine", "started"],
        );
        for e in &p.engines {
            for (i, t) in e.tasks.iter().enumerate() {
                row(
                    &mut out,
                    [
                        &(i + 1).to_string(),
                        t.conf.target.type_word(),
                        &t.conf.target.value(),
                        &t.conf.name,
                        e.conf.name(),
                        if p.started() { "true" } else { "false" },
                    ],
                );
                if view == View::Verbose {
                    verbose_lines(&mut out, &lock(&t.status), p.started());
                }
            }
        }
    }
    out
}

/// Column widths of the table, as upstream's `%-8s %-8s %-16s %-16s %-16s %-8s`.
const WIDTHS: [usize; 6] = [8, 8, 16, 16, 16, 8];

/// One table line. Padding counts BYTES, as C's printf does, not characters as Rust's
/// `{:<16}` would: a name in a multi-byte script must give the same bytes as upstream.
/// A field longer than its width is not cut, also as printf.
fn row(out: &mut String, cols: [&str; 6]) {
    for (i, (col, width)) in cols.iter().zip(WIDTHS).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(col);
        out.extend(std::iter::repeat(' ').take(width.saturating_sub(col.len())));
    }
    out.push('\n');
}

fn lock(s: &std::sync::Mutex<TaskStatus>) -> TaskStatus {
    crate::error::lock(s).clone()
}

const INDENT: &str = "         ";

fn verbose_lines(out: &mut String, s: &TaskStatus, started: bool) {
    if started {
        let pids = if s.pids.is_empty() {
            "none".to_string()
        } else {
            join(&s.pids)
        };
        let last = s
            .last_cycle
            .map(|t| format!("{} s ago", ago(t)))
            .unwrap_or_else(|| "none yet".into());
        let _ = writeln!(
            out,
            "{INDENT}pids: {pids}  cycles: {}  last cycle: {last}",
            s.cycles
        );
    }
    if let (Some(b), Some(d)) = (&s.backend, &s.last.damon) {
        let pid = d.kdamond_pid.map_or("none".to_string(), |p| p.to_string());
        let _ = writeln!(
            out,
            "{INDENT}backend: {b}  kdamond pid {pid}, action {}: tried {} regions ({} bytes), applied to {} regions ({} bytes), quota exceeded {} times{}",
            d.action, d.tried_regions, d.tried_bytes, d.applied_regions, d.applied_bytes, d.quota_exceeds,
            d.effective_quota.map_or(String::new(), |q| format!(", effective quota {q} bytes"))
        );
        if let (Some(n), Some(bytes)) = (d.target_regions, d.target_bytes) {
            let _ = writeln!(out, "{INDENT}target: {n} regions ({bytes} bytes)");
        }
    } else if let (Some(b), Some(t)) = (&s.backend, &s.last.tiering) {
        let _ = writeln!(
            out,
            "{INDENT}backend: {b}  last cycle: scanned {} pages; hot {} bytes in DRAM, {} on the slow tier; cold {} in DRAM, {} on the slow tier; moved {} bytes up, {} down, {} not moved",
            s.last.pages_scanned, t.hot_in_dram, t.hot_on_slow, t.cold_in_dram, t.cold_on_slow, t.moved_up, t.moved_down, t.not_moved
        );
    } else if let Some(b) = &s.backend {
        let l = &s.last;
        let _ = writeln!(
            out,
            "{INDENT}backend: {b}  last cycle: {} workers, scanned {} pages, cold {} pages, swapped {} of {} bytes asked (VmSwap +{}){}, {} pages back from the last swap-out  total swapped: {} bytes",
            l.workers, l.pages_scanned, l.cold_pages, l.swapped_bytes, l.requested_bytes, l.vmswap_growth,
            match l.moved_bytes() { 0 => String::new(), m => format!(", moved {m} bytes to the nodes asked") },
            l.refaults, s.swapped_total
        );
    }
    for c in &s.psi {
        psi_line(out, c);
    }
    for k in &s.last.kept {
        let ranges = if k.ranges == 1 { "range" } else { "ranges" };
        let _ = writeln!(
            out,
            "{INDENT}kernel kept {} bytes: {} ({} {ranges})",
            k.bytes, k.reason, k.ranges
        );
    }
    for why in &s.last.skipped {
        let _ = writeln!(out, "{INDENT}skipped: {why}");
    }
    if let Some(n) = &s.note {
        let _ = writeln!(out, "{INDENT}note: {n}");
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "{INDENT}error: {e}");
    }
}

/// One psi cgroup under its task: what was read, the rate, and what left.
fn psi_line(out: &mut String, c: &PsiCgroup) {
    let pressure = c
        .pressure
        .map_or_else(|| "unread".to_string(), |p| format!("{p:.2}"));
    let _ = writeln!(
        out,
        "{INDENT}cgroup {}: {}  pressure {pressure}  rate {}  floor {}  current {}  reclaimed {} bytes last cycle (asked {}), {} total",
        c.path, c.action, c.rate, c.floor, c.current, c.reclaimed, c.asked, c.reclaimed_total
    );
    if let Some(e) = &c.error {
        let _ = writeln!(out, "{INDENT}cgroup {}: error: {e}", c.path);
    }
}

fn ago(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
}

fn show_json(projects: &[&Project]) -> String {
    let mut out = json::object(|o| {
        o.array("projects", |a| {
            for p in projects {
                a.object(|o| project_json(o, p));
            }
        });
    });
    out.push('\n');
    out
}

fn project_json(o: &mut json::Object, p: &Project) {
    o.field("name", &p.conf.name).field("started", p.started());
    o.array("engines", |a| {
        for e in &p.engines {
            a.object(|o| {
                o.field("name", e.conf.name());
                o.array("tasks", |a| {
                    for t in &e.tasks {
                        a.object(|o| task_json(o, t));
                    }
                });
            });
        }
    });
}

fn task_json(o: &mut json::Object, t: &TaskSlot) {
    let s = lock(&t.status);
    o.field("name", &t.conf.name)
        .field("type", t.conf.target.type_word())
        .field("value", t.conf.target.value())
        .field("pids", &s.pids)
        .field("cycles", s.cycles)
        .field("last_cycle_secs_ago", s.last_cycle.map(ago))
        .field("note", &s.note)
        .field("last_error", &s.last_error)
        .field("backend", &s.backend)
        .field("pages_scanned", s.last.pages_scanned)
        .field("cold_pages", s.last.cold_pages)
        .field("requested_bytes", s.last.requested_bytes)
        .field("swapped_bytes", s.last.swapped_bytes)
        .field("vmswap_growth", s.last.vmswap_growth)
        .field("moved_bytes", s.last.moved_bytes())
        .field("swapped_total", s.swapped_total)
        .field("refaults", s.last.refaults)
        .field("refaults_total", s.totals.refaults)
        .field("workers", s.last.workers)
        .field("skipped", &s.last.skipped);
    match &s.last.tiering {
        Some(t) => {
            o.object("tiering", |o| {
                o.field("hot_in_dram_bytes", t.hot_in_dram)
                    .field("hot_on_slow_bytes", t.hot_on_slow)
                    .field("cold_in_dram_bytes", t.cold_in_dram)
                    .field("cold_on_slow_bytes", t.cold_on_slow)
                    .field("moved_up_bytes", t.moved_up)
                    .field("moved_down_bytes", t.moved_down)
                    .field("not_moved_bytes", t.not_moved);
            });
        }
        None => {
            o.field("tiering", json::Null);
        }
    }
    if let Some(d) = &s.last.damon {
        o.object("damon", |o| {
            o.field("kdamond_pid", d.kdamond_pid)
                .field("action", d.action)
                .field("tried_regions", d.tried_regions)
                .field("tried_bytes", d.tried_bytes)
                .field("applied_regions", d.applied_regions)
                .field("applied_bytes", d.applied_bytes)
                .field("quota_exceeds", d.quota_exceeds)
                .field("effective_quota_bytes", d.effective_quota)
                .field("target_regions", d.target_regions)
                .field("target_bytes", d.target_bytes);
        });
    }
    if matches!(t.conf.params, TaskParams::Psi(_)) {
        o.array("psi", |a| {
            for c in &s.psi {
                a.object(|o| {
                    o.field("cgroup", &c.path)
                        .field("action", c.action)
                        .field("pressure", c.pressure)
                        .field("rate", c.rate)
                        .field("floor_bytes", c.floor)
                        .field("current_bytes", c.current)
                        .field("asked_bytes", c.asked)
                        .field("reclaimed_bytes", c.reclaimed)
                        .field("reclaimed_total_bytes", c.reclaimed_total)
                        .field("error", &c.error);
                });
            }
        });
    }
    o.array("kept", |a| {
        for k in &s.last.kept {
            a.object(|o| {
                o.field("reason", &k.reason)
                    .field("bytes", k.bytes)
                    .field("ranges", k.ranges);
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cols: [&str; 6]) -> String {
        let mut out = String::new();
        row(&mut out, cols);
        out
    }

    #[test]
    fn rows_match_printf() {
        assert_eq!(
            line(["number", "type", "value", "name", "engine", "started"]),
            "number   type     value            name             engine           started \n"
        );
        assert_eq!(
            line(["1", "name", "mysql", "background_slide", "slide", "false"]),
            "1        name     mysql            background_slide slide            false   \n"
        );
        // Longer than the width: printed whole, then the separator.
        assert_eq!(
            line(["1", "pid", "1", &"t".repeat(17), "e", "true"]),
            format!(
                "1        pid      1                {} e                true    \n",
                "t".repeat(17)
            )
        );
    }

    #[test]
    fn padding_counts_bytes_not_characters() {
        // "проект" is 6 characters but 12 bytes: printf's %-16s adds 4 spaces, not 10.
        let l = line(["1", "pid", "1", "проект", "slide", "true"]);
        assert_eq!(
            l,
            "1        pid      1                проект     slide            true    \n"
        );
        let name_col = l.find("проект").unwrap();
        assert_eq!(l.find("slide").unwrap() - name_col, 17);
        // 9 two-byte characters (18 bytes) overflow the width as printf would.
        assert_eq!(
            line(["1", "pid", "1", &"я".repeat(9), "e", "true"]),
            format!(
                "1        pid      1                {} e                true    \n",
                "я".repeat(9)
            )
        );
    }

    /// The exact `--json` text: keys, order, nulls and escaping are what scripts read.
    #[test]
    fn json_text_is_pinned() {
        use crate::engine::task_status::Kept;
        let mut reg = Registry::default();
        assert_eq!(show(&reg, None, View::Json), "{\"projects\":[]}\n");
        let text = concat!(
            "[project]\nname=p\"1\nloop=1\ninterval=1\nsleep=1\n",
            "[project]\nname=q\nloop=1\ninterval=1\nsleep=1\n",
            "[project]\nname=r\nloop=1\ninterval=1\nsleep=1\n",
            "[engine]\nname=slide\nproject=p\"1\n",
            "[engine]\nname=slide\nproject=q\n",
            "[task]\nproject=p\"1\nengine=slide\nname=a\ntype=pid\nvalue=12\nT=1\n",
            "[task]\nproject=p\"1\nengine=slide\nname=b\ntype=name\nvalue=my.sql\nT=1\n",
        );
        reg.add(crate::config::parse(text, "/etc/etmem/t.conf").unwrap())
            .unwrap();
        {
            let t = &reg.project("p\"1").unwrap().engines[0].tasks;
            let mut s = t[1].status.lock().unwrap();
            s.pids = vec![12, 13];
            s.cycles = 3;
            s.last_cycle = Some(SystemTime::now() + std::time::Duration::from_secs(3600));
            s.note = Some("n\n".into());
            s.backend = Some("page_idle+process_madvise".into());
            s.last = crate::engine::task_status::CycleStats {
                pages_scanned: 1,
                cold_pages: 2,
                requested_bytes: 3,
                swapped_bytes: 4,
                vmswap_growth: 5,
                workers: 6,
                tiering: None,
                damon: None,
                moved_to: vec![(1, 8)],
                refaults: 7,
                skipped: vec!["x".into(), "y\\".into()],
                kept: vec![
                    Kept {
                        reason: "locked \"m\"".into(),
                        bytes: 8192,
                        ranges: 2,
                    },
                    Kept {
                        reason: "hugetlb".into(),
                        bytes: 4096,
                        ranges: 1,
                    },
                ],
            };
            s.swapped_total = 7;
            drop(s);
            t[0].status.lock().unwrap().last_error = Some("e".into());
        }
        let task = |name: &str, ty: &str, value: &str, rest: &str| {
            format!(r#"{{"name":"{name}","type":"{ty}","value":"{value}",{rest}}}"#)
        };
        let b = task(
            "b",
            "name",
            "my.sql",
            concat!(
                r#""pids":[],"cycles":0,"last_cycle_secs_ago":null,"note":null,"#,
                r#""last_error":"e","backend":null,"pages_scanned":0,"cold_pages":0,"#,
                r#""requested_bytes":0,"swapped_bytes":0,"vmswap_growth":0,"moved_bytes":0,"#,
                r#""swapped_total":0,"refaults":0,"refaults_total":0,"workers":0,"skipped":[],"tiering":null,"kept":[]"#
            ),
        );
        let a = task(
            "a",
            "pid",
            "12",
            concat!(
                r#""pids":[12,13],"cycles":3,"last_cycle_secs_ago":0,"note":"n\n","#,
                r#""last_error":null,"backend":"page_idle+process_madvise","#,
                r#""pages_scanned":1,"cold_pages":2,"requested_bytes":3,"#,
                r#""swapped_bytes":4,"vmswap_growth":5,"moved_bytes":8,"swapped_total":7,"refaults":7,"refaults_total":0,"workers":6,"#,
                r#""skipped":["x","y\\"],"tiering":null,"#,
                r#""kept":[{"reason":"locked \"m\"","bytes":8192,"ranges":2},"#,
                r#"{"reason":"hugetlb","bytes":4096,"ranges":1}]"#
            ),
        );
        let q = r#"{"name":"q","started":false,"engines":[{"name":"slide","tasks":[]}]}"#;
        let want = format!(
            concat!(
                r#"{{"projects":[{{"name":"r","started":false,"engines":[]}},{},"#,
                r#"{{"name":"p\"1","started":false,"engines":[{{"name":"slide","tasks":["#,
                r#"{},{}]}}]}}]}}"#,
                "\n"
            ),
            q, b, a
        );
        assert_eq!(show(&reg, None, View::Json), want);
        let want = format!("{{\"projects\":[{q}]}}\n");
        assert_eq!(show(&reg, Some("q"), View::Json), want);
        assert_eq!(show(&reg, Some("x"), View::Json), "{\"projects\":[]}\n");
        // show -v says the same, under the figures.
        let verbose = show(&reg, Some("p\"1"), View::Verbose);
        let want = concat!(
            "         kernel kept 8192 bytes: locked \"m\" (2 ranges)\n",
            "         kernel kept 4096 bytes: hugetlb (1 range)\n",
            "         skipped: x\n"
        );
        assert!(verbose.contains(want), "{verbose}");
    }

    #[test]
    fn psi_cgroups_are_shown_under_their_task() {
        let mut reg = Registry::default();
        let text = concat!(
            "[project]\nname=p\nscan_type=psi\ninterval=1\n",
            "[engine]\nname=psi\nproject=p\n",
            "[task]\nproject=p\nengine=psi\nname=t\ncg_dir=a/*\n",
        );
        reg.add(crate::config::parse(text, "/etc/etmem/t.conf").unwrap())
            .unwrap();
        {
            let t = &reg.project("p").unwrap().engines[0].tasks;
            let mut s = t[0].status.lock().unwrap();
            s.psi = vec![PsiCgroup {
                path: "a/b".into(),
                inode: 7,
                rate: 0.06,
                gather: 1,
                pressure: Some(0.25),
                action: "reclaimed",
                floor: 4096,
                current: 8192,
                asked: 12288,
                reclaimed: 16384,
                reclaimed_total: 20480,
                error: Some("e\"".into()),
            }];
        }
        let verbose = show(&reg, Some("p"), View::Verbose);
        assert!(
            verbose.contains(
                "1        cgroup   a/*              t                psi              false   \n"
            ),
            "{verbose}"
        );
        assert!(verbose.contains(
            "         cgroup a/b: reclaimed  pressure 0.25  rate 0.06  floor 4096  current 8192  reclaimed 16384 bytes last cycle (asked 12288), 20480 total\n         cgroup a/b: error: e\"\n"
        ), "{verbose}");
        let json = show(&reg, Some("p"), View::Json);
        assert!(
            json.contains(concat!(
                r#""psi":[{"cgroup":"a/b","action":"reclaimed","pressure":0.25,"rate":0.06,"#,
                r#""floor_bytes":4096,"current_bytes":8192,"asked_bytes":12288,"#,
                r#""reclaimed_bytes":16384,"reclaimed_total_bytes":20480,"error":"e\""}]"#
            )),
            "{json}"
        );
    }
}
