//! `project show`: upstream's table, byte for byte (spec §11.1), so scripts that parse it
//! keep working; and, when the client asks for them, the tasks' live status (`verbose`)
//! or everything as JSON (`json`).

use std::fmt::Write;
use std::time::SystemTime;

use super::registry::{Project, Registry};
use crate::engine::task_status::TaskStatus;
use crate::json;

/// Which view of the projects was asked for (the client sends it in `eng_cmd`, a field
/// upstream ignores for this command, so the upstream daemon just prints its table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Table,
    Verbose,
    Json,
}

impl View {
    pub fn from_word(w: Option<&str>) -> Option<View> {
        match w {
            None => Some(View::Table),
            Some("verbose") => Some(View::Verbose),
            Some("json") => Some(View::Json),
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
    s.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
    if let Some(b) = &s.backend {
        let l = &s.last;
        let _ = writeln!(
            out,
            "{INDENT}backend: {b}  last cycle: {} workers, scanned {} pages, cold {} pages, swapped {} of {} bytes asked (VmSwap +{})  total swapped: {} bytes",
            l.workers, l.pages_scanned, l.cold_pages, l.swapped_bytes, l.requested_bytes, l.vmswap_growth, s.swapped_total
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
    let mut out = String::from("{\"projects\":[");
    for (pi, p) in projects.iter().enumerate() {
        if pi > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"name\":{},\"started\":{},\"engines\":[",
            json::string(&p.conf.name),
            p.started()
        );
        for (ei, e) in p.engines.iter().enumerate() {
            if ei > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"name\":{},\"tasks\":[",
                json::string(e.conf.name())
            );
            for (ti, t) in e.tasks.iter().enumerate() {
                if ti > 0 {
                    out.push(',');
                }
                let s = lock(&t.status);
                let _ = write!(
                    out,
                    "{{\"name\":{},\"type\":{},\"value\":{},\"pids\":[{}],\"cycles\":{},\"last_cycle_secs_ago\":{},\"note\":{},\"last_error\":{},\"backend\":{},\"pages_scanned\":{},\"cold_pages\":{},\"requested_bytes\":{},\"swapped_bytes\":{},\"vmswap_growth\":{},\"swapped_total\":{},\"workers\":{},\"skipped\":[{}]}}",
                    json::string(&t.conf.name),
                    json::string(t.conf.target.type_word()),
                    json::string(&t.conf.target.value()),
                    s.pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","),
                    s.cycles,
                    s.last_cycle.map(|t| ago(t).to_string()).unwrap_or_else(|| "null".into()),
                    json::opt_string(s.note.as_deref()),
                    json::opt_string(s.last_error.as_deref()),
                    json::opt_string(s.backend.as_deref()),
                    s.last.pages_scanned,
                    s.last.cold_pages,
                    s.last.requested_bytes,
                    s.last.swapped_bytes,
                    s.last.vmswap_growth,
                    s.swapped_total,
                    s.last.workers,
                    s.last.skipped.iter().map(|w| json::string(w)).collect::<Vec<_>>().join(","),
                );
            }
            out.push_str("]}");
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
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
}
