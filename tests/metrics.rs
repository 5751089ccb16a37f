//! Metrics in Prometheus' text format: `etmemd --metrics-file` and `etmem project show
//! --prometheus`, parsed by a real Prometheus text parser (the Python `prometheus_client`
//! package's, Debian python3-prometheus-client), against a slide project that swaps a
//! workload's cold memory on this machine's swap (zram in CI).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::{Daemon, Scratch};
use common::workload::Workload;
use common::{can_swap, skip, wait_for};

/// Parses exposition text on stdin with prometheus_client and prints one line per
/// sample: `name{k=v,...} value`, labels sorted; fails on text the parser refuses.
const PARSER: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{fam.type} {s.name}{{{labels}}} {s.value}")
"#;

/// Samples by `name{labels}`: (family type, value); `None` if the parser is missing.
fn parse(text: &str) -> Option<BTreeMap<String, (String, f64)>> {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named") {
        return None;
    }
    assert!(
        out.status.success(),
        "the parser refused the text: {err}\n{text}"
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let mut f = l.splitn(3, ' ');
                let kind = f.next().unwrap().to_string();
                let key = f.next().unwrap().to_string();
                (key, (kind, f.next().unwrap().parse().unwrap()))
            })
            .collect(),
    )
}

fn value(m: &BTreeMap<String, (String, f64)>, key: &str) -> f64 {
    m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
        .1
}

#[test]
fn metrics_file_and_show_prometheus_parse_and_count_the_swapping() {
    if !can_swap("process_madvise(MADV_PAGEOUT) on another process") {
        return;
    }
    if parse("").is_none() {
        return skip("python3-prometheus-client is not installed");
    }
    let s = Scratch::new("metrics");
    let file = s.path("etmem.prom");
    let d = Daemon::start_with_args("metrics", &["--metrics-file", &file]);
    // Written at start, before any project: the daemon's own figures.
    let first = std::fs::read_to_string(&file).expect("metrics file written at start");
    let m = parse(&first).unwrap();
    assert!(value(&m, "etmem_daemon_resident_bytes{}") > 0.0);
    assert_eq!(m["etmem_daemon_cpu_seconds_total{}"].0, "counter");

    let mut w = Workload::spawn(&["--hot-mib", "8", "--cold-mib", "32"]);
    let conf = format!(
        "[project]\nname=m\nloop=1\ninterval=1\nsleep=1\n[engine]\nname=slide\nproject=m\n\
         [task]\nproject=m\nengine=slide\nname=t\ntype=pid\nvalue={}\nT=1\n",
        w.pid
    );
    d.add(&s.conf("m.conf", &conf)).expect(0);
    d.run(&["project", "start", "-n", "m"]).expect(0);
    let task = "{engine=slide,project=m,task=t}";
    // Task `t`'s sample of `family` in the metrics file now (0 until there is one).
    let in_file = |family: &str| {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        parse(&text).map_or(0.0, |m| {
            m.get(&format!("{family}{task}")).map_or(0.0, |v| v.1)
        })
    };
    assert!(
        wait_for(Duration::from_secs(60), || {
            in_file("etmem_task_swapped_out_bytes_total") >= (16 << 20) as f64
        }),
        "the metrics file never showed the cold memory swapped: {}",
        std::fs::read_to_string(&file).unwrap_or_default()
    );
    // Touch everything: the cold pages come back, and the next cycle counts them.
    let v = w.verify();
    assert!(v.starts_with("verify ok"), "{v}");
    assert!(
        wait_for(Duration::from_secs(30), || {
            in_file("etmem_task_refaults_total") >= 1024.0
        }),
        "no refaults counted after the workload read its swapped memory back: {}",
        std::fs::read_to_string(&file).unwrap_or_default()
    );

    let shown = d
        .run(&["project", "show", "--prometheus", "-n", "m"])
        .expect(0)
        .stdout;
    let m = parse(&shown).unwrap();
    println!("{shown}");
    for (family, kind) in [
        ("etmem_task_pages_scanned_total", "counter"),
        ("etmem_task_cold_pages_total", "counter"),
        ("etmem_task_swap_accepted_bytes_total", "counter"),
        ("etmem_task_cycles_total", "counter"),
        ("etmem_task_cycle_seconds_total", "counter"),
        ("etmem_task_last_cycle_duration_seconds", "gauge"),
    ] {
        let (k, v) = &m[&format!("{family}{task}")];
        assert_eq!(k, kind, "{family}");
        assert!(*v > 0.0, "{family} is {v}");
    }
    assert_eq!(
        value(&m, &format!("etmem_task_cycle_errors_total{task}")),
        0.0
    );
    assert_eq!(value(&m, "etmem_project_started{project=m}"), 1.0);
    // The project's sums equal its one task's figures.
    assert!(value(&m, "etmem_project_swapped_out_bytes_total{project=m}") >= (16 << 20) as f64);
    assert!(value(&m, "etmem_daemon_cpu_seconds_total{}") > 0.0);
    // Stopping is reflected at once; the flags of one view are exclusive.
    d.run(&["project", "stop", "-n", "m"]).expect(0);
    let m = parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(value(&m, "etmem_project_started{project=m}"), 0.0);
    d.run(&["project", "show", "--prometheus", "--json"])
        .expect(2)
        .err_has(&["--json and --prometheus cannot be combined"]);
}

#[test]
fn a_metrics_file_in_a_missing_directory_is_a_usage_error() {
    let o = common::run(&[
        "etmemd",
        "-s",
        "etmem-metrics-bad",
        "--metrics-file",
        "/nonexistent-dir/x.prom",
    ]);
    let (_, err) = common::texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--metrics-file /nonexistent-dir/x.prom: /nonexistent-dir is not a directory"),
        "{err}"
    );
}
