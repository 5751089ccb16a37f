//! The daemon's figures in Prometheus' text exposition format (version 0.0.4): per task
//! and per project, counters since the project started (pages scanned, cold pages found,
//! bytes asked to swap and accepted, bytes that left DRAM, bytes moved per node,
//! refaults, cycles, failed cycles, cycle time) and gauges of the last cycle, plus the
//! daemon's own CPU time and resident memory. `etmem project show --prometheus` prints
//! it; `etmemd --metrics-file PATH` keeps it in a file for node_exporter's textfile
//! collector.

use std::fmt::Write;

use super::registry::{Project, Registry, TaskSlot};
use crate::engine::task_status::TaskStatus;
use crate::sys::process;

/// One metric family: its name (without the `etmem_` prefix), type, help, and the
/// value of a task's status (`None`: no sample for that task).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&TaskStatus) -> Option<f64>,
}

/// The per-task families; each counter, and the process count, also has a per-project
/// sum (`etmem_project_...`).
const TASK_FAMILIES: &[Family] = &[
    Family {
        name: "cycles_total",
        kind: "counter",
        help: "Cycles completed since the project started.",
        value: |s| Some(s.cycles as f64),
    },
    Family {
        name: "cycle_errors_total",
        kind: "counter",
        help: "Cycles that failed since the project started.",
        value: |s| Some(s.totals.errors as f64),
    },
    Family {
        name: "cycle_seconds_total",
        kind: "counter",
        help: "Time spent in cycles since the project started.",
        value: |s| Some(s.totals.cycle_time.as_secs_f64()),
    },
    Family {
        name: "last_cycle_duration_seconds",
        kind: "gauge",
        help: "How long the last cycle took.",
        value: |s| (s.cycles > 0).then_some(s.last_duration.as_secs_f64()),
    },
    Family {
        name: "last_cycle_failed",
        kind: "gauge",
        help: "1 if the last cycle failed, else 0.",
        value: |s| Some(if s.last_error.is_some() { 1.0 } else { 0.0 }),
    },
    Family {
        name: "pages_scanned_total",
        kind: "counter",
        help: "Resident base pages scanned.",
        value: |s| Some(s.totals.pages_scanned as f64),
    },
    Family {
        name: "cold_pages_total",
        kind: "counter",
        help: "Cold pages found.",
        value: |s| Some(s.totals.cold_pages as f64),
    },
    Family {
        name: "swap_requested_bytes_total",
        kind: "counter",
        help: "Bytes etmem asked the kernel to swap out.",
        value: |s| Some(s.totals.requested_bytes as f64),
    },
    Family {
        name: "swap_accepted_bytes_total",
        kind: "counter",
        help: "Bytes the kernel accepted to swap out.",
        value: |s| Some(s.totals.swapped_bytes as f64),
    },
    Family {
        name: "swapped_out_bytes_total",
        kind: "counter",
        help: "Bytes that left DRAM (growth of the processes' VmSwap over the swap-outs).",
        value: |s| Some(s.swapped_total as f64),
    },
    Family {
        name: "refaults_total",
        kind: "counter",
        help: "Pages etmem swapped out that were found resident again a cycle later.",
        value: |s| Some(s.totals.refaults as f64),
    },
    Family {
        name: "processes",
        kind: "gauge",
        help: "Processes worked on in the last cycle.",
        value: |s| Some(s.pids.len() as f64),
    },
];

/// The exposition text for the project `name`, or every project, and the daemon.
pub fn render(reg: &Registry, name: Option<&str>) -> String {
    let projects: Vec<&Project> = match name {
        Some(n) => reg.project(n).into_iter().collect(),
        None => reg.projects.iter().collect(),
    };
    // Each status is read once, so the families agree with each other.
    let tasks: Vec<(&Project, &str, &TaskSlot, TaskStatus)> = projects
        .iter()
        .flat_map(|p| {
            p.engines.iter().flat_map(move |e| {
                e.tasks
                    .iter()
                    .map(move |t| (*p, e.conf.name(), t, crate::error::lock(&t.status).clone()))
            })
        })
        .collect();
    let mut o = String::new();
    header(
        &mut o,
        "project_started",
        "gauge",
        "1 if the project is started.",
    );
    for p in &projects {
        sample(
            &mut o,
            "project_started",
            &[("project", &p.conf.name)],
            bool_f(p.started()),
        );
    }
    for f in TASK_FAMILIES {
        let task_name = format!("task_{}", f.name);
        header(&mut o, &task_name, f.kind, f.help);
        for (p, engine, t, s) in &tasks {
            if let Some(v) = (f.value)(s) {
                let labels = [
                    ("project", p.conf.name.as_str()),
                    ("engine", engine),
                    ("task", &t.conf.name),
                ];
                sample(&mut o, &task_name, &labels, v);
            }
        }
        if f.kind != "counter" && f.name != "processes" {
            continue;
        }
        let project_name = format!("project_{}", f.name);
        header(&mut o, &project_name, f.kind, f.help);
        for p in &projects {
            let sum: f64 = tasks
                .iter()
                .filter(|(tp, ..)| std::ptr::eq(*tp, *p))
                .filter_map(|(.., s)| (f.value)(s))
                .sum();
            sample(&mut o, &project_name, &[("project", &p.conf.name)], sum);
        }
    }
    let moved = "task_moved_bytes_total";
    header(&mut o, moved, "counter", "Bytes moved to a NUMA node.");
    for (p, engine, t, s) in &tasks {
        for (node, bytes) in &s.totals.moved_to {
            let node = node.to_string();
            let labels = [
                ("project", p.conf.name.as_str()),
                ("engine", engine),
                ("task", &t.conf.name),
                ("node", &node),
            ];
            sample(&mut o, moved, &labels, *bytes as f64);
        }
    }
    header(
        &mut o,
        "daemon_cpu_seconds_total",
        "counter",
        "CPU time etmemd has used (user and system).",
    );
    sample(
        &mut o,
        "daemon_cpu_seconds_total",
        &[],
        process::own_cpu_time().as_secs_f64(),
    );
    header(
        &mut o,
        "daemon_resident_bytes",
        "gauge",
        "etmemd's resident memory (VmRSS).",
    );
    let rss = process::status_bytes(std::process::id() as i32, "VmRSS").unwrap_or(0);
    sample(&mut o, "daemon_resident_bytes", &[], rss as f64);
    o
}

fn bool_f(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The `# HELP` and `# TYPE` lines of family `etmem_<name>`.
fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP etmem_{name} {help}");
    let _ = writeln!(o, "# TYPE etmem_{name} {kind}");
}

/// One sample line of `etmem_<name>`.
fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    let _ = write!(o, "etmem_{name}");
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{k}=\"{}\"", escape(val));
        }
        o.push('}');
    }
    let _ = writeln!(o, " {v}");
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_samples_formatted() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut o = String::new();
        sample(
            &mut o,
            "x_total",
            &[("project", "p\"1"), ("task", "t")],
            3.0,
        );
        sample(&mut o, "y", &[], 0.25);
        assert_eq!(
            o,
            "etmem_x_total{project=\"p\\\"1\",task=\"t\"} 3\netmem_y 0.25\n"
        );
    }

    #[test]
    fn an_empty_daemon_still_reports_itself() {
        let text = render(&Registry::default(), None);
        assert!(
            text.contains("# TYPE etmem_daemon_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(text.contains("\netmem_daemon_resident_bytes "), "{text}");
        assert!(
            text.contains("# TYPE etmem_task_pages_scanned_total counter\n"),
            "{text}"
        );
    }
}
